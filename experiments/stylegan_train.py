"""StyleGAN2 trained on Olivetti faces (64 x 64 grey): the training command of the shipped generator.

Data: the Olivetti faces of `jgen.data.faces.olivetti_splits(**config.split)` (by person: 32 people train, the
80 faces of 8 held-out people are never seen; they are `stylegan_inversion`'s targets), scaled to [-1, 1].
Model (`jgen.gan.stylegan2`): the StyleGAN2 generator of `config.model` and its residual discriminator; training
(`jgen.gan.training`): non-saturating logistic loss, lazy R1 (`config.gan.r1_gamma` every `r1_every` steps),
G_ema, tracked w_avg, style mixing, x-flip and translation augmentation on everything D sees, Adam(0, 0.99),
all in one `jgen.train.fit` step (resumable: a re-run with the same workdir continues from the checkpoint).

What is reported:

* Loss curves (loss_d, loss_g, the R1 penalty, mean D logits on real and fake).
* Sample grids of G_ema (truncation psi 1 and 0.7), a style-mixing grid (coarse layers from the row's latent,
  the rest from the column's), and real training faces beside them.
* Sample quality in the Olivetti classifier's features (`jgen.metrics.classifier`, 64 x 64): `fd_classifier`
  beside `fd_classifier_floor` (real held-out images of the classifier's split against the same training
  reference) at `num_quality_samples` samples (80: the classifier's test set is 80 faces), for G_ema at psi 1
  (`fd_classifier`), psi 0.7 (`fd_classifier_psi07`) and the untrained generator (`fd_classifier_init`), plus
  precision / recall / coverage. The classifier's reference contains all 40 people, the generator saw 32.
* With `--config.export_dir=jgen/gan/pretrained` (what the full preset's command in the README does) G_ema is
  written as the shipped generator `config.export_name` (`jgen.gan.pretrained`), with this command, the
  quality numbers and the sample seed recorded in its json.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, train, viz
from jgen.data import BatchIterator, faces
from jgen.gan import pretrained, stylegan2 as sg, training

RUN = "stylegan"
DATASET = "olivetti_faces"
QUALITY_KEYS = ("fd_classifier", "precision", "recall", "coverage")


def get_config(preset: str) -> ml_collections.ConfigDict:
    full = preset == "full"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.split = ml_collections.ConfigDict({"by": "person", "test_fraction": 0.2, "seed": 0})
    c.model = sg.stylegan2_config(resolution=64, img_channels=1, z_dim=128 if full else 32,
                                  w_dim=128 if full else 32, mapping_layers=8 if full else 2,
                                  channel_base=1024 if full else 256, channel_max=64 if full else 16)
    c.gan = training.training_config(batch_size=16 if full else 8, r1_gamma=0.2, style_mixing_prob=0.5,
                                     ema_kimg=2.5 if full else 0.5)
    c.train_steps = 3000
    c.fuse_steps = 1  # the step under lax.scan ran >10x slower on XLA CPU (0.7 vs >9 CPU-s per step)
    c.log_every = 100
    c.ckpt_every = 500
    c.num_quality_samples = 80
    c.quality_seed = 0  # the latents of the recorded sample quality: normal(PRNGKey(quality_seed), [n, z_dim])
    c.num_grid = 64
    c.export_dir = ""  # e.g. jgen/gan/pretrained: write G_ema there as the shipped generator export_name
    c.export_name = "olivetti64"
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    for check, block in ((sg.check_config, config.model), (training.check_training_config, config.gan)):
        try:
            check(block)
        except ValueError as e:
            raise experiment.ConfigError(f"--config.{'model' if block is config.model else 'gan'}: {e}") from None
    if config.model.resolution != faces.OLIVETTI_SIZE:
        raise experiment.ConfigError(f"--config.model.resolution={config.model.resolution} is not valid: the "
                                     f"Olivetti classifier that scores the samples reads {faces.OLIVETTI_SIZE} px.")
    if not 20 <= config.num_quality_samples <= 80:
        raise experiment.ConfigError(f"--config.num_quality_samples={config.num_quality_samples} is not valid: "
                                     "expected 20..80 (the floor needs as many real held-out faces).")


def quality(g_config, params, n: int, seed: int, **kw) -> dict[str, float]:
    return training.sample_metrics(g_config, params, DATASET, num_samples=n, seed=seed, keys=QUALITY_KEYS, **kw)


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    validate_config(config)
    g_config = config.model
    parts = faces.olivetti_splits(**config.split.to_dict())
    x = parts["train"]["image"].astype(np.float32) / 127.5 - 1.0
    key = jax.random.PRNGKey(config.seed)
    state = training.create_state(g_config, config.gan, key, config.train_steps)
    init_params = jax.tree.map(np.array, state.ema_params)
    step = training.make_step(g_config, config.gan, config.train_steps)
    t0 = time.time()
    result = train.fit(step, state, BatchIterator({"x": x}, config.gan.batch_size, seed=config.seed),
                       config.train_steps, wd=wd, name=RUN, log_every=config.log_every,
                       ckpt_every=config.ckpt_every, fuse_steps=config.fuse_steps)
    train_seconds = time.time() - t0
    g_ema, w_avg = result.state.ema_params, result.state.extra["w_avg"]

    curves = {k: experiment.curve(result, k) for k in ("loss_d", "loss_g", "d_real", "d_fake")}
    wd.save_figure(viz.loss_curves(curves, title="StyleGAN2 on Olivetti: losses and mean D logits"), "losses")
    z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (config.num_grid, g_config.z_dim))
    for psi, tag in ((1.0, "psi1"), (0.7, "psi07")):
        imgs = training.generate(g_config, g_ema, z, truncation_psi=psi, w_avg=w_avg)
        wd.save_figure(viz.image_grid(np.asarray(imgs), 8, title=f"G_ema samples, truncation psi {psi}"),
                       f"samples_{tag}")
    wd.save_figure(viz.image_grid(x[:config.num_grid], 8, title="real training faces"), "real_faces")
    wd.save_figure(_style_mixing_figure(g_config, g_ema, w_avg, config.seed + 2), "style_mixing")

    n, qs = config.num_quality_samples, config.quality_seed
    metrics = quality(g_config, g_ema, n, qs)
    metrics.update(quality(g_config, g_ema, n, qs, truncation_psi=0.7, w_avg=w_avg, suffix="_psi07"))
    metrics.update(quality(g_config, init_params, n, qs, suffix="_init"))
    metrics.update(train_seconds=train_seconds, num_params_g=float(sg.num_params(g_ema)),
                   num_params_d=float(sg.num_params(result.state.extra["d"])),
                   final_loss_d=result.history[-1]["loss_d"], final_loss_g=result.history[-1]["loss_g"])
    wd.write_checks({
        "trained_beats_untrained": (metrics["fd_classifier"] < metrics["fd_classifier_init"],
                                    f"fd_classifier {metrics['fd_classifier']:.3g} vs untrained "
                                    f"{metrics['fd_classifier_init']:.3g}"),
    })
    if config.export_dir:
        pretrained.save(config.export_dir, config.export_name, g_config, g_ema, w_avg,
                        dataset=DATASET, split=config.split.to_dict(), train_steps=int(config.train_steps),
                        command="python -m experiments.stylegan_train " + " ".join(sys.argv[1:]),
                        quality={"fd_classifier": metrics["fd_classifier"],
                                 "fd_classifier_floor": metrics["fd_classifier_floor"],
                                 "num_samples": n, "sample_seed": qs, "metric_seed": qs,
                                 "truncation_psi": 1.0, "noise_mode": "const"},
                        train_seconds=train_seconds)
    return metrics


def _style_mixing_figure(g_config, params, w_avg, seed: int, rows: int = 4, cols: int = 4, cutoff: int | None = None):
    """Row r, column c: coarse layers (0..cutoff-1) from row latent r, the rest from column latent c."""
    G = sg.Generator(g_config)
    n = sg.num_ws(g_config.resolution)
    cutoff = n // 2 if cutoff is None else cutoff
    z = jax.random.normal(jax.random.PRNGKey(seed), (rows + cols, g_config.z_dim))

    @jax.jit
    def grid(z):
        w = G.apply({"params": params}, z, truncation_psi=0.7, w_avg=w_avg, method=G.mapping)
        ws = sg.broadcast_ws(w, n)
        a = jnp.repeat(ws[:rows], cols, 0)
        b = jnp.tile(ws[rows:], (rows, 1, 1))
        return G.apply({"params": params}, jnp.concatenate([ws[rows:], sg.style_mix(a, b, cutoff)]),
                       method=G.synthesis)

    images = np.asarray(grid(z))
    return viz.image_grid(images, cols, title=f"style mixing: first row = fine styles; rows below take layers "
                                               f"0..{cutoff - 1} from their own latent")


if __name__ == "__main__":
    experiment.main(get_config, run)
