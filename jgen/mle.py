"""Maximum-likelihood fits: linear-Gaussian regression and a logistic random-graph model.

Two models whose likelihood is maximised in closed form or by gradient ascent (optax):

* **Linear-Gaussian regression** ``y = x^T w + eps``, ``eps ~ N(0, sigma^2)``. Setting the gradient of

  .. math::
      \\log p(y | X, w, \\sigma^2) = -\\frac{N}{2} \\log(2 \\pi \\sigma^2)
          - \\frac{1}{2 \\sigma^2} \\lVert y - X w \\rVert^2

  to zero gives the normal equations ``X^T X w = X^T y`` (least squares) and the biased variance
  ``sigma^2 = ||y - X w||^2 / N``.

* **Logistic random graph.** Node ``i`` carries a feature vector ``x_i``; each unordered pair
  ``i < j`` is an edge independently with probability ``sigmoid(a x_i . x_j + b)``. The
  log-likelihood of a list of graphs is

  .. math::
      \\ell(a, b) = \\sum_g \\sum_{i < j} E_{ij} \\log \\sigma(z_{ij}) + (1 - E_{ij}) \\log \\sigma(-z_{ij}),
      \\quad z_{ij} = a\\, x_i \\cdot x_j + b,

  i.e. a two-parameter logistic regression of ``E_ij`` on ``x_i . x_j``; it is concave in ``(a, b)``.
  Graphs are stacked as ``features [G, n, f]`` / ``adjacency [G, n, n]`` with a node mask for
  ragged lists, so the sum runs over pairs and graphs in a single einsum.

Graph files hold a list of ``(X, E)`` pairs: ``X [n_i, f]`` node features, ``E [n_i, n_i]`` 0/1
adjacency (only the upper triangle ``i < j`` is read). Pickles are read through the restricted
loader :func:`jgen.data.safe_pickle.load_numpy_pickle`; ``.npz`` files hold ``X_0, E_0, X_1, ...``
(see :func:`save_graphs`) or stacked ``X [G, n, f]``, ``E [G, n, n]`` (optionally ``num_nodes [G]``).
"""

from __future__ import annotations

import functools
import pathlib
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "LinearGaussianParams",
    "linear_gaussian_log_likelihood",
    "fit_linear_gaussian_closed_form",
    "fit_linear_gaussian_gradient",
    "GraphParams",
    "GraphBatch",
    "stack_graphs",
    "unstack_graphs",
    "edge_logits",
    "edge_probabilities",
    "graph_log_likelihood",
    "fit_graph_model",
    "sample_graphs",
    "default_graphs",
    "load_graphs",
    "save_graphs",
    "plot_graphs",
]

Array = jax.Array


# ---------------------------------------------------------------------------------------------
# Linear-Gaussian regression
# ---------------------------------------------------------------------------------------------


class LinearGaussianParams(NamedTuple):
    """Parameters of ``y = x^T w + eps``, ``eps ~ N(0, sigma2)``.

    Attributes:
      w: regression weights ``[d]`` (add a column of ones to ``x`` for an intercept).
      sigma2: noise variance, scalar.
    """

    w: Array
    sigma2: Array


def _check_regression_data(x, y) -> tuple[Array, Array]:
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"x must be a design matrix of shape [N, d], got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape [N] = ({x.shape[0]},) to match x {x.shape}, got {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("need at least one observation, got N = 0")
    return x, y


def linear_gaussian_log_likelihood(params: LinearGaussianParams, x, y) -> Array:
    """Total log-likelihood ``sum_n log N(y_n | x_n^T w, sigma2)`` in nats.

    Args:
      params: :class:`LinearGaussianParams` with ``w [d]`` and scalar ``sigma2 > 0``.
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.

    Returns:
      Scalar log-likelihood (nats, summed over the ``N`` observations).
    """
    x, y = _check_regression_data(x, y)
    resid = y - x @ params.w
    n = y.shape[0]
    return -0.5 * n * jnp.log(2 * jnp.pi * params.sigma2) - 0.5 * jnp.sum(resid**2) / params.sigma2


def fit_linear_gaussian_closed_form(x, y) -> LinearGaussianParams:
    """Closed-form maximum-likelihood estimate of ``(w, sigma2)``.

    ``w`` solves the normal equations ``X^T X w = X^T y`` (computed by least squares, which also
    handles rank-deficient ``X`` by the minimum-norm solution) and ``sigma2 = ||y - X w||^2 / N``
    (the MLE, biased by the factor ``(N - d) / N`` relative to the unbiased estimate).

    Args:
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.

    Returns:
      :class:`LinearGaussianParams` at the maximum of :func:`linear_gaussian_log_likelihood`.
    """
    x, y = _check_regression_data(x, y)
    w, *_ = jnp.linalg.lstsq(x, y)
    sigma2 = jnp.mean((y - x @ w) ** 2)
    return LinearGaussianParams(w=w, sigma2=sigma2)


