"""Benchmark: chain-steps per second of jgen's RWMH and MALA against blackjax and a NumPy loop.

Target: the quartic density `exp(-1/2 sum x^4 - 1/2 (sum x^2)^2)` in d = 10, float32, 1000 chains x 2000
steps, all samplers at the same step sizes (tuned once by jgen's dual averaging to 0.234 / 0.574
acceptance) from the same initial positions, every run storing all positions.

* jgen: `sample_chain` over `rwmh.build_kernel()` / `mala.build_kernel()` with the target passed at call
  time (scan over steps, vmap over chains inside the scan body, one random draw per chain-step, cached
  log-density and gradient), with the default `noise="fast"` source; `config.noise="jax"` measures the
  `jax.random` source instead.
* blackjax: `blackjax.normal_random_walk` / `blackjax.mala`, run the way blackjax's documentation runs many
  chains: `jax.jit` of a `lax.scan` whose body splits one key per chain and `vmap`s `step`; it stores the
  positions and `is_accepted` (for the acceptance rate), not the whole states.
* numpy: the same algorithms as a Python loop over steps, vectorised over chains (MALA with the analytic
  gradient, since NumPy has no autodiff).

Steady-state time is the median over interleaved repeats of an already compiled function; compile time is
the first call minus the steady-state time. `speedup_vs_<peer>_<alg>` = peer wall time / jgen wall time;
`speedup_cpu_vs_*` compares process CPU time (steadier on a shared machine), `speedup_best_vs_*` the fastest
repeats. The quick preset runs 1000 steps instead of 2000.

On this target random numbers dominate the cost of a step, and that is where jgen's kernels save: one bit
generator call per chain-step (no key split inside the kernel), Threefry-2x32 unrolled and using both output
words (JAX lowers it on CPU as a rolled loop and keeps one word per block), Box-Muller normals with a
polynomial sin/cos instead of the inverse erf, the MALA forward proposal term read off `|z|^2`, and draws
written straight into a `[chains, draws]` buffer.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jgen.experiment
from jgen import mcmc
from jgen.mcmc.targets import quartic_logdensity, quartic_moments

try:
    import blackjax
except ImportError:  # the peer is optional
    blackjax = None


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dim = 10
    c.num_chains = 1000
    c.num_steps = 2000 if preset == "full" else 1000
    c.repeats = 5 if preset == "full" else 3
    c.tune_steps = 1000
    c.numpy = True
    c.noise = "fast"  # jgen's noise source: "fast" (unrolled Threefry, Box-Muller) or "jax" (jax.random)
    return c


def _timed(fn, repeats_out: list, *args):
    """Calls `fn(*args)` to completion and appends `(wall seconds, process CPU seconds)`."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn(*args))
    repeats_out.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out


def _jgen_runner(kind, step_size, num_steps, num_chains, noise):
    module = mcmc.rwmh if kind == "rwmh" else mcmc.mala
    kernel = module.build_kernel(noise=noise)

    def run(key, x0):
        states = jax.vmap(lambda x: module.init(x, quartic_logdensity))(x0)
        out = mcmc.sample_chain(kernel, states, num_steps, key, logdensity_fn=quartic_logdensity,
                                num_chains=num_chains, step_size=step_size, progress=False)
        return out.samples, out.info_mean.is_accepted.mean()

    return run


def _blackjax_runner(kind, step_size, num_steps, num_chains):
    if kind == "rwmh":
        alg = blackjax.normal_random_walk(quartic_logdensity, step_size)
    else:
        alg = blackjax.mala(quartic_logdensity, step_size)

    @jax.jit
    def run(key, x0):
        states = jax.vmap(alg.init)(x0)

        def one_step(states, key):
            keys = jax.random.split(key, num_chains)
            states, info = jax.vmap(alg.step)(keys, states)
            return states, (states.position, info.is_accepted)

        _, (positions, accepted) = jax.lax.scan(one_step, states, jax.random.split(key, num_steps))
        return positions, accepted.mean()

    return run


def _numpy_logdensity(x):
    sq = x * x
    s = sq.sum(-1)
    return -0.5 * (sq * sq).sum(-1) - 0.5 * s * s


def _numpy_grad(x):
    sq = x * x
    return -2.0 * x * sq - 2.0 * sq.sum(-1, keepdims=True) * x


def _numpy_run(kind, step_size, num_steps, seed, x0):
    rng = np.random.default_rng(seed)
    x = np.array(x0, dtype=np.float32)
    h = np.float32(step_size)
    lp = _numpy_logdensity(x)
    grad = _numpy_grad(x) if kind == "mala" else None
    out = np.empty((num_steps,) + x.shape, np.float32)
    accepted = 0
    for t in range(num_steps):
        z = rng.standard_normal(x.shape, dtype=np.float32)
        log_u = np.log(rng.random(x.shape[0], dtype=np.float32))
        if kind == "rwmh":
            y = x + h * z
            lp_y = _numpy_logdensity(y)
            log_ratio = lp_y - lp
        else:
            y = x + h * grad + np.sqrt(2 * h) * z
            lp_y, grad_y = _numpy_logdensity(y), _numpy_grad(y)
            reverse = x - y - h * grad_y
            log_ratio = lp_y - lp - (reverse * reverse).sum(-1) / (4 * h) + 0.5 * (z * z).sum(-1)
        acc = log_u < np.nan_to_num(log_ratio, nan=-np.inf)
        x = np.where(acc[:, None], y, x)
        lp = np.where(acc, lp_y, lp)
        if kind == "mala":
            grad = np.where(acc[:, None], grad_y, grad)
        out[t] = x
        accepted += int(acc.sum())
    return out, accepted / (num_steps * x.shape[0])


