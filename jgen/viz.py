"""Plotting for jgen experiments: image grids, densities, samples, traces, curves.

Every public function builds a :class:`matplotlib.figure.Figure` with a title and
axis labels, returns it, and, when ``path`` is given, writes a PNG there (parent
directories are created) and closes the figure.

Figures are created directly on the Agg canvas (``Figure`` + ``FigureCanvasAgg``),
never through ``pyplot``, so importing this module neither selects a backend nor
registers figures with pyplot's global state. The house style is applied through a
temporary :func:`matplotlib.rc_context` around each call, so global ``rcParams``
are left as they were.

Keyword names are the same everywhere: ``title``, ``path``, ``xlabel``,
``ylabel``, ``ax`` (draw into an existing axes; single-axes plots only),
``cmap``, ``s`` (marker size).

Array inputs may be NumPy or JAX arrays; they are converted with ``np.asarray``.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

__all__ = [
    "SAVE_DPI",
    "normalize_images",
    "make_grid",
    "image_grid",
    "collage",
    "density_grid",
    "density_heatmap",
    "side_by_side",
    "subplots_panels",
    "layer_scatter",
    "scatter2d",
    "scatter3d",
    "trace_plot",
    "autocorrelation_plot",
    "histogram_with_density",
    "ema",
    "loss_curves",
    "line_plot",
    "graph_plot",
]

#: Resolution of saved PNGs (pixels per inch); a saved figure is exactly
#: ``fig.get_size_inches() * SAVE_DPI`` pixels.
SAVE_DPI = 110

# Okabe-Ito colour-blind safe palette.
_PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

_STYLE = {
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
    "axes.prop_cycle": matplotlib.cycler(color=_PALETTE),
    "legend.frameon": False,
    "legend.fontsize": 8,
    "lines.linewidth": 1.4,
    "image.interpolation": "nearest",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
}

Array = Any  # np.ndarray | jax.Array | nested sequence


# --------------------------------------------------------------------------- helpers


def _styled(fn):
    """Run ``fn`` under the jgen rc style without changing global rcParams."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return fn(*args, **kwargs)

    return wrapper


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: Agg, independent of pyplot
    return fig


