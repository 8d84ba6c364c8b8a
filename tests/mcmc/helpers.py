"""Shared targets and checks for the MCMC tests."""

import jax
import jax.numpy as jnp
import numpy as np

from jgen import mcmc
from jgen.mcmc.targets import quartic_moments

MU = np.array([1.0, -2.0, 0.5], np.float32)
SIGMA = np.array([0.5, 1.0, 2.0], np.float32)


def gaussian_logdensity(x):
    """N(MU, diag(SIGMA^2)), unnormalised."""
    return -0.5 * jnp.sum(((x - MU) / SIGMA) ** 2)


def init_batch(module, logdensity_fn, positions):
    return jax.vmap(lambda x: module.init(x, logdensity_fn))(positions)


def assert_within_mcse(samples_fx, expected, num_se=4.0, what=""):
    """Asserts the chain average of `samples_fx` [chains, draws, ...] is within `num_se` MCSEs of `expected`."""
    samples_fx = np.asarray(samples_fx, np.float64)
    estimate = samples_fx.mean(axis=(0, 1))
    mcse = mcmc.mcse_mean(samples_fx)
    err = np.abs(estimate - expected)
    assert np.all(err < num_se * mcse), f"{what}: estimate {estimate} vs {expected}, error {err}, MCSE {mcse}"


def assert_quartic_chains(samples, dim):
    """Chains `samples` [chains, draws, dim] on the quartic target: E[x^2], E[x^4] within 4 MCSEs of the
    exact moments, and split R-hat below 1.05 in every coordinate."""
    x = np.asarray(samples, np.float64)
    m2, m4 = quartic_moments(dim)
    assert_within_mcse(x**2, m2, what=f"E[x^2], d={dim}")
    assert_within_mcse(x**4, m4, what=f"E[x^4], d={dim}")
    assert np.all(mcmc.rhat(x) < 1.05)


#: Every kernel whose target is a log-density passed at call time: name -> (module, build_kernel options).
#: A generic test over this registry covers each (add a kernel: one line).
KERNELS = {"rwmh": (mcmc.rwmh, {}), "mala": (mcmc.mala, {}), "ula": (mcmc.ula, {"clip_norm": 100.0})}
