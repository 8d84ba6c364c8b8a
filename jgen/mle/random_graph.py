"""A logistic random-graph model fitted by maximum likelihood.

Node ``i`` carries a feature vector ``x_i``; each unordered pair ``i < j`` is an edge independently with
probability ``sigmoid(a x_i . x_j + b)``. The log-likelihood of a list of graphs is

.. math::
    \\ell(a, b) = \\sum_g \\sum_{i < j} E_{ij} \\log \\sigma(z_{ij}) + (1 - E_{ij}) \\log \\sigma(-z_{ij}),
    \\quad z_{ij} = a\\, x_i \\cdot x_j + b,

i.e. a two-parameter logistic regression of ``E_ij`` on ``x_i . x_j``; it is concave in ``(a, b)``. Graphs
are stacked as ``features [G, n, f]`` / ``adjacency [G, n, n]`` with a node mask for ragged lists, so the
sum runs over pairs and graphs in a single einsum.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgen.mle.fitting import ascend

__all__ = [
    "GraphParams",
    "GraphBatch",
    "check_graph",
    "stack_graphs",
    "unstack_graphs",
    "edge_logits",
    "edge_probabilities",
    "graph_log_likelihood",
    "fit_graph_model",
    "sample_graphs",
]

Array = jax.Array


class GraphParams(NamedTuple):
    """Edge model ``p(E_ij = 1) = sigmoid(a x_i . x_j + b)``; both fields are scalars."""

    a: Array
    b: Array


class GraphBatch(NamedTuple):
    """A list of graphs stacked (and zero-padded) to a common node count.

    Attributes:
      features: node features ``[G, n, f]`` (padding rows are zero).
      adjacency: 0/1 adjacency ``[G, n, n]``; only the upper triangle ``i < j`` is used.
      node_mask: ``[G, n]`` bool, True for real nodes (graph ``g`` has ``node_mask[g].sum()`` nodes,
        which come first).
    """

    features: Array
    adjacency: Array
    node_mask: Array

    @property
    def num_pairs(self) -> Array:
        """Total number of unordered node pairs ``sum_g n_g (n_g - 1) / 2``."""
        n = jnp.sum(self.node_mask, axis=-1)
        return jnp.sum(n * (n - 1) // 2)


def check_graph(i: int, x, e, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Graph ``i`` as validated ``(X [n, f], E [n, n])`` arrays of ``dtype``, or a ValueError saying what is wrong."""
    x = np.asarray(x)
    e = np.asarray(e)
    if x.ndim != 2:
        raise ValueError(f"graph {i}: node features X must have shape [num_nodes, num_features], got {x.shape}")
    n = x.shape[0]
    if e.shape != (n, n):
        raise ValueError(f"graph {i}: adjacency E must have shape [num_nodes, num_nodes] = ({n}, {n}) to match "
                         f"X {x.shape}, got {e.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"graph {i}: node features X must be numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        row = int(np.argwhere(~np.isfinite(x))[0][0])
        raise ValueError(f"graph {i}: node features X hold NaN or Inf (first at node {row}); maximum likelihood "
                         f"needs finite features. Drop or impute those nodes first.")
    upper = e[np.triu_indices(n, k=1)]
    if np.issubdtype(e.dtype, np.floating) and not np.all(np.isfinite(upper)):
        raise ValueError(f"graph {i}: adjacency E holds NaN or Inf above the diagonal; expected 0/1 entries")
    if not np.all((upper == 0) | (upper == 1)):
        bad = np.unique(upper[(upper != 0) & (upper != 1)])[:5]
        raise ValueError(f"graph {i}: adjacency E must hold 0/1 (or bool) above the diagonal, found values {bad}")
    return x.astype(dtype), e.astype(dtype)


def stack_graphs(graphs, *, dtype=np.float32) -> GraphBatch:
    """Stacks a list of ``(X [n_i, f], E [n_i, n_i])`` pairs into a padded :class:`GraphBatch`.

    Graphs may have different node counts (padded to the largest, with a node mask) but must share
    the feature dimension ``f``. A :class:`GraphBatch` is returned unchanged. ``dtype`` is the float
    type of features and adjacency (float64 needs ``jax.enable_x64``).

    Raises:
      ValueError: on an empty list, mismatched shapes, non-binary adjacency or differing ``f``.
    """
    if isinstance(graphs, GraphBatch):
        return graphs
    graphs = list(graphs)
    if not graphs:
        raise ValueError("need at least one graph, got an empty list")
    checked = []
    for i, g in enumerate(graphs):
        if not isinstance(g, (tuple, list)) or len(g) != 2:
            raise ValueError(f"graph {i}: expected an (X, E) pair, got {type(g).__name__}")
        checked.append(check_graph(i, *g, dtype=dtype))
    dims = {x.shape[1] for x, _ in checked}
    if len(dims) != 1:
        raise ValueError(f"all graphs must have the same number of node features, got {sorted(dims)}")
    f = dims.pop()
    n_max = max(x.shape[0] for x, _ in checked)
    feats = np.zeros((len(checked), n_max, f), dtype)
    adj = np.zeros((len(checked), n_max, n_max), dtype)
    mask = np.zeros((len(checked), n_max), bool)
    for g, (x, e) in enumerate(checked):
        n = x.shape[0]
        feats[g, :n], adj[g, :n, :n], mask[g, :n] = x, e, True
    return GraphBatch(jnp.asarray(feats), jnp.asarray(adj), jnp.asarray(mask))


def unstack_graphs(batch: GraphBatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inverse of :func:`stack_graphs`: a list of ``(X [n_g, f], E [n_g, n_g])`` numpy pairs."""
    feats, adj, mask = (np.asarray(a) for a in batch)
    out = []
    for g in range(feats.shape[0]):
        n = int(mask[g].sum())
        out.append((feats[g, :n], adj[g, :n, :n]))
    return out


def edge_logits(params: GraphParams, features) -> Array:
    """Logits ``z_ij = a x_i . x_j + b`` for all pairs: ``features [..., n, f] -> [..., n, n]``."""
    gram = jnp.einsum("...if,...jf->...ij", features, features)
    return params.a * gram + params.b


def edge_probabilities(params: GraphParams, features) -> Array:
    """Edge probabilities ``sigmoid(a x_i . x_j + b)``, shape ``[..., n, n]`` (diagonal meaningless)."""
    return jax.nn.sigmoid(edge_logits(params, features))


def _pair_weights(node_mask) -> Array:
    """1 for real pairs ``i < j`` of each graph, else 0: ``[G, n] -> [G, n, n]``."""
    n = node_mask.shape[-1]
    upper = jnp.triu(jnp.ones((n, n), bool), k=1)
    return (upper & node_mask[..., :, None] & node_mask[..., None, :]).astype(jnp.float32)


@jax.jit
def graph_log_likelihood(params: GraphParams, batch: GraphBatch) -> Array:
    """Total log-likelihood (nats) of a graph batch under the logistic edge model.

    Sums ``E_ij log sigmoid(z_ij) + (1 - E_ij) log sigmoid(-z_ij)`` over pairs ``i < j`` of real
    nodes and over graphs, vectorised (one einsum over ``[G, n, n]``).

    Args:
      params: :class:`GraphParams` ``(a, b)``.
      batch: :class:`GraphBatch` (use :func:`stack_graphs` on a list of ``(X, E)`` pairs).

    Returns:
      Scalar log-likelihood in nats.
    """
    z = edge_logits(params, batch.features)
    e = batch.adjacency
    ll = e * jax.nn.log_sigmoid(z) + (1.0 - e) * jax.nn.log_sigmoid(-z)
    return jnp.sum(ll * _pair_weights(batch.node_mask).astype(ll.dtype))


def fit_graph_model(graphs, tx: optax.GradientTransformation, num_steps: int, *,
                    init: GraphParams | None = None) -> tuple[GraphParams, Array]:
    """Maximum-likelihood ``(a, b)`` of the logistic graph model by gradient ascent.

    Minimises the negative mean log-likelihood per node pair (so the step size does not depend on how
    much data there is). The objective is concave, so the result is the global MLE once converged.

    Args:
      graphs: a :class:`GraphBatch` or a list of ``(X [n_i, f], E [n_i, n_i])`` pairs.
      tx: the optimizer, ``jgen.optim.make_optimizer(config.optim, num_steps)``.
      num_steps: number of gradient steps.
      init: starting point; default ``a = 0`` and ``b = logit(edge density)`` (the MLE at ``a = 0``).

    Returns:
      ``(params, curve)``: the fitted :class:`GraphParams` and ``curve [num_steps]``, the total
      log-likelihood (nats) before each step.

    Raises:
      ValueError: on malformed or non-finite graphs, graphs without node pairs, or ``num_steps < 1``.
    """
    batch = stack_graphs(graphs)
    num_pairs = batch.num_pairs
    if int(num_pairs) == 0:
        raise ValueError("the graphs have no node pairs (every graph has fewer than 2 nodes)")
    dtype = batch.features.dtype
    if init is None:
        # The MLE restricted to a = 0: b = logit(edge density), clipped away from +-inf.
        density = jnp.sum(jnp.triu(batch.adjacency, k=1) * _pair_weights(batch.node_mask)) / num_pairs
        density = jnp.clip(density, 1e-3, 1 - 1e-3)
        init = GraphParams(0.0, jnp.log(density) - jnp.log1p(-density))
    init = GraphParams(jnp.asarray(init.a, dtype), jnp.asarray(init.b, dtype))

    def neg_mean_log_likelihood(p):
        return -graph_log_likelihood(p, batch) / num_pairs

    params, curve = ascend(neg_mean_log_likelihood, init, tx, num_steps)
    return params, -curve * num_pairs


def sample_graphs(
    params: GraphParams,
    key: Array,
    num_graphs: int,
    *,
    num_nodes: int = 15,
    num_features: int = 3,
) -> GraphBatch:
    """Draws graphs from the logistic edge model.

    Node features are i.i.d. ``Uniform[-1, 1]``; each pair ``i < j`` is an edge with probability
    ``sigmoid(a x_i . x_j + b)``. The adjacency returned is symmetric with a zero diagonal.

    Args:
      params: :class:`GraphParams` ``(a, b)``.
      key: PRNG key.
      num_graphs: ``G``.
      num_nodes: nodes per graph ``n``.
      num_features: features per node ``f``.

    Returns:
      :class:`GraphBatch` with ``features [G, n, f]``, ``adjacency [G, n, n]``, all nodes real.
    """
    for name, v, lo in (("num_graphs", num_graphs, 1), ("num_nodes", num_nodes, 1), ("num_features", num_features, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return _sample_graphs(params, key, int(num_graphs), int(num_nodes), int(num_features))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _sample_graphs(params, key, num_graphs, num_nodes, num_features) -> GraphBatch:
    k_x, k_e = jax.random.split(key)
    x = jax.random.uniform(k_x, (num_graphs, num_nodes, num_features), minval=-1.0, maxval=1.0)
    p = edge_probabilities(params, x)
    upper = jnp.triu(jax.random.bernoulli(k_e, p).astype(jnp.float32), k=1)
    adj = upper + jnp.swapaxes(upper, -1, -2)
    return GraphBatch(x, adj, jnp.ones((num_graphs, num_nodes), bool))
