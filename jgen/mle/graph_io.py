"""Graph files: lists of ``(X, E)`` pairs in restricted pickles or ``.npz``.

A graph is ``X [n_i, f]`` node features and ``E [n_i, n_i]`` 0/1 adjacency (only the upper triangle
``i < j`` is read by the model). Pickles are read through the restricted loader
:func:`jgen.data.safe_pickle.load_numpy_pickle` (numpy arrays and plain containers only); ``.npz`` files
hold ``X_0, E_0, X_1, ...`` (see :func:`save_graphs`) or stacked ``X [G, n, f]``, ``E [G, n, n]``
(optionally ``num_nodes [G]``).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jgen.mle.random_graph import GraphBatch, check_graph, unstack_graphs

__all__ = ["load_graphs", "save_graphs"]


def _pairs_from_object(obj, source: str) -> list:
    if isinstance(obj, dict):
        keys = {str(k) for k in obj}
        if {"X", "E"} <= keys:
            return _pairs_from_stacked(obj, source)
        raise ValueError(f"{source}: a dict of graphs must have keys 'X' [G, n, f] and 'E' [G, n, n], got {sorted(keys)}")
    if not isinstance(obj, (list, tuple)):
        raise ValueError(f"{source}: expected a list of (X, E) pairs, got {type(obj).__name__}")
    return list(obj)


def _pairs_from_stacked(d, source: str) -> list:
    x, e = np.asarray(d["X"]), np.asarray(d["E"])
    if x.ndim != 3 or e.ndim != 3 or e.shape[:2] != x.shape[:2] or e.shape[1] != e.shape[2]:
        raise ValueError(f"{source}: stacked graphs need X [G, n, f] and E [G, n, n], got X {x.shape}, E {e.shape}")
    if "num_nodes" in d:
        counts = np.asarray(d["num_nodes"]).astype(int)
        if counts.shape != (x.shape[0],):
            raise ValueError(f"{source}: num_nodes must have shape [G] = ({x.shape[0]},), got {counts.shape}")
    else:
        counts = np.full(x.shape[0], x.shape[1])
    return [(x[g, :n], e[g, :n, :n]) for g, n in enumerate(counts)]


def load_graphs(path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reads a list of ``(X [n_i, f], E [n_i, n_i])`` graphs from a pickle or ``.npz`` file.

    * ``.pkl`` / ``.pickle``: a pickled list (or tuple) of ``(X, E)`` pairs, or a dict with stacked
      ``X``/``E``. Read with :func:`jgen.data.safe_pickle.load_numpy_pickle`, which refuses anything
      but numpy arrays and plain containers (no arbitrary code execution).
    * ``.npz``: keys ``X_0, E_0, X_1, E_1, ...`` (as written by :func:`save_graphs`), or stacked
      ``X [G, n, f]``, ``E [G, n, n]`` with optional ``num_nodes [G]`` for padded ragged graphs.

    Returns:
      The validated list of numpy ``(X, E)`` pairs (float32).

    Raises:
      FileNotFoundError: when ``path`` does not exist.
      ValueError: on an unknown suffix or malformed content.
      pickle.UnpicklingError: when the pickle references a refused global.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"graph file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        from jgen.data.safe_pickle import load_numpy_pickle  # importing jgen.data loads the TFDS builders

        pairs = _pairs_from_object(load_numpy_pickle(path), str(path))
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        if {"X", "E"} <= set(d):
            pairs = _pairs_from_stacked(d, str(path))
        else:
            num = len([k for k in d if k.startswith("X_")])
            try:
                pairs = [(d[f"X_{g}"], d[f"E_{g}"]) for g in range(num)]
            except KeyError as err:
                raise ValueError(f"{path}: expected keys X_0, E_0, ..., X_{num - 1}, E_{num - 1}; missing {err}") from None
            if num == 0:
                raise ValueError(f"{path}: no graphs found; expected keys X_0, E_0, ... or stacked X, E, got {sorted(d)}")
    else:
        raise ValueError(f"unsupported graph file suffix {suffix!r} for {path}; expected .pkl, .pickle or .npz")
    out = []
    for i, g in enumerate(pairs):
        if not isinstance(g, (tuple, list)) or len(g) != 2:
            raise ValueError(f"{path}: graph {i} is not an (X, E) pair (got {type(g).__name__})")
        out.append(check_graph(i, *g))
    if not out:
        raise ValueError(f"{path}: contains no graphs")
    return out


def save_graphs(path, graphs) -> pathlib.Path:
    """Writes graphs (list of ``(X, E)`` pairs or a :class:`GraphBatch`) as ``.npz`` keys ``X_g``/``E_g``."""
    path = pathlib.Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"save_graphs writes .npz files, got {path}")
    pairs = unstack_graphs(graphs) if isinstance(graphs, GraphBatch) else [check_graph(i, *g) for i, g in enumerate(graphs)]
    arrays = {}
    for g, (x, e) in enumerate(pairs):
        arrays[f"X_{g}"], arrays[f"E_{g}"] = np.asarray(x), np.asarray(e)
    np.savez(path, **arrays)
    return path
