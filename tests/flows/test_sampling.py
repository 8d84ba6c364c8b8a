"""Tests for flow sampling: per-layer samples, the density on the plotting grid, and errors on bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen import viz
from jgen.flows import MAF, CouplingFlow
from tests.flows.helpers import init_flow


@pytest.mark.parametrize("name", ["coupling", "maf"])
def test_sample_each_layer(name):
    flow, params = init_flow(name, perturbation=0.2)

    @jax.jit
    def run(p, key):
        each = flow.apply(p, key, 7, method="sample_each_layer")
        first_layer = flow.apply(p, method="layers")[0]
        return each, flow.apply(p, key, 7, method="sample"), first_layer.forward(each[0])

    each, samples, after_first = run(params, jax.random.key(4))
    assert len(each) == flow.num_layers + 1
    assert all(a.shape == (7,) + tuple(flow.event_shape) for a in each)
    np.testing.assert_allclose(each[-1], samples, atol=1e-5)
    np.testing.assert_allclose(each[1], after_first, atol=1e-6)
    # The first panel is the prior: standard normal draws, not yet transformed.
    assert np.abs(np.asarray(each[0]) - np.asarray(each[-1])).max() > 1e-3


def test_density_on_the_plotting_grid_integrates_to_one():
    flow, params = init_flow("coupling", perturbation=0.1)
    log_prob = jax.jit(lambda pts: flow.apply(params, pts))
    xs, ys, log_p = viz.density_grid(log_prob, (-9.0, 9.0), (-8.0, 8.0), 241)  # what the figures draw
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    np.testing.assert_allclose(np.exp(log_p).sum() * cell, 1.0, atol=0.01)
    # Row i, column j is the point (xs[j], ys[i]).
    point = jnp.array([[xs[17], ys[200]]], jnp.float32)
    np.testing.assert_allclose(log_p[200, 17], flow.apply(params, point)[0], rtol=1e-5)


def test_bad_inputs_raise():
    flow, params = init_flow("coupling")
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        flow.apply(params, jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="mlp' or 'conv"):
        CouplingFlow(event_shape=(2,), conditioner="rnn").init(jax.random.key(0), jnp.zeros((1, 2)))
    with pytest.raises(ValueError, match="Flatten images"):
        MAF(event_shape=(2, 2, 1)).init(jax.random.key(0), jnp.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="num_layers"):
        CouplingFlow(event_shape=(2,), num_layers=0).init(jax.random.key(0), jnp.zeros((1, 2)))
