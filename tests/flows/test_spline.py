"""Tests for jgen.flows.spline: rational-quadratic spline coupling (round trips, jax.jacfwd log-dets, tails)."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.flows import MLP, half_mask, spline_coupling, spline_params_per_dim
from tests.flows.helpers import jacobian_log_det, perturb

D, K, B = 4, 5, 2.0


def _coupling(key, parity=0, scale=0.1, dtype=jnp.float32, zero=False):
    # Raw spline parameters of std ~0.5: bins of visibly different sizes. Much larger ones make bins so
    # flat that a float32 inverse loses digits (dx = dy / slope), a property of the map, not a bug.
    p = spline_params_per_dim(K)
    net = MLP((16,), D * p)
    params = net.init(key, jnp.zeros((1, D)))["params"]
    if not zero:
        params = perturb(params, key, scale, dtype)
    conditioner = lambda z: net.apply({"params": params}, z).reshape(z.shape + (p,))
    return spline_coupling(jnp.asarray(half_mask(D, parity)), conditioner, num_bins=K, boundary=B)


def _points(n, dtype=jnp.float32):
    # Scale 1.5 around the range [-2, 2]: about a fifth of the coordinates fall in the identity tails.
    return 1.5 * jax.random.normal(jax.random.key(1), (n, D), dtype)


@pytest.mark.parametrize("parity", [0, 1])
def test_round_trip_and_kept_coordinates(parity):
    bij = _coupling(jax.random.key(0), parity)
    x = _points(256)
    y, ld_fwd = jax.jit(bij.forward_and_log_det)(x)
    x_rec, ld_inv = jax.jit(bij.inverse_and_log_det)(y)
    np.testing.assert_allclose(x_rec, x, atol=1e-4)
    np.testing.assert_allclose(ld_fwd, -ld_inv, atol=1e-4)
    mask = half_mask(D, parity)
    np.testing.assert_array_equal(y[:, mask], x[:, mask])
    inside = np.abs(np.asarray(x[:, ~mask])) < B
    moved = np.abs(np.asarray(y[:, ~mask] - x[:, ~mask]))
    assert moved[inside].min() > 0 and inside.mean() < 0.95
    # Outside [-B, B] the splines are the identity (linear tails of slope 1).
    np.testing.assert_allclose(moved[~inside], 0.0, atol=1e-6)


def test_round_trip_float64():
    with jax.enable_x64(True):
        bij = _coupling(jax.random.key(0), dtype=jnp.float64)
        x = _points(64, jnp.float64)
        x_rec = jax.jit(lambda v: bij.inverse(bij.forward(v)))(x)
        assert x_rec.dtype == jnp.float64
        np.testing.assert_allclose(x_rec, x, atol=1e-10)


@pytest.mark.parametrize("parity", [0, 1])
def test_log_det_matches_jacfwd(parity):
    bij = _coupling(jax.random.key(2), parity)
    xs = _points(6)
    np.testing.assert_allclose(jax.jit(bij.forward_log_det_jacobian)(xs), jacobian_log_det(bij.forward, xs),
                               atol=1e-4)
    np.testing.assert_allclose(jax.jit(bij.inverse_log_det_jacobian)(xs), jacobian_log_det(bij.inverse, xs),
                               atol=1e-4)


def test_zero_conditioner_is_the_identity():
    bij = _coupling(jax.random.key(3), zero=True)
    x = _points(64)
    y, ld = jax.jit(bij.forward_and_log_det)(x)
    np.testing.assert_allclose(y, x, atol=1e-5)
    np.testing.assert_allclose(ld, 0.0, atol=1e-5)
    assert isinstance(bij, distrax.MaskedCoupling)


def test_bad_arguments_raise():
    mask = jnp.array([True, False])
    with pytest.raises(ValueError, match="positive integer"):
        spline_params_per_dim(0)
    with pytest.raises(ValueError, match="boolean"):
        spline_coupling(jnp.array([1, 0]), lambda z: z)
    with pytest.raises(ValueError, match="boundary B must be positive"):
        spline_coupling(mask, lambda z: z, boundary=0.0)
    bij = spline_coupling(mask, lambda z: jnp.zeros(z.shape + (7,)), num_bins=4)
    with pytest.raises(ValueError, match=r"3 K \+ 1\] = \[\.\.\., 13\]"):
        bij.forward(jnp.zeros((3, 2)))
