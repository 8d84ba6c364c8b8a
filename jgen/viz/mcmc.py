"""MCMC diagnostics: traces, autocorrelations, and sample histograms against a density.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jgen.viz.style import PALETTE, as_1d, as_lim, finish, new_figure, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["trace_plot", "autocorrelation_plot", "histogram_with_density"]


@styled
def trace_plot(chains: Array, names: Sequence[str] | None = None, *, title: str = "trace", path=None,
               burn_in: int | None = None, reference: Sequence[float] | None = None,
               xlabel: str = "iteration", max_dims: int = 8, alpha: float = 0.8) -> Figure:
    """Trace of MCMC chains, one row per dimension, one line per chain.

    Args:
      chains: [num_chains, steps] or [num_chains, steps, d].
      names: d dimension names (y labels); default "x[i]".
      burn_in: shade the first ``burn_in`` iterations.
      reference: d reference values (e.g. true means) drawn as dashed lines.
      max_dims: only the first ``max_dims`` dimensions are drawn (noted in the title).
      title, path, xlabel: as everywhere.

    Returns:
      The figure.
    """
    x = np.asarray(chains, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[1] == 0:
        raise ValueError(f"chains must have shape [num_chains, steps] or [num_chains, steps, d], got {x.shape}.")
    c, t, d = x.shape
    if names is not None and len(names) != d:
        raise ValueError(f"names needs one name per dimension ({d}), got {len(names)}.")
    if reference is not None and len(reference) != d:
        raise ValueError(f"reference needs one value per dimension ({d}), got {len(reference)}.")
    shown = min(d, max_dims)
    fig = new_figure((7.5, 1.7 * shown + 0.8))
    axes = fig.subplots(shown, 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(t)
    for j, ax in enumerate(axes):
        for k in range(c):
            ax.plot(steps, x[k, :, j], lw=0.8, alpha=alpha, label=f"chain {k}")
        if burn_in:
            ax.axvspan(0, burn_in, color="0.85", alpha=0.6, lw=0, label="burn-in" if j == 0 else None)
        if reference is not None:
            ax.axhline(float(reference[j]), color="black", ls="--", lw=1.0, label="reference" if j == 0 else None)
        ax.set_ylabel(names[j] if names is not None else f"x[{j}]")
    axes[-1].set_xlabel(xlabel)
    if c <= 8 and (c > 1 or burn_in or reference is not None):
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
    fig.suptitle(title if shown == d else f"{title} (first {shown} of {d} dims)")
    return finish(fig, path)


@styled
def autocorrelation_plot(acf, *, title: str = "autocorrelation", path=None, ax=None, xlabel: str = "lag",
                         ylabel: str = "autocorrelation", max_lag: int | None = None) -> Figure:
    """Autocorrelation against lag.

    Args:
      acf: [lags] (lag 0 first), [k, lags] (one line per row), or dict name -> [lags].
      max_lag: draw lags 0..max_lag only.
      title, path, ax, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    if isinstance(acf, Mapping):
        series = {str(k): as_1d(v, f"acf[{k!r}]") for k, v in acf.items()}
        if not series:
            raise ValueError("acf dict is empty; expected name -> [lags].")
    else:
        a = np.asarray(acf, dtype=np.float64)
        if a.ndim == 1:
            series = {None: as_1d(a, "acf")}
        elif a.ndim == 2:
            series = {f"[{i}]": as_1d(row, f"acf[{i}]") for i, row in enumerate(a)}
        else:
            raise ValueError(f"acf must be [lags], [k, lags] or a dict name -> [lags], got shape {a.shape}.")
    fig, ax = single_axes(ax, (5.5, 3.4))
    for name, v in series.items():
        if max_lag is not None:
            v = v[: max_lag + 1]
        ax.plot(np.arange(v.size), v, marker="o", ms=2.5, lw=1.0, label=name)
    ax.axhline(0.0, color="0.4", lw=0.8)
    if any(name is not None for name in series):
        ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


@styled
def histogram_with_density(samples: Array, density=None, bins: int | Sequence[float] = 50, *,
                           title: str = "samples vs density", path=None, ax=None, range=None,
                           xlabel: str = "x", ylabel: str = "density", label: str = "samples",
                           density_label: str = "target density") -> Figure:
    """Normalised histogram of 1-D samples with a density curve on top.

    Args:
      samples: [N].
      density: optional ``pdf(x [M]) -> [M]`` (density, not log density) evaluated on 400
        points over the histogram range, or a tuple (x [M], pdf [M]).
      bins: number of bins or bin edges.
      range: (lo, hi) histogram range; default the sample range.
      label, density_label: legend entries.
      title, path, ax, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    x = as_1d(samples, "samples")
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("samples has no finite values.")
    if range is not None:
        range = as_lim(range, "range")
    fig, ax = single_axes(ax, (5.5, 3.6))
    _, edges, _ = ax.hist(x, bins=bins, range=range, density=True, color=PALETTE[0], alpha=0.45,
                          edgecolor="white", linewidth=0.4, label=label)
    if density is not None:
        if callable(density):
            grid = np.linspace(edges[0], edges[-1], 400)
            pdf = np.asarray(density(grid), dtype=np.float64).reshape(-1)
            if pdf.shape != grid.shape:
                raise ValueError(f"density(x) must return one value per point ({grid.size}), got {pdf.shape}.")
        else:
            try:
                grid, pdf = density
            except (TypeError, ValueError):
                raise ValueError("density must be a callable pdf(x) or a tuple (x, pdf).") from None
            grid, pdf = as_1d(grid, "density x"), as_1d(pdf, "density pdf")
            if grid.shape != pdf.shape:
                raise ValueError(f"density x and pdf must have the same shape, got {grid.shape} and {pdf.shape}.")
        ax.plot(grid, pdf, color=PALETTE[1], lw=1.8, label=density_label)
    ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)