def _tune(kind, dim, config, x0):
    module = mcmc.rwmh if kind == "rwmh" else mcmc.mala
    chains = min(64, config.num_chains)
    states = jax.vmap(lambda x: module.init(x, quartic_logdensity))(x0[:chains])
    out = mcmc.sample_chain(module.build_kernel(), states, 200, jax.random.key(config.seed + 1),
                            logdensity_fn=quartic_logdensity, num_chains=chains,
                            warmup=config.tune_steps, step_size=0.5 / np.sqrt(dim),
                            target_accept=module.TARGET_ACCEPTANCE, progress=False)
    return float(out.step_size)


def run(config, wd) -> dict[str, float]:
    dim, chains, steps = config.dim, config.num_chains, config.num_steps
    m2_exact = float(quartic_moments(dim, powers=(2,))[0])
    sd = float(np.sqrt(m2_exact))
    x0 = sd * jax.random.normal(jax.random.key(config.seed), (chains, dim), jnp.float32)
    metrics: dict[str, float] = {}
    rows = []
    print(f"devices: {jax.devices()}; {chains} chains x {steps} steps, d={dim}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    for kind in ("rwmh", "mala"):
        step_size = _tune(kind, dim, config, x0)
        metrics[f"step_size_{kind}"] = step_size
        runners = {"jgen": jax.jit(_jgen_runner(kind, step_size, steps, chains, config.noise))}
        if blackjax is not None:
            runners["blackjax"] = _blackjax_runner(kind, step_size, steps, chains)
        else:
            print("blackjax is not installed: skipping that peer")
        times = {name: [] for name in runners}
        first, accept, m2 = {}, {}, {}
        for name, fn in runners.items():
            once = []
            samples, acc = _timed(fn, once, jax.random.key(config.seed + 2), x0)
            first[name], accept[name] = once[0][0], float(acc)
            m2[name] = float(jnp.mean(jnp.square(samples)))
        for r in range(config.repeats):  # interleaved, so load changes hit every runner alike
            for name, fn in runners.items():
                _timed(fn, times[name], jax.random.key(config.seed + 3 + r), x0)
        if config.numpy:
            times["numpy"], first["numpy"] = [], None
            for r in range(max(1, config.repeats // 2)):
                samples, accept["numpy"] = _timed(lambda: _numpy_run(kind, step_size, steps, config.seed + r,
                                                                     np.asarray(x0)), times["numpy"])
                m2["numpy"] = float(np.mean(np.square(samples)))
        wall = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
        cpu = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
        best = {name: min(t[0] for t in ts) for name, ts in times.items()}
        for name in times:
            compile_s = None if first[name] is None else max(first[name] - wall[name], 0.0)
            rate = chains * steps / wall[name]
            rows.append({"algorithm": kind, "implementation": name, "step_size": step_size,
                         "acceptance": accept[name], "wall_s_median": wall[name], "wall_s_best": best[name],
                         "cpu_s_median": cpu[name], "compile_s": compile_s, "chain_steps_per_s": rate})
            metrics[f"chain_steps_per_s_{name}_{kind}"] = rate
            metrics[f"accept_{name}_{kind}"] = accept[name]
            # A sanity check that every implementation samples the target: E[x^2] against quadrature.
            metrics[f"m2_rel_err_{name}_{kind}"] = m2[name] / m2_exact - 1.0
            metrics[f"wall_s_{name}_{kind}"] = wall[name]
            metrics[f"cpu_s_{name}_{kind}"] = cpu[name]
            if compile_s is not None:
                metrics[f"compile_s_{name}_{kind}"] = compile_s
            if name != "jgen":
                metrics[f"speedup_vs_{name}_{kind}"] = wall[name] / wall["jgen"]
                metrics[f"speedup_best_vs_{name}_{kind}"] = best[name] / best["jgen"]
                metrics[f"speedup_cpu_vs_{name}_{kind}"] = cpu[name] / cpu["jgen"]
            print(f"{kind:5s} {name:9s} accept={accept[name]:.3f} E[x^2] err={m2[name] / m2_exact - 1:+.3f} "
                  f"wall={wall[name]:.3f}s (best {best[name]:.3f}s) "
                  f"cpu={cpu[name]:.3f}s compile={'-' if compile_s is None else f'{compile_s:.2f}'}s "
                  f"{rate / 1e6:.2f}M chain-steps/s")
    metrics["load_average"] = os.getloadavg()[0]
    wd.save_table("throughput", rows)
    return metrics


if __name__ == "__main__":
    jgen.experiment.main(get_config, run)