def _single_axes(ax, figsize: tuple[float, float], **subplot_kw):
    """Returns (fig, ax): the given axes' figure, or a fresh one-axes figure."""
    if ax is not None:
        return ax.figure, ax
    fig = _new_figure(figsize)
    return fig, fig.add_subplot(1, 1, 1, **subplot_kw)


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Saves ``fig`` as PNG at ``path`` (creating parents) and closes it; returns it."""
    if path is not None:
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, format="png", dpi=SAVE_DPI)
        # Only figures a caller created through pyplot are registered there; ours never are.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None and getattr(fig.canvas, "manager", None) is not None:
            pyplot.close(fig)
    return fig


def _as_points(points: Array, dim: int, name: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{name} must have shape [N, {dim}], got shape {arr.shape}.")
    return arr


def _as_1d(values: Array, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one value.")
    return arr


def _as_lim(lim, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in lim)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {lim!r}.") from None
    if not hi > lo:
        raise ValueError(f"{name} must satisfy low < high, got {lim!r}.")
    return lo, hi


def _is_categorical(c: np.ndarray) -> bool:
    return c.dtype.kind in "biuUSO"


def _scatter(ax, pts: np.ndarray, c, s: float, alpha: float, cmap: str, colorbar: bool = True):
    """Scatter with optional colours: categorical labels get a legend, floats a colourbar."""
    if c is None:
        return ax.scatter(*pts.T, s=s, alpha=alpha, linewidths=0, color=_PALETTE[0])
    c = np.asarray(c)
    if c.shape != (pts.shape[0],):
        raise ValueError(f"c must have shape [{pts.shape[0]}] (one label per point), got {c.shape}.")
    if _is_categorical(c):
        classes = np.unique(c)
        if len(classes) <= 20:
            colors = matplotlib.colormaps["tab20" if len(classes) > 10 else "tab10"]
            for k, cls in enumerate(classes):
                sel = c == cls
                ax.scatter(*pts[sel].T, s=s, alpha=alpha, linewidths=0, color=colors(k), label=str(cls))
            ax.legend(markerscale=max(1.0, 12.0 / max(s, 1e-3)) ** 0.5, loc="best")
            return None
        c = np.searchsorted(classes, c)
    sc = ax.scatter(*pts.T, c=c.astype(np.float64), s=s, alpha=alpha, linewidths=0, cmap=cmap)
    if colorbar:
        ax.figure.colorbar(sc, ax=ax, shrink=0.8)
    return sc


def _hide_frame(ax) -> None:
    ax.grid(False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


# --------------------------------------------------------------------------- images


def normalize_images(images: Array, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Maps images to float64 in [0, 1] for display.

    Rules, in order:
      * ``vmin``/``vmax`` given: ``(x - vmin) / (vmax - vmin)`` clipped to [0, 1];
      * bool, or integers within {0, 1} (binarised data): used as is;
      * other integers within [0, 255] (e.g. uint8 pixels): divided by 255;
      * floats within [0, 1]: used as is;
      * floats within [-1, 1]: ``(x + 1) / 2``;
      * anything else: linearly rescaled from the data's min/max.
    NaNs are kept (drawn in the colormap's "bad" colour) and ignored by the detection.

    Args:
      images: array of any shape.
      vmin, vmax: optional explicit value range (both or neither).

    Returns:
      float64 array of the same shape with values in [0, 1] (or NaN).
    """
    x = np.asarray(images)
    if (vmin is None) != (vmax is None):
        raise ValueError("Give both vmin and vmax, or neither.")
    if vmin is not None:
        if not vmax > vmin:
            raise ValueError(f"vmax must be > vmin, got vmin={vmin}, vmax={vmax}.")
        return np.clip((x.astype(np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"images must be numeric (bool, int or float), got dtype {x.dtype}.")
    xf = x.astype(np.float64)
    finite = xf[np.isfinite(xf)]
    if finite.size == 0:
        return np.full_like(xf, np.nan)
    lo, hi = float(finite.min()), float(finite.max())
    if x.dtype.kind in "biu":
        if lo >= 0 and hi <= 1:
            return xf
        if lo >= 0 and hi <= 255:
            return xf / 255.0
    elif lo >= 0 and hi <= 1:
        return xf
    elif lo >= -1 and hi <= 1:
        return (xf + 1.0) / 2.0
    if hi == lo:
        return np.full_like(xf, 0.5)
    return (xf - lo) / (hi - lo)


def _as_image_batch(images: Array, name: str = "images") -> np.ndarray:
    """Returns [N, H, W] (grey) or [N, H, W, 3|4] (colour); [N, H, W, 1] is squeezed."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] in (3, 4))):
        raise ValueError(
            f"{name} must have shape [N, H, W] or [N, H, W, C] with C in (1, 3, 4), got shape {x.shape}."
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty; expected at least one image.")
    return x


def make_grid(images: Array, nrow: int | None = None, *, pad: int = 1, pad_value: float = 1.0,
              vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Tiles a batch of images into one mosaic with ``pad``-pixel separators.

    Args:
      images: [N, H, W] or [N, H, W, C] (C in 1, 3, 4); uint8, bool or float; values are
        mapped to [0, 1] by :func:`normalize_images`.
      nrow: images per row (torchvision convention); default ``ceil(sqrt(N))``.
      pad: separator width in pixels between tiles (no outer border).
      pad_value: separator (and empty cell) value in [0, 1]; 1.0 is white.
      vmin, vmax: explicit value range, see :func:`normalize_images`.

    Returns:
      float64 [rows*H + (rows-1)*pad, nrow*W + (nrow-1)*pad(, C)] with values in [0, 1];
      image ``i`` sits at grid cell (i // nrow, i % nrow).
    """
    x = normalize_images(_as_image_batch(images), vmin, vmax)
    n, h, w = x.shape[:3]
    ncol = int(nrow) if nrow is not None else math.ceil(math.sqrt(n))
    if ncol < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}.")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}.")
    ncol = min(ncol, n)
    nrows = math.ceil(n / ncol)
    grid = np.full((nrows * h + (nrows - 1) * pad, ncol * w + (ncol - 1) * pad) + x.shape[3:],
                   float(pad_value))
    for i in range(n):
        r, c = divmod(i, ncol)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = x[i]
    return grid


