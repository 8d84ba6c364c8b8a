"""Tests for jgen.kde: exact chunked evaluation vs float64 references and scipy, rules, binning, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln, logsumexp

from jgen import kde


def _data(seed=0, n=400, d=2):
    rng = np.random.default_rng(seed)
    a = np.tril(rng.normal(size=(d, d))) + 1.5 * np.eye(d)
    return rng.normal(size=(n, d)) @ a.T + rng.normal(size=d)


def _numpy_log_prob(points, h, x, weights=None, kernel="gaussian"):
    """Direct float64 reference: log sum_i w_i K(H^{-1}(x - x_i)) / |det H|, differences taken explicitly."""
    points, h, x = (np.asarray(a, np.float64) for a in (points, h, x))
    n, d = points.shape
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    u = np.linalg.solve(h, (x[:, None, :] - points[None]).reshape(-1, d).T).T.reshape(len(x), n, d)
    sq = np.sum(u**2, -1)
    log_det = np.linalg.slogdet(h)[1]
    if kernel == "gaussian":
        return logsumexp(-0.5 * sq, b=w, axis=1) - 0.5 * d * np.log(2 * np.pi) - log_det
    log_ball = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(w * np.maximum(1 - sq, 0), 1)) + np.log((d + 2) / 2) - log_ball - log_det


def _grid(lo, hi, k):
    g = np.linspace(lo, hi, k)
    return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


@pytest.mark.parametrize("method", ["direct", "matmul"])
@pytest.mark.parametrize("kernel", kde.KERNELS)
def test_float64_reference_full_bandwidth_and_weights(kernel, method):
    pts = _data(n=300)
    rng = np.random.default_rng(1)
    h = np.array([[0.6, 0.0], [0.3, 0.4]])  # a full, non-symmetric H
    w = rng.uniform(0.1, 2.0, size=len(pts))
    x = np.concatenate([rng.normal(size=(200, 2)) * 2.5 + pts.mean(0), pts[:20] + 0.05])
    with jax.enable_x64(True):
        got = kde.log_prob(kde.fit(pts, h, weights=w), x, kernel=kernel, chunk_size=32, method=method)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(got, _numpy_log_prob(pts, h, x, w, kernel), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d,rtol", [(2, 1e-5), (6, 1e-4)])
def test_float32_matches_float64_reference(d, rtol):
    """float32 in, float32 out. D = 2 takes the direct path: 1e-5 relative. D = 6 takes the recentred matmul
    path, whose cancellation error grows with each chunk's spread (here random queries sorted on one axis)."""
    pts = _data(n=1000, d=d).astype(np.float32)
    k = kde.fit(pts)  # float32 throughout
    rng = np.random.default_rng(7)
    if d == 2:
        x = _grid(-6, 6, 50) + pts.mean(0)
    else:
        x = pts[rng.choice(len(pts), 2000)] + 0.3 * rng.normal(size=(2000, d))
        x = x[np.argsort(x[:, 0])]
    x = x.astype(np.float32)
    ref_log = _numpy_log_prob(pts, k.bandwidth, x)
    got_log = np.asarray(kde.log_prob(k, x))
    assert got_log.dtype == np.float32
    bulk = ref_log > np.log(1e-4) + ref_log.max()  # float32 logs of -10..0 resolve a density to ~1e-6
    assert bulk.mean() > 0.3
    np.testing.assert_allclose(np.exp(got_log[bulk]), np.exp(ref_log[bulk]), rtol=rtol)
    np.testing.assert_allclose(got_log[~bulk], ref_log[~bulk], rtol=rtol)  # tails: log density


@pytest.mark.parametrize("kernel", kde.KERNELS)
def test_integrates_to_one_on_a_grid(kernel):
    pts = _data(n=200)
    k = kde.fit(pts, "silverman")
    if kernel == "epanechnikov":
        k = k._replace(bandwidth=k.bandwidth * math.sqrt(2 + 4))
    lo, hi, m = pts.min(0) - 4.0, pts.max(0) + 4.0, 200
    g = [np.linspace(a, b, m) for a, b in zip(lo, hi)]
    x = np.stack(np.meshgrid(*g, indexing="ij"), -1).reshape(-1, 2)
    mass = float(jnp.sum(kde.density(k, x, kernel=kernel))) * np.prod((hi - lo) / (m - 1))
    assert abs(mass - 1.0) < 2e-3, mass