def fit_linear_gaussian_gradient(
    x,
    y,
    *,
    num_steps: int = 2000,
    learning_rate: float = 0.05,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[LinearGaussianParams, Array]:
    """Maximum likelihood for ``(w, sigma2)`` by gradient ascent.

    Maximises the mean log-likelihood per observation over ``(w, log sigma2)`` (the log keeps the
    variance positive) with Adam and a cosine-decayed step size, all steps in one ``lax.scan``.

    Args:
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.
      num_steps: number of gradient steps.
      learning_rate: peak Adam step size (ignored when ``optimizer`` is given).
      optimizer: optional optax transformation replacing the default Adam schedule; it is applied
        to the *negative* mean log-likelihood.

    Returns:
      ``(params, curve)``: the fitted :class:`LinearGaussianParams` and ``curve [num_steps]``, the
      total log-likelihood (nats) before each step.
    """
    x, y = _check_regression_data(x, y)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    tx = optimizer or optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps, alpha=1e-3))
    n = y.shape[0]

    def loss(theta):
        p = LinearGaussianParams(theta["w"], jnp.exp(theta["log_sigma2"]))
        return -linear_gaussian_log_likelihood(p, x, y) / n

    theta0 = {"w": jnp.zeros(x.shape[1], x.dtype), "log_sigma2": jnp.zeros((), x.dtype)}
    theta, curve = _gradient_descent(loss, theta0, tx, num_steps)
    params = LinearGaussianParams(theta["w"], jnp.exp(theta["log_sigma2"]))
    return params, -curve * n


def _gradient_descent(loss_fn, params, tx, num_steps):
    """Runs ``num_steps`` of ``tx`` on ``loss_fn`` in a ``lax.scan``; returns (params, losses)."""

    @jax.jit
    def run(params):
        def step(carry, _):
            params, opt_state = carry
            value, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=num_steps)
        return params, losses

    return run(params)


# ---------------------------------------------------------------------------------------------
# Logistic random-graph model
# ---------------------------------------------------------------------------------------------


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


def _check_graph(i: int, x, e, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    e = np.asarray(e)
    if x.ndim != 2:
        raise ValueError(f"graph {i}: node features X must have shape [num_nodes, num_features], got {x.shape}")
    n = x.shape[0]
    if e.shape != (n, n):
        raise ValueError(f"graph {i}: adjacency E must have shape [num_nodes, num_nodes] = ({n}, {n}) to match "
                         f"X {x.shape}, got {e.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError(f"graph {i}: node features X must be finite numbers")
    upper = e[np.triu_indices(n, k=1)]
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
        checked.append(_check_graph(i, *g, dtype=dtype))
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


def fit_graph_model(
    graphs,
    *,
    num_steps: int = 500,
    learning_rate: float = 0.5,
    init: GraphParams | None = None,
    optimizer: optax.GradientTransformation | None = None,
) -> tuple[GraphParams, Array]:
    """Maximum-likelihood ``(a, b)`` of the logistic graph model by gradient ascent.

    Maximises the mean log-likelihood per node pair (so the step size does not depend on how much
    data there is) with Adam and a cosine-decayed step size inside one ``lax.scan``. The objective
    is concave, so the result is the global MLE once converged.

    Args:
      graphs: a :class:`GraphBatch` or a list of ``(X [n_i, f], E [n_i, n_i])`` pairs.
      num_steps: number of gradient steps.
      learning_rate: peak Adam step size (ignored when ``optimizer`` is given).
      init: starting point; default ``a = 0`` and ``b = logit(edge density)`` (the MLE at ``a = 0``).
      optimizer: optional optax transformation (applied to the negative mean log-likelihood).

    Returns:
      ``(params, curve)``: the fitted :class:`GraphParams` and ``curve [num_steps]``, the total
      log-likelihood (nats) before each step.
    """
    batch = stack_graphs(graphs)
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
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
    tx = optimizer or optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps, alpha=1e-3))

    def loss(p):
        return -graph_log_likelihood(p, batch) / num_pairs

    params, curve = _gradient_descent(loss, init, tx, num_steps)
    return params, -curve * num_pairs


