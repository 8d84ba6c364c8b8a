"""Curves against a step or a variable: training curves (raw and EMA-smoothed), generic lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jgen.viz.style import PALETTE, as_1d, finish, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["ema", "loss_curves", "line_plot", "bar_chart"]


def ema(values: Array, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard's smoothing slider).

    ``m_t = a m_{t-1} + (1 - a) v_t``, ``m_{-1} = 0``, reported as ``m_t / (1 - a^{n_t})``
    where ``n_t`` counts the finite values so far; non-finite values are skipped.
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be an EMA factor in [0, 1), got {smoothing}.")
    v = np.asarray(values, dtype=np.float64)
    out = np.empty_like(v)
    m, count = 0.0, 0
    for i, vi in enumerate(v):
        if np.isfinite(vi):
            m = smoothing * m + (1.0 - smoothing) * vi
            count += 1
        out[i] = m / (1.0 - smoothing**count) if count else np.nan
    return out


def _as_curve(name, curve) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(curve, tuple) and len(curve) == 2:
        steps, values = as_1d(curve[0], f"{name} steps"), as_1d(curve[1], f"{name} values")
        if steps.shape != values.shape:
            raise ValueError(f"curve {name!r}: steps and values must have the same length, "
                             f"got {steps.size} and {values.size}.")
        return steps, values
    values = as_1d(curve, f"{name} values")
    return np.arange(values.size, dtype=np.float64), values


@styled
def loss_curves(curves: Mapping[str, Any], *, smoothing: float | None = None, mark_best=None,
                logy: bool = False, title: str = "training curves", path=None, ax=None,
                xlabel: str = "step", ylabel: str = "loss") -> Figure:
    """Several training/validation curves on one plot.

    Args:
      curves: dict name -> (steps [T], values [T]) or values [T] (steps 0..T-1).
      smoothing: EMA factor in [0, 1) (see :func:`ema`); the raw curve stays faint behind.
      mark_best: ``True`` marks each curve's minimum; a dict name -> step (or ``True`` for the
        minimum) marks chosen curves, e.g. the early-stopping epoch. Drawn as a dotted
        vertical line and a point on the raw curve.
      logy: logarithmic y axis.
      title, path, ax, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty dict name -> (steps, values) or values.")
    data = {str(k): _as_curve(k, v) for k, v in curves.items()}
    if mark_best is True:
        marks = {k: True for k in data}
    elif not mark_best:
        marks = {}
    elif isinstance(mark_best, Mapping):
        unknown = set(map(str, mark_best)) - set(data)
        if unknown:
            raise ValueError(f"mark_best names {sorted(unknown)} are not curves; curves are {sorted(data)}.")
        marks = {str(k): v for k, v in mark_best.items() if v is not False and v is not None}
    else:
        raise ValueError(f"mark_best must be True, None or a dict name -> step, got {mark_best!r}.")
    fig, ax = single_axes(ax, (6.0, 3.8))
    for i, (name, (steps, values)) in enumerate(data.items()):
        color = PALETTE[i % len(PALETTE)]
        if smoothing:
            ax.plot(steps, values, color=color, alpha=0.25, lw=0.9)
            ax.plot(steps, ema(values, smoothing), color=color, label=name)
        else:
            ax.plot(steps, values, color=color, label=name)
        if name in marks:
            if marks[name] is True:
                if not np.isfinite(values).any():
                    continue
                idx = int(np.nanargmin(np.where(np.isfinite(values), values, np.nan)))
            else:
                idx = int(np.argmin(np.abs(steps - float(marks[name]))))
            ax.axvline(steps[idx], color=color, ls=":", lw=1.0)
            ax.plot([steps[idx]], [values[idx]], marker="*", ms=10, color=color, ls="none",
                    label=f"best {name}: {values[idx]:.4g} @ {steps[idx]:g}")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


