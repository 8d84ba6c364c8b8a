"""Tests for jgen.ppca: closed form vs scikit-learn and the eigen-decomposition, EM, posterior, sampling."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.decomposition import PCA

from jgen import ppca


def _data(seed=0, n=400, d=12, q=3, noise=0.3, scale=3.0):
    """Low-rank-plus-noise data with a clear spectral gap after q components."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, q)) * np.linspace(scale, scale / 2, q)
    return rng.normal(size=(n, q)) @ w.T + noise * rng.normal(size=(n, d)) + rng.normal(size=d)


def test_closed_form_equals_eigendecomposition_of_the_covariance():
    x = _data()
    q = 3
    with jax.enable_x64(True):
        p = ppca.fit(x, q)
        s = np.cov(x.T, bias=True)  # ML covariance, 1/N
        lam, u = np.linalg.eigh(s)
        lam, u = lam[::-1], u[:, ::-1]
        sigma2 = lam[q:].mean()
        np.testing.assert_allclose(p.mean, x.mean(0), rtol=1e-12)
        np.testing.assert_allclose(p.sigma2, sigma2, rtol=1e-10)
        w_ref = u[:, :q] * np.sqrt(lam[:q] - sigma2)
        np.testing.assert_allclose(p.W @ p.W.T, w_ref @ w_ref.T, atol=1e-10)
        # The ML log-likelihood has the closed form -1/2 (D log 2 pi + sum_q log lambda + (D-q) log s2 + D).
        d = x.shape[1]
        ll = -0.5 * (d * np.log(2 * np.pi) + np.sum(np.log(lam[:q])) + (d - q) * np.log(sigma2) + d)
        np.testing.assert_allclose(ppca.average_log_likelihood(p, x), ll, rtol=1e-10)
        # ... and log_prob is the multivariate normal density with C = W W^T + sigma2 I.
        ref = stats.multivariate_normal(x.mean(0), ppca.marginal_covariance(p)).logpdf(x[:50])
        np.testing.assert_allclose(ppca.log_prob(p, x[:50]), ref, rtol=1e-10)


