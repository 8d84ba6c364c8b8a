"""2-D densities: a log-density evaluated on pixel centres, drawn as heatmaps (alone or side by side) or contours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jgen.viz.style import as_lim, finish, new_figure, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["density_grid", "density_heatmap", "side_by_side", "density_contours"]


def density_grid(log_prob_fn: Callable[[np.ndarray], Array], xlim=(-3.0, 3.0), ylim=(-3.0, 3.0),
                 n: int | tuple[int, int] = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluates a 2-D log density on the centres of an ``n x n`` pixel grid.

    Args:
      log_prob_fn: maps points [M, 2] (float32) to log densities [M] (nats).
      xlim, ylim: plotting box.
      n: pixels per side, or (nx, ny).

    Returns:
      (xs [nx], ys [ny], log_prob [ny, nx]) with ``log_prob[i, j]`` at ``(xs[j], ys[i])``.
    """
    xlim, ylim = as_lim(xlim, "xlim"), as_lim(ylim, "ylim")
    nx, ny = (n, n) if np.isscalar(n) else tuple(n)
    if int(nx) < 2 or int(ny) < 2:
        raise ValueError(f"n must be >= 2 pixels per side, got {n!r}.")
    nx, ny = int(nx), int(ny)
    xs = xlim[0] + (np.arange(nx) + 0.5) * (xlim[1] - xlim[0]) / nx
    ys = ylim[0] + (np.arange(ny) + 0.5) * (ylim[1] - ylim[0]) / ny
    gx, gy = np.meshgrid(xs, ys)
    pts = np.stack([gx.ravel(), gy.ravel()], axis=-1).astype(np.float32)
    values = np.asarray(log_prob_fn(pts), dtype=np.float64)
    if values.size != nx * ny:
        raise ValueError(f"log_prob_fn must map [M, 2] points to [M] log densities; for M={nx * ny} "
                         f"it returned shape {values.shape}.")
    return xs, ys, values.reshape(ny, nx)


def _density_values(density, xlim, ylim, n, log: bool) -> np.ndarray:
    """What a heatmap shows: density (or log density) on the grid, non-finite masked."""
    if callable(density):
        _, _, logp = density_grid(density, xlim, ylim, n)
        with np.errstate(over="ignore"):
            values = logp if log else np.exp(logp)
    else:
        values = np.asarray(density, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(
                f"density must be a log_prob_fn or density values of shape [ny, nx], got shape {values.shape}.")
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.log(values)
    return np.ma.masked_invalid(values)


def _heatmap(ax, values, xlim, ylim, cmap, vmin, vmax):
    return ax.imshow(values, origin="lower", extent=(*xlim, *ylim), cmap=cmap, vmin=vmin, vmax=vmax,
                     aspect="auto", interpolation="nearest")


@styled
def density_heatmap(density, xlim=(-3.0, 3.0), ylim=(-3.0, 3.0), n: int = 100, *, title: str = "density",
                    path=None, ax=None, log: bool = False, cmap: str = "viridis", vmin: float | None = None,
                    vmax: float | None = None, colorbar: bool = True, xlabel: str = "$x_1$",
                    ylabel: str = "$x_2$") -> Figure:
    """Heatmap of a 2-D density.

    Args:
      density: either ``log_prob_fn`` mapping points [M, 2] to log densities [M] (evaluated
        at pixel centres by :func:`density_grid`), or density values [ny, nx] already on the
        grid, row 0 at ``ylim[0]``.
      xlim, ylim: plotting box.
      n: pixels per side when ``density`` is a function.
      log: show the log density instead of the density.
      vmin, vmax: colour scale (default: data range).
      colorbar: draw a colour bar.
      title, path, ax, cmap, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    xlim, ylim = as_lim(xlim, "xlim"), as_lim(ylim, "ylim")
    values = _density_values(density, xlim, ylim, n, log)
    fig, ax = single_axes(ax, (4.6, 3.8))
    im = _heatmap(ax, values, xlim, ylim, cmap, vmin, vmax)
    ax.grid(False)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.85, label="log density" if log else "density")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


@styled
def side_by_side(panels: Sequence[tuple[str, Any]], xlim=(-3.0, 3.0), ylim=(-3.0, 3.0), n: int = 100, *,
                 title: str = "true vs estimated density", path=None, log: bool = False,
                 shared_scale: bool = True, cmap: str = "viridis", xlabel: str = "$x_1$",
                 ylabel: str = "$x_2$") -> Figure:
    """Density heatmaps in a row over the same box, e.g. true vs estimated density.

    Args:
      panels: list of (panel title, density) where density is a ``log_prob_fn`` or values
        [ny, nx], as for :func:`density_heatmap`.
      shared_scale: one colour scale (and colour bar) for all panels; otherwise one each.
      xlim, ylim, n, log, title, path, cmap, xlabel, ylabel: as for :func:`density_heatmap`.

    Returns:
      The figure.
    """
    if not panels:
        raise ValueError("panels is empty; expected a list of (title, density).")
    xlim, ylim = as_lim(xlim, "xlim"), as_lim(ylim, "ylim")
    values = [_density_values(d, xlim, ylim, n, log) for _, d in panels]
    vmin = vmax = None
    if shared_scale:
        finite = [v.compressed() for v in values if v.count()]
        if finite:
            allv = np.concatenate(finite)
            vmin, vmax = float(allv.min()), float(allv.max())
    k = len(panels)
    fig = new_figure((3.3 * k + 0.9, 3.6))
    axes = fig.subplots(1, k, sharex=True, sharey=True, squeeze=False)[0]
    label = "log density" if log else "density"
    for ax, (name, _), v in zip(axes, panels, values):
        im = _heatmap(ax, v, xlim, ylim, cmap, vmin, vmax)
        ax.grid(False)
        ax.set_title(str(name))
        ax.set_xlabel(xlabel)
        if not shared_scale:
            fig.colorbar(im, ax=ax, shrink=0.85, label=label)
    axes[0].set_ylabel(ylabel)
    if shared_scale:
        fig.colorbar(im, ax=list(axes), shrink=0.85, label=label)
    fig.suptitle(title)
    return finish(fig, path)


@styled
def density_contours(density, xlim=(-3.0, 3.0), ylim=(-3.0, 3.0), n: int = 200, *, ax, levels: int = 6,
                     color: str = "black", linewidth: float = 0.7):
    """Contour lines of a 2-D density drawn over an existing plot, e.g. a target behind its MCMC samples.

    Args:
      density: a ``log_prob_fn`` (points [M, 2] -> log densities [M], evaluated at pixel centres by
        :func:`density_grid`) or density values [ny, nx] on the grid.
      xlim, ylim, n: the grid, as for :func:`density_heatmap`.
      ax: the axes to draw on (required).
      levels: number of contour levels of the density (not the log density).
      color, linewidth: line style.

    Returns:
      The matplotlib ``QuadContourSet``.
    """
    xlim, ylim = as_lim(xlim, "xlim"), as_lim(ylim, "ylim")
    values = _density_values(density, xlim, ylim, n, log=False)
    ny, nx = values.shape
    xs = xlim[0] + (np.arange(nx) + 0.5) * (xlim[1] - xlim[0]) / nx
    ys = ylim[0] + (np.arange(ny) + 0.5) * (ylim[1] - ylim[0]) / ny
    return ax.contour(xs, ys, values, levels=levels, colors=color, linewidths=linewidth)