@styled
def line_plot(x: Array, ys, *, title: str = "curves", path=None, ax=None, xlabel: str = "x",
              ylabel: str = "y", logx: bool = False, logy: bool = False, marker: str | None = None) -> Figure:
    """Generic lines sharing one x, e.g. the DDPM ``alpha_bar_t`` schedule.

    Args:
      x: [T].
      ys: dict name -> [T] (legend) or a single [T] array.
      logx, logy: logarithmic axes.
      marker: optional matplotlib marker for the points.
      title, path, ax, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    xv = as_1d(x, "x")
    series = {str(k): v for k, v in ys.items()} if isinstance(ys, Mapping) else {None: ys}
    if not series:
        raise ValueError("ys is empty; expected name -> [T] values.")
    fig, ax = single_axes(ax, (5.5, 3.6))
    for name, y in series.items():
        yv = as_1d(y, f"ys[{name!r}]" if name is not None else "ys")
        if yv.shape != xv.shape:
            raise ValueError(f"ys[{name!r}] has {yv.size} values but x has {xv.size}.")
        ax.plot(xv, yv, marker=marker, ms=3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if any(name is not None for name in series):
        ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


@styled
def bar_chart(labels: Sequence[str], values: Array, *, errors: Array | None = None, colors: Sequence | None = None,
              hatches: Sequence[str | None] | None = None, horizontal: bool = False, annotate: bool = False,
              title: str = "results", path=None, ax=None, xlabel: str | None = None,
              ylabel: str | None = None, value_fmt: str = "{:.3f}") -> Figure:
    """One bar per labelled value, e.g. test bits/dim per model or a KL estimate per setting.

    Args:
      labels: K bar labels (K may be 0: an empty chart, e.g. before any result exists).
      values: [K] bar lengths.
      errors: optional [K] error-bar half-widths (e.g. 2 standard errors).
      colors: optional K colours (default: the first palette colour).
      hatches: optional K hatch patterns (None for solid), e.g. to mark bounds against exact values.
      horizontal: bars left to right, first label on top (long model names stay readable).
      annotate: write each value at the end of its bar with ``value_fmt``.
      title, path, ax, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)  # no bars is allowed: an empty chart says so
    k = v.size
    if len(labels) != k:
        raise ValueError(f"labels needs one label per value ({k}), got {len(labels)}.")
    err = None if errors is None else as_1d(errors, "errors")
    if err is not None and err.shape != v.shape:
        raise ValueError(f"errors needs one value per bar ({k}), got {err.size}.")
    for name, seq in (("colors", colors), ("hatches", hatches)):
        if seq is not None and len(seq) != k:
            raise ValueError(f"{name} needs one entry per bar ({k}), got {len(seq)}.")
    fig, ax = single_axes(ax, (7.0, 0.5 * max(k, 2) + 1.4) if horizontal else (max(3.6, 0.7 * k + 1.6), 3.4))
    pos = np.arange(k)
    kw = dict(color=list(colors) if colors is not None else PALETTE[0], edgecolor="black", linewidth=0.5,
              capsize=4 if err is not None else 0)
    bars = (ax.barh(pos, v, xerr=err, **kw) if horizontal else ax.bar(pos, v, yerr=err, **kw))
    if hatches is not None:
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
    if horizontal:
        ax.set_yticks(pos, [str(l) for l in labels])
        ax.invert_yaxis()
        ax.grid(False, axis="y")
    else:
        ax.set_xticks(pos, [str(l) for l in labels])
        ax.grid(False, axis="x")
    if annotate:
        for p, value in zip(pos, v):
            xy, align = ((value, p), dict(va="center", ha="left")) if horizontal else ((p, value), dict(ha="center",
                                                                                                      va="bottom"))
            ax.annotate(" " + value_fmt.format(value), xy, **align)
        if horizontal and np.isfinite(v).any():
            ax.set_xlim(0, 1.18 * np.nanmax(v))
    ax.set_title(title)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    return finish(fig, path)