@pytest.mark.parametrize("n,d,q", [(300, 10, 3), (40, 64, 5)])
def test_matches_sklearn_noise_variance_and_score(n, d, q):
    x = _data(seed=1, n=n, d=d, q=q).astype(np.float32)
    sk = PCA(n_components=q, svd_solver="full").fit(x.astype(np.float64))
    p = ppca.fit(x, q, ddof=1)  # float32 throughout
    assert p.W.dtype == jnp.float32
    # sklearn averages the discarded eigenvalues over min(N, D) - q, the ML estimate over D - q.
    scale = (min(n, d) - q) / (d - q)
    np.testing.assert_allclose(p.sigma2, sk.noise_variance_ * scale, rtol=1e-4)
    if n > d:  # then the two models coincide: same covariance, same score on any data
        np.testing.assert_allclose(ppca.marginal_covariance(p), sk.get_covariance(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ppca.average_log_likelihood(p, x), sk.score(x), rtol=1e-4)
        x_new = _data(seed=2, n=50, d=d, q=q)
        np.testing.assert_allclose(ppca.log_prob(p, x_new), sk.score_samples(x_new), rtol=1e-4)
    else:  # with sklearn's sigma2 plugged in, the rest of the model and the score agree
        p_sk = p._replace(sigma2=jnp.float32(sk.noise_variance_))
        w = np.asarray(p.W, np.float64)
        lam = np.sum(w**2, 0) + p.sigma2  # column norms^2 = lambda_j - sigma2
        p_sk = p_sk._replace(W=jnp.asarray(w / np.sqrt(lam - p.sigma2) * np.sqrt(lam - sk.noise_variance_),
                                           jnp.float32))
        np.testing.assert_allclose(ppca.average_log_likelihood(p_sk, x), sk.score(x), rtol=1e-4)


def test_maximum_likelihood_is_a_maximum():
    x = _data(seed=3)
    with jax.enable_x64(True):
        p = ppca.fit(x, 3)
        grads = jax.grad(ppca.average_log_likelihood)(p, jnp.asarray(x))
        for g in grads:
            np.testing.assert_allclose(g, 0.0, atol=1e-8)
        best = ppca.average_log_likelihood(p, x)
        rng = np.random.default_rng(0)
        for _ in range(5):
            other = p._replace(W=p.W + 0.05 * rng.normal(size=p.W.shape), sigma2=p.sigma2 * 1.05)
            assert ppca.average_log_likelihood(other, x) < best


def test_em_converges_to_closed_form():
    # EM moves W inside the principal subspace at a rate ~ 1 - sigma2 / lambda_q (every W spanning it is a
    # fixed point when sigma2 = 0), so the data keep sigma2 / lambda_q ~ 0.1 for a few hundred steps to suffice.
    x = _data(seed=4, n=300, d=20, q=3, noise=1.0, scale=1.0)
    with jax.enable_x64(True):
        closed = ppca.fit(x, 3)
        em, lls = ppca.fit_em(x, 3, jax.random.key(0), num_steps=300)
        assert lls.shape == (300,)
        assert np.all(np.diff(np.asarray(lls)) > -1e-9)  # EM never decreases the likelihood
        np.testing.assert_allclose(em.sigma2, closed.sigma2, rtol=1e-6)
        np.testing.assert_allclose(em.W @ em.W.T, closed.W @ closed.W.T, atol=1e-6)
        proj = lambda w: w @ np.linalg.pinv(w)  # orthogonal projector on span(W): same subspace
        np.testing.assert_allclose(proj(np.asarray(em.W)), proj(np.asarray(closed.W)), atol=1e-6)
        ll_closed = ppca.average_log_likelihood(closed, x)
        np.testing.assert_allclose(ppca.average_log_likelihood(em, x), ll_closed, rtol=1e-10)
        np.testing.assert_allclose(lls[-1], ll_closed, rtol=1e-9)
        # The log-likelihood EM reports is the real one.
        em1, lls1 = ppca.fit_em(x, 3, jax.random.key(0), num_steps=2)
        init = ppca.init_em(x, 3, jax.random.key(0))
        np.testing.assert_allclose(lls1[0], ppca.average_log_likelihood(init, x), rtol=1e-10)


def test_posterior_mean_formula_vs_gaussian_conditioning():
    x = _data(seed=5, n=30)
    with jax.enable_x64(True):
        p = ppca.fit(_data(seed=6), 3)
        z, cov = ppca.posterior(p, x)
        # Direct: (z, x) jointly Gaussian with Cov(z, x) = W^T, Cov(x) = C.
        c = np.asarray(ppca.marginal_covariance(p))
        w = np.asarray(p.W)
        z_ref = (w.T @ np.linalg.solve(c, (x - np.asarray(p.mean)).T)).T
        cov_ref = np.eye(3) - w.T @ np.linalg.solve(c, w)
        np.testing.assert_allclose(z, z_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(cov, cov_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ppca.project(p, x[0]), z_ref[0], rtol=1e-9)  # a single [D] point
        # Bayes: log p(z|x) = log p(z) + log p(x|z) - log p(x) at an arbitrary z.
        zz = np.array([0.3, -0.2, 0.5])
        lhs = stats.multivariate_normal(z[0], cov).logpdf(zz)
        rhs = (stats.multivariate_normal(np.zeros(3), np.eye(3)).logpdf(zz)
               + stats.multivariate_normal(w @ zz + np.asarray(p.mean), p.sigma2 * np.eye(12)).logpdf(x[0])
               - ppca.log_prob(p, x[0]))
        np.testing.assert_allclose(lhs, rhs, rtol=1e-9)


def test_reconstruction_modes():
    x = _data(seed=7, n=200)
    with jax.enable_x64(True):
        p = ppca.fit(x, 3)
        proj = ppca.reconstruct(p, x, mode="projection")
        u = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][:3].T
        np.testing.assert_allclose(proj, (x - x.mean(0)) @ u @ u.T + x.mean(0), atol=1e-10)
        post = ppca.reconstruct(p, x)
        np.testing.assert_allclose(post, ppca.decode(p, ppca.project(p, x)), atol=1e-12)
        # The posterior mean shrinks towards the mean, so its squared error is no smaller.
        assert np.mean((post - x) ** 2) >= np.mean((proj - x) ** 2)
        assert np.mean((proj - x) ** 2) < 0.1 * np.var(x, 0).sum()


def test_sampling_moments_match_model_covariance():
    p = ppca.fit(_data(seed=8, n=500, d=6, q=2), 2)
    x = np.asarray(ppca.sample(p, jax.random.key(1), 200_000), np.float64)
    c = np.asarray(ppca.marginal_covariance(p))
    np.testing.assert_allclose(x.mean(0), p.mean, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), c, atol=0.03 * np.abs(c).max())
    mean_only = np.asarray(ppca.sample(p, jax.random.key(2), 100_000, noise=False), np.float64)
    w = np.asarray(p.W)
    np.testing.assert_allclose(np.cov(mean_only.T), w @ w.T, atol=0.03 * np.abs(c).max())