def test_1d_integrates_to_one_and_accepts_flat_arrays():
    pts = np.random.default_rng(3).standard_t(5, size=500)
    k = kde.fit(pts, 0.3)
    x = np.linspace(pts.min() - 3, pts.max() + 3, 4001)
    f = np.asarray(kde.density(k, x))
    assert f.shape == (4001,)
    np.testing.assert_allclose(np.trapezoid(f, x), 1.0, rtol=1e-5)
    np.testing.assert_allclose(f, stats.norm.pdf(x[:, None], pts[None], 0.3).mean(1), rtol=1e-4)


@pytest.mark.parametrize("rule", kde.RULES)
def test_matches_jax_scipy_gaussian_kde_with_h_ht_equal_to_its_covariance(rule):
    pts = _data(n=250, d=3)
    x = np.random.default_rng(2).normal(size=(100, 3)) * 1.5 + pts.mean(0)
    with jax.enable_x64(True):
        ref = jax.scipy.stats.gaussian_kde(jnp.asarray(pts.T), bw_method=rule)
        h = np.linalg.cholesky(np.asarray(ref.covariance))
        got = kde.log_prob(kde.fit(pts, h), x)
        np.testing.assert_allclose(got, ref.logpdf(jnp.asarray(x.T)), rtol=1e-9)
        # The rule gives the same estimate directly.
        np.testing.assert_allclose(kde.log_prob(kde.fit(pts, rule), x), got, rtol=1e-9)


@pytest.mark.parametrize("rule", kde.RULES)
@pytest.mark.parametrize("weighted", [False, True])
def test_rules_match_scipy_factor_and_covariance(rule, weighted):
    pts = _data(n=150, d=3)
    w = np.random.default_rng(4).uniform(0.0, 1.0, len(pts)) if weighted else None
    ref = stats.gaussian_kde(pts.T, bw_method=rule, weights=w)
    factor = (kde.scott_factor if rule == "scott" else kde.silverman_factor)(ref.neff, 3)
    np.testing.assert_allclose(factor, ref.factor, rtol=1e-12)
    with jax.enable_x64(True):
        h = kde.rule_bandwidth(pts, rule, weights=w)
        np.testing.assert_allclose(h @ h.T, ref.covariance, rtol=1e-10)
        np.testing.assert_allclose(jnp.triu(h, 1), 0.0)
        np.testing.assert_allclose(kde.log_prob(kde.fit(pts, rule, weights=w), pts[:30]),
                                   ref.logpdf(pts[:30].T), rtol=1e-9)


def test_bandwidth_depends_only_on_h_ht():
    pts = _data(n=100)
    h = np.array([[0.5, 0.1], [0.2, 0.4]])
    t = 0.7
    q = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    x = pts[:40] + 0.1
    with jax.enable_x64(True):
        np.testing.assert_allclose(kde.log_prob(kde.fit(pts, h @ q), x), kde.log_prob(kde.fit(pts, h), x),
                                   rtol=1e-12)


@pytest.mark.parametrize("method", ["direct", "matmul"])
@pytest.mark.parametrize("kernel", kde.KERNELS)
def test_chunked_equals_unchunked(kernel, method):
    pts = _data(n=500).astype(np.float32)
    k = kde.fit(pts, 0.4)
    x = _grid(-4, 4, 23).astype(np.float32)  # 529 queries: not a multiple of the chunk sizes
    whole = kde.log_prob(k, x, kernel=kernel, chunk_size=len(x), method=method)
    if method == "direct":  # chunking changes only the order of the reductions
        for chunk in (7, 64):
            np.testing.assert_allclose(kde.log_prob(k, x, kernel=kernel, chunk_size=chunk, method=method),
                                       whole, rtol=1e-6)
    else:  # the chunk centre changes the rounding
        for chunk in (7, 64):
            np.testing.assert_allclose(kde.log_prob(k, x, kernel=kernel, chunk_size=chunk, method=method),
                                       whole, rtol=1e-4, atol=1e-4)


