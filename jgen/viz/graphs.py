"""Graphs drawn with node i at its first two features and an edge wherever E[i, j] != 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from jgen.viz.scatter import scatter_colored
from jgen.viz.style import PALETTE, finish, new_figure, single_axes, styled

Array = Any  # np.ndarray | jax.Array | nested sequence

__all__ = ["graph_plot", "graph_grid"]


@styled
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
    fig, ax = single_axes(ax, (4.6, 4.2))
    if directed and len(pairs):
        d = pos[pairs[:, 1]] - pos[pairs[:, 0]]
        ax.quiver(*pos[pairs[:, 0]].T, *d.T, angles="xy", scale_units="xy", scale=1, width=0.004,
                  color="0.45", alpha=0.8, zorder=1)
    elif len(pairs):
        ax.add_collection(LineCollection(pos[pairs], linewidths=widths, colors="0.45", alpha=0.8, zorder=1))
    scatter_c = None if c is None else np.asarray(c)
    if scatter_c is None:
        ax.scatter(*pos.T, s=s, color=PALETTE[0], edgecolors="white", linewidths=0.6, zorder=2)
    else:
        scatter_colored(ax, pos, scatter_c, s, 1.0, cmap)
    if node_labels is not None:
        for (px, py), lab in zip(pos, node_labels):
            ax.annotate(str(lab), (px, py), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.autoscale_view()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return finish(fig, path)


@styled
def graph_grid(graphs: Sequence[tuple[Array, Array]], *, titles: Sequence[str] | None = None, ncols: int = 5,
               title: str | None = None, path=None, upper_only: bool = True, panel_size: float = 3.2,
               xlabel: str = "feature 1", ylabel: str = "feature 2") -> Figure:
    """Several undirected graphs, one :func:`graph_plot` panel each, with the edge count in every title.

    Args:
      graphs: list of ``(X [n_i, f], E [n_i, n_i])`` pairs with ``f >= 2``.
      titles: one title per graph; default "graph k".
      ncols: panels per row.
      title: figure title.
      upper_only: read only ``E[i, j]`` with ``i < j`` (as the logistic graph model does) and draw it
        symmetrically; otherwise draw ``E`` as given.
      panel_size: inches per panel.
      path, xlabel, ylabel: as everywhere.

    Returns:
      The figure.
    """
    pairs = [(np.asarray(x, np.float64), np.asarray(e, np.float64)) for x, e in graphs]
    if not pairs:
        raise ValueError("graph_grid needs at least one (X, E) graph, got an empty list.")
    if titles is not None and len(titles) != len(pairs):
        raise ValueError(f"titles needs one title per graph ({len(pairs)}), got {len(titles)}.")
    if any(x.ndim != 2 or x.shape[1] < 2 for x, _ in pairs):
        raise ValueError("graph_grid places nodes by their first two features; every X needs shape [n, f >= 2].")
    ncols = max(1, min(int(ncols), len(pairs)))
    nrows = -(-len(pairs) // ncols)
    fig = new_figure((panel_size * ncols, panel_size * nrows + (0.4 if title else 0.0)))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        if k >= len(pairs):
            ax.set_axis_off()
            continue
        x, e = pairs[k]
        if upper_only:
            upper = np.triu(e, k=1)
            e = upper + upper.T
        num_edges = int(np.count_nonzero(np.triu(e, k=1))) if upper_only else int(np.count_nonzero(e))
        name = titles[k] if titles is not None else f"graph {k}"
        graph_plot(x, e, title=f"{name} ({num_edges} edges)", ax=ax, directed=False if upper_only else None,
                   xlabel=xlabel, ylabel=ylabel)
    if title:
        fig.suptitle(title)
    return finish(fig, path)