def test_high_dimensional_fit_is_cheap_and_consistent():
    """D = 4096, N = 400 (the faces setting) through the thin SVD: matches the N x N Gram eigenproblem."""
    rng = np.random.default_rng(9)
    x = (rng.normal(size=(400, 20)) @ rng.normal(size=(20, 4096)) * 0.1 + rng.normal(size=(400, 4096))
         ).astype(np.float32)
    p = ppca.fit(x, 16)
    xc = x.astype(np.float64) - x.mean(0)
    lam = np.sort(np.linalg.eigvalsh(xc @ xc.T / 400))[::-1]  # nonzero eigenvalues of S
    np.testing.assert_allclose(p.sigma2, lam[16:].sum() / (4096 - 16), rtol=1e-4)
    np.testing.assert_allclose(np.sum(np.asarray(p.W, np.float64) ** 2, 0), lam[:16] - p.sigma2, rtol=1e-3)
    assert np.isfinite(float(ppca.average_log_likelihood(p, x)))


def test_bad_inputs_raise():
    x = _data(n=20, d=5)
    with pytest.raises(ValueError, match=r"x must have shape \[N, D\]"):
        ppca.fit(np.zeros((3, 4, 5)), 2)
    with pytest.raises(ValueError, match="latent_dim must satisfy"):
        ppca.fit(x, 5)
    with pytest.raises(ValueError, match="latent_dim must satisfy"):
        ppca.fit(x, 0)
    with pytest.raises(ValueError, match="exceeds the number of data points"):
        ppca.fit(x[:2], 3)
    with pytest.raises(ValueError, match="ddof"):
        ppca.fit(x, 2, ddof=2)
    p = ppca.fit(x, 2)
    with pytest.raises(ValueError, match="expected the data dimension D = 5"):
        ppca.log_prob(p, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="expected the latent dimension q = 2"):
        ppca.decode(p, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="mode must be"):
        ppca.reconstruct(p, x, mode="mean")
    with pytest.raises(ValueError, match="inconsistent PPCAParams"):
        ppca.log_prob(ppca.PPCAParams(p.mean[:3], p.W, p.sigma2), x)
    with pytest.raises(TypeError, match="PPCAParams"):
        ppca.log_prob((p.mean, p.W, p.sigma2), x)
    with pytest.raises(ValueError, match="expected \\[D, q\\]"):
        ppca.fit_em(x, 3, jax.random.key(0), init=p)
    with pytest.raises(ValueError, match="num_steps"):
        ppca.fit_em(x, 2, jax.random.key(0), num_steps=0)


