"""WaveNet for image modelling: WaveNet and a gated PixelCNN on 8-bit 7x7 MNIST.

MNIST digits are area-averaged from 28x28 to 7x7 (4x4 means) and rounded back to 8 bits (`jgen.data.mnist7`, the
data of `flows_mnist7` and `likelihood_table`). Two exact-likelihood autoregressive models of the 49 pixels
in raster order, each with a 256-way categorical per pixel:

* WaveNet (`jgen.autoregressive.wavenet`) on the raster-scanned sequence: causal dilated convolutions with
  dilations 1..32 (receptive field 64 >= 49), gated units, residual and skip connections;
* gated PixelCNN (`jgen.autoregressive.pixelcnn`) on the 2-D image: masked vertical/horizontal stacks, no
  blind spot.

Both are trained on the exact negative log-likelihood in bits/dim; 5,000 training images are held out as a
validation set for the curves, and the 10,000 MNIST test images give the reported test bits/dim. Sampling
is ancestral (49 steps); for WaveNet it is timed with and without the activation queues of fast WaveNet
generation (Paine et al., 2016), which produce the same pixels.

Samples for the likelihood table's sample-quality columns: `num_quality_samples` per model, drawn in blocks
of `num_samples` with the compiled samplers (cached WaveNet, PixelCNN; block 0 is the one shown and timed),
saved as `artifacts/samples_mnist7.npz` (`images_wavenet`, `images_pixelcnn`: uint8 [n, 7, 7]);
`likelihood_table` scores them on the 7x7 classifier beside the real-data floor.

Convergence: `val_plateau_drop_<model>` is how much the best validation bits/dim of the training curve still
fell over its last `convergence.plateau_fraction` of the evaluations (`jgen.experiment.plateau`);
`checks.json` holds one check per model, flat meaning a drop below `convergence.plateau_tol` bits/dim.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, viz
from jgen.autoregressive import pixelcnn, wavenet
from jgen.batching import map_batches
from jgen.data import BatchIterator
from jgen.data.mnist7 import IMAGE_SIZE, NUM_VAL, mnist7_splits

NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
EVAL_BATCH = 1000  # images per evaluation call: one compiled shape for the curve, test, val and train sets


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train = 20000 if quick else None  # None: all 55,000 non-validation training images
    c.batch_size = 64
    c.eval_every = 250 if quick else 1000
    c.num_val_curve = 1000  # validation images of each evaluation during training
    c.keep_best = not quick  # full: report the best evaluated params (the quick curves still fall at the end)
    c.num_samples = 100  # shown, timed, and the block size of every sampler call
    c.num_quality_samples = 1000 if quick else 10000  # saved for likelihood_table's sample metrics
    c.timing_repeats = 3
    c.max_eval_images = None  # None: the whole test and validation sets (a cap, for tests only)

    c.convergence = ml_collections.ConfigDict()
    c.convergence.plateau_fraction = 0.2  # the last fifth of the evaluations
    c.convergence.plateau_tol = 0.005  # bits/dim

    c.wavenet = ml_collections.ConfigDict()
    # Full presets: wider and longer than 64 channels x 20,000 steps (the goal: digit-like samples, see
    # likelihood_table), with the best validation params kept.
    c.wavenet.channels = 32 if quick else 128
    c.wavenet.skip_channels = 64 if quick else 256
    c.wavenet.num_steps = 1500 if quick else 60000
    c.wavenet.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                         final_lr_fraction=0.05, clip_grad_norm=1.0)

    c.pixelcnn = ml_collections.ConfigDict()
    c.pixelcnn.channels = 32 if quick else 128
    c.pixelcnn.num_layers = 4 if quick else 8  # 3 + (L - 1) >= 6 rows/columns: sees every earlier pixel
    c.pixelcnn.first_kernel_size = 7
    c.pixelcnn.kernel_size = 3
    c.pixelcnn.head_channels = 64 if quick else 256
    c.pixelcnn.num_steps = 1500 if quick else 60000
    c.pixelcnn.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                          final_lr_fraction=0.05, clip_grad_norm=1.0)
    return c


def _bpd(log_prob_nats) -> jax.Array:
    return -log_prob_nats / (NUM_PIXELS * math.log(2.0))


def _mean_bpd(log_prob_fn, params, x: np.ndarray, batch: int) -> float:
    """Mean bits/dim of `x` under `log_prob_fn(params, x_batch)`, in padded chunks of `batch` images."""
    return float(np.mean(_bpd(map_batches(lambda chunk: log_prob_fn(params, chunk), x, batch)), dtype=np.float64))


def _train(name, log_prob_fn, params, cfg, data, config, wd, key, batch):
    """Adam on the exact bits/dim of `data["train"]`, evaluated on `data["curve"]` every `eval_every` steps."""
    def loss_fn(params, batch, rng):
        return _bpd(log_prob_fn(params, batch["x"])).mean(), {}

    tx = optim.make_optimizer(cfg.optim, cfg.num_steps)
    batches = BatchIterator({"x": data["train"].astype(np.int32)}, config.batch_size, seed=config.seed)
    return train.fit_loss(loss_fn, params, tx, batches, cfg.num_steps, key=key, wd=wd, name=name,
                          log_every=50, eval_fn=lambda p: {"val_bpd": _mean_bpd(log_prob_fn, p, data["curve"], batch)},
                          eval_every=config.eval_every, keep_best=config.keep_best)


def _draw(compiled, params, key, n: int, block: int) -> np.ndarray:
    """`n` samples from a sampler compiled for `block`: block 0 uses `key`, block i >= 1 `fold_in(key, i)`."""
    keys = [key] + [jax.random.fold_in(key, i) for i in range(1, -(-n // block))]
    return np.concatenate([np.asarray(compiled(params, k)) for k in keys])[:n]


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    splits = mnist7_splits(config.num_train)
    cap = config.max_eval_images
    images = {"train": splits["train"], "curve": splits["val"][:min(config.num_val_curve, cap or NUM_VAL)],
              "test": splits["test"][:cap], "val": splits["val"][:cap],
              "train_subset": splits["train"][:cap or NUM_VAL]}
    batch = min(EVAL_BATCH, *(len(images[k]) for k in ("curve", "test", "val", "train_subset")))
    seqs = {k: v.reshape(len(v), NUM_PIXELS) for k, v in images.items()}
    keys = jax.random.split(jax.random.key(config.seed), 6)

    wn = wavenet.WaveNet(num_pixels=NUM_PIXELS, num_levels=256, channels=config.wavenet.channels,
                         skip_channels=config.wavenet.skip_channels)
    wn_logp = lambda p, x: wavenet.log_prob(wn, p, x)
    # Initialisers jitted: one compilation instead of one per eager op (the same numbers).
    wn_params = jax.jit(wn.init)(keys[0], jnp.zeros((1, NUM_PIXELS), jnp.int32))
    wn_fit = _train("wavenet", wn_logp, wn_params, config.wavenet, seqs, config, wd, keys[1], batch)

    pc = pixelcnn.GatedPixelCNN(num_levels=256, channels=config.pixelcnn.channels,
                                num_layers=config.pixelcnn.num_layers,
                                first_kernel_size=config.pixelcnn.first_kernel_size,
                                kernel_size=config.pixelcnn.kernel_size,
                                head_channels=config.pixelcnn.head_channels)
    pc_logp = lambda p, x: pixelcnn.log_prob(pc, p, x)
    pc_params = jax.jit(pc.init)(keys[2], jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE), jnp.int32))
    pc_fit = _train("pixelcnn", pc_logp, pc_params, config.pixelcnn, images, config, wd, keys[3], batch)

    curves, checks, metrics = {}, {}, {}
    conv = config.convergence
    for label, name, fit, cfg in (("WaveNet", "wavenet", wn_fit, config.wavenet),
                                  ("PixelCNN", "pixelcnn", pc_fit, config.pixelcnn)):
        curves[f"{label} train"] = experiment.curve(fit, "loss")
        curves[f"{label} validation"] = steps_vals = experiment.curve(fit, "val_bpd")
        drop, tail = experiment.plateau(steps_vals[1], conv.plateau_fraction)
        best = int(np.argmin(steps_vals[1]))
        metrics[f"best_step_{name}"] = steps_vals[0][best]
        metrics[f"val_plateau_drop_{name}"] = drop
        checks[f"{name} validation curve flattened"] = (
            drop < conv.plateau_tol, f"best validation bits/dim {steps_vals[1][best]:.4f} (first "
                                     f"{len(images['curve'])} validation images) at step {steps_vals[0][best]} of "
                                     f"{cfg.num_steps}; it fell {drop:.4f} over the last {tail} evaluations "
                                     f"(flat: < {conv.plateau_tol:g})")
    viz.loss_curves(curves, title="7x7 MNIST, 8 bit", ylabel="bits/dim", path=wd.figure_path("loss"))
    wd.write_checks(checks)

    n = config.num_samples
    # Each sampler is compiled once, then draws the samples and is timed.
    samplers = {
        "cached": (lambda p, k: wavenet.sample(wn, p, k, n, cached=True), wn_fit.params, keys[4]),
        "naive": (lambda p, k: wavenet.sample(wn, p, k, n, cached=False), wn_fit.params, keys[4]),
        "pixelcnn": (lambda p, k: pixelcnn.sample(pc, p, k, n, (IMAGE_SIZE, IMAGE_SIZE)), pc_fit.params, keys[5]),
    }
    drawn, seconds, quality = {}, {}, {}
    for mode, (fn, params, key) in samplers.items():
        compiled = jax.jit(fn).lower(params, key).compile()
        drawn[mode] = np.asarray(compiled(params, key))
        seconds[mode] = experiment.time_compiled(compiled, params, key, repeats=config.timing_repeats)
        if mode != "naive":  # the naive sampler draws the same pixels as the cached one, slower
            quality[mode] = _draw(compiled, params, key, max(config.num_quality_samples, n), n)
    cached, naive = drawn["cached"], drawn["naive"]
    t_cached, t_naive, t_pixelcnn = seconds["cached"], seconds["naive"], seconds["pixelcnn"]
    wd.save_arrays("samples_mnist7", **{
        f"images_{name}": x[:config.num_quality_samples].reshape(-1, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8)
        for name, x in (("wavenet", quality["cached"]), ("pixelcnn", quality["pixelcnn"]))})
    side = int(math.isqrt(n))
    viz.image_grid(cached.reshape(n, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8), nrow=side,
                   title=f"{n} WaveNet samples (7x7, 8 bit)", path=wd.figure_path("samples_wavenet"))
    viz.image_grid(drawn["pixelcnn"].astype(np.uint8), nrow=side,
                   title=f"{n} gated PixelCNN samples (7x7, 8 bit)", path=wd.figure_path("samples_pixelcnn"))
    viz.image_grid(splits["test"][:n], nrow=side, title=f"{n} test images (7x7, 8 bit)",
                   path=wd.figure_path("test_images"))

    metrics.update({
        "test_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["test"], batch),
        "test_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, images["test"], batch),
        "val_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["val"], batch),
        "val_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, images["val"], batch),
        "train_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["train_subset"], batch),
        "train_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, images["train_subset"], batch),
        "samples_per_s_wavenet_cached": n / t_cached,
        "samples_per_s_wavenet_naive": n / t_naive,
        "samples_per_s_pixelcnn": n / t_pixelcnn,
        "sampling_speedup_cache": t_naive / t_cached,
        "cached_equals_naive_samples": float(np.array_equal(cached, naive)),
        "num_train": len(splits["train"]),
        "num_test": len(images["test"]),
        "params_wavenet": sum(x.size for x in jax.tree.leaves(wn_fit.params)),
        "params_pixelcnn": sum(x.size for x in jax.tree.leaves(pc_fit.params)),
    })
    wd.save_table("results", [
        {"model": "WaveNet", "test_bits_per_dim": metrics["test_bpd_wavenet"],
         "samples_per_s": metrics["samples_per_s_wavenet_cached"], "sampling": "cached queues",
         "best_step": metrics["best_step_wavenet"], "num_steps": config.wavenet.num_steps,
         "converged": checks["wavenet validation curve flattened"][0]},
        {"model": "WaveNet", "test_bits_per_dim": metrics["test_bpd_wavenet"],
         "samples_per_s": metrics["samples_per_s_wavenet_naive"], "sampling": "full pass per pixel",
         "best_step": metrics["best_step_wavenet"], "num_steps": config.wavenet.num_steps,
         "converged": checks["wavenet validation curve flattened"][0]},
        {"model": "gated PixelCNN", "test_bits_per_dim": metrics["test_bpd_pixelcnn"],
         "samples_per_s": metrics["samples_per_s_pixelcnn"], "sampling": "full pass per pixel",
         "best_step": metrics["best_step_pixelcnn"], "num_steps": config.pixelcnn.num_steps,
         "converged": checks["pixelcnn validation curve flattened"][0]},
    ])
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
