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
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, viz
from jgen.autoregressive import pixelcnn, wavenet
from jgen.data import BatchIterator
from jgen.data.mnist7 import IMAGE_SIZE, NUM_VAL, mnist7_splits

NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train = 20000 if quick else None  # None: all 55,000 non-validation training images
    c.batch_size = 64
    c.eval_every = 250
    c.num_samples = 100
    c.timing_repeats = 3

    c.wavenet = ml_collections.ConfigDict()
    c.wavenet.channels = 32 if quick else 64
    c.wavenet.skip_channels = 64 if quick else 128
    c.wavenet.num_steps = 1500 if quick else 20000
    c.wavenet.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                         final_lr_fraction=0.05, clip_grad_norm=1.0)

    c.pixelcnn = ml_collections.ConfigDict()
    c.pixelcnn.channels = 32 if quick else 64
    c.pixelcnn.num_layers = 4 if quick else 8  # 3 + (L - 1) >= 6 rows/columns: sees every earlier pixel
    c.pixelcnn.first_kernel_size = 7
    c.pixelcnn.kernel_size = 3
    c.pixelcnn.head_channels = 64 if quick else 128
    c.pixelcnn.num_steps = 1500 if quick else 20000
    c.pixelcnn.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                          final_lr_fraction=0.05, clip_grad_norm=1.0)
    return c


def _bpd(log_prob_nats) -> jax.Array:
    return -log_prob_nats / (NUM_PIXELS * math.log(2.0))


def _mean_bpd(log_prob_fn, params, x: np.ndarray, batch: int = 2000) -> float:
    """Mean bits/dim of `x` under `log_prob_fn(params, x_batch)`, evaluated in batches."""
    total = 0.0
    for i in range(0, len(x), batch):
        total += float(_bpd(log_prob_fn(params, jnp.asarray(x[i:i + batch]))).sum())
    return total / len(x)


