"""Markov chain Monte Carlo: kernels with one contract, chains, adaptation and diagnostics.

Kernels (one module each, blackjax-style): `rwmh` (random-walk Metropolis-Hastings), `mala` (Metropolis-
adjusted Langevin), `sgld` (stochastic gradient Langevin dynamics), `ula` (unadjusted Langevin with gradient
clipping). Each has `init`, `build_kernel(...) -> kernel(rng_key, state, step_size)` and
`sampler(..., step_size) -> SamplingAlgorithm(init, step)` with `step(rng_key, state) -> (state, info)`.

    >>> from jgen import mcmc
    >>> kernel = mcmc.mala.build_kernel(logdensity_fn)
    >>> states = jax.vmap(lambda x: mcmc.mala.init(x, logdensity_fn))(positions)   # [chains, d]
    >>> out = mcmc.sample_chain(kernel, states, 2000, key, num_chains=8, warmup=500, step_size=0.1,
    ...                         target_accept=mcmc.mala.TARGET_ACCEPTANCE)
    >>> mcmc.diagnostics.rhat(out.samples), mcmc.diagnostics.effective_sample_size(out.samples)
"""

from jgen.mcmc import adaptation, diagnostics, mala, rwmh, sgld, targets, ula
from jgen.mcmc.base import SamplingAlgorithm
from jgen.mcmc.chain import ChainResult, sample_chain
from jgen.mcmc.diagnostics import autocorrelation, effective_sample_size, mcse_mean, rhat

__all__ = ["rwmh", "mala", "sgld", "ula", "adaptation", "diagnostics", "targets", "SamplingAlgorithm",
           "ChainResult", "sample_chain", "autocorrelation", "effective_sample_size", "mcse_mean", "rhat"]
