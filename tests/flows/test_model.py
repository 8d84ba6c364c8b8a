"""Tests for the flow models: identity at init, whole-flow log-det vs jax.jacfwd, round trips, scan == unrolled."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.flows import ScanChain
from tests.flows.helpers import init_flow, jacobian_log_det, points


@pytest.mark.parametrize("name", ["coupling", "maf_scan_random", "image_conv", "spline", "image_spline"])
def test_fresh_flow_is_identity(name):
    flow, params = init_flow(name)
    x = points(flow, 8)
    run = jax.jit(lambda p, v: (flow.apply(p, v, method="forward_and_log_det"), flow.apply(p, v)))
    (y, ld), log_p = run(params, x)
    # Affine layers are exactly the identity; splines up to float rounding of their knots.
    np.testing.assert_allclose(y, x, atol=1e-5)
    np.testing.assert_allclose(ld, 0.0, atol=1e-5)
    expected = stats.norm.logpdf(np.asarray(x)).reshape(8, -1).sum(-1)
    np.testing.assert_allclose(log_p, expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["coupling", "maf_scan_random", "image_conv", "spline", "image_spline"])
def test_whole_flow_log_det_matches_jacfwd_and_round_trips(name):
    flow, params = init_flow(name, perturbation=0.2)
    x = points(flow, 3)

    @jax.jit
    def run(p, v):
        y, ld_fwd = flow.apply(p, v, method="forward_and_log_det")
        x_rec, ld_inv = flow.apply(p, y, method="inverse_and_log_det")
        fn = lambda u: flow.apply(p, u[None], method="forward_and_log_det")[0][0]
        z, ld_x = flow.apply(p, v, method="inverse_and_log_det")
        return x_rec, ld_fwd, ld_inv, jacobian_log_det(fn, v), z, ld_x, flow.apply(p, v)

    x_rec, ld_fwd, ld_inv, ld_jac, z, ld_x, log_p = run(params, x)
    np.testing.assert_allclose(x_rec, x, atol=1e-5)
    np.testing.assert_allclose(ld_fwd, -ld_inv, atol=1e-5)
    np.testing.assert_allclose(ld_fwd, ld_jac, atol=1e-4)
    # log_prob is the change of variables through the inverse.
    base = stats.norm.logpdf(np.asarray(z)).reshape(len(x), -1).sum(-1)
    np.testing.assert_allclose(log_p, base + ld_x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["coupling_scan", "spline"])
def test_round_trip_float64(name):
    with jax.enable_x64(True):
        flow, params = init_flow(name, perturbation=0.2, dtype=jnp.float64)
        x = points(flow, 16, dtype=jnp.float64)
        rt = jax.jit(lambda p, v: flow.apply(p, flow.apply(p, v, method="inverse_and_log_det")[0],
                                             method="forward_and_log_det")[0])
        out = rt(params, x)
        assert out.dtype == jnp.float64
        np.testing.assert_allclose(out, x, atol=1e-10)


@pytest.mark.parametrize("kind", ["coupling", "maf", "spline"])
def test_scan_layers_equals_unrolled_chain(kind):
    flow, params = init_flow(kind, perturbation=0.2)
    scanned = flow.clone(scan_layers=True)
    x = points(flow, 5)

    @jax.jit
    def run(p, v, key):
        return [(f.apply(p, v), f.apply(p, key, 5, method="sample_each_layer")) for f in (flow, scanned)]

    (lp_a, each_a), (lp_b, each_b) = run(params, x, jax.random.key(3))
    np.testing.assert_allclose(lp_a, lp_b, rtol=1e-5, atol=1e-5)
    for u, v in zip(each_a, each_b):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5)
    assert isinstance(scanned.apply(params, method="bijector"), ScanChain)
