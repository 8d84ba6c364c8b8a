"""Benchmark: training and sampling images/s of the MNIST DDPM U-Net, jgen (JAX/Flax) against a PyTorch twin.

The workload: the full `ddpm_mnist` model, `jgen.diffusion.UNet` for 28x28x1 MNIST (`config.unet`: 64
channels at 28x28, 128 at 14x14 and 7x7, two residual blocks per level, GroupNorm with 32 groups,
self-attention at 7x7, dropout 0.1, a 256-wide time-embedding MLP; 6.47M parameters; the quick preset halves
every width: 1.62M parameters), the linear schedule with T = 1000, and

* training: the epsilon-prediction loss (uniform t, `jgen.diffusion.noise_prediction_loss`), batch 128,
  Adam (learning rate 2e-4, Ho et al. 2020), one jitted step per batch on pre-drawn batches in [-1, 1]
  (the input pipeline is not timed);
* sampling: ancestral DDPM over all T = 1000 steps and deterministic DDIM over 50 evenly spaced steps,
  `config.sample_batch` images at once. jgen runs each sampler as one jitted `lax.scan`
  (`jgen.diffusion.samplers`); the twin runs the same update formulas in a Python loop under
  `torch.inference_mode()` with the model in eval mode.

The PyTorch twin has the same blocks, widths, GroupNorm groups, attention, time embedding, dropout, batch and
optimizer (`torch.optim.Adam` with the same settings), NCHW (PyTorch's native layout; its oneDNN
convolutions pick their own internal layout). PyTorch is timed at each thread count in `torch_threads`
(default: the cores XLA uses, and 1) and its best is reported: on a loaded machine its OpenMP threads
spin-wait for each other and 2 threads ran 5-30x slower than 1 here, while on an idle machine all cores win.
Every number is the median of `repeats` timings, jgen and torch interleaved so that a load spike on a shared
machine hits both; compilation and one warm-up call are not timed.

The quick preset trains 2 steps per timing, samples 8 images (`sample_batch`) and runs the DDPM sampler with
T = `ddpm_steps` = 20 instead of 1000 (the per-step work does not depend on T); its images/s are converted to 1000-step chains
(multiplied by ddpm_steps / 1000). Metrics: `train_images_per_s_{jgen,torch}`,
`sample_images_per_s_{jgen,torch}` (1000-step DDPM), `ddim50_images_per_s_{jgen,torch}`,
`train_speedup_vs_torch`, `sample_speedup_vs_torch`, `ddim50_speedup_vs_torch`, and
`ddim50_vs_ddpm1000_speedup` (jgen's DDIM-50 over its DDPM-1000 images/s). When torch is missing its side
is skipped with a note.

On a CPU, jgen's side runs on a data mesh of one XLA device per core (`--cpu_devices`, `jgen.sharding`):
batches and sampled chains are split over it, parameters replicated. XLA:CPU keeps about one core busy on
convolutions this small, and the mesh is how it uses the others (torch's oneDNN threads its kernels itself).
`--cpu_devices=1` times the single-device program.

A kernel-level probe runs beside them: one 3x3 convolution at the U-Net's most expensive shape (batch x 28 x
28 x `channels`, `channels` in and out, split over the mesh as the U-Net's batches are), its forward pass
alone and forward plus both gradients, XLA's convolution against torch's `nn.Conv2d`
(`conv3x3_forward_speedup_vs_torch`, `conv3x3_train_speedup_vs_torch`): it tells a loss in XLA's
convolution kernels from a loss elsewhere in the U-Net. Measured on this 2-core CPU (quick preset): on one
device the probe ran at 0.55x (gradients) and 0.66x (forward), the U-Net at 0.36x (training) and 0.59x
(DDPM sampling); on the 2-device mesh the probe reached 1.09x and 1.19x, the U-Net 0.57x and 1.41x, so the
training gap left is outside the 3x3 convolutions at that shape (normalisation, attention, the strided and
1x1 convolutions, the elementwise work between them).
"""

from __future__ import annotations

import math
import os
import statistics
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train
from jgen.sharding import batch_sharding, replicate, shard_batch
from jgen.diffusion import noise_prediction_loss, samplers, schedules, unet

