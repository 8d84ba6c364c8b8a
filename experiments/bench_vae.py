"""Benchmark: training images/s of the MNIST conv VAE, jgen (JAX/Flax) against a PyTorch twin.

The workload: `jgen.vae` conv VAE on 28x28 binarised digits (encoder: two 4x4 stride-2 convolutions with
32 and 64 channels, ReLU, a dense layer to the mean and log-variance of a 16-d Gaussian; decoder: a dense
projection to 7x7x64 and two 4x4 stride-2 transposed convolutions to Bernoulli logits), batch 128, Adam
(learning rate 1e-3), the negative ELBO with closed-form KL. Both sides train on the same pre-binarised
batches (the input pipeline is not timed) and are timed in this process, interleaved, after compilation
and warm-up; each number is the median of `repeats` timings of `num_steps` steps.

The PyTorch twin has the same layers, shapes and initial-scale conventions of PyTorch (NCHW, `nn.Conv2d` /
`nn.ConvTranspose2d` with the padding that gives the same output sizes as SAME padding),
`torch.optim.Adam`, and `torch.set_num_threads(threads)` with the cores XLA uses.

Variants (`config.variants`), each timed against the twin of its own architecture:

* `baseline`: one jitted train step per batch (`jgen.train.make_train_step`), float32, NHWC;
* `fused10`: ten steps per jitted call, one `lax.scan` (`jgen.train.fit(fuse_steps=10)`);
* `bfloat16`: convolutions and dense layers in bfloat16 (params and the loss in float32);
* `resize`: the decoder upsamples by nearest-neighbour repetition followed by a 4x4 convolution;
* `kernel3`: 3x3 kernels instead of 4x4 everywhere (fewer FLOPs; not the issue's architecture).

`speedup_vs_torch` = the best jgen variant with the baseline's architecture (baseline, fused10, bfloat16)
over the baseline twin; `tables/variants.csv` has every variant's ratio. The quality of the variants is not
measured here (bfloat16 and the architecture variants train a different model). When torch is missing its
side is skipped with a note.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import experiment, train, vae

SAME_ARCHITECTURE = ("baseline", "fused10", "bfloat16")


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.batch_size = 128
    c.latent_dim = 16
    c.channels = (32, 64)
    c.learning_rate = 1e-3
    c.num_steps = 30 if preset == "quick" else 200  # timed steps per measurement (a multiple of 10)
    c.repeats = 3
    c.variants = ("baseline", "fused10", "bfloat16", "resize", "kernel3")
    c.torch = True
    c.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return c


def _arch(config, variant: str) -> ml_collections.ConfigDict:
    k = 3 if variant == "kernel3" else 4
    return vae.vae_config(image_shape=(28, 28, 1), latent_dim=config.latent_dim, channels=tuple(config.channels),
                          kernels=(k, k), strides=(2, 2), upsample="resize" if variant == "resize" else "transpose",
                          dtype="bfloat16" if variant == "bfloat16" else "float32")


def _batches(config, n: int) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    return (rng.random((n, config.batch_size, 28, 28, 1)) < 0.13).astype(np.float32)  # MNIST's ink fraction


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _jgen_runner(config, variant: str, data: np.ndarray):
    """A function that runs `num_steps` training steps of the variant (compiled and warmed up)."""
    model = vae.make_vae(_arch(config, variant))
    key = jax.random.key(config.seed)
    params = jax.jit(model.init)(key, jnp.asarray(data[0, :1]), key)
    tx = optax.adam(config.learning_rate)

    def loss_fn(p, batch, rng):
        return -jnp.mean(vae.elbo(model, p, rng, batch).elbo), {}

    step = train.make_train_step(loss_fn, tx)
    state = train.create_train_state(params, tx, key)
    fuse = 10 if variant == "fused10" else 1
    if fuse == 1:
        run = jax.jit(step, donate_argnums=0)
        blocks = [jnp.asarray(b) for b in data]
    else:
        run = jax.jit(lambda s, b: jax.lax.scan(step, s, b), donate_argnums=0)
        blocks = [jnp.asarray(data[i:i + fuse]) for i in range(0, len(data) - fuse + 1, fuse)]
    box = {"state": state}

    def steps():
        s = box["state"]
        for i in range(config.num_steps // fuse):
            s, _ = run(s, blocks[i % len(blocks)])
        box["state"] = jax.block_until_ready(s)

    steps()  # compile + warm up
    return steps


def _torch_runner(config, variant: str, data: np.ndarray):
    import torch
    from torch import nn

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    k = 3 if variant == "kernel3" else 4
    c1, c2 = config.channels
    d = config.latent_dim

    def up(cin, cout):
        if variant == "resize":
            return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, k, padding="same"))
        return nn.ConvTranspose2d(cin, cout, k, stride=2, padding=1, output_padding=k % 2)

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, c1, k, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, k, 2, 1), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(7 * 7 * c2, 2 * d))
            self.project = nn.Sequential(nn.Linear(d, 7 * 7 * c2), nn.ReLU())
            self.dec = nn.Sequential(up(c2, c1), nn.ReLU(), up(c1, 1))

        def forward(self, x):
            mean, log_var = self.enc(x).chunk(2, dim=1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = self.dec(self.project(z).view(-1, c2, 7, 7))
            recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
            kl = 0.5 * (log_var.exp() + mean**2 - 1 - log_var).sum(1)
            return (recon + kl).mean()

    model = TorchVAE()
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    batches = [torch.from_numpy(np.ascontiguousarray(b.transpose(0, 3, 1, 2))) for b in data]

    def steps():
        for i in range(config.num_steps):
            loss = model(batches[i % len(batches)])
            opt.zero_grad()
            loss.backward()
            opt.step()
        float(loss.detach())

    steps()  # warm up
    return steps


def validate_config(config) -> None:
    if config.num_steps % 10:
        raise experiment.ConfigError(f"config.num_steps={config.num_steps} must be a multiple of 10 (the fused "
                                     "variant runs ten steps per call); set --config.num_steps=30")
    unknown = [v for v in config.variants if v not in ("baseline", "fused10", "bfloat16", "resize", "kernel3")]
    if unknown:
        raise experiment.ConfigError(f"config.variants has unknown entries {unknown}; expected some of baseline, "
                                     "fused10, bfloat16, resize, kernel3")


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    data = _batches(config, 20)
    torch_ok, note = experiment.torch_peer(config.torch)
    images = config.num_steps * config.batch_size
    rows, twins = [], {}
    for variant in config.variants:
        jgen_steps = _jgen_runner(config, variant, data)
        twin = "baseline" if variant in SAME_ARCHITECTURE else variant
        torch_steps = None
        if torch_ok and twin not in twins:
            twins[twin] = _torch_runner(config, twin, data)
        torch_steps = twins.get(twin)
        t_jgen, t_torch = [], []
        for _ in range(config.repeats):  # interleaved, so that a load spike hits both sides
            t_jgen.append(_time(jgen_steps, 1))
            if torch_steps is not None:
                t_torch.append(_time(torch_steps, 1))
        row = {"variant": variant, "images_per_s_jgen": images / statistics.median(t_jgen)}
        if t_torch:
            row["images_per_s_torch"] = images / statistics.median(t_torch)
            row["ratio"] = row["images_per_s_jgen"] / row["images_per_s_torch"]
        rows.append(row)
    metrics = wd.metrics_table("variants", rows, "variant")
    same = [r for r in rows if r["variant"] in SAME_ARCHITECTURE]
    best = max(same or rows, key=lambda r: r["images_per_s_jgen"])
    metrics["images_per_s_jgen"] = best["images_per_s_jgen"]
    metrics["best_variant_is_fused"] = float(best["variant"] == "fused10")
    baseline_torch = next((r["images_per_s_torch"] for r in rows if "images_per_s_torch" in r
                           and r["variant"] in SAME_ARCHITECTURE), None)
    if baseline_torch is not None:
        metrics["images_per_s_torch"] = baseline_torch
        metrics["speedup_vs_torch"] = best["images_per_s_jgen"] / baseline_torch
    (wd.path / "note.txt").write_text(
        (note + "\n" if note else "") + f"best same-architecture jgen variant: {best['variant']}\n"
        + "\n".join(f"{r['variant']}: jgen {r['images_per_s_jgen']:.0f} img/s"
                    + (f", torch {r['images_per_s_torch']:.0f} img/s, ratio {r['ratio']:.2f}" if "ratio" in r else "")
                    for r in rows) + "\n")
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
