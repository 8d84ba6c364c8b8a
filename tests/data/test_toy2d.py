"""2-D toys: densities normalise, sample moments match moments of the exact density, special cases."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from jgen.data import toy2d

N = 40000


def _grid(lo, hi, step):
    g = np.arange(lo + step / 2, hi, step)  # cell centres
    X, Y = np.meshgrid(g, g, indexing="ij")
    return np.stack([X.ravel(), Y.ravel()], -1), step * step


def _jit_log_prob(name, x, **kw):
    return jax.jit(functools.partial(toy2d.log_prob, name, **kw))(x)


def _density_moments(name, pts, cell, **kw):
    lp = _jit_log_prob(name, jnp.asarray(pts, jnp.float32), **kw)
    w = np.exp(np.asarray(lp, np.float64)) * cell
    mass = w.sum()
    mean = (pts * w[:, None]).sum(0) / mass
    d = pts - mean
    cov = (d[:, :, None] * d[:, None, :] * w[:, None, None]).sum(0) / mass
    return mass, mean, cov


CASES = [
    ("mixture4", dict(sigma=0.5), (-4, 6, 0.04)),
    ("mixture4", dict(sigma=1.0), (-6, 8, 0.05)),
    ("moons", dict(), (-2.5, 3.0, 0.02)),
    ("circles", dict(), (-1.7, 1.7, 0.01)),
    ("gaussian_grid", dict(sigma=0.1), (-3, 3, 0.02)),
    ("gaussians_rot", dict(num_gaussians=5), (-3.5, 3.5, 0.02)),
]


@pytest.mark.parametrize("name, kw, box", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_density_normalises_and_sample_moments_match(name, kw, box):
    pts, cell = _grid(*box)
    mass, mean, cov = _density_moments(name, pts, cell, **kw)
    np.testing.assert_allclose(mass, 1.0, atol=2e-3)
    x = np.asarray(toy2d.sample(name, jax.random.key(0), N, **kw), np.float64)
    assert x.shape == (N, 2)
    se = np.sqrt(np.diag(cov) / N)
    np.testing.assert_array_less(np.abs(x.mean(0) - mean), 5 * se + 1e-3)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.04 * np.abs(cov).max())


def test_spiral_density_in_polar_coordinates():
    # Integrate in polar coordinates, where the 1/|x| singularity at the origin cancels with rho d rho.
    with jax.enable_x64(True):
        drho, dphi = 10 / 2000, 2 * np.pi / 360
        rho, phi = np.meshgrid((np.arange(2000) + 0.5) * drho, (np.arange(360) + 0.5) * dphi, indexing="ij")
        pts = np.stack([rho * np.cos(phi), rho * np.sin(phi)], -1).reshape(-1, 2)
        p = np.exp(np.asarray(_jit_log_prob("spiral", jnp.asarray(pts))))
        w = p * (rho * drho * dphi).ravel()
    np.testing.assert_allclose(w.sum(), 1.0, atol=1e-6)
    mean = (pts * w[:, None]).sum(0)
    second = ((pts**2).sum(1) * w).sum()
    # Exact: E[r cos t] = 0, E[r sin t] = -1/2, E|x|^2 = E[theta^2]/4 + var = 4 pi^2/3 + 0.25.
    np.testing.assert_allclose(mean, [0.0, -0.5], atol=1e-4)
    np.testing.assert_allclose(second, 4 * np.pi**2 / 3 + 0.25, rtol=1e-5)
    x = np.asarray(toy2d.sample("spiral", jax.random.key(1), N), np.float64)
    np.testing.assert_allclose(x.mean(0), [0.0, -0.5], atol=0.06)
    np.testing.assert_allclose((x**2).sum(1).mean(), 4 * np.pi**2 / 3 + 0.25, rtol=0.03)


def test_spiral_variance_option_is_the_radial_variance():
    x = np.asarray(toy2d.sample("spiral", jax.random.key(2), N, variance=0.01), np.float64)
    # With small noise |x| ~ theta / 2, so |x| spreads like U[0, 2 pi] and hugs the curve r = theta/2.
    assert abs(np.linalg.norm(x, axis=1).mean() - np.pi) < 0.05


def test_mixture4_matches_scipy():
    x = np.random.default_rng(0).normal(size=(50, 2)) * 2 + 1
    means = [(0, 0), (0, 2), (2, 0), (2, 2)]
    ref = np.log(np.mean([scipy.stats.multivariate_normal(m, 0.25 * np.eye(2)).pdf(x) for m in means], 0))
    np.testing.assert_allclose(toy2d.log_prob("mixture4", x, sigma=0.5), ref, rtol=1e-5)


def test_circles_bessel_form_matches_angle_quadrature():
    x = np.array([[0.3, -0.2], [1.0, 0.05], [0.0, 0.0], [-0.45, 0.2]])
    s, f = 0.08, 0.5

    def ring_density(pt, radius):
        def integrand(t):
            c = radius * np.array([np.cos(t), np.sin(t)])
            return np.exp(-np.sum((pt - c) ** 2) / (2 * s * s)) / (2 * np.pi * s * s) / (2 * np.pi)
        return scipy.integrate.quad(integrand, 0, 2 * np.pi, limit=200)[0]

    ref = [np.log(0.5 * ring_density(p, 1.0) + 0.5 * ring_density(p, f)) for p in x]
    np.testing.assert_allclose(toy2d.log_prob("circles", x, noise=s, factor=f), ref, rtol=1e-4)


def test_moons_quadrature_has_converged():
    x = np.asarray(toy2d.sample("moons", jax.random.key(3), 200, noise=0.05), np.float64)
    with jax.enable_x64(True):
        a = _jit_log_prob("moons", jnp.asarray(x), noise=0.05, num_quad=256)
        b = _jit_log_prob("moons", jnp.asarray(x), noise=0.05, num_quad=640)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_dino_is_standardised_and_its_kde_normalises(real_data_dir):
    pts = toy2d.dino_points()
    assert pts.shape == (142, 2)
    np.testing.assert_allclose(pts.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(pts.std(0), 1, atol=1e-5)
    grid, cell = _grid(-3, 3, 0.02)
    mass, mean, cov = _density_moments("dino", grid, cell, sigma=0.1)
    np.testing.assert_allclose(mass, 1.0, atol=1e-3)
    np.testing.assert_allclose(cov, np.cov(pts.T, bias=True) + 0.01 * np.eye(2), atol=1e-3)
    x = np.asarray(toy2d.sample("dino", jax.random.key(0), N, sigma=0.1))
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.04)


def test_jittable_and_errors():
    s = jax.jit(toy2d.sample, static_argnums=(0, 2))
    assert s("moons", jax.random.key(0), 7).shape == (7, 2)
    with pytest.raises(ValueError, match="unknown toy 'banana'"):
        toy2d.sample("banana", jax.random.key(0), 3)
    with pytest.raises(TypeError, match="mixture4.*unexpected"):
        toy2d.sample("mixture4", jax.random.key(0), 3, noise=1.0)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        toy2d.log_prob("spiral", jnp.zeros((3, 3)))