T_REFERENCE = 1000  # the DDPM chain length the sampling images/s are quoted for


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.unet = ml_collections.ConfigDict(dict(channels=32 if quick else 64, channel_mults=(1, 2, 2), num_res_blocks=2,
                                            attention_resolutions=(7,), dropout=0.1, num_groups=32))
    c.batch_size = 128
    c.optim = optim.optim_config(name="adam", learning_rate=2e-4)
    c.train_steps = 2 if quick else 10  # training steps per timing
    c.sample_batch = 8 if quick else 100  # images sampled at once
    c.ddpm_steps = 20 if quick else T_REFERENCE  # T of the timed DDPM chain (quoted per 1000 steps)
    c.ddim_steps = 50
    c.repeats = 3
    c.torch = True
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    c.torch_threads = tuple(sorted({cores, 1}, reverse=True))  # torch's best of these is reported
    return c


def validate_config(config) -> None:
    if config.ddim_steps > T_REFERENCE:
        raise experiment.ConfigError(f"config.ddim_steps={config.ddim_steps} exceeds T = {T_REFERENCE}; set "
                                     "--config.ddim_steps=50")
    if config.optim.name != "adam" or config.optim.schedule != "constant" or config.optim.clip_grad_norm:
        raise experiment.ConfigError("the torch side runs torch.optim.Adam at a constant learning rate; keep "
                                     "config.optim.name=adam, schedule=constant and no clipping")


# jgen -----------------------------------------------------------------------------------------------------
def _jgen_runners(config, data: np.ndarray):
    """(train, ddpm, ddim) callables, each compiled and warmed up, each running one timed unit of work."""
    model = unet.UNet(**config.unet)
    key = jax.random.key(config.seed)
    x0 = jnp.asarray(data[0])
    # An "rbg" key for the (untimed) init: XLA:CPU compiles its draws ~2.5x faster than threefry's.
    params = jax.jit(model.init)(jax.random.key(config.seed, impl="rbg"), x0[:1], jnp.ones((1,), jnp.int32))
    sched = schedules.make_schedule("linear", T_REFERENCE)
    tx = optim.make_optimizer(config.optim, 10**6)

    def loss_fn(p, batch, k):
        k_loss, k_drop = jax.random.split(k)
        eps_fn = lambda x, t: model.apply(p, x, t, train=True, rngs={"dropout": k_drop})
        return noise_prediction_loss(eps_fn, sched, batch, k_loss), {}

    step = jax.jit(train.make_train_step(loss_fn, tx), donate_argnums=0)
    mesh = experiment.batch_mesh(config, ("batch_size", "sample_batch"))
    state = train.create_train_state(params, tx, key)
    box = {"state": state if mesh is None else replicate(state, mesh)}
    batches = [jnp.asarray(b) if mesh is None else shard_batch(b, mesh) for b in data]
    split = (lambda x: x) if mesh is None else (lambda x: jax.lax.with_sharding_constraint(x, batch_sharding(mesh)))

    def train_steps():
        s = box["state"]
        for i in range(config.train_steps):
            s, _ = step(s, batches[i % len(batches)])
        box["state"] = jax.block_until_ready(s)

    ddpm_sched = schedules.make_schedule("linear", config.ddpm_steps)
    shape = (config.sample_batch, *data.shape[2:])

    @jax.jit
    def ddpm(p, k):
        return samplers.ddpm_sample(lambda x, t: model.apply(p, split(x), t), ddpm_sched, k, shape)

    @jax.jit
    def ddim(p, k):
        return samplers.ddim_sample(lambda x, t: model.apply(p, split(x), t), sched, k, shape,
                                    num_sample_steps=config.ddim_steps)

    p = params if mesh is None else replicate(params, mesh)
    runners = [train_steps] + [_compiled_call(f, p, key) for f in (ddpm, ddim)] + _jgen_conv_runners(config, mesh)
    for r in runners:
        r()  # compile + warm up
    return runners, unet.num_params(model, data.shape[2:])


