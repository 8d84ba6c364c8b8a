"""The house style, new figures on the Agg canvas, and the one way a figure is saved.

Figures are created directly on the Agg canvas (``Figure`` + ``FigureCanvasAgg``), never through
``pyplot``, so importing jgen.viz neither selects a backend nor registers figures with pyplot's global
state. The style is applied through a temporary :func:`matplotlib.rc_context` around each plotting call,
so global ``rcParams`` are left as they were.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["SAVE_DPI", "PALETTE", "save_figure", "panel_grid"]

#: Resolution of saved PNGs (pixels per inch); a saved figure is exactly
#: ``fig.get_size_inches() * SAVE_DPI`` pixels.
SAVE_DPI = 110

#: Okabe-Ito colour-blind safe palette, the colour cycle of every plot.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.dpi": 100,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "figure.titlesize": 12,
    "figure.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.35,
    "grid.linestyle": ":",
    "grid.linewidth": 0.6,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.4,
    "image.interpolation": "nearest",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}


def styled(fn):
    """Runs ``fn`` under the jgen rc style without changing global rcParams."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)

    return wrapper


def new_figure(figsize: tuple[float, float]) -> Figure:
    """An empty figure on its own Agg canvas with constrained layout."""
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: Agg, independent of pyplot
    return fig


def single_axes(ax, figsize: tuple[float, float], **subplot_kw):
    """Returns (fig, ax): the given axes' figure, or a fresh one-axes figure."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.add_subplot(1, 1, 1, **subplot_kw)


@styled
def panel_grid(nrows: int, ncols: int, *, panel_size: tuple[float, float] = (3.6, 3.0), title: str | None = None,
               projection: str | None = None):
    """An ``nrows x ncols`` grid of empty axes for plots drawn with ``ax=`` (the figure-level ``pyplot.subplots``).

    Args:
      nrows, ncols: grid shape.
      panel_size: (width, height) of one panel in inches.
      title: figure title (suptitle).
      projection: e.g. "3d" for 3-D panels.

    Returns:
      ``(fig, axes)`` with ``axes`` an object array ``[nrows, ncols]``; save with :func:`save_figure`.
    """
    if int(nrows) < 1 or int(ncols) < 1:
        raise ValueError(f"panel_grid needs nrows >= 1 and ncols >= 1, got {nrows} x {ncols}.")
    fig = new_figure((panel_size[0] * ncols, panel_size[1] * nrows + (0.4 if title else 0.0)))
    axes = fig.subplots(int(nrows), int(ncols), squeeze=False, subplot_kw={"projection": projection})
    if title:
        fig.suptitle(title)
    return fig, axes


def _titles(fig: Figure) -> list:
    texts = [getattr(fig, "_suptitle", None)]
    for ax in fig.axes:
        texts += [ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None)]
    return [t for t in texts if t is not None and t.get_visible() and t.get_text()]


def _fit_titles(fig: Figure, margin_px: float = 6.0) -> None:
    """Widens ``fig`` until every title lies inside it: a narrow image grid never clips its title."""
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    if get_renderer is None:
        return
    # Text widths do not depend on the layout: skip the extra draw when every title fits its axes.
    renderer = get_renderer()
    room = {id(t): ax.bbox.width for ax in fig.axes for t in (ax.title, getattr(ax, "_left_title", None),
                                                             getattr(ax, "_right_title", None)) if t is not None}
    if all(t.get_window_extent(renderer).width <= room.get(id(t), fig.bbox.width - 2 * margin_px)
           for t in _titles(fig)):
        return
    for _ in range(3):  # the layout moves titles when the figure widens; converges in one or two rounds
        fig.draw_without_rendering()
        renderer = get_renderer()
        extents = [t.get_window_extent(renderer) for t in _titles(fig)]
        if not extents:
            return
        overflow = max([0.0] + [max(-e.x0, e.x1 - fig.bbox.width) for e in extents])
        if overflow <= 0.5:
            return
        w, h = fig.get_size_inches()
        fig.set_size_inches(w + 2 * (overflow + margin_px) / fig.dpi, h)


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Writes ``fig`` as a PNG at ``path`` (parents created) and closes it where pyplot holds it.

    The one way jgen saves a figure. Figures without a layout engine get constrained layout, so tick labels
    and titles are not clipped, and a figure too narrow for a title is widened; the file is then exactly
    ``fig.get_size_inches() * SAVE_DPI`` pixels.

    Returns:
      The path written.
    """
    path = Path(os.fspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    _fit_titles(fig)
    fig.savefig(path, format="png", dpi=SAVE_DPI)
    # Only figures a caller created through pyplot are registered there; ours never are.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and getattr(fig.canvas, "manager", None) is not None:
        pyplot.close(fig)
    return path


def finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Saves ``fig`` at ``path`` when one is given; returns the figure."""
    if path is not None:
        save_figure(fig, path)
    return fig


def hide_frame(ax) -> None:
    """No grid, ticks or spines: for image panels."""
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def as_points(points, dim: int, name: str = "points") -> np.ndarray:
    """``points`` as float64 ``[N, dim]``, or a ValueError naming the shape."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape [N, {dim}], got shape {arr.shape}.")
    return arr


def as_1d(values, name: str) -> np.ndarray:
    """``values`` as a non-empty float64 ``[N]`` (``[N, 1]`` and ``[1, N]`` are flattened)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one value.")
    return arr


def as_lim(lim, name: str) -> tuple[float, float]:
    """An axis range ``(low, high)`` with ``low < high``."""
    try:
        lo, hi = (float(v) for v in lim)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {lim!r}.") from None
    if not hi > lo:
        raise ValueError(f"{name} must satisfy low < high, got {lim!r}.")
    return lo, hi