def _train(name, log_prob_fn, params, cfg, splits, config, wd, key):
    def loss_fn(params, batch, rng):
        return _bpd(log_prob_fn(params, batch["x"])).mean(), {}

    val = jnp.asarray(splits["val"][:1000])
    tx = optim.make_optimizer(cfg.optim, cfg.num_steps)
    batches = BatchIterator({"x": splits["train"].astype(np.int32)}, config.batch_size, seed=config.seed)
    return train.fit_loss(loss_fn, params, tx, batches, cfg.num_steps, key=key, wd=wd, name=name,
                          log_every=50, eval_fn=lambda p: {"val_bpd": float(_bpd(log_prob_fn(p, val)).mean())},
                          eval_every=config.eval_every)


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    splits = mnist7_splits(config.num_train)
    seqs = {k: v.reshape(len(v), NUM_PIXELS) for k, v in splits.items()}
    keys = jax.random.split(jax.random.key(config.seed), 6)

    wn = wavenet.WaveNet(num_pixels=NUM_PIXELS, num_levels=256, channels=config.wavenet.channels,
                         skip_channels=config.wavenet.skip_channels)
    wn_logp = lambda p, x: wavenet.log_prob(wn, p, x)
    # Initialisers jitted: one compilation instead of one per eager op (the same numbers).
    wn_params = jax.jit(wn.init)(keys[0], jnp.zeros((1, NUM_PIXELS), jnp.int32))
    wn_fit = _train("wavenet", wn_logp, wn_params, config.wavenet, seqs, config, wd, keys[1])

    pc = pixelcnn.GatedPixelCNN(num_levels=256, channels=config.pixelcnn.channels,
                                num_layers=config.pixelcnn.num_layers,
                                first_kernel_size=config.pixelcnn.first_kernel_size,
                                kernel_size=config.pixelcnn.kernel_size,
                                head_channels=config.pixelcnn.head_channels)
    pc_logp = lambda p, x: pixelcnn.log_prob(pc, p, x)
    pc_params = jax.jit(pc.init)(keys[2], jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE), jnp.int32))
    pc_fit = _train("pixelcnn", pc_logp, pc_params, config.pixelcnn, splits, config, wd, keys[3])

    curves = {}
    for label, fit in (("WaveNet", wn_fit), ("PixelCNN", pc_fit)):
        curves[f"{label} train"] = experiment.curve(fit, "loss")
        curves[f"{label} validation"] = experiment.curve(fit, "val_bpd")
    viz.loss_curves(curves, title="7x7 MNIST, 8 bit", ylabel="bits/dim", path=wd.figure_path("loss"))

    n = config.num_samples
    # Each sampler is compiled once, then both draws the samples and is timed.
    samplers = {
        "cached": (lambda p, k: wavenet.sample(wn, p, k, n, cached=True), wn_fit.params, keys[4]),
        "naive": (lambda p, k: wavenet.sample(wn, p, k, n, cached=False), wn_fit.params, keys[4]),
        "pixelcnn": (lambda p, k: pixelcnn.sample(pc, p, k, n, (IMAGE_SIZE, IMAGE_SIZE)), pc_fit.params, keys[5]),
    }
    drawn, seconds = {}, {}
    for mode, (fn, params, key) in samplers.items():
        compiled = jax.jit(fn).lower(params, key).compile()
        drawn[mode] = np.asarray(compiled(params, key))
        seconds[mode] = experiment.time_compiled(compiled, params, key, repeats=config.timing_repeats)
    cached, naive = drawn["cached"], drawn["naive"]
    t_cached, t_naive, t_pixelcnn = seconds["cached"], seconds["naive"], seconds["pixelcnn"]
    side = int(math.isqrt(n))
    viz.image_grid(cached.reshape(n, IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8), nrow=side,
                   title=f"{n} WaveNet samples (7x7, 8 bit)", path=wd.figure_path("samples_wavenet"))
    viz.image_grid(drawn["pixelcnn"].astype(np.uint8), nrow=side,
                   title=f"{n} gated PixelCNN samples (7x7, 8 bit)", path=wd.figure_path("samples_pixelcnn"))
    viz.image_grid(splits["test"][:n], nrow=side, title=f"{n} test images (7x7, 8 bit)",
                   path=wd.figure_path("test_images"))

    metrics = {
        "test_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["test"]),
        "test_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, splits["test"]),
        "val_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["val"]),
        "val_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, splits["val"]),
        "train_bpd_wavenet": _mean_bpd(wn_logp, wn_fit.params, seqs["train"][:NUM_VAL]),
        "train_bpd_pixelcnn": _mean_bpd(pc_logp, pc_fit.params, splits["train"][:NUM_VAL]),
        "samples_per_s_wavenet_cached": n / t_cached,
        "samples_per_s_wavenet_naive": n / t_naive,
        "samples_per_s_pixelcnn": n / t_pixelcnn,
        "sampling_speedup_cache": t_naive / t_cached,
        "cached_equals_naive_samples": float(np.array_equal(cached, naive)),
        "num_train": len(splits["train"]),
        "num_test": len(splits["test"]),
        "params_wavenet": sum(x.size for x in jax.tree.leaves(wn_fit.params)),
        "params_pixelcnn": sum(x.size for x in jax.tree.leaves(pc_fit.params)),
    }
    wd.save_table("results", [
        {"model": "WaveNet", "test_bits_per_dim": metrics["test_bpd_wavenet"],
         "samples_per_s": metrics["samples_per_s_wavenet_cached"], "sampling": "cached queues"},
        {"model": "WaveNet", "test_bits_per_dim": metrics["test_bpd_wavenet"],
         "samples_per_s": metrics["samples_per_s_wavenet_naive"], "sampling": "full pass per pixel"},
        {"model": "gated PixelCNN", "test_bits_per_dim": metrics["test_bpd_pixelcnn"],
         "samples_per_s": metrics["samples_per_s_pixelcnn"], "sampling": "full pass per pixel"},
    ])
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