def _conv_layer_input(config) -> tuple[np.ndarray, np.ndarray]:
    """The kernel-level probe's activations [B, 28, 28, C] and 3x3 kernel [3, 3, C, C] (HWIO), C the U-Net's
    top-level width: the U-Net's most expensive layer shape."""
    rng = np.random.default_rng(config.seed + 1)
    c = config.unet.channels
    x = rng.standard_normal((config.batch_size, 28, 28, c)).astype(np.float32)
    return x, (rng.standard_normal((3, 3, c, c)) / math.sqrt(9 * c)).astype(np.float32)


def _jgen_conv_runners(config, mesh):
    """One 3x3 convolution, forward and forward + both gradients, as XLA runs it inside the U-Net (SAME
    padding, NHWC/HWIO, the batch split over the mesh): it separates a loss in XLA's convolution kernels from
    a loss elsewhere in the U-Net."""
    x, w = map(jnp.asarray, _conv_layer_input(config))
    if mesh is not None:  # as the U-Net runs it: the batch split over the mesh
        x, w = shard_batch(x, mesh), replicate(w, mesh)
    grads = jax.jit(jax.grad(lambda x, w: jnp.sum(conv3x3(x, w) ** 2), argnums=(0, 1)))
    return [_compiled_call(grads, x, w), _compiled_call(conv3x3, x, w)]


def conv3x3(x, w):
    """The probe's convolution: x [B, H, W, C], w [3, 3, C, C'] (HWIO) -> [B, H, W, C'], SAME padding."""
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def torch_conv3x3(w: np.ndarray):
    """The twin of `conv3x3` with the kernel w [3, 3, C, C'] (HWIO): an `nn.Conv2d` on NCHW tensors."""
    import torch

    conv = torch.nn.Conv2d(w.shape[2], w.shape[3], 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))  # HWIO -> OIHW
    return conv


def _compiled_call(fn, *args):
    compiled = jax.jit(fn).lower(*args).compile()
    return lambda: jax.block_until_ready(compiled(*args))


