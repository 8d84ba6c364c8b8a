"""Benchmark: training a RealNVP on moons, jgen (JAX, one lax.scan) against normflows (PyTorch).

The workload: "moons" (`jgen.data.toy2d`), N = 1500 training points, K = 4 affine coupling layers with
alternating masks (one-sided layers, as normflows counts them; `flows_toy2d` counts two per block),
conditioners MLP 2 x 64 (ReLU, last layer zero-initialised), batch 128 (11 steps per epoch, remainder
dropped, reshuffled every epoch), 500 epochs, Adam with learning rate 1e-3, standard normal
base. Both sides are timed end to end in this process, model construction and (for jgen) compilation
included, and scored by the NLL (nats) of the same 20,000 fresh test points. Each side trains `repeats`
times (seeds 0, 1, 2: the final NLL at a constant learning rate varies by ~0.1 nats between seeds) and
the metrics are medians (seconds) and means (NLL) over those runs.

* jgen: `jgen.flows.CouplingFlow` (distrax `MaskedCoupling` layers); the whole run, every epoch's
  permutation and all 5,500 Adam steps, is one jitted `lax.scan` (`fit_scan` below). Hidden biases start
  at N(0, 1) (`jgen.flows.MLP`), PyTorch's default spreads them uniformly; with zero biases the final NLL
  is ~0.08 nats worse.
* normflows (Stimper et al., 2023, JOSS): `nf.flows.AffineCouplingBlock` with `nf.nets.MLP([1, 64, 64, 2],
  init_zeros=True)` and a swap `nf.flows.Permute` after each block, the usual loop on CPU tensors with
  `torch.optim.Adam`. Its scale is `exp(s)`; jgen's is `exp(b tanh(s / b))` with b = 3.

Fairness: PyTorch gets `torch.set_num_threads(n)` with n the number of CPU cores XLA uses (2 here), and
the float32 data are the same arrays. `speedup_vs_normflows` = normflows seconds / jgen seconds. When
normflows (or torch) is not installed its side is skipped with a note. Install with
`pip install torch==2.13.0` (CPU wheel) and `pip install normflows --no-deps`.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import experiment, optim
from jgen.data import toy2d
from jgen.flows import CouplingFlow


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "moons"
    c.num_train = 1500
    c.num_test = 20000
    c.num_layers = 4
    c.hidden_sizes = (64, 64)
    c.batch_size = 128
    c.epochs = 500  # the same workload in both presets: it takes seconds
    c.optim = optim.optim_config(name="adam", learning_rate=1e-3)  # constant: torch.optim.Adam's default use
    c.log_scale_bound = 3.0
    c.repeats = 3  # training runs per library (seeds 0..repeats-1); NLLs vary by ~0.1 nats between seeds
    c.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return c


def fit_scan(flow, data: jax.Array, key: jax.Array, *, epochs: int, batch_size: int,
             optim_cfg: ml_collections.ConfigDict):
    """Trains `flow` by maximum likelihood: all epochs and steps in one `lax.scan`, reshuffled per epoch.

    The benchmark's own loop rather than `jgen.train.fit`: the whole run is a single compiled call, the
    fastest a JAX flow trains, which is what is compared with PyTorch.

    Returns:
      (params, per-epoch mean training NLL [epochs]).
    """
    n = data.shape[0]
    steps = n // batch_size
    tx = optim.make_optimizer(optim_cfg, epochs * steps)
    init_key, perm_key = jax.random.split(key)

    @jax.jit
    def run(data, init_key, perm_key):
        params = flow.init(init_key, data[:1])
        nll = lambda p, x: -jnp.mean(flow.apply(p, x))

        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(nll)(params, data[idx])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        def epoch(carry, k):
            batches = jax.random.permutation(k, n)[:steps * batch_size].reshape(steps, batch_size)
            carry, losses = jax.lax.scan(step, carry, batches)
            return carry, jnp.mean(losses)

        (params, _), losses = jax.lax.scan(epoch, (params, tx.init(params)), jax.random.split(perm_key, epochs))
        return params, losses

    return run(data, init_key, perm_key)


def _jgen(config, train_x: np.ndarray, test_x: np.ndarray, seed: int) -> dict[str, float]:
    t0 = time.perf_counter()
    flow = CouplingFlow(event_shape=(2,), num_layers=config.num_layers, hidden_sizes=tuple(config.hidden_sizes),
                        log_scale_bound=config.log_scale_bound)
    params, losses = fit_scan(flow, jnp.asarray(train_x), jax.random.key(seed), epochs=config.epochs,
                              batch_size=config.batch_size, optim_cfg=config.optim)
    jax.block_until_ready(params)
    seconds = time.perf_counter() - t0
    nll = -float(jnp.mean(jax.jit(flow.apply)(params, jnp.asarray(test_x))))
    return {"seconds": seconds, "nll": nll, "final_train_nll": float(losses[-1])}


def _normflows(config, train_x: np.ndarray, test_x: np.ndarray, seed: int) -> dict[str, float]:
    import normflows as nf
    import torch

    torch.set_num_threads(config.threads)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    flows = []
    for _ in range(config.num_layers):
        flows.append(nf.flows.AffineCouplingBlock(nf.nets.MLP([1, *config.hidden_sizes, 2], init_zeros=True)))
        flows.append(nf.flows.Permute(2, mode="swap"))
    model = nf.NormalizingFlow(nf.distributions.DiagGaussian(2, trainable=False), flows)
    if config.optim.name != "adam" or config.optim.schedule != "constant" or config.optim.clip_grad_norm:
        raise experiment.ConfigError("the normflows side runs torch.optim.Adam at a constant learning rate; "
                                     "keep config.optim.name=adam, schedule=constant and no clipping.")
    opt = torch.optim.Adam(model.parameters(), lr=config.optim.learning_rate,
                           betas=(config.optim.b1, config.optim.b2), eps=config.optim.eps)
    data = torch.from_numpy(train_x)
    n, bs = len(train_x), config.batch_size
    losses = []
    for _ in range(config.epochs):
        perm = torch.randperm(n)
        total = 0.0
        for i in range(n // bs):
            loss = model.forward_kld(data[perm[i * bs:(i + 1) * bs]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / (n // bs))
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        nll = -float(model.log_prob(torch.from_numpy(test_x)).mean())
    return {"seconds": seconds, "nll": nll, "final_train_nll": losses[-1]}


def _summary(name: str, rows: list[dict]) -> dict[str, float]:
    """Median wall seconds per training run (compilation included; the median resists a run slowed down
    by other work on a shared machine) and mean test / final train NLL over seeds."""
    return {f"seconds_{name}": float(np.median([r["seconds"] for r in rows])),
            f"nll_{name}": float(np.mean([r["nll"] for r in rows])),
            f"nll_{name}_std": float(np.std([r["nll"] for r in rows])),
            f"train_nll_{name}": float(np.mean([r["final_train_nll"] for r in rows]))}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    k_train, k_test = jax.random.split(jax.random.key(config.seed))
    train_x = np.asarray(toy2d.sample(config.dataset, k_train, config.num_train), np.float32)
    test_x = np.asarray(toy2d.sample(config.dataset, k_test, config.num_test), np.float32)
    test_entropy = -float(jnp.mean(toy2d.log_prob(config.dataset, jnp.asarray(test_x))))

    seeds = [config.seed + r for r in range(config.repeats)]
    rows = [{"library": "jgen (JAX, lax.scan)", "seed": sd, **_jgen(config, train_x, test_x, sd)} for sd in seeds]
    metrics = {"test_entropy": test_entropy, "threads": config.threads, **_summary("jgen", rows)}
    try:
        import normflows  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        print(f"normflows side skipped ({e}); install torch==2.13.0 and normflows --no-deps to compare.")
        metrics["has_normflows"] = 0
    else:
        peer = [{"library": f"normflows (PyTorch CPU, {config.threads} threads)", "seed": sd,
                 **_normflows(config, train_x, test_x, sd)} for sd in seeds]
        rows += peer
        metrics.update({"has_normflows": 1, **_summary("normflows", peer)})
        metrics["speedup_vs_normflows"] = metrics["seconds_normflows"] / metrics["seconds_jgen"]
        print(f"jgen {metrics['seconds_jgen']:.2f} s (NLL {metrics['nll_jgen']:.4f}) vs normflows "
              f"{metrics['seconds_normflows']:.2f} s (NLL {metrics['nll_normflows']:.4f}); median time, "
              f"mean NLL over {config.repeats} seeds: speedup {metrics['speedup_vs_normflows']:.2f}x")
    wd.save_table("timings", rows)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
