"""Tests for jgen.flows.coupling: masks, round trips, log-dets against jax.jacfwd, bounded scales."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.flows import (MLP, ConvNet, affine_coupling, alternating_masks, bounded_log_scale,
                        channel_mask, checkerboard_mask, half_mask)
from tests.flows.helpers import jacobian_log_det, perturb


def _vector_coupling(key, d=5, parity=0, scale=0.3, dtype=jnp.float32):
    net = MLP((16, 16), 2 * d, zero_init_last=False)
    params = perturb(net.init(key, jnp.zeros((1, d)))["params"], key, scale, dtype)
    conditioner = lambda z: net.apply({"params": params}, z).reshape(z.shape + (2,))
    return affine_coupling(jnp.asarray(half_mask(d, parity)), conditioner, log_scale_bound=2.0)


def _image_coupling(key, shape=(4, 4, 2), mask="checkerboard", parity=0):
    net = ConvNet((8,), 2 * shape[-1], zero_init_last=False)
    params = perturb(net.init(key, jnp.zeros((1,) + shape))["params"], key, 0.1)
    conditioner = lambda z: net.apply({"params": params}, z).reshape(z.shape + (2,))
    m = checkerboard_mask(shape, parity) if mask == "checkerboard" else channel_mask(shape, parity)
    return affine_coupling(jnp.asarray(m), conditioner)


def test_masks_alternate_and_cover_every_coordinate():
    for kind, shape in [("half", (5,)), ("checkerboard", (3, 4, 1)), ("channel", (2, 2, 4))]:
        masks = alternating_masks(kind, shape, 4)
        assert masks.shape == (4,) + shape and masks.dtype == bool
        np.testing.assert_array_equal(masks[0], ~masks[1])
        np.testing.assert_array_equal(masks[0], masks[2])
        assert 0 < masks[0].sum() < masks[0].size
    np.testing.assert_array_equal(half_mask(5), [True, True, True, False, False])
    np.testing.assert_array_equal(checkerboard_mask((2, 2, 1))[..., 0], [[True, False], [False, True]])
    np.testing.assert_array_equal(channel_mask((1, 1, 4))[0, 0], [True, True, False, False])


@pytest.mark.parametrize("kind,shape,match", [
    ("half", (1,), "at least 2"), ("half", (2, 2), "vector event shape"),
    ("checkerboard", (4,), r"\(H, W, C\)"), ("channel", (4, 4, 1), "C >= 2"), ("diagonal", (2,), "one of"),
])
def test_bad_masks_raise(kind, shape, match):
    with pytest.raises(ValueError, match=match):
        alternating_masks(kind, shape, 2)


def test_non_boolean_mask_raises():
    with pytest.raises(ValueError, match="boolean"):
        affine_coupling(jnp.array([1, 0]), lambda z: jnp.zeros(z.shape + (2,)))


def test_bounded_log_scale():
    raw = jnp.array([-100.0, -0.01, 0.0, 0.01, 100.0])
    s = bounded_log_scale(raw, 3.0)
    np.testing.assert_allclose(s[jnp.array([0, -1])], [-3.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(s[1:4], raw[1:4], atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        bounded_log_scale(raw, 0.0)


@pytest.mark.parametrize("parity", [0, 1])
def test_round_trip_float32_and_kept_coordinates(parity):
    bij = _vector_coupling(jax.random.key(0), parity=parity)
    x = jax.random.normal(jax.random.key(1), (64, 5))
    y, ld_fwd = jax.jit(bij.forward_and_log_det)(x)
    x_rec, ld_inv = jax.jit(bij.inverse_and_log_det)(y)
    np.testing.assert_allclose(x_rec, x, atol=1e-5)
    np.testing.assert_allclose(ld_fwd, -ld_inv, atol=1e-5)
    mask = half_mask(5, parity)
    np.testing.assert_array_equal(y[:, mask], x[:, mask])
    assert np.abs(y[:, ~mask] - x[:, ~mask]).min() > 0


def test_round_trip_float64():
    with jax.enable_x64(True):
        bij = _vector_coupling(jax.random.key(0), dtype=jnp.float64)
        x = jax.random.normal(jax.random.key(1), (64, 5), jnp.float64)
        x_rec = jax.jit(lambda v: bij.inverse(bij.forward(v)))(x)
        assert x_rec.dtype == jnp.float64
        np.testing.assert_allclose(x_rec, x, atol=1e-10)


@pytest.mark.parametrize("parity", [0, 1])
def test_log_det_matches_jacfwd_vector(parity):
    bij = _vector_coupling(jax.random.key(2), parity=parity)
    xs = jax.random.normal(jax.random.key(3), (3, 5))
    fwd = jax.jit(bij.forward_log_det_jacobian)(xs)
    inv = jax.jit(bij.inverse_log_det_jacobian)(xs)
    np.testing.assert_allclose(fwd, jacobian_log_det(bij.forward, xs), atol=1e-4)
    np.testing.assert_allclose(inv, jacobian_log_det(bij.inverse, xs), atol=1e-4)


@pytest.mark.parametrize("mask", ["checkerboard", "channel"])
def test_log_det_matches_jacfwd_image(mask):
    bij = _image_coupling(jax.random.key(4), mask=mask)
    x = jax.random.normal(jax.random.key(5), (4, 4, 2))
    y, ld = jax.jit(bij.forward_and_log_det)(x)
    assert ld.shape == ()
    np.testing.assert_allclose(ld, jacobian_log_det(bij.forward, x[None])[0], atol=1e-4)
    np.testing.assert_allclose(jax.jit(bij.inverse)(y), x, atol=1e-5)


def test_log_scale_is_bounded_per_layer():
    # A conditioner with huge outputs still scales each coordinate by at most exp(bound).
    bij = affine_coupling(jnp.array([True, False]), lambda z: jnp.full(z.shape + (2,), 1e4), 2.0)
    y, ld = bij.forward_and_log_det(jnp.array([0.5, 1.0]))
    np.testing.assert_allclose(ld, 2.0, rtol=1e-6)
    np.testing.assert_allclose(y, [0.5, np.exp(2.0) + 1e4], rtol=1e-6)
    assert isinstance(bij, distrax.MaskedCoupling)