@_styled
def image_grid(images: Array, nrow: int | None = None, *, title: str = "samples", path=None,
               cmap: str = "gray", vmin: float | None = None, vmax: float | None = None,
               row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
               xlabel: str | None = None, ylabel: str | None = None, separator: float = 1.0,
               separator_color: str = "#8c8c8c", ax=None, width: float | None = None) -> Figure:
    """Shows a batch of images as one grid, e.g. 100 samples as 10x10.

    Args:
      images: [N, H, W] or [N, H, W, C]; uint8, bool, float in [0,1] or [-1,1] (detected,
        see :func:`normalize_images`) or any range with ``vmin``/``vmax``.
      nrow: images per row; default ``ceil(sqrt(N))``.
      title: axes title.
      path: where to save the PNG (optional).
      cmap: colormap for single-channel images.
      vmin, vmax: explicit value range.
      row_labels: one label per grid row, drawn left of the rows (e.g. "original", "d=2").
      col_labels: one label per grid column, drawn below the columns.
      xlabel, ylabel: axis labels; by default the x label states the grid and image size.
      separator: width in points of the lines between tiles (0: none). Lines rather than
        padding pixels keep every separator equally thin whatever the display scale.
      separator_color: colour of those lines; mid-grey stays visible on black and white images.
      ax: existing axes to draw into.
      width: figure width in inches (height follows the grid's aspect ratio).

    Returns:
      The figure.
    """
    batch = _as_image_batch(images)
    grid = make_grid(batch, nrow, pad=0, pad_value=1.0, vmin=vmin, vmax=vmax)
    n, h, w = batch.shape[:3]
    nrows, ncol = grid.shape[0] // h, grid.shape[1] // w  # pad=0: the grid is exactly nrows x ncol tiles
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"row_labels needs one label per grid row ({nrows}), got {len(row_labels)}.")
    if col_labels is not None and len(col_labels) != ncol:
        raise ValueError(f"col_labels needs one label per grid column ({ncol}), got {len(col_labels)}.")
    gh, gw = grid.shape[:2]
    base = float(np.clip(gw / 40.0, 3.0, 9.0)) if width is None else float(width)
    height = float(np.clip(base * gh / gw, 1.0, 14.0)) + 0.7
    fig, ax = _single_axes(ax, (base + (0.8 if row_labels is not None else 0.0), height))
    ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    _hide_frame(ax)
    if separator > 0:
        for r in range(1, nrows):
            ax.axhline(r * h - 0.5, color=separator_color, lw=separator)
        for c in range(1, ncol):
            ax.axvline(c * w - 0.5, color=separator_color, lw=separator)
    if row_labels is not None:
        ax.set_yticks([r * h + (h - 1) / 2 for r in range(nrows)], [str(l) for l in row_labels])
        ax.tick_params(axis="y", length=0)
    if col_labels is not None:
        ax.set_xticks([c * w + (w - 1) / 2 for c in range(ncol)], [str(l) for l in col_labels])
        ax.tick_params(axis="x", length=0)
    ax.set_title(title)
    ax.set_xlabel(xlabel if xlabel is not None else f"{n} images of {h}x{w} px, {nrows}x{ncol} grid")
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    return _finish(fig, path)