def test_memory_is_bounded_by_the_chunk():
    """The compiled program never holds an [M, N] block: its temporaries stay near chunk x N."""
    n, m, chunk = 20_000, 10_000, 32
    k = kde.fit(np.zeros((n, 2), np.float32) + np.arange(n, dtype=np.float32)[:, None] * 1e-4, 0.5)
    x = jnp.zeros((m, 2), jnp.float32)
    compiled = kde._log_prob.lower(k, x, "gaussian", chunk, "direct").compile()
    stats_ = compiled.memory_analysis()
    if stats_ is None:
        pytest.skip("backend gives no memory analysis")
    assert stats_.temp_size_in_bytes < 16 * chunk * n * 4 < m * n * 4


def test_default_chunk_size_is_bounded():
    assert kde.default_chunk_size(10_000, 90_000) == 128
    assert kde.default_chunk_size(100_000, 90_000) == 16
    assert kde.default_chunk_size(10, 5) == 5
    assert kde.default_chunk_size(10**8, 90_000) == 8


@pytest.mark.parametrize("kernel", kde.KERNELS)
def test_binned_density_close_to_exact(kernel):
    pts = _data(n=1000).astype(np.float32)
    k = kde.fit(pts, "scott")
    if kernel == "epanechnikov":
        k = k._replace(bandwidth=k.bandwidth * math.sqrt(6.0))
    lo, hi = pts.min(0) - 3.0, pts.max(0) + 3.0
    axes, dens = kde.binned_density(k, lo, hi, (101, 91), kernel=kernel)
    assert dens.shape == (101, 91) and [a.size for a in axes] == [101, 91]
    _, nodes = kde.grid_nodes(lo, hi, (101, 91))
    exact = kde.density(k, nodes, kernel=kernel).reshape(101, 91)
    err = float(jnp.max(jnp.abs(dens - exact)) / jnp.max(exact))
    # Linear binning error is O((delta / h)^2); the Epanechnikov kink makes it larger.
    assert err < (2e-2 if kernel == "gaussian" else 1e-1), err
    if kernel == "gaussian":  # the binning correction removes the mean O(delta^2) error term
        _, raw = kde.binned_density(k, lo, hi, (101, 91), binning_correction=False)
        err_raw = float(jnp.max(jnp.abs(raw - exact)) / jnp.max(exact))
        assert err < 0.6 * err_raw, (err, err_raw)  # what remains is the per-point scatter around that mean
    # Finer grid -> smaller error (second order).
    axes2, dens2 = kde.binned_density(k, lo, hi, (201, 181), kernel=kernel)
    _, nodes2 = kde.grid_nodes(lo, hi, (201, 181))
    exact2 = kde.density(k, nodes2, kernel=kernel).reshape(201, 181)
    assert float(jnp.max(jnp.abs(dens2 - exact2)) / jnp.max(exact2)) < err / 2


def test_sample_moments():
    pts = _data(n=50)
    h = np.array([[0.5, 0.0], [0.3, 0.4]])
    w = np.random.default_rng(5).uniform(0.2, 1.0, len(pts))
    wn = w / w.sum()
    mean = wn @ pts
    data_cov = ((pts - mean).T * wn) @ (pts - mean)
    with jax.enable_x64(True):
        k = kde.fit(pts, h, weights=w)
        for kernel, kcov in (("gaussian", h @ h.T), ("epanechnikov", h @ h.T / (2 + 4))):
            s = np.asarray(kde.sample(k, jax.random.key(0), 50_000, kernel=kernel))
            np.testing.assert_allclose(s.mean(0), mean, atol=0.04)
            np.testing.assert_allclose(np.cov(s.T), data_cov + kcov, atol=0.08, rtol=0.03)
        # Epanechnikov samples stay inside the support: density > 0 at every sample.
        assert np.all(np.isfinite(np.asarray(kde.log_prob(k, s[:2000], kernel="epanechnikov"))))