# torch twin -----------------------------------------------------------------------------------------------
def _torch_runners(config, data: np.ndarray):
    import torch
    from torch import nn
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    u = config.unet
    ch, g = u.channels, u.num_groups

    def gn(c):
        return nn.GroupNorm(math.gcd(g, c), c, eps=1e-6)  # flax's GroupNorm epsilon

    def zero(m):
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
        return m

    class ResBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.n1, self.c1, self.t = gn(cin), nn.Conv2d(cin, cout, 3, padding=1), nn.Linear(4 * ch, cout)
            self.n2, self.drop = gn(cout), nn.Dropout(u.dropout)
            self.c2 = zero(nn.Conv2d(cout, cout, 3, padding=1))
            self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

        def forward(self, x, temb):
            h = self.c1(F.silu(self.n1(x))) + self.t(F.silu(temb))[:, :, None, None]
            h = self.c2(self.drop(F.silu(self.n2(h))))
            return self.skip(x) + h

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.n, self.qkv, self.proj = gn(c), nn.Linear(c, 3 * c), zero(nn.Linear(c, c))

        def forward(self, x):
            b, c, hh, ww = x.shape
            h = self.n(x).flatten(2).transpose(1, 2)  # [b, hw, c]
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
            return x + self.proj(w @ v).transpose(1, 2).reshape(b, c, hh, ww)

    class UNet(nn.Module):
        def __init__(self, c_in, size):
            super().__init__()
            self.temb = nn.Sequential(nn.Linear(ch, 4 * ch), nn.SiLU(), nn.Linear(4 * ch, 4 * ch))
            self.inp = nn.Conv2d(c_in, ch, 3, padding=1)
            self.down, widths, w = nn.ModuleList(), [ch], ch
            mults = tuple(u.channel_mults)
            for level, m in enumerate(mults):
                for _ in range(u.num_res_blocks):
                    self.down.append(ResBlock(w, ch * m))
                    w = ch * m
                    widths.append(w)
                    if size in u.attention_resolutions:
                        self.down.append(Attention(w))
                if level < len(mults) - 1:
                    self.down.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
                    widths.append(w)
                    size //= 2
            self.mid = nn.ModuleList([ResBlock(w, w), Attention(w), ResBlock(w, w)])
            self.up = nn.ModuleList()
            for level, m in reversed(list(enumerate(mults))):
                for _ in range(u.num_res_blocks + 1):
                    self.up.append(ResBlock(w + widths.pop(), ch * m))
                    w = ch * m
                    if size in u.attention_resolutions:
                        self.up.append(Attention(w))
                if level > 0:
                    self.up.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                 nn.Conv2d(w, w, 3, padding=1)))
                    size *= 2
            self.out = nn.Sequential(gn(w), nn.SiLU(), zero(nn.Conv2d(w, c_in, 3, padding=1)))
            half = ch // 2
            self.register_buffer("freqs", torch.exp(-math.log(10_000.0) * torch.arange(half) / half))

        def forward(self, x, t):
            args = t.float()[:, None] * self.freqs[None]
            temb = self.temb(torch.cat([args.sin(), args.cos()], dim=1))
            h = self.inp(x)
            skips = [h]
            for m in self.down:
                if isinstance(m, ResBlock):
                    h = m(h, temb)
                    skips.append(h)
                elif isinstance(m, Attention):
                    h = skips[-1] = m(h)
                else:
                    h = m(h)
                    skips.append(h)
            h = self.mid[2](self.mid[1](self.mid[0](h, temb)), temb)
            for m in self.up:
                h = m(torch.cat([h, skips.pop()], dim=1), temb) if isinstance(m, ResBlock) else m(h)
            return self.out(h)

    images = np.ascontiguousarray(data.transpose(0, 1, 4, 2, 3))  # [n, B, C, H, W]
    model = UNet(images.shape[2], images.shape[3])
    o = config.optim
    opt = torch.optim.Adam(model.parameters(), lr=o.learning_rate, betas=(o.b1, o.b2), eps=o.eps)
    ab = torch.tensor(np.asarray(schedules.make_schedule("linear", T_REFERENCE).alpha_bars))
    batches = [torch.from_numpy(b) for b in images]

    def train_steps():
        model.train()
        for i in range(config.train_steps):
            x0 = batches[i % len(batches)]
            t = torch.randint(1, T_REFERENCE + 1, (x0.shape[0],))
            eps = torch.randn_like(x0)
            a = ab[t - 1][:, None, None, None]
            loss = F.mse_loss(model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t), eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        float(loss.detach())

    shape = (config.sample_batch, *images.shape[2:])
    d = schedules.make_schedule("linear", config.ddpm_steps)
    ddpm_coefs = [(float(d.alphas[t - 1]), float(d.alpha_bars[t - 1]), float(d.betas[t - 1]))
                  for t in range(config.ddpm_steps, 0, -1)]
    ts = samplers.ddim_timesteps(T_REFERENCE, config.ddim_steps)
    curve = np.asarray(schedules.alpha_bar_curve(schedules.make_schedule("linear", T_REFERENCE)))
    ddim_coefs = [(int(t), float(curve[t]), float(curve[s])) for t, s in zip(ts, np.append(ts[1:], 0))]

    @torch.inference_mode()
    def ddpm():
        model.eval()
        x = torch.randn(shape)
        for j, (a, abar, b) in enumerate(ddpm_coefs):
            eps = model(x, torch.full(shape[:1], config.ddpm_steps - j))
            x = (x - (1 - a) / math.sqrt(1 - abar) * eps) / math.sqrt(a)
            if j < len(ddpm_coefs) - 1:
                x = x + math.sqrt(b) * torch.randn_like(x)
        return x

    @torch.inference_mode()
    def ddim():
        model.eval()
        x = torch.randn(shape)
        for t, abar, abar_prev in ddim_coefs:
            eps = model(x, torch.full(shape[:1], t))
            x0 = (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)
            x = math.sqrt(abar_prev) * x0 + math.sqrt(1 - abar_prev) * eps
        return x

    x_np, w_np = _conv_layer_input(config)
    conv = torch_conv3x3(w_np)
    x_conv = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2))).requires_grad_(True)

    def conv_grads():
        x_conv.grad = conv.weight.grad = None
        (conv(x_conv) ** 2).sum().backward()

    @torch.inference_mode()
    def conv_forward():
        conv(x_conv)

    runners = [train_steps, ddpm, ddim, conv_grads, conv_forward]
    for r in runners:
        r()  # warm up
    return runners


