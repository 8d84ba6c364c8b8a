"""The quartic target's exact marginals and moments against direct quadrature and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

from jgen.mcmc.targets import quartic_logdensity, quartic_marginal_pdf, quartic_moments


def test_logdensity_matches_the_pairwise_form():
    x = jax.random.normal(jax.random.key(0), (5, 4))
    pairwise = jnp.sum(x**2, -1) ** 2 - jnp.sum(x**4, -1)  # sum_{i != j} x_i^2 x_j^2
    np.testing.assert_allclose(quartic_logdensity(x), -jnp.sum(x**4, -1) - 0.5 * pairwise, rtol=1e-5)


def test_moments_d1_closed_form():
    # d = 1: p(x) ∝ exp(-x^4); E[x^2] = Gamma(3/4)/Gamma(1/4), E[x^4] = 1/4.
    np.testing.assert_allclose(quartic_moments(1), [special.gamma(0.75) / special.gamma(0.25), 0.25], rtol=1e-10)


def test_moments_and_marginal_d2_against_2d_quadrature():
    def density(y, x):
        return np.exp(-(x**4) - y**4 - x**2 * y**2)

    z = integrate.dblquad(density, -5, 5, -5, 5)[0]
    m2 = integrate.dblquad(lambda y, x: x**2 * density(y, x), -5, 5, -5, 5)[0] / z
    m4 = integrate.dblquad(lambda y, x: x**4 * density(y, x), -5, 5, -5, 5)[0] / z
    np.testing.assert_allclose(quartic_moments(2), [m2, m4], rtol=1e-7)
    for x1 in (0.0, 0.7, 1.5):
        marginal = integrate.quad(lambda y: density(y, x1), -5, 5)[0] / z
        np.testing.assert_allclose(quartic_marginal_pdf(x1, 2), marginal, rtol=1e-7)


@pytest.mark.parametrize("dim", [3, 10, 50])
def test_marginal_is_normalised_and_consistent_with_moments(dim):
    grid = np.linspace(-4, 4, 8001)
    pdf = quartic_marginal_pdf(grid, dim)
    assert np.all(pdf >= 0)
    np.testing.assert_allclose(np.trapezoid(pdf, grid), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.trapezoid(pdf * grid**2, grid), quartic_moments(dim)[0], rtol=1e-5)


def test_contour_shift_does_not_change_the_answer():
    # Exact for every shift; d = 10 is still well conditioned without one.
    np.testing.assert_allclose(quartic_moments(10, tau=0.0), quartic_moments(10), rtol=1e-7)
    np.testing.assert_allclose(quartic_moments(3, tau=5.0), quartic_moments(3), rtol=1e-8)


def test_moments_d3_against_monte_carlo_free_check():
    """d = 3 by 3-D quadrature on a grid (trapezoid, smooth and fast-decaying integrand)."""
    g = np.linspace(-3.2, 3.2, 241)
    x, y, z = np.meshgrid(g, g, g, indexing="ij", sparse=True)
    w = np.exp(-0.5 * (x**4 + y**4 + z**4) - 0.5 * (x**2 + y**2 + z**2) ** 2)
    np.testing.assert_allclose(quartic_moments(3)[0], (w * x**2).sum() / w.sum(), rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="dim"):
        quartic_moments(0)
    with pytest.raises(ValueError, match="even"):
        quartic_moments(2, powers=(3,))