def test_jittable_and_differentiable():
    pts = _data(n=100)
    x = pts[:5] + 0.3

    @jax.jit
    def f(h):
        return jnp.sum(kde.log_prob(kde.fit(pts, h), x))

    with jax.enable_x64(True):
        h = jnp.array([[0.5, 0.0], [0.1, 0.4]])
        num = (f(h + jnp.array([[1e-6, 0], [0, 0]])) - f(h - jnp.array([[1e-6, 0], [0, 0]]))) / 2e-6
        np.testing.assert_allclose(jax.grad(f)(h)[0, 0], num, rtol=1e-5)


def test_bad_inputs_raise():
    pts = _data(n=20)
    with pytest.raises(ValueError, match=r"points must have shape \[N, D\]"):
        kde.fit(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="bandwidth must be"):
        kde.fit(pts, np.eye(3))
    with pytest.raises(ValueError, match="rule must be one of"):
        kde.fit(pts, "normal_reference")
    with pytest.raises(ValueError, match="must be positive"):
        kde.fit(pts, -0.1)
    with pytest.raises(ValueError, match="invertible"):
        kde.fit(pts, np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least 2 points"):
        kde.fit(pts[:1], "scott")
    with pytest.raises(ValueError, match="singular"):
        kde.fit(np.stack([pts[:, 0], 2 * pts[:, 0]], 1), "scott")
    with pytest.raises(ValueError, match=r"weights must have shape \[N\]"):
        kde.fit(pts, 0.5, weights=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        kde.fit(pts, 0.5, weights=-np.ones(20))
    k = kde.fit(pts, 0.5)
    with pytest.raises(ValueError, match=r"x must have shape \[M, 2\]"):
        kde.log_prob(k, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"x must have shape \[M, 2\]"):
        kde.log_prob(k, np.zeros(5))
    with pytest.raises(ValueError, match="kernel must be one of"):
        kde.log_prob(k, pts, kernel="tophat")
    with pytest.raises(ValueError, match="method must be one of"):
        kde.log_prob(k, pts, method="fft")
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        kde.log_prob(k, pts, chunk_size=0)
    with pytest.raises(ValueError, match="D = 2 entries"):
        kde.binned_density(k, [0.0], [1.0], 10)
    with pytest.raises(ValueError, match="upper must exceed lower"):
        kde.binned_density(k, [0.0, 0.0], [1.0, -1.0], 10)
    with pytest.raises(TypeError, match="jgen.kde.KDE"):
        kde.log_prob((pts, np.eye(2)), pts)
    assert kde.log_prob(k, np.zeros((0, 2))).shape == (0,)


def test_non_finite_points_weights_and_queries_are_refused():
    pts = _data(n=20)
    k = kde.fit(pts, 0.5)
    for bad in (np.nan, -np.inf):
        p = pts.copy()
        p[4, 1] = bad
        w = np.ones(20)
        w[6] = bad
        with pytest.raises(ValueError, match=r"points holds 1 non-finite value \(NaN or Inf\), the first at index "
                                             r"\(4, 1\); a KDE needs finite points"):
            kde.fit(p, 0.5)
        with pytest.raises(ValueError, match=r"points holds 1 non-finite value"):
            kde.rule_bandwidth(p)
        with pytest.raises(ValueError, match=r"weights holds 1 non-finite value .* at index \(6,\)"):
            kde.fit(pts, "scott", weights=w)
        with pytest.raises(ValueError, match=r"x holds 1 non-finite value .* at index \(4, 1\)"):
            kde.log_prob(k, p)


def test_a_negative_diagonal_is_refused_as_a_vector_and_equivalent_as_a_matrix():
    # Scalars and vectors are standard deviations; a matrix is any invertible H and only H H^T matters, so
    # diag(-0.3, 0.5) is the vector (0.3, 0.5) with the first column's sign flipped (documented in `fit`).
    pts = _data(n=50)
    with pytest.raises(ValueError, match="standard deviations and must be positive"):
        kde.fit(pts, np.array([-0.3, 0.5]))
    x = pts[:10] + 0.2
    with jax.enable_x64(True):
        np.testing.assert_allclose(kde.log_prob(kde.fit(pts, np.diag([-0.3, 0.5])), x),
                                   kde.log_prob(kde.fit(pts, np.array([0.3, 0.5])), x), rtol=1e-12)