# the benchmark --------------------------------------------------------------------------------------------
def _seconds(fn) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU seconds are summed over the process's threads."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def _interleaved(jgen_fn, torch_fn, repeats: int, torch_threads):
    """Median (wall, CPU) seconds of jgen_fn, and of torch_fn at each thread count, timed in turn `repeats` times."""
    t_jgen, t_torch = [], {n: [] for n in torch_threads}
    for _ in range(repeats):
        t_jgen.append(_seconds(jgen_fn))
        if torch_fn is not None:
            import torch

            for n in torch_threads:
                torch.set_num_threads(n)
                t_torch[n].append(_seconds(torch_fn))

    def medians(ts):
        return tuple(statistics.median(t[i] for t in ts) for i in range(2))

    return medians(t_jgen), {n: medians(v) for n, v in t_torch.items() if v}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    rng = np.random.default_rng(config.seed)
    data = rng.uniform(-1, 1, (4, config.batch_size, 28, 28, 1)).astype(np.float32)  # MNIST's shape and range
    torch_ok, note = experiment.torch_peer(config.torch)
    jgen_fns, n_params = _jgen_runners(config, data)
    if torch_ok:
        import torch

        torch.set_num_threads(max(config.torch_threads))
    torch_fns = _torch_runners(config, data) if torch_ok else [None] * 5
    # images per timed call: training; DDPM chains quoted per T_REFERENCE steps; DDIM chains; the conv probe
    work = {"train": config.batch_size * config.train_steps,
            "sample": config.sample_batch * config.ddpm_steps / T_REFERENCE,
            f"ddim{config.ddim_steps}": config.sample_batch,
            "conv3x3_train": config.batch_size, "conv3x3_forward": config.batch_size}
    metrics, rows = {"num_params": float(n_params)}, []
    for (name, images), fj, ft in zip(work.items(), jgen_fns, torch_fns):
        (tj, cj), per_threads = _interleaved(fj, ft, config.repeats, config.torch_threads)
        metrics[f"{name}_images_per_s_jgen"] = images / tj
        row = {"workload": name, "images_per_s_jgen": images / tj, "cpu_s_per_image_jgen": cj / images}
        if per_threads:
            threads, (tt, ct) = min(per_threads.items(), key=lambda kv: kv[1][0])
            metrics[f"{name}_images_per_s_torch"] = images / tt
            metrics[f"{name}_speedup_vs_torch"] = tt / tj
            metrics[f"{name}_cpu_time_speedup_vs_torch"] = min(c for _, c in per_threads.values()) / cj
            row.update(images_per_s_torch=images / tt, ratio=tt / tj, torch_threads=threads,
                       cpu_s_per_image_torch=ct / images, cpu_ratio=metrics[f"{name}_cpu_time_speedup_vs_torch"],
                       **{f"images_per_s_torch_{n}threads": images / v[0] for n, v in per_threads.items()})
        rows.append(row)
        print(f"{name}: {row}", flush=True)
    ddim = f"ddim{config.ddim_steps}"
    metrics[f"{ddim}_vs_ddpm1000_speedup"] = metrics[f"{ddim}_images_per_s_jgen"] / metrics["sample_images_per_s_jgen"]
    wd.save_table("throughput", rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    metrics["load_average_1min"] = load
    (wd.path / "note.txt").write_text(
        (note + "\n" if note else "") + f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} cores\n"
        + f"DDPM timed with T = {config.ddpm_steps}, quoted per {T_REFERENCE}-step chain; "
        + f"{config.sample_batch} images per chain\n"
        + "\n".join(f"{r['workload']}: jgen {r['images_per_s_jgen']:.3g} img/s"
                    + (f", torch {r['images_per_s_torch']:.3g} img/s ({r['torch_threads']} threads), ratio "
                       f"{r['ratio']:.2f} (CPU-time ratio {r['cpu_ratio']:.2f})" if "ratio" in r else "")
                    for r in rows) + "\n")
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
