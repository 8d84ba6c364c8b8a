"""Tests for MADE masks/causality and the MAF/IAF bijectors (round trips, jax.jacfwd log-dets)."""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.flows import MADE, MaskedAutoregressive, inverse_autoregressive, made_degrees, made_masks
from tests.flows.helpers import jacobian_log_det, perturb

D = 5
HIDDEN = (16, 16)


def _made(key, order, hidden_degrees="natural", dtype=jnp.float32, scale=0.3):
    masks = tuple(jnp.asarray(m) for m in made_masks(order, HIDDEN, hidden_degrees=hidden_degrees,
                                                      rng=np.random.default_rng(0)))
    net = MADE(HIDDEN, zero_init_last=False)
    params = perturb(net.init(key, jnp.zeros((1, len(order))), masks)["params"], key, scale, dtype)
    return lambda x: net.apply({"params": params}, x, masks)


def _maf(key, order=tuple(range(D)), dtype=jnp.float32):
    return MaskedAutoregressive(_made(key, order, dtype=dtype), log_scale_bound=2.0)


def test_made_degrees_natural_and_random():
    degrees = made_degrees([2, 0, 1], (4,), hidden_degrees="natural")
    np.testing.assert_array_equal(degrees[0], [3, 1, 2])
    np.testing.assert_array_equal(degrees[1], [1, 2, 1, 2])
    rnd = made_degrees(list(range(6)), (50, 50), hidden_degrees="random", rng=np.random.default_rng(1))
    for m in rnd[1:]:
        assert m.min() >= 1 and m.max() <= 5
    assert rnd[2].min() >= rnd[1].min()


@pytest.mark.parametrize("order,hidden_degrees", [
    (tuple(range(D)), "natural"), (tuple(range(D))[::-1], "natural"), ((3, 0, 4, 1, 2), "random")])
def test_made_output_depends_only_on_earlier_inputs(order, hidden_degrees):
    made = _made(jax.random.key(0), order, hidden_degrees)
    x = jax.random.normal(jax.random.key(1), (D,))
    jac = jax.jit(jax.jacfwd(made))(x)  # [D_out, 2, D_in]
    rank = np.asarray(order)
    earlier = rank[None, :] < rank[:, None]  # [out, in]: input strictly before output
    for p in range(2):
        np.testing.assert_array_equal(np.asarray(jac[:, p, :])[~earlier], 0.0)
        if hidden_degrees == "natural":  # natural degrees connect every earlier input
            assert np.all(np.abs(np.asarray(jac[:, p, :])[earlier]) > 0)


def test_made_bad_arguments_raise():
    with pytest.raises(ValueError, match="permutation"):
        made_masks([0, 0, 1], (4,))
    with pytest.raises(ValueError, match="natural' or 'random"):
        made_masks([0, 1], (4,), hidden_degrees="sorted")
    with pytest.raises(ValueError, match="Generator"):
        made_masks([0, 1], (4,), hidden_degrees="random")
    with pytest.raises(ValueError, match="3 masks"):
        MADE((4, 4)).init(jax.random.key(0), jnp.zeros((1, 2)), (jnp.ones((2, 4)),))


@pytest.mark.parametrize("order", [tuple(range(D)), (3, 0, 4, 1, 2)])
def test_maf_round_trip_float32(order):
    maf = _maf(jax.random.key(2), order)
    x = jax.random.normal(jax.random.key(3), (32, D))
    z, ld_inv = jax.jit(maf.inverse_and_log_det)(x)
    x_rec, ld_fwd = jax.jit(maf.forward_and_log_det)(z)
    np.testing.assert_allclose(x_rec, x, atol=1e-5)
    np.testing.assert_allclose(ld_fwd, -ld_inv, atol=1e-5)


def test_maf_round_trip_float64():
    with jax.enable_x64(True):
        maf = _maf(jax.random.key(2), (3, 0, 4, 1, 2), dtype=jnp.float64)
        z = jax.random.normal(jax.random.key(3), (32, D), jnp.float64)
        z_rec = jax.jit(lambda v: maf.inverse(maf.forward(v)))(z)
        assert z_rec.dtype == jnp.float64
        np.testing.assert_allclose(z_rec, z, atol=1e-10)


def test_maf_log_dets_match_jacfwd_and_jacobian_is_triangular():
    order = (3, 0, 4, 1, 2)
    maf = _maf(jax.random.key(4), order)
    xs = jax.random.normal(jax.random.key(5), (2, D))
    inv = jax.jit(maf.inverse_log_det_jacobian)(xs)
    fwd = jax.jit(maf.forward_log_det_jacobian)(xs)
    np.testing.assert_allclose(inv, jacobian_log_det(maf.inverse, xs), atol=1e-4)
    np.testing.assert_allclose(fwd, jacobian_log_det(maf.forward, xs), atol=1e-4)
    jac = np.asarray(jax.jit(jax.jacfwd(maf.inverse))(xs[0]))
    rank = np.asarray(order)
    np.testing.assert_array_equal(jac[rank[None, :] > rank[:, None]], 0.0)


def test_iaf_is_the_inverse_of_maf():
    conditioner = _made(jax.random.key(6), tuple(range(D)))
    maf, iaf = MaskedAutoregressive(conditioner), inverse_autoregressive(conditioner)
    assert isinstance(iaf, distrax.Inverse)
    z = jax.random.normal(jax.random.key(7), (16, D))
    x, ld = jax.jit(iaf.forward_and_log_det)(z)
    x_maf, ld_maf = jax.jit(maf.inverse_and_log_det)(z)
    np.testing.assert_allclose(x, x_maf, atol=1e-6)
    np.testing.assert_allclose(ld, ld_maf, atol=1e-6)
    np.testing.assert_allclose(jax.jit(iaf.inverse)(x), z, atol=1e-5)
    np.testing.assert_allclose(ld[0], jacobian_log_det(iaf.forward, z[:1])[0], atol=1e-4)


def test_maf_bad_conditioner_output_raises():
    maf = MaskedAutoregressive(lambda x: jnp.zeros(x.shape))
    with pytest.raises(ValueError, match=r"\[\.\.\., D, 2\]"):
        maf.inverse(jnp.zeros((3, D)))
    with pytest.raises(ValueError, match="positive"):
        MaskedAutoregressive(lambda x: x, log_scale_bound=-1.0)
