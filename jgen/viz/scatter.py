"""Point clouds: 2-D and 3-D scatters coloured by label or value, and rows of panels (images or points).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from jgen.viz.images import as_image_batch, normalize_images
from jgen.viz.style import PALETTE, as_lim, as_points, finish, hide_frame, new_figure, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["subplots_panels", "layer_scatter", "scatter2d", "scatter3d"]


#: Distinct colours for labels: tab10 up to 10 classes, tab20 up to 20, then tab20 + tab20b + tab20c (60).
_MAX_LEGEND_CLASSES = 20


def _class_colors(k: int) -> list:
    if k <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(k)]
    names = ("tab20", "tab20b", "tab20c")
    pool = [matplotlib.colormaps[n](i) for n in names for i in range(20)]
    return [pool[i % len(pool)] for i in range(k)]


def _is_categorical(c: np.ndarray) -> bool:
    return c.dtype.kind in "biuUSO"


def scatter_colored(ax, pts: np.ndarray, c, s: float, alpha: float, cmap: str, colorbar: bool = True,
                    clabel: str | None = None):
    """Scatter with optional colours ``c [N]``.

    Integer or string labels are categories: up to 20 get one distinct colour each and a legend; more (e.g.
    40 person IDs) get distinct colours too and a colour bar with one tick per class, never a continuous
    map on which neighbouring IDs look alike. Float values get ``cmap`` and a colour bar labelled ``clabel``.
    """
    if c is None:
        return ax.scatter(*pts.T, s=s, alpha=alpha, linewidths=0, color=PALETTE[0])
    c = np.asarray(c)
    if c.shape != (pts.shape[0],):
        raise ValueError(f"c must have shape [{pts.shape[0]}] (one label per point), got {c.shape}.")
    three_d = hasattr(ax, "get_zlim")
    # A 3-D axes draws its z label right of the box: give the colour bar room so it does not cover it.
    bar_kw = dict(shrink=0.7, pad=0.12) if three_d else dict(shrink=0.8)
    if _is_categorical(c):
        classes = np.unique(c)
        colors = _class_colors(len(classes))
        if len(classes) <= _MAX_LEGEND_CLASSES:
            for k, cls in enumerate(classes):
                sel = c == cls
                ax.scatter(*pts[sel].T, s=s, alpha=alpha, linewidths=0, color=colors[k], label=str(cls))
            ax.legend(markerscale=max(1.0, 12.0 / max(s, 1e-3)) ** 0.5, loc="best")
            return None
        index = np.searchsorted(classes, c)
        listed = matplotlib.colors.ListedColormap(colors)
        norm = matplotlib.colors.BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
        sc = ax.scatter(*pts.T, c=index, s=s, alpha=alpha, linewidths=0, cmap=listed, norm=norm)
        if colorbar:
            step = max(1, len(classes) // 20)
            ticks = np.arange(0, len(classes), step)
            bar = ax.figure.colorbar(sc, ax=ax, ticks=ticks, label=clabel, **bar_kw)
            bar.ax.set_yticklabels([str(classes[t]) for t in ticks])
        return sc
    sc = ax.scatter(*pts.T, c=c.astype(np.float64), s=s, alpha=alpha, linewidths=0, cmap=cmap)
    if colorbar:
        ax.figure.colorbar(sc, ax=ax, label=clabel, **bar_kw)
    return sc



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
        both = as_lim(lim, "lim")
        return both, both
    if len(lim) == 2:
        return as_lim(lim[0], "lim[0]"), as_lim(lim[1], "lim[1]")
    raise ValueError(f"lim must be (lo, hi) or ((x0, x1), (y0, y1)), got {lim!r}.")


@styled
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
            as_points(a, 2, name=f"items[{i}]")
        else:
            as_image_batch(a[None], name=f"items[{i}] (an image [H, W] or [H, W, C])")
    xl, yl = _limits(lim)
    n = len(arrays)
    fig = new_figure((panel_size * n + 0.4, panel_size + 0.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    first_points = None
    for i, (ax, a, k) in enumerate(zip(axes, arrays, kinds)):
        if k == "points":
            if share and first_points is not None:
                ax.sharex(first_points)
                ax.sharey(first_points)
            if first_points is None:
                first_points = ax
            ax.scatter(*a[:, :2].T, s=s, alpha=0.6, linewidths=0, color=PALETTE[0])
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
            hide_frame(ax)
            ax.set_xlabel(xlabel if xlabel is not None else f"{img.shape[0]}x{img.shape[1]} px")
            if ylabel is not None and i == 0:
                ax.set_ylabel(ylabel)
        ax.set_title(str(titles[i]) if titles is not None else f"({i + 1})")
    fig.suptitle(title)
    return finish(fig, path)


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


@styled
def scatter2d(points: Array, *, title: str = "samples", path=None, c=None, s: float = 4.0,
              alpha: float = 0.6, xlim=None, ylim=None, axes_off: bool = False, equal: bool = False,
              cmap: str = "viridis", xlabel: str = "$x_1$", ylabel: str = "$x_2$", ax=None,
              clabel: str | None = None) -> Figure:
    """Scatter of 2-D points.

    Args:
      points: [N, 2].
      c: optional [N] colours: integer/string labels (one distinct colour each; a legend up to 20
        classes, a colour bar with one tick per class beyond) or floats (colour bar).
      clabel: colour bar label, e.g. "person".
      s, alpha: marker size and opacity.
      xlim, ylim: axis limits (optional).
      axes_off: hide ticks and frame (the title stays), e.g. for the datasaurus.
      equal: equal aspect ratio.
      title, path, cmap, xlabel, ylabel, ax: as everywhere.

    Returns:
      The figure.
    """
    pts = as_points(points, 2)
    fig, ax = single_axes(ax, (4.4, 4.0))
    scatter_colored(ax, pts, c, s, alpha, cmap, clabel=clabel)
    if xlim is not None:
        ax.set_xlim(as_lim(xlim, "xlim"))
    if ylim is not None:
        ax.set_ylim(as_lim(ylim, "ylim"))
    if equal:
        ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if axes_off:
        ax.set_axis_off()
    return finish(fig, path)


@styled
def scatter3d(points: Array, *, title: str = "samples", path=None, c=None, s: float = 4.0,
              alpha: float = 0.7, cmap: str = "viridis", xlabel: str = "$x_1$", ylabel: str = "$x_2$",
              zlabel: str = "$x_3$", elev: float = 25.0, azim: float = -60.0, ax=None,
              clabel: str | None = None) -> Figure:
    """3-D scatter of points [N, 3], optionally coloured by labels ``c`` [N].

    ``ax``, when given, must be a 3-D axes (``projection="3d"``). Other arguments as for
    :func:`scatter2d`; ``elev``/``azim`` set the view (degrees).

    Returns:
      The figure.
    """
    pts = as_points(points, 3)
    if ax is not None and not hasattr(ax, "get_zlim"):
        raise ValueError("scatter3d needs a 3-D axes (add_subplot(projection='3d')), got a 2-D axes.")
    fig, ax = single_axes(ax, (5.0, 4.4), projection="3d")
    scatter_colored(ax, pts, c, s, alpha, cmap, clabel=clabel)
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel(zlabel)
    return finish(fig, path)
