"""Markov chain Monte Carlo: kernels with one contract, chains, adaptation and diagnostics.

Kernels (one module each, blackjax-style): `rwmh` (random-walk Metropolis-Hastings), `mala` (Metropolis-
adjusted Langevin), `ula` (unadjusted Langevin with gradient clipping), `sgld` (stochastic gradient Langevin
dynamics, on a minibatch gradient estimator). Each has `init(position, logdensity_fn)` and
`build_kernel(**options)`, whose kernel takes the target at call time:
`kernel(rng_key, state, logdensity_fn, step_size) -> (state, info)` (SGLD: a gradient estimator and a
minibatch instead of `logdensity_fn`). `as_sampler(module, logdensity_fn, step_size)` binds them into
`SamplingAlgorithm(init, step)`. Proposal noise is pluggable (`noise="fast"` or `"jax"`, `jgen.mcmc.base`).

    >>> from jgen import mcmc
    >>> kernel = mcmc.mala.build_kernel()
    >>> states = jax.vmap(lambda x: mcmc.mala.init(x, logdensity_fn))(positions)   # [chains, d]
    >>> out = mcmc.sample_chain(kernel, states, 2000, key, logdensity_fn=logdensity_fn, num_chains=8,
    ...                         warmup=500, step_size=0.1, target_accept=mcmc.mala.TARGET_ACCEPTANCE)
    >>> mcmc.diagnostics.rhat(out.samples), mcmc.diagnostics.effective_sample_size(out.samples)
"""

from jgen.mcmc import adaptation, diagnostics, mala, rwmh, sgld, targets, ula
from jgen.mcmc.base import SamplingAlgorithm, as_sampler
from jgen.mcmc.chain import ChainResult, sample_chain
from jgen.mcmc.diagnostics import autocorrelation, effective_sample_size, mcse_mean, rhat

__all__ = ["rwmh", "mala", "sgld", "ula", "adaptation", "diagnostics", "targets", "SamplingAlgorithm",
           "as_sampler", "ChainResult", "sample_chain", "autocorrelation", "effective_sample_size", "mcse_mean",
           "rhat"]
