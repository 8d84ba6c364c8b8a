"""Normalizing Flow: RealNVP, MAF and a neural spline flow on 8-bit 7x7 MNIST, in bits/dim.

Data: `jgen.data.mnist7` (4x4 area means of MNIST rounded back to 8 bits, 256 levels; train = first 55,000
training images, validation = last 5,000, test = the 10,000 MNIST test images): the same images as the
autoregressive models in the likelihood table.

All flows model y = logit(alpha + (1 - 2 alpha) x) of uniformly dequantised pixels x = (k + u) / 256,
u ~ U[0, 1), and report bits/dim on the 256-level scale including the logit's log-det
(`jgen.metrics.likelihood`); by Jensen this is an upper bound on the discrete NLL in expectation over u (Theis
et al., 2016). Test numbers use one fixed draw of u.

* RealNVP (`jgen.flows.CouplingFlow`): affine coupling layers with alternating checkerboard masks on the
  [7, 7, 1] image, a small conv net conditioner (3x3 convolutions, the mask as an extra input channel, last
  layer zero-initialised), bounded log-scales.
* MAF (`jgen.flows.MAF`) on the flattened 49 pixels: MADE conditioners, order reversed between layers,
  layers stacked with one `lax.scan`.
* Spline flow (`jgen.flows.SplineCouplingFlow`; Durkan et al. 2019): coupling layers with alternating
  checkerboard masks on the [7, 7, 1] image whose transformed pixels go through K-bin rational-quadratic
  splines, MLP conditioners on the flattened masked image (cheaper on CPU than a conv net here), layers
  stacked with one `lax.scan`. The splines act on [-B, B] (`spline.boundary`) of the standardised logits
  (below) and are the identity outside. Logits lie in [logit(alpha), logit(1 - alpha)] = +-9.2, and after
  the per-pixel standardisation almost every value lies within a few units of 0; `spline_range_coverage`
  reports the fraction of standardised training values (one dequantisation draw) inside [-B, B], the part
  of the data the splines can reshape (the rest passes through them unchanged, still a valid density).
* Baselines: independent per-pixel categoricals over the 256 levels fitted on the same training images with
  Laplace smoothing; its bits/dim are exact (discrete), so a flow below it is better despite its bound.
  `test_bpd_logit_gaussian` is every flow's starting point: the fresh flow is the identity, i.e.
  independent Gaussians on the standardised logits.

Figures: training/validation bits/dim curves, 100 samples of each flow as a 10 x 10 grid (sampled in logit
space, mapped back and floored to 8-bit levels) next to 100 test images.

Samples for the likelihood table's sample-quality columns: `num_quality_samples` per flow, drawn in blocks
of `num_samples` with the one compiled sampler (block 0 is the grid's), saved as
`artifacts/samples_mnist7.npz` (`images_realnvp`, `images_maf`, `images_spline`: uint8 [n, 7, 7]);
`likelihood_table` scores them on the 7x7 classifier beside the real-data floor.

Convergence: each flow keeps its best validation checkpoint; `best_step_<flow>` says where that was, and
`val_plateau_drop_<flow>` how much the best validation bits/dim still fell over the last
`convergence.plateau_fraction` of the evaluations (`jgen.experiment.plateau`). `checks.json` holds one
check per flow: its curve has flattened (drop below `convergence.plateau_tol` bits/dim).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jgen import experiment, optim, train, viz
from jgen.data import BatchIterator
from jgen.data.mnist7 import IMAGE_SIZE, mnist7_splits
from jgen.flows import MAF, CouplingFlow, SplineCouplingFlow, dequantize_logit, logit_to_levels
from jgen.metrics.likelihood import bits_per_dim, independent_pixel_bits_per_dim

NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train = 20000 if quick else None  # None: all 55,000 training images
    c.batch_size = 128
    c.alpha = 1e-4  # logit margin; 0.05 costs ~0.2 bits/dim here (most pixels sit at level 0)
    c.smoothing = 1.0  # Laplace pseudo-count of the independent baseline
    c.eval_every = 250 if quick else 1000
    c.num_samples = 100  # the grid, and the block size of every sampler call
    c.num_quality_samples = 1000 if quick else 10000  # saved for likelihood_table's sample metrics
    c.max_eval_images = None  # None: the whole test and validation sets (a cap, for tests only)

    c.convergence = ml_collections.ConfigDict()
    c.convergence.plateau_fraction = 0.2  # the last fifth of the evaluations
    c.convergence.plateau_tol = 0.005  # bits/dim

    c.realnvp = ml_collections.ConfigDict()
    # Full presets: more layers and steps than 20,000, where every flow was still improving (the goal:
    # digit-like samples, see likelihood_table); the best validation checkpoint is kept.
    c.realnvp.num_layers = 6 if quick else 12
    c.realnvp.channels = (32, 32) if quick else (128, 128)
    c.realnvp.log_scale_bound = 3.0
    c.realnvp.num_steps = 1000 if quick else 60000
    c.realnvp.optim = _optim(quick)

    c.maf = ml_collections.ConfigDict()
    c.maf.num_layers = 5 if quick else 10
    c.maf.hidden_sizes = (256, 256) if quick else (1024, 1024)
    c.maf.log_scale_bound = 3.0
    c.maf.num_steps = 2000 if quick else 60000
    c.maf.optim = _optim(quick)

    c.spline = ml_collections.ConfigDict()
    c.spline.num_layers = 4 if quick else 8
    c.spline.hidden_sizes = (128, 128) if quick else (512, 512)
    c.spline.num_bins = 4 if quick else 8
    c.spline.boundary = 5.0  # B, in standardised logit units
    c.spline.num_steps = 1000 if quick else 60000
    c.spline.optim = _optim(quick)
    return c


def _optim(quick: bool) -> ml_collections.ConfigDict:
    # Full presets warm up: on the wider flows Adam's first full-size step (~lr * sign(g) on every weight)
    # threw the loss to 1.7e12 bits/dim (MAF, step 2) and 1.4e7 (RealNVP); with 200 warm-up steps every
    # loss from step 50 to 500 stayed under 3.73 bits/dim (measured 2026-12-03). Clipping cannot help: Adam
    # normalises the clipped gradient again.
    return optim.optim_config(name="adam", learning_rate=2e-3, schedule="cosine", final_lr_fraction=0.05,
                              warmup_steps=0 if quick else 1000, clip_grad_norm=100.0)


def _make_flows(config) -> dict:
    r, m = config.realnvp, config.maf
    # Unrolled layers for the conv flow: XLA:CPU differentiates convolutions inside a scan ~15x slower.
    realnvp = CouplingFlow(event_shape=IMAGE_SHAPE, num_layers=r.num_layers, mask="checkerboard",
                           conditioner="conv", hidden_sizes=tuple(r.channels), log_scale_bound=r.log_scale_bound)
    maf = MAF(event_shape=(NUM_PIXELS,), num_layers=m.num_layers, hidden_sizes=tuple(m.hidden_sizes),
              log_scale_bound=m.log_scale_bound, scan_layers=True)
    s = config.spline
    spline = SplineCouplingFlow(event_shape=IMAGE_SHAPE, num_layers=s.num_layers, mask="checkerboard",
                                conditioner="mlp", hidden_sizes=tuple(s.hidden_sizes), num_bins=s.num_bins,
                                boundary=s.boundary, scan_layers=True)
    return {"realnvp": realnvp, "maf": maf, "spline": spline}


def _shape_for(flow, y: jax.Array) -> jax.Array:
    return y.reshape((y.shape[0],) + tuple(flow.event_shape))


def pixel_standardizer(key, images: np.ndarray, alpha: float) -> tuple[jax.Array, jax.Array]:
    """Per-pixel mean and log-std `[7, 7, 1]` of the dequantised logits of the training images.

    The flows model `(y - mean) / std`, a fixed elementwise affine map whose log-det `-sum(log std)` is
    included in every density: the flow then starts as independent per-pixel Gaussians fitted to the data
    instead of N(0, 1), which saves thousands of steps on the nearly constant border pixels.
    """
    y, _ = dequantize_logit(key, jnp.asarray(images), alpha)
    return jnp.mean(y, axis=0), jnp.log(jnp.std(y, axis=0))


def range_coverage(key, images: np.ndarray, alpha: float, standardizer, boundary: float) -> float:
    """Fraction of the standardised dequantised logits of `images` inside the spline range [-B, B]."""
    mean, log_std = standardizer
    y, _ = dequantize_logit(key, jnp.asarray(images), alpha)
    return float(jnp.mean(jnp.abs((y - mean) * jnp.exp(-log_std)) <= boundary))


@functools.partial(jax.jit, static_argnums=(0, 4))
def _bpd(flow, params, key, images, alpha, standardizer):
    """Per-image bits/dim of uint8 images [B, 7, 7, 1] under one dequantisation draw."""
    mean, log_std = standardizer
    y, log_det = dequantize_logit(key, images, alpha)
    z = (y - mean) * jnp.exp(-log_std)
    log_prob = flow.apply(params, _shape_for(flow, z)) - jnp.sum(log_std)
    return bits_per_dim(log_prob, log_det, NUM_PIXELS)


@functools.partial(jax.jit, static_argnums=3)
def _gaussian_bpd(key, images, standardizer, alpha):
    """Per-image bits/dim of the fresh (identity) flow: independent Gaussians on the standardised logits."""
    mean, log_std = standardizer
    y, log_det = dequantize_logit(key, images, alpha)
    z = (y - mean) * jnp.exp(-log_std)
    log_prob = jnp.sum(jax.scipy.stats.norm.logpdf(z) - log_std, axis=(1, 2, 3))
    return bits_per_dim(log_prob, log_det, NUM_PIXELS)


def mean_bpd(flow, params, images: np.ndarray, key, alpha: float, standardizer, batch: int = 2500) -> float:
    keys = jax.random.split(key, -(-len(images) // batch))
    total = sum(float(_bpd(flow, params, k, jnp.asarray(images[i:i + batch]), alpha, standardizer).sum())
                for k, i in zip(keys, range(0, len(images), batch)))
    return total / len(images)


def train_flow(flow, splits, standardizer, cfg, config, wd, name: str):
    """Minimises the dequantised bits/dim with Adam (warm-up in the full preset, cosine decay, gradient
    clipping); keeps the best validation checkpoint."""
    key = jax.random.key(config.seed)
    params = jax.jit(flow.init)(key, jnp.zeros((1,) + tuple(flow.event_shape)))
    tx = optim.make_optimizer(cfg.optim, cfg.num_steps)

    def loss_fn(p, batch, rng):
        bpd = _bpd(flow, p, rng, batch["image"], config.alpha, standardizer)
        return jnp.mean(bpd), {}

    val_key = jax.random.key(config.seed + 1)
    eval_fn = lambda p: {"val_bpd": mean_bpd(flow, p, splits["val"], val_key, config.alpha, standardizer)}
    batches = BatchIterator({"image": splits["train"]}, config.batch_size, seed=config.seed)
    every = min(config.eval_every, cfg.num_steps)
    result = train.fit_loss(loss_fn, params, tx, batches, cfg.num_steps, key=key, wd=wd, name=name,
                            log_every=every // 5 if every >= 5 else every, eval_every=every, ckpt_every=every * 4,
                            eval_fn=eval_fn, keep_best=True, progress=False)
    return result


def _samples(flow, params, key, n: int, block: int, alpha: float, standardizer) -> np.ndarray:
    """`n` samples, uint8 [n, 7, 7, 1], in blocks of `block` from one compiled sampler: block 0 uses `key`,
    block i >= 1 `fold_in(key, i)`, so the first `block` samples do not depend on `n`."""
    mean, log_std = standardizer

    @jax.jit
    def draw(p, k):
        z = flow.apply(p, k, block, method="sample")
        return logit_to_levels(z.reshape((block,) + IMAGE_SHAPE) * jnp.exp(log_std) + mean, alpha)

    keys = [key] + [jax.random.fold_in(key, i) for i in range(1, -(-n // block))]
    return np.concatenate([np.asarray(draw(params, k)) for k in keys])[:n]


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    splits = {k: v[..., None] for k, v in mnist7_splits(config.num_train).items()}  # uint8 [N, 7, 7, 1]
    cap = config.max_eval_images
    evals = {k: splits[k][:cap] for k in ("val", "test")}
    metrics = {"test_bpd_independent": independent_pixel_bits_per_dim(splits["train"], evals["test"],
                                                                       smoothing=config.smoothing),
               "num_train": len(splits["train"]), "num_test": len(evals["test"])}
    test_key = jax.random.key(config.seed + 2)
    standardizer = pixel_standardizer(jax.random.key(config.seed + 4), splits["train"], config.alpha)
    metrics["test_bpd_logit_gaussian"] = float(jnp.mean(_gaussian_bpd(test_key, jnp.asarray(evals["test"]),
                                                                      standardizer, config.alpha)))
    metrics["spline_range_coverage"] = range_coverage(jax.random.key(config.seed + 4), splits["train"],
                                                      config.alpha, standardizer, config.spline.boundary)
    curves, samples, checks = {}, {}, {}
    conv = config.convergence
    for name, flow in _make_flows(config).items():
        cfg = config[name]
        result = train_flow(flow, {**splits, "val": evals["val"]}, standardizer, cfg, config, wd, name)
        metrics[f"test_bpd_{name}"] = mean_bpd(flow, result.params, evals["test"], test_key, config.alpha,
                                               standardizer)
        best = min(result.eval_history, key=lambda r: r["val_bpd"])
        metrics[f"val_bpd_{name}"] = best["val_bpd"]
        metrics[f"best_step_{name}"] = best["step"]
        drop, tail = experiment.plateau([r["val_bpd"] for r in result.eval_history], conv.plateau_fraction)
        metrics[f"val_plateau_drop_{name}"] = drop
        checks[f"{name} validation curve flattened"] = (
            drop < conv.plateau_tol, f"best validation bits/dim {best['val_bpd']:.4f} at step {best['step']} of "
                                     f"{cfg.num_steps}; it fell {drop:.4f} over the last {tail} evaluations "
                                     f"(flat: < {conv.plateau_tol:g})")
        curves[name] = (result.history, result.eval_history, best["step"])
        samples[name] = _samples(flow, result.params, jax.random.key(config.seed + 3),
                                 max(config.num_quality_samples, config.num_samples), config.num_samples,
                                 config.alpha, standardizer)
    for name in samples:
        metrics[f"margin_{name}_vs_independent"] = metrics["test_bpd_independent"] - metrics[f"test_bpd_{name}"]
    wd.save_arrays("samples_mnist7", **{f"images_{name}": x[:config.num_quality_samples, ..., 0]
                                        for name, x in samples.items()})
    wd.write_checks(checks)

    for name, (history, evals_, best_step) in curves.items():
        viz.loss_curves({"train (one dequantisation draw per batch)": ([r["step"] for r in history],
                                                                      [r["loss"] for r in history]),
                         "validation": ([r["step"] for r in evals_], [r["val_bpd"] for r in evals_])},
                        mark_best={"validation": best_step}, ylabel="bits/dim (256 levels)",
                        title=f"{name}: bits/dim (test {metrics[f'test_bpd_{name}']:.3f}, independent "
                              f"{metrics['test_bpd_independent']:.3f})", path=wd.figure_path(f"{name}_loss"))
    for name, images in samples.items():
        viz.image_grid(images[:config.num_samples], 10, title=f"{name}: {config.num_samples} samples",
                       path=wd.figure_path(f"{name}_samples"))
    viz.image_grid(splits["test"][:config.num_samples], 10, title="test images", path=wd.figure_path("test_images"))
    wd.save_table("bits_per_dim", [
        {"model": "independent per-pixel categorical", "test_bpd": metrics["test_bpd_independent"],
         "kind": "exact discrete NLL", "best_step": None, "num_steps": None, "converged": None},
        *[{"model": n, "test_bpd": metrics[f"test_bpd_{n}"], "kind": "dequantised upper bound",
           "best_step": metrics[f"best_step_{n}"], "num_steps": config[n].num_steps,
           "converged": checks[f"{n} validation curve flattened"][0]} for n in samples]])
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
