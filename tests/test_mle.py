"""Tests for jgen.mle: closed-form / gradient MLE of linear-Gaussian regression, logistic graph model."""

import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from jgen import mle, optim


def _adam(learning_rate, num_steps):
    """The experiment's optimizer: Adam with a cosine decay to 1e-3 of the peak."""
    cfg = optim.optim_config(name="adam", learning_rate=learning_rate, schedule="cosine", final_lr_fraction=1e-3)
    return optim.make_optimizer(cfg, num_steps)


def _regression_data(seed=0, n=200, d=3, sigma=0.3):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(size=(n, d - 1)), np.ones((n, 1))], axis=1)
    w = rng.normal(size=d)
    y = x @ w + sigma * rng.normal(size=n)
    return x, y, w


# ------------------------------------------------------------------ regression


def test_closed_form_equals_lstsq_and_mle_variance():
    x, y, _ = _regression_data()
    with jax.enable_x64(True):
        p = mle.fit_linear_gaussian_closed_form(x, y)
        w_np, *_ = np.linalg.lstsq(x, y, rcond=None)
        np.testing.assert_allclose(p.w, w_np, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p.sigma2, np.sum((y - x @ w_np) ** 2) / len(y), rtol=1e-10)
        # The closed form is a stationary point of the log-likelihood in (w, sigma2).
        g = jax.grad(mle.linear_gaussian_log_likelihood)(p, jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(g.w, 0.0, atol=1e-8)
        np.testing.assert_allclose(g.sigma2, 0.0, atol=1e-6)


def test_log_likelihood_matches_scipy_norm():
    from scipy import stats

    x, y, w = _regression_data(seed=1, n=30)
    p = mle.LinearGaussianParams(jnp.asarray(w), jnp.asarray(0.7))
    ref = stats.norm(x @ w, np.sqrt(0.7)).logpdf(y).sum()
    np.testing.assert_allclose(mle.linear_gaussian_log_likelihood(p, x, y), ref, rtol=1e-5)


def test_gradient_ascent_converges_to_closed_form():
    x, y, _ = _regression_data(seed=2)
    closed = mle.fit_linear_gaussian_closed_form(x, y)
    fitted, curve = mle.fit_linear_gaussian_gradient(x, y, _adam(0.05, 1500), 1500)
    np.testing.assert_allclose(fitted.w, closed.w, atol=2e-3)
    np.testing.assert_allclose(fitted.sigma2, closed.sigma2, rtol=1e-2)
    assert curve.shape == (1500,)
    assert curve[-1] > curve[0]
    ll_closed = mle.linear_gaussian_log_likelihood(closed, x, y)
    assert curve[-1] <= ll_closed + 1e-2  # the closed form is the maximum
    np.testing.assert_allclose(curve[-1], ll_closed, rtol=1e-4)


def test_regression_refuses_non_finite_data():
    x, y, _ = _regression_data(n=20)
    x_bad, y_bad = x.copy(), y.copy()
    x_bad[3, 1] = np.nan
    y_bad[7] = np.inf
    with pytest.raises(ValueError, match=r"x holds nan at index \(3, 1\).*finite data"):
        mle.fit_linear_gaussian_closed_form(x_bad, y)
    with pytest.raises(ValueError, match=r"y holds inf at index \(7,\)"):
        mle.fit_linear_gaussian_gradient(x, y_bad, _adam(0.05, 10), 10)
    with pytest.raises(ValueError, match="y holds"):
        mle.linear_gaussian_log_likelihood(mle.LinearGaussianParams(jnp.zeros(3), 1.0), x, y_bad)


def test_regression_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        mle.fit_linear_gaussian_closed_form(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="y must have shape"):
        mle.fit_linear_gaussian_closed_form(np.ones((5, 2)), np.ones(4))


# ------------------------------------------------------------------ graph model


def _naive_log_likelihood(a, b, graphs):
    """Python double loop over pairs i < j, one graph at a time."""
    total = 0.0
    for x, e in graphs:
        n = x.shape[0]
        for i in range(n):
            for j in range(i + 1, n):
                z = a * jnp.dot(x[i], x[j]) + b
                p = 1.0 / (1.0 + jnp.exp(-z))
                total = total + (e[i, j] * jnp.log(p) + (1 - e[i, j]) * jnp.log(1 - p))
    return total


def _ragged_graphs(seed=0, sizes=(4, 6, 3), f=3):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        x = rng.uniform(-1, 1, size=(n, f))
        e = np.triu(rng.integers(0, 2, size=(n, n)), k=1)
        out.append((x, (e + e.T).astype(np.float64)))
    return out


def test_graph_log_likelihood_equals_brute_force_loop():
    graphs = _ragged_graphs()
    with jax.enable_x64(True):
        batch = mle.stack_graphs(graphs, dtype=np.float64)
        for a, b in [(0.0, 0.0), (1.3, -0.4), (6.0, -6.0)]:
            got = mle.graph_log_likelihood(mle.GraphParams(a, b), batch)
            np.testing.assert_allclose(got, _naive_log_likelihood(a, b, graphs), rtol=1e-6)
        # At (0, 0) every pair contributes log(1/2).
        n_pairs = sum(n * (n - 1) // 2 for n in (4, 6, 3))
        assert int(batch.num_pairs) == n_pairs
        np.testing.assert_allclose(mle.graph_log_likelihood(mle.GraphParams(0.0, 0.0), batch), n_pairs * np.log(0.5))


def test_graph_log_likelihood_ignores_lower_triangle_and_padding():
    graphs = _ragged_graphs(seed=1)
    p = mle.GraphParams(2.0, -1.0)
    base = mle.graph_log_likelihood(p, mle.stack_graphs(graphs))
    upper_only = [(x, np.triu(e, k=1)) for x, e in graphs]
    np.testing.assert_allclose(mle.graph_log_likelihood(p, mle.stack_graphs(upper_only)), base, rtol=1e-6)
    separate = sum(mle.graph_log_likelihood(p, mle.stack_graphs([g])) for g in graphs)
    np.testing.assert_allclose(base, separate, rtol=1e-5)


def test_graph_gradient_equals_naive_grad_and_finite_differences():
    graphs = _ragged_graphs(seed=3)
    with jax.enable_x64(True):
        batch = mle.stack_graphs(graphs, dtype=np.float64)
        a, b = 1.7, -0.8
        g = jax.grad(lambda ab: mle.graph_log_likelihood(mle.GraphParams(*ab), batch))(jnp.array([a, b]))
        g_naive = jax.grad(lambda ab: _naive_log_likelihood(ab[0], ab[1], graphs))(jnp.array([a, b]))
        np.testing.assert_allclose(g, g_naive, rtol=1e-8)
        h = 1e-5
        f = lambda aa, bb: float(mle.graph_log_likelihood(mle.GraphParams(aa, bb), batch))
        fd = [(f(a + h, b) - f(a - h, b)) / (2 * h), (f(a, b + h) - f(a, b - h)) / (2 * h)]
        np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_fit_matches_logistic_regression_reference():
    """The MLE is a 2-parameter logistic regression of E_ij on x_i . x_j: solve it with scipy."""
    batch = mle.sample_graphs(mle.GraphParams(3.0, -1.0), jax.random.key(1), 20, num_nodes=12)
    params, curve = mle.fit_graph_model(batch, _adam(0.1, 400), 400)
    iu = np.triu_indices(12, k=1)
    s = np.einsum("gif,gjf->gij", batch.features, batch.features)[:, iu[0], iu[1]].ravel().astype(np.float64)
    e = np.asarray(batch.adjacency)[:, iu[0], iu[1]].ravel().astype(np.float64)

    def nll(ab):
        z = ab[0] * s + ab[1]
        return np.sum(np.logaddexp(0, z) - e * z)

    ref = optimize.minimize(nll, np.zeros(2), method="BFGS", options={"gtol": 1e-8})
    np.testing.assert_allclose([params.a, params.b], ref.x, atol=2e-3)
    np.testing.assert_allclose(curve[-1], -ref.fun, rtol=1e-5)
    assert curve[-1] > curve[0]


def test_fit_recovers_true_parameters():
    true = mle.GraphParams(6.0, -6.0)
    batch = mle.sample_graphs(true, jax.random.key(7), 60, num_nodes=25)
    params, _ = mle.fit_graph_model(batch, _adam(0.5, 500), 500)
    assert abs(float(params.a) - 6.0) < 1.0 and abs(float(params.b) + 6.0) < 1.0, params


def test_fit_on_ragged_list_equals_padded_batch_fit():
    graphs = mle.unstack_graphs(mle.sample_graphs(mle.GraphParams(2.0, 0.5), jax.random.key(2), 6, num_nodes=10))
    ragged = [(x[: 4 + g], e[: 4 + g, : 4 + g]) for g, (x, e) in enumerate(graphs)]
    p_list, _ = mle.fit_graph_model(ragged, _adam(0.5, 300), 300)
    # Reference: same objective, pairs flattened by hand.
    s, e = [], []
    for x, adj in ragged:
        iu = np.triu_indices(x.shape[0], k=1)
        s.append((x @ x.T)[iu]), e.append(adj[iu])
    s, e = np.concatenate(s).astype(np.float64), np.concatenate(e).astype(np.float64)
    ref = optimize.minimize(lambda ab: np.sum(np.logaddexp(0, ab[0] * s + ab[1]) - e * (ab[0] * s + ab[1])),
                            np.zeros(2), method="BFGS")
    np.testing.assert_allclose([p_list.a, p_list.b], ref.x, atol=5e-3)


def test_sample_graphs_structure_and_edge_frequency():
    p = mle.GraphParams(2.0, 0.0)
    batch = mle.sample_graphs(p, jax.random.key(3), 400, num_nodes=15, num_features=3)
    assert batch.features.shape == (400, 15, 3) and batch.adjacency.shape == (400, 15, 15)
    assert float(batch.features.min()) >= -1 and float(batch.features.max()) <= 1
    adj = np.asarray(batch.adjacency)
    np.testing.assert_array_equal(adj, np.swapaxes(adj, 1, 2))
    assert np.all(np.diagonal(adj, axis1=1, axis2=2) == 0)
    probs = np.asarray(mle.edge_probabilities(p, batch.features))
    iu = np.triu_indices(15, k=1)
    resid = (adj - probs)[:, iu[0], iu[1]]
    # Calibration: edges happen as often as predicted overall and for high-probability pairs.
    se = np.sqrt(np.sum(probs[:, iu[0], iu[1]] * (1 - probs[:, iu[0], iu[1]])))
    assert abs(resid.sum()) < 4 * se
    hi = probs[:, iu[0], iu[1]] > 0.8
    assert abs(adj[:, iu[0], iu[1]][hi].mean() - probs[:, iu[0], iu[1]][hi].mean()) < 0.02


def test_stack_graphs_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="empty"):
        mle.stack_graphs([])
    with pytest.raises(ValueError, match=r"graph 0: adjacency E must have shape"):
        mle.stack_graphs([(x, np.zeros((2, 2)))])
    with pytest.raises(ValueError, match="0/1"):
        mle.stack_graphs([(x, np.full((3, 3), 0.5))])
    with pytest.raises(ValueError, match=r"graph 0: node features X hold NaN or Inf \(first at node 1\)"):
        mle.fit_graph_model([(np.array([[0.0, 1.0], [np.nan, 0.0], [1.0, 1.0]]), np.zeros((3, 3)))],
                            _adam(0.5, 5), 5)
    with pytest.raises(ValueError, match="adjacency E holds NaN"):
        mle.stack_graphs([(x, np.triu(np.full((3, 3), np.nan), k=1))])
    with pytest.raises(ValueError, match="same number of node features"):
        mle.stack_graphs([(x, np.zeros((3, 3))), (np.zeros((3, 4)), np.zeros((3, 3)))])


# ------------------------------------------------------------------ files


class _Malicious:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_loader_refuses_malicious_pickle(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "graphs.pkl"
    x = np.zeros((3, 2))
    with open(path, "wb") as f:
        pickle.dump([(x, np.zeros((3, 3))), _Malicious(str(target))], f)
    with pytest.raises(pickle.UnpicklingError):
        mle.load_graphs(path)
    assert not target.exists()


def test_loader_reads_benign_pickle_and_npz(tmp_path):
    graphs = _ragged_graphs(seed=4)
    pkl = tmp_path / "graphs.pkl"
    with open(pkl, "wb") as f:
        pickle.dump([(x, e) for x, e in graphs], f)
    npz = mle.save_graphs(tmp_path / "graphs.npz", graphs)
    for path in (pkl, npz):
        loaded = mle.load_graphs(path)
        assert len(loaded) == len(graphs)
        for (x0, e0), (x1, e1) in zip(graphs, loaded):
            np.testing.assert_allclose(x1, x0, rtol=1e-6)
            np.testing.assert_array_equal(e1, e0)
    # Stacked padded form.
    batch = mle.stack_graphs(graphs)
    stacked = tmp_path / "stacked.npz"
    np.savez(stacked, X=batch.features, E=batch.adjacency, num_nodes=np.asarray(batch.node_mask).sum(1))
    assert [g[0].shape[0] for g in mle.load_graphs(stacked)] == [4, 6, 3]
    with pytest.raises(ValueError, match="suffix"):
        bad = tmp_path / "g.txt"
        bad.write_text("")
        mle.load_graphs(bad)
