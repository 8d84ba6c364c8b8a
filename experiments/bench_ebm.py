"""Benchmark: Langevin steps/s and CD training iterations/s of jgen's EBM against a PyTorch twin.

Both sides run the USPS energy CNN of `experiments.ebm_usps` (`jgen.ebm.ConvEnergy`; the twin is the same
layers in `torch.nn` with the same weights, checked by `twin_energy_max_abs_diff`) on `num_chains` chains of
16x16 images, float32, on the CPU, in one process.

* jgen: `jgen.ebm.langevin` (one compiled `lax.scan` over steps, `vmap` over chains, the `jgen.mcmc.ula`
  kernel) and one jitted `jgen.ebm.make_step` (buffer pick, Langevin, CD loss, Adam b1 = 0 with clipping,
  buffer write-back).
* torch: the loop of the widely copied UvA tutorial on EBMs, a Python `for` over steps with
  `torch.autograd.grad` of the summed energy per step (noise, clamp, clipped gradient step, clamp), and its
  training iteration (95% of the chains drawn from the buffer, 5% fresh noise, the same loss, Adam with
  betas (0, 0.999), `clip_grad_norm_`).

`langevin_speedup_vs_torch` and `train_speedup_vs_torch` are torch's median wall time over jgen's, both
measured after warm-up, repeats interleaved. Without PyTorch the torch rows are skipped (metric
`torch_available` = 0).
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import ebm, experiment, optim

try:
    import torch
except ImportError:  # the peer is optional
    torch = None


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_chains = 128
    c.langevin_steps = 60
    c.train_langevin_steps = 60
    c.buffer_size = 8192
    c.channels = (16, 32, 64)
    c.hidden = 64
    c.repeats = 5 if preset == "full" else 3
    c.train_iters = 5 if preset == "full" else 2  # training iterations per timed repeat
    c.optim = optim.optim_config(name="adam", learning_rate=1e-4, b1=0.0, clip_grad_norm=0.1)
    return c


def _median_seconds(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall seconds of each `fn()` (already warmed up), repeats interleaved across the functions."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def _torch_twin(params, channels, hidden):
    """The ConvEnergy as torch.nn layers with the same weights (NCHW; the dense rows permuted from NHWC)."""
    p = params["params"]
    layers, in_ch = [], 1
    for i, ch in enumerate(channels):
        conv = torch.nn.Conv2d(in_ch, ch, 3, stride=2, padding=1)
        conv.weight.data = torch.from_numpy(np.asarray(p[f"Conv_{i}"]["kernel"]).transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(np.asarray(p[f"Conv_{i}"]["bias"]).copy())
        layers += [conv, torch.nn.SiLU()]
        in_ch = ch
    side = 16 // 2 ** len(channels)
    kernel = np.asarray(p["Dense_0"]["kernel"]).reshape(side, side, in_ch, hidden).transpose(2, 0, 1, 3)
    dense = torch.nn.Linear(in_ch * side * side, hidden)
    dense.weight.data = torch.from_numpy(kernel.reshape(-1, hidden).T.copy())
    dense.bias.data = torch.from_numpy(np.asarray(p["Dense_0"]["bias"]).copy())
    out = torch.nn.Linear(hidden, 1)
    out.weight.data = torch.from_numpy(np.asarray(p["Dense_1"]["kernel"]).T.copy())
    out.bias.data = torch.from_numpy(np.asarray(p["Dense_1"]["bias"]).copy())
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), dense, torch.nn.SiLU(), out)


def _torch_langevin(net, x, steps, step_size=10.0, noise=0.005, clip=0.03):
    """The tutorial's sampler: per step noise, clamp, autograd.grad of the summed energy, clipped step, clamp."""
    for p in net.parameters():
        p.requires_grad_(False)
    for _ in range(steps):
        x = (x + noise * torch.randn_like(x)).clamp_(-1.0, 1.0).requires_grad_(True)
        (grad,) = torch.autograd.grad(net(x).sum(), x)
        x = (x - step_size * grad.clamp(-clip, clip)).clamp_(-1.0, 1.0).detach()
    for p in net.parameters():
        p.requires_grad_(True)
    return x


