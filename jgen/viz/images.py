"""Image batches: display normalisation, mosaics, labelled grids and collages.

Arrays may be NumPy or JAX; images are ``[N, H, W]`` or ``[N, H, W, C]`` with C in 1, 3, 4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jgen.viz.style import finish, hide_frame, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["normalize_images", "make_grid", "image_grid", "collage"]


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


def as_image_batch(images: Array, name: str = "images") -> np.ndarray:
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
    x = normalize_images(as_image_batch(images), vmin, vmax)
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


@styled
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
    batch = as_image_batch(images)
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
    fig, ax = single_axes(ax, (base + (0.8 if row_labels is not None else 0.0), height))
    ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    hide_frame(ax)
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
    return finish(fig, path)


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
    batches = [as_image_batch(r, name=f"rows[{i}]") for i, r in enumerate(rows)]
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