def sample_graphs(
    key: Array,
    num_graphs: int,
    params: GraphParams,
    *,
    num_nodes: int = 15,
    num_features: int = 3,
) -> GraphBatch:
    """Draws graphs from the logistic edge model.

    Node features are i.i.d. ``Uniform[-1, 1]``; each pair ``i < j`` is an edge with probability
    ``sigmoid(a x_i . x_j + b)``. The adjacency returned is symmetric with a zero diagonal.

    Args:
      key: PRNG key.
      num_graphs: ``G``.
      params: :class:`GraphParams` ``(a, b)``.
      num_nodes: nodes per graph ``n``.
      num_features: features per node ``f``.

    Returns:
      :class:`GraphBatch` with ``features [G, n, f]``, ``adjacency [G, n, n]``, all nodes real.
    """
    for name, v, lo in (("num_graphs", num_graphs, 1), ("num_nodes", num_nodes, 1), ("num_features", num_features, 1)):
        if int(v) != v or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
    return _sample_graphs(key, params, int(num_graphs), int(num_nodes), int(num_features))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _sample_graphs(key, params, num_graphs, num_nodes, num_features) -> GraphBatch:
    k_x, k_e = jax.random.split(key)
    x = jax.random.uniform(k_x, (num_graphs, num_nodes, num_features), minval=-1.0, maxval=1.0)
    p = edge_probabilities(params, x)
    upper = jnp.triu(jax.random.bernoulli(k_e, p).astype(jnp.float32), k=1)
    adj = upper + jnp.swapaxes(upper, -1, -2)
    return GraphBatch(x, adj, jnp.ones((num_graphs, num_nodes), bool))


def default_graphs(
    key: Array | None = None,
    *,
    num_graphs: int = 200,
    num_nodes: int = 30,
    num_features: int = 3,
    a: float = 6.0,
    b: float = -6.0,
) -> GraphBatch:
    """The embedded default data set: synthetic graphs from known ``(a, b) = (6, -6)``."""
    key = jax.random.key(0) if key is None else key
    return sample_graphs(key, num_graphs, GraphParams(jnp.float32(a), jnp.float32(b)),
                         num_nodes=num_nodes, num_features=num_features)


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
        from jgen.data.safe_pickle import load_numpy_pickle

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
        out.append(_check_graph(i, *g))
    if not out:
        raise ValueError(f"{path}: contains no graphs")
    return out


def save_graphs(path, graphs) -> pathlib.Path:
    """Writes graphs (list of ``(X, E)`` pairs or a :class:`GraphBatch`) as ``.npz`` keys ``X_g``/``E_g``."""
    path = pathlib.Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"save_graphs writes .npz files, got {path}")
    pairs = unstack_graphs(graphs) if isinstance(graphs, GraphBatch) else [_check_graph(i, *g) for i, g in enumerate(graphs)]
    arrays = {}
    for g, (x, e) in enumerate(pairs):
        arrays[f"X_{g}"], arrays[f"E_{g}"] = np.asarray(x), np.asarray(e)
    np.savez(path, **arrays)
    return path


def plot_graphs(graphs, *, titles: Sequence[str] | None = None, ncols: int = 5, suptitle: str | None = None):
    """Renders graphs with nodes placed at their first two features and edges as lines.

    Each panel is drawn by ``jgen.viz.graph_plot``.

    Args:
      graphs: a :class:`GraphBatch` or list of ``(X, E)`` pairs (``f >= 2``).
      titles: optional per-graph titles.
      ncols: panels per row.
      suptitle: optional figure title.

    Returns:
      A matplotlib ``Figure`` (the caller saves/closes it).
    """
    import matplotlib.pyplot as plt

    from jgen.viz import graph_plot

    pairs = unstack_graphs(graphs) if isinstance(graphs, GraphBatch) else list(graphs)
    if not pairs:
        raise ValueError("plot_graphs needs at least one graph")
    if np.asarray(pairs[0][0]).shape[1] < 2:
        raise ValueError("plot_graphs places nodes by their first two features; graphs need >= 2 features")
    ncols = max(1, min(ncols, len(pairs)))
    nrows = -(-len(pairs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(pairs):
            ax.axis("off")
            continue
        x, e = (np.asarray(a) for a in pairs[k])
        upper = np.triu(e, k=1)  # the model reads only i < j
        title = titles[k] if titles is not None else f"graph {k}"
        title = f"{title} ({int(np.count_nonzero(upper))} edges)"
        graph_plot(x, upper + upper.T, title=title, ax=ax, directed=False, xlabel="feature 1",
                   ylabel="feature 2")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