def _torch_train_iter(net, opt, buffer, real, steps, alpha=0.1, clip_norm=0.1):
    n = real.shape[0]
    fresh = int(np.random.binomial(n, 0.05))
    idx = torch.randint(0, buffer.shape[0], (n - fresh,))
    x0 = torch.cat([torch.rand(fresh, *buffer.shape[1:]) * 2 - 1, buffer[idx]])
    fake = _torch_langevin(net, x0, steps)
    e = net(torch.cat([real, fake]))[:, 0]
    e_real, e_fake = e[:n], e[n:]
    loss = e_real.mean() - e_fake.mean() + alpha * (e_real.pow(2).mean() + e_fake.pow(2).mean())
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), clip_norm)
    opt.step()
    return torch.cat([fake, buffer])[:buffer.shape[0]]


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    model = ebm.ConvEnergy(channels=tuple(config.channels), hidden=config.hidden)
    k_init, k_x, k_chain, k_state, k_buffer = jax.random.split(jax.random.key(config.seed), 5)
    params = model.init(k_init, jnp.zeros((1, 16, 16, 1)))
    x0 = jax.random.uniform(k_x, (config.num_chains, 16, 16, 1), minval=-1.0, maxval=1.0)
    sampler = ebm.LangevinConfig(num_steps=config.langevin_steps)
    jax.block_until_ready(ebm.langevin(model.apply, params, x0, k_chain, sampler))  # compile

    tx = optim.make_optimizer(config.optim, 1000)
    state = ebm.create_state(params, tx, k_state, ebm.init_buffer(k_buffer, config.buffer_size, (16, 16, 1)))
    step = jax.jit(ebm.make_step(model.apply, tx, langevin_config=ebm.LangevinConfig(
        num_steps=config.train_langevin_steps), alpha=0.1))
    real = jnp.asarray(np.random.default_rng(config.seed).uniform(-1, 1, (config.num_chains, 16, 16, 1)), jnp.float32)
    holder = {"state": jax.block_until_ready(step(state, real)[0])}

    def jax_train():
        s = holder["state"]
        for _ in range(config.train_iters):
            s, _ = step(s, real)
        holder["state"] = jax.block_until_ready(s)

    fns = {"langevin_jgen": lambda: jax.block_until_ready(ebm.langevin(model.apply, params, x0, k_chain, sampler)),
           "train_jgen": jax_train}
    metrics: dict[str, float] = {"torch_available": float(torch is not None), "num_chains": config.num_chains}
    if torch is not None:
        torch.manual_seed(config.seed)
        net = _torch_twin(params, config.channels, config.hidden)
        x_t = torch.from_numpy(np.asarray(x0).transpose(0, 3, 1, 2).copy())
        with torch.no_grad():
            diff = np.abs(net(x_t)[:, 0].numpy() - np.asarray(model.apply(params, x0)))
        metrics["twin_energy_max_abs_diff"] = float(diff.max())
        opt = torch.optim.Adam(net.parameters(), lr=config.optim.learning_rate, betas=(0.0, 0.999))
        t_buffer = {"buffer": torch.rand(config.buffer_size, 1, 16, 16) * 2 - 1}
        real_t = torch.from_numpy(np.asarray(real).transpose(0, 3, 1, 2).copy())

        def torch_train():
            for _ in range(config.train_iters):
                t_buffer["buffer"] = _torch_train_iter(net, opt, t_buffer["buffer"], real_t, config.train_langevin_steps)

        fns["langevin_torch"] = lambda: _torch_langevin(net, x_t, config.langevin_steps)
        fns["train_torch"] = torch_train
        fns["langevin_torch"]()  # warm-up
        _torch_train_iter(net, opt, t_buffer["buffer"], real_t, 2)
    seconds = _median_seconds(fns, config.repeats)
    rows = []
    for impl in ("jgen", "torch"):
        if f"langevin_{impl}" not in seconds:
            continue
        metrics[f"langevin_steps_per_s_{impl}"] = config.langevin_steps / seconds[f"langevin_{impl}"]
        metrics[f"train_iters_per_s_{impl}"] = config.train_iters / seconds[f"train_{impl}"]
        rows.append({"implementation": impl, "langevin_steps_per_s": metrics[f"langevin_steps_per_s_{impl}"],
                     "train_iters_per_s": metrics[f"train_iters_per_s_{impl}"]})
    if torch is not None:
        metrics["langevin_speedup_vs_torch"] = seconds["langevin_torch"] / seconds["langevin_jgen"]
        metrics["train_speedup_vs_torch"] = seconds["train_torch"] / seconds["train_jgen"]
    wd.save_table("throughput", rows)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