def test_non_finite_data_is_refused():
    x = _data(n=20, d=5)
    p = ppca.fit(x, 2)
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[7, 3] = bad
        for call in (lambda: ppca.fit(y, 2), lambda: ppca.fit_em(y, 2, jax.random.key(0)),
                     lambda: ppca.init_em(y, 2, jax.random.key(0)), lambda: ppca.average_log_likelihood(p, y),
                     lambda: ppca.log_prob(p, y), lambda: ppca.posterior(p, y), lambda: ppca.reconstruct(p, y)):
            with pytest.raises(ValueError, match=r"x holds 1 non-finite value \(NaN or Inf\), the first at "
                                                 r"index \(7, 3\); PPCA needs finite data"):
                call()


def _covariance_relative_error(a, b):
    """||C_a - C_b||_F / ||C_b||_F for C = W W^T + sigma2 I, from [q, q] products only (D x D never formed)."""
    d = a.W.shape[0]
    w_a, w_b = np.asarray(a.W, np.float64), np.asarray(b.W, np.float64)
    s_a, s_b = float(a.sigma2), float(b.sigma2)

    def inner(w1, s1, w2, s2):  # <C_1, C_2>_F
        return np.sum((w1.T @ w2) ** 2) + s1 * np.sum(w2**2) + s2 * np.sum(w1**2) + d * s1 * s2

    diff = inner(w_a, s_a, w_a, s_a) - 2 * inner(w_a, s_a, w_b, s_b) + inner(w_b, s_b, w_b, s_b)
    return math.sqrt(max(diff, 0.0) / inner(w_b, s_b, w_b, s_b))


@pytest.fixture(scope="module")
def real_faces():
    """Real faces in [0, 1], flattened: 300 Frey frames (D = 560) and all 400 Olivetti faces at 32 x 32 (D = 1024,
    N < D: most eigenvalues zero, sigma2 tiny, the hard case for EM)."""
    import os

    from jgen.data import faces, preprocess

    if not os.environ.get("JGEN_DATA_DIR"):
        pytest.skip("needs JGEN_DATA_DIR (Frey and Olivetti faces)")
    flat = lambda im: np.asarray(preprocess.to_unit(im), np.float32).reshape(len(im), -1)
    frey = faces.frey(download=False)["image"]
    return {"frey": flat(frey[np.random.default_rng(0).choice(len(frey), 300, replace=False)]),
            "olivetti": flat(faces.olivetti(size=32, download=False)["image"])}


@pytest.mark.parametrize("name,q", [("frey", 2), ("frey", 16), ("frey", 64), ("olivetti", 64)])
def test_em_from_its_default_start_reaches_the_closed_form_on_real_faces(real_faces, name, q):
    # ppca_faces runs 300 EM steps; half of that must already be enough. From the old start (W with N(0, var)
    # entries) Frey was still 0.16 / 3.3 / 8.5 nats per image short at d = 2 / 16 / 64 after 300 steps.
    x = jnp.asarray(real_faces[name])
    d = x.shape[1]
    closed = ppca.fit(x, q)
    em, lls = ppca.fit_em(x, q, jax.random.key(0), num_steps=150)
    # The ML log-likelihood in closed form, from lambda_j = |W_j|^2 + sigma2 (j <= q) and sigma2 (checked against
    # average_log_likelihood above); lls[-1] is EM's exact log-likelihood one step before the end.
    lam = np.sum(np.asarray(closed.W, np.float64) ** 2, 0) + float(closed.sigma2)
    ll_closed = -0.5 * (d * math.log(2 * math.pi) + np.sum(np.log(lam)) + (d - q) * math.log(closed.sigma2) + d)
    assert abs(float(lls[-1]) - ll_closed) < 0.01  # nats per image
    assert _covariance_relative_error(em, closed) < 0.03
    np.testing.assert_allclose(float(em.sigma2), float(closed.sigma2), rtol=0.01)