def collage(rows: Sequence[Array], row_labels: Sequence[str], *, title: str = "reconstructions",
            path=None, col_labels: Sequence[str] | None = None, **kwargs) -> Figure:
    """One labelled row per image batch, e.g. originals then reconstructions for several d.

    Args:
      rows: sequence of R batches, each [K, H, W] or [K, H, W, C] with the same shape.
      row_labels: R labels ("original", "d=2", ...).
      title, path, col_labels, **kwargs: as for :func:`image_grid`.

    Returns:
      The figure.
    """
    batches = [_as_image_batch(r, name=f"rows[{i}]") for i, r in enumerate(rows)]
    if not batches:
        raise ValueError("rows is empty; expected at least one batch of images.")
    shapes = {b.shape for b in batches}
    if len(shapes) != 1:
        raise ValueError(f"all rows must have the same shape [K, H, W(, C)], got {sorted(shapes)}.")
    if len(row_labels) != len(batches):
        raise ValueError(f"row_labels needs one label per row ({len(batches)}), got {len(row_labels)}.")
    k = batches[0].shape[0]
    # Normalise jointly so that rows stay comparable (a reconstruction is not re-stretched).
    stacked = np.concatenate(batches, axis=0)
    return image_grid(stacked, nrow=k, title=title, path=path, row_labels=row_labels,
                      col_labels=col_labels, **kwargs)


# --------------------------------------------------------------------------- densities


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
    xlim, ylim = _as_lim(xlim, "xlim"), _as_lim(ylim, "ylim")
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


@_styled
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
    xlim, ylim = _as_lim(xlim, "xlim"), _as_lim(ylim, "ylim")
    values = _density_values(density, xlim, ylim, n, log)
    fig, ax = _single_axes(ax, (4.6, 3.8))
    im = _heatmap(ax, values, xlim, ylim, cmap, vmin, vmax)
    ax.grid(False)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.85, label="log density" if log else "density")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, path)


@_styled
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
    xlim, ylim = _as_lim(xlim, "xlim"), _as_lim(ylim, "ylim")
    values = [_density_values(d, xlim, ylim, n, log) for _, d in panels]
    vmin = vmax = None
    if shared_scale:
        finite = [v.compressed() for v in values if v.count()]
        if finite:
            allv = np.concatenate(finite)
            vmin, vmax = float(allv.min()), float(allv.max())
    k = len(panels)
    fig = _new_figure((3.3 * k + 0.9, 3.6))
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
    return _finish(fig, path)


# --------------------------------------------------------------------------- panels & scatter


def _panel_kind(item: np.ndarray, kind: str) -> str:
    if kind == "auto":
        return "points" if item.ndim == 2 and item.shape[1] == 2 else "image"
    return kind


def _limits(lim):
    """None | (lo, hi) | ((x0, x1), (y0, y1)) -> (xlim, ylim) or (None, None)."""
    if lim is None:
        return None, None
    lim = tuple(lim)
    if len(lim) == 2 and np.isscalar(lim[0]):
        both = _as_lim(lim, "lim")
        return both, both
    if len(lim) == 2:
        return _as_lim(lim[0], "lim[0]"), _as_lim(lim[1], "lim[1]")
    raise ValueError(f"lim must be (lo, hi) or ((x0, x1), (y0, y1)), got {lim!r}.")


