"""Every kernel of the registry (helpers.KERNELS): the target is passed at call time, bad inputs refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import Partial

from jgen import mcmc
from jgen.mcmc import sgld

from .helpers import KERNELS

#: Step sizes that suit N(mu, 0.3^2 I) in two dimensions.
STEP_SIZES = {"rwmh": 0.3, "mala": 0.02, "ula": 0.01}


def neg_energy(params, x, traces):
    traces.append(1)  # runs once per trace, not per call
    return -0.5 * jnp.sum(((x - params["mu"]) / params["sigma"]) ** 2)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_a_target_that_changes_every_call_compiles_once(name):
    """100 chain calls, each with new energy parameters (as an EBM's sampler in training): one trace, and the
    persistent chains follow the moving target."""
    module, options = KERNELS[name]
    kernel, traces = module.build_kernel(**options), []
    init = jax.jit(jax.vmap(module.init, in_axes=(0, None)))  # re-init: the cached log-density goes stale
    positions = jnp.zeros((16, 2))
    counts = []
    for i in range(100):
        params = {"mu": jnp.full(2, 0.03 * (i + 1)), "sigma": jnp.float32(0.3)}
        logdensity_fn = Partial(neg_energy, params, traces=traces)
        out = mcmc.sample_chain(kernel, init(positions, logdensity_fn), 10, jax.random.key(i),
                                logdensity_fn=logdensity_fn, num_chains=16, step_size=STEP_SIZES[name],
                                progress=False)
        positions = out.final_state.position
        counts.append(len(traces))
    assert counts[-1] == counts[0], f"{name}: the target was traced again after the first call: {counts[:5]}..."
    np.testing.assert_allclose(np.asarray(positions).mean(0), 3.0, atol=0.3)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_low_level_kernel_refuses_a_zero_step_size(name):
    module, options = KERNELS[name]
    logdensity = lambda x: -0.5 * jnp.sum(x**2)  # noqa: E731
    state = module.init(jnp.zeros(2), logdensity)
    kernel = module.build_kernel(**options)
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="step_size must be a positive"):
            kernel(jax.random.key(0), state, logdensity, bad)


def test_sgld_kernel_refuses_a_zero_step_size():
    kernel = sgld.build_kernel()
    with pytest.raises(ValueError, match="step_size must be a positive"):
        kernel(jax.random.key(0), sgld.init(jnp.zeros(2)), lambda x, b: -x, jnp.zeros((3, 2)), 0.0)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_nonfinite_log_density_at_every_initial_position_is_refused(name):
    module, options = KERNELS[name]

    def logdensity(x):
        return jnp.sum(jnp.log(x))  # NaN for negative coordinates

    kernel = module.build_kernel(**options)
    positions = -jnp.ones((4, 2))
    init = jax.jit(jax.vmap(lambda x: module.init(x, logdensity)))
    states = init(positions)
    with pytest.raises(ValueError, match="not finite at any initial position .4 chain"):
        mcmc.sample_chain(kernel, states, 5, jax.random.key(0), logdensity_fn=logdensity, num_chains=4,
                          step_size=0.01, progress=False)
    with pytest.raises(ValueError, match="not finite at any initial position .1 chain"):
        mcmc.sample_chain(kernel, jax.tree.map(lambda s: s[0], states), 5, jax.random.key(0),
                          logdensity_fn=logdensity, step_size=0.01, progress=False)
    if name in ("rwmh", "ula"):  # one chain in the support is enough, with a cached or an evaluated log-density
        out = mcmc.sample_chain(kernel, init(positions.at[0].set(1.0)), 5, jax.random.key(0),
                                logdensity_fn=logdensity, num_chains=4, step_size=0.01, progress=False)
        assert np.all(np.isfinite(np.asarray(out.samples[0])))