@_styled
def subplots_panels(items: Sequence[Array], titles: Sequence[str] | None = None, *, title: str = "panels",
                    path=None, kind: str = "auto", cmap: str = "gray", vmin: float | None = None,
                    vmax: float | None = None, s: float = 2.0, share: bool = True, lim=None,
                    xlabel: str | None = None, ylabel: str | None = None, axes_off: bool = False,
                    panel_size: float = 2.6) -> Figure:
    """A 1 x K row of panels: images (e.g. forward noising at 5 timesteps) or 2-D point clouds.

    Args:
      items: K arrays; each an image [H, W] / [H, W, C] or points [N, 2].
      titles: K panel titles (e.g. "t=0", "t=250").
      kind: "image", "points", or "auto" ([N, 2] arrays are points, the rest images).
      vmin, vmax: image value range shared by all image panels; by default each image is
        normalised on its own by :func:`normalize_images` (noisy x_t leaves [-1, 1]).
      s: marker size for point panels.
      share: point panels share x and y axes.
      lim: axis limits for point panels: (lo, hi) for both axes or ((x0, x1), (y0, y1)).
      xlabel, ylabel: defaults "$x_1$"/"$x_2$" for points, the image size for images.
      axes_off: hide ticks and frames of point panels.
      panel_size: inches per panel.
      title, path, cmap: as everywhere.

    Returns:
      The figure.
    """
    if kind not in ("auto", "image", "points"):
        raise ValueError(f"kind must be 'auto', 'image' or 'points', got {kind!r}.")
    arrays = [np.asarray(it) for it in items]
    if not arrays:
        raise ValueError("items is empty; expected at least one image or point cloud.")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"titles needs one title per item ({len(arrays)}), got {len(titles)}.")
    kinds = [_panel_kind(a, kind) for a in arrays]
    for i, (a, k) in enumerate(zip(arrays, kinds)):
        if k == "points":
            _as_points(a, 2, name=f"items[{i}]")
        else:
            _as_image_batch(a[None], name=f"items[{i}] (an image [H, W] or [H, W, C])")
    xl, yl = _limits(lim)
    n = len(arrays)
    fig = _new_figure((panel_size * n + 0.4, panel_size + 0.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    first_points = None
    for i, (ax, a, k) in enumerate(zip(axes, arrays, kinds)):
        if k == "points":
            if share and first_points is not None:
                ax.sharex(first_points)
                ax.sharey(first_points)
            if first_points is None:
                first_points = ax
            ax.scatter(*a[:, :2].T, s=s, alpha=0.6, linewidths=0, color=_PALETTE[0])
            if xl is not None:
                ax.set_xlim(xl)
                ax.set_ylim(yl)
            ax.set_xlabel(xlabel if xlabel is not None else "$x_1$")
            if i == 0 or not share:
                ax.set_ylabel(ylabel if ylabel is not None else "$x_2$")
            if axes_off:
                ax.set_axis_off()
        else:
            img = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
            ax.imshow(normalize_images(img, vmin, vmax), cmap=cmap, vmin=0.0, vmax=1.0)
            _hide_frame(ax)
            ax.set_xlabel(xlabel if xlabel is not None else f"{img.shape[0]}x{img.shape[1]} px")
            if ylabel is not None and i == 0:
                ax.set_ylabel(ylabel)
        ax.set_title(str(titles[i]) if titles is not None else f"({i + 1})")
    fig.suptitle(title)
    return _finish(fig, path)


def layer_scatter(panels: Sequence[tuple[str, Array]], *, title: str = "samples through the flow",
                  path=None, s: float = 2.0, lim=None, xlabel: str = "$x_1$", ylabel: str = "$x_2$",
                  axes_off: bool = False) -> Figure:
    """Samples after the prior and after each layer, one shared-axes scatter per stage.

    Args:
      panels: list of (panel title, points [N, 2]), e.g. [("prior", z), ("layer 1", x1), ...].
      lim: shared axis limits, (lo, hi) or ((x0, x1), (y0, y1)); default automatic.
      title, path, s, xlabel, ylabel, axes_off: as for :func:`subplots_panels`.

    Returns:
      The figure.
    """
    if not panels:
        raise ValueError("panels is empty; expected a list of (title, points [N, 2]).")
    return subplots_panels([p for _, p in panels], [t for t, _ in panels], title=title, path=path,
                           kind="points", s=s, share=True, lim=lim, xlabel=xlabel, ylabel=ylabel,
                           axes_off=axes_off)


@_styled
def scatter2d(points: Array, *, title: str = "samples", path=None, c=None, s: float = 4.0,
              alpha: float = 0.6, xlim=None, ylim=None, axes_off: bool = False, equal: bool = False,
              cmap: str = "viridis", xlabel: str = "$x_1$", ylabel: str = "$x_2$", ax=None) -> Figure:
    """Scatter of 2-D points.

    Args:
      points: [N, 2].
      c: optional [N] colours: integer/string labels (legend) or floats (colour bar).
      s, alpha: marker size and opacity.
      xlim, ylim: axis limits (optional).
      axes_off: hide ticks and frame (the title stays), e.g. for the datasaurus.
      equal: equal aspect ratio.
      title, path, cmap, xlabel, ylabel, ax: as everywhere.

    Returns:
      The figure.
    """
    pts = _as_points(points, 2)
    fig, ax = _single_axes(ax, (4.4, 4.0))
    _scatter(ax, pts, c, s, alpha, cmap)
    if xlim is not None:
        ax.set_xlim(_as_lim(xlim, "xlim"))
    if ylim is not None:
        ax.set_ylim(_as_lim(ylim, "ylim"))
    if equal:
        ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if axes_off:
        ax.set_axis_off()
    return _finish(fig, path)


@_styled
def scatter3d(points: Array, *, title: str = "samples", path=None, c=None, s: float = 4.0,
              alpha: float = 0.7, cmap: str = "viridis", xlabel: str = "$x_1$", ylabel: str = "$x_2$",
              zlabel: str = "$x_3$", elev: float = 25.0, azim: float = -60.0, ax=None) -> Figure:
    """3-D scatter of points [N, 3], optionally coloured by labels ``c`` [N].

    ``ax``, when given, must be a 3-D axes (``projection="3d"``). Other arguments as for
    :func:`scatter2d`; ``elev``/``azim`` set the view (degrees).

    Returns:
      The figure.
    """
    pts = _as_points(points, 3)
    if ax is not None and not hasattr(ax, "get_zlim"):
        raise ValueError("scatter3d needs a 3-D axes (add_subplot(projection='3d')), got a 2-D axes.")
    fig, ax = _single_axes(ax, (5.0, 4.4), projection="3d")
    _scatter(ax, pts, c, s, alpha, cmap)
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel(zlabel)
    return _finish(fig, path)


# --------------------------------------------------------------------------- MCMC diagnostics


@_styled
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
    fig = _new_figure((7.5, 1.7 * shown + 0.8))
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
    return _finish(fig, path)


@_styled
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
        series = {str(k): _as_1d(v, f"acf[{k!r}]") for k, v in acf.items()}
        if not series:
            raise ValueError("acf dict is empty; expected name -> [lags].")
    else:
        a = np.asarray(acf, dtype=np.float64)
        if a.ndim == 1:
            series = {None: _as_1d(a, "acf")}
        elif a.ndim == 2:
            series = {f"[{i}]": _as_1d(row, f"acf[{i}]") for i, row in enumerate(a)}
        else:
            raise ValueError(f"acf must be [lags], [k, lags] or a dict name -> [lags], got shape {a.shape}.")
    fig, ax = _single_axes(ax, (5.5, 3.4))
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
    return _finish(fig, path)


@_styled
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
    x = _as_1d(samples, "samples")
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("samples has no finite values.")
    if range is not None:
        range = _as_lim(range, "range")
    fig, ax = _single_axes(ax, (5.5, 3.6))
    _, edges, _ = ax.hist(x, bins=bins, range=range, density=True, color=_PALETTE[0], alpha=0.45,
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
            grid, pdf = _as_1d(grid, "density x"), _as_1d(pdf, "density pdf")
            if grid.shape != pdf.shape:
                raise ValueError(f"density x and pdf must have the same shape, got {grid.shape} and {pdf.shape}.")
        ax.plot(grid, pdf, color=_PALETTE[1], lw=1.8, label=density_label)
    ax.legend()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, path)


# --------------------------------------------------------------------------- curves


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
        steps, values = _as_1d(curve[0], f"{name} steps"), _as_1d(curve[1], f"{name} values")
        if steps.shape != values.shape:
            raise ValueError(f"curve {name!r}: steps and values must have the same length, "
                             f"got {steps.size} and {values.size}.")
        return steps, values
    values = _as_1d(curve, f"{name} values")
    return np.arange(values.size, dtype=np.float64), values


@_styled
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
    fig, ax = _single_axes(ax, (6.0, 3.8))
    for i, (name, (steps, values)) in enumerate(data.items()):
        color = _PALETTE[i % len(_PALETTE)]
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
    return _finish(fig, path)


@_styled
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
    xv = _as_1d(x, "x")
    series = {str(k): v for k, v in ys.items()} if isinstance(ys, Mapping) else {None: ys}
    if not series:
        raise ValueError("ys is empty; expected name -> [T] values.")
    fig, ax = _single_axes(ax, (5.5, 3.6))
    for name, y in series.items():
        yv = _as_1d(y, f"ys[{name!r}]" if name is not None else "ys")
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
    return _finish(fig, path)


# --------------------------------------------------------------------------- graphs


@_styled
def graph_plot(X: Array, E: Array, *, title: str = "graph", path=None, ax=None, directed: bool | None = None,
               c=None, s: float = 30.0, node_labels: Sequence[str] | None = None, cmap: str = "viridis",
               xlabel: str = "feature 0", ylabel: str = "feature 1") -> Figure:
    """Draws a graph with node ``i`` at ``(X[i, 0], X[i, 1])`` and an edge wherever ``E[i, j] != 0``.

    Args:
      X: node features [n, f] with f >= 2 (the first two are the coordinates).
      E: adjacency [n, n]; weights scale the line width.
      directed: draw arrows i -> j; default: directed iff E is not symmetric.
      c: optional [n] node colours / labels (as for :func:`scatter2d`).
      s: node marker size.
      node_labels: optional n labels written next to the nodes.
      title, path, ax, cmap, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"X must have shape [n, f] with f >= 2 features, got {x.shape}.")
    n = x.shape[0]
    e = np.asarray(E, dtype=np.float64)
    if e.shape != (n, n):
        raise ValueError(f"E must be an adjacency matrix of shape [{n}, {n}] matching X, got {e.shape}.")
    if node_labels is not None and len(node_labels) != n:
        raise ValueError(f"node_labels needs one label per node ({n}), got {len(node_labels)}.")
    if directed is None:
        directed = not np.allclose(e, e.T)
    pairs = np.argwhere(e != 0) if directed else np.argwhere(np.triu(e != 0, k=1))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]  # self loops are not drawn
    w = np.abs(e[pairs[:, 0], pairs[:, 1]]) if len(pairs) else np.zeros(0)
    widths = 0.4 + 1.6 * w / w.max() if len(w) else w
    pos = x[:, :2]
    fig, ax = _single_axes(ax, (4.6, 4.2))
    if directed and len(pairs):
        d = pos[pairs[:, 1]] - pos[pairs[:, 0]]
        ax.quiver(*pos[pairs[:, 0]].T, *d.T, angles="xy", scale_units="xy", scale=1, width=0.004,
                  color="0.45", alpha=0.8, zorder=1)
    elif len(pairs):
        ax.add_collection(LineCollection(pos[pairs], linewidths=widths, colors="0.45", alpha=0.8, zorder=1))
    scatter_c = None if c is None else np.asarray(c)
    if scatter_c is None:
        ax.scatter(*pos.T, s=s, color=_PALETTE[0], edgecolors="white", linewidths=0.6, zorder=2)
    else:
        _scatter(ax, pos, scatter_c, s, 1.0, cmap)
    if node_labels is not None:
        for (px, py), lab in zip(pos, node_labels):
            ax.annotate(str(lab), (px, py), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.autoscale_view()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return _finish(fig, path)
