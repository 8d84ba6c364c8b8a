"""VAE on STL-10: a convolutional VAE for 96x96 colour images, its samples and reconstructions, latent
interpolation and style transfer by latent arithmetic, each measured with LPIPS.

Data: STL-10's 5,000 labelled training and 100,000 unlabelled images (`train+unlabelled`, 96x96x3, 8-bit)
streamed from the prepared TFDS files through grain (`jgen.data.stream.StreamingBatches`: a fresh shuffle
every epoch, random left-right flips), scaled to [0, 1]; the 8,000 test images for every evaluation; the
labelled training images for the class means of the style transfer. STL-10 cannot be downloaded
everywhere: `--config.dataset=mnist` runs the same experiment offline on 28x28 MNIST digits (intensities in
[0, 1], no flips), and the quick preset does so by default. Each dataset has its own block
(`config.stl10`, `config.mnist`: split, architecture, flips); `config.dataset` picks one.

Model (`jgen.vae`): strided convolutions to the mean and log-variance of q(z | x), a mirrored decoder
(nearest upsampling + convolution for STL-10, against checkerboard artefacts), N(0, I) prior, and a Gaussian
likelihood with one learned scale per colour channel, starting at `gaussian_scale` (Rybkin et al. 2021;
`--config.stl10.model.likelihood=bce` gives the binary cross-entropy on [0, 1] instead), trained on the
negative ELBO for `num_epochs` epochs. The layer table (layer, kernel, stride, channels, output shape,
parameters; latent dimension) is `tables/architecture.csv`; a run on MNIST also writes the STL-10 block's
table as `tables/architecture_stl10.csv`, computed from the config alone.

What is reported:

* Loss curves per epoch: the reconstruction term -log p(x | z), the KL to the prior and their sum (the
  negative ELBO, nats per image), with the negative ELBO of `num_val` test images after each epoch
  (`tables/epochs.csv`); `test_neg_elbo_nats`, `test_recon_nats` and `test_kl_nats` on `num_test` test images.
* 10 samples from the prior and reconstructions of test images (the decoder's mean at the posterior mean).
* Reconstruction quality on `num_metric_images` test images: `lpips_alex_recon` (mean LPIPS v0.1, AlexNet,
  between each image and its reconstruction; 0 is identical) beside `lpips_alex_unrelated` (LPIPS between
  two different test images: the scale of "unrelated"), and `fd_vgg16_recon`, the Fréchet distance in
  VGG16 ImageNet features between the reconstructions and the originals, beside `fd_vgg16_floor` (as many
  other real test images against the same originals) and `fd_vgg16_samples` (prior samples against them).
  Images smaller than `lpips_min_size` / `vgg_min_size` (MNIST) are upsampled bilinearly and grey is
  repeated to three channels.
* Latent interpolation: z = (1 - alpha) z_1 + alpha z_2, alpha in {0, 0.25, 0.5, 0.75, 1}, between the
  posterior means of two images of different classes, for two pairs (`figures/interpolation`).
* Style transfer by latent arithmetic, two pairs (A, B) of different classes each: z_new = z_A + lambda
  (z_B - z_mean(class of B)), z_mean the mean posterior mean of `num_class_mean` images of B's class among
  the first `num_labelled` labelled training images, so B's deviation from its class (its style) is added
  to A (`figures/style_transfer_lambda`);
  and z'_new = z_A + alpha (z_B - z_A) (`figures/style_transfer_alpha`; algebraically the interpolation on
  a finer grid), lambda and alpha in {0, 0.2, ..., 1}.
* "Gradually morphs", measured: LPIPS of each decoded step to the original A and to the original B, per
  step, averaged over `num_path_pairs` random pairs of different classes (the figures show the first two):
  `tables/lpips_paths.csv` and `figures/lpips_paths`. The metrics `<path>_lpips_to_a_start/_end`,
  `<path>_lpips_to_b_start/_end` are the first and last steps, and `<path>_monotone_fraction` the fraction
  of steps along which LPIPS to A rises and LPIPS to B falls (1 = a steady morph). alpha = 0 and lambda = 0
  decode z_A, A's reconstruction: `path_start_max_abs_diff` is the largest pixel difference, 0 up to
  float rounding.

Checks (`checks.json`): the alpha path moves away from A and towards B; alpha = 0 and lambda = 0 give A's
reconstruction; reconstructions are perceptually closer to their images than unrelated test images are.

References:
  Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014. Coates, Lee & Ng, AISTATS 2011 (STL-10).
  Zhang et al., LPIPS, CVPR 2018. White, Sampling Generative Networks, 2016. Larsen et al., ICML 2016.
"""

from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np

from jgen import experiment, optim, train, vae, viz
from jgen.batching import map_batches
from jgen.data import MissingDataError, load
from jgen.data.builders import Stl10
from jgen.data.stream import StreamingBatches, random_flip
from jgen.metrics import perceptual, sample_quality
from jgen.vae import latent, training

CLASSES = {"stl10": Stl10.CLASSES, "mnist": tuple(str(d) for d in range(10))}
IMAGE_SHAPES = {"stl10": (96, 96, 3), "mnist": (28, 28, 1)}
INTERPOLATION_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
STYLE_WEIGHTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
LIKELIHOODS = ("gaussian", "bce")  # the data are intensities in [0, 1]


def _dataset_block(name: str, quick: bool) -> ml_collections.ConfigDict:
    b = ml_collections.ConfigDict()
    if name == "stl10":
        b.train_split = "train+unlabelled[:10000]" if quick else "train+unlabelled"
        b.flip = True
        b.model = vae.vae_config(image_shape=IMAGE_SHAPES[name], latent_dim=64 if quick else 128,
                                 channels=(32, 64, 128, 256) if quick else (64, 128, 256, 512),
                                 kernels=(4, 4, 4, 4), strides=(2, 2, 2, 2), upsample="resize",
                                 likelihood="gaussian", learn_scale=True)
    else:
        b.train_split = "train[:10000]" if quick else "train"
        b.flip = False
        b.model = vae.vae_config(image_shape=IMAGE_SHAPES[name], latent_dim=16 if quick else 32,
                                 channels=(32, 64) if quick else (64, 128), kernels=(4, 4), strides=(2, 2),
                                 likelihood="gaussian", learn_scale=True)
    return b


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "mnist" if quick else "stl10"
    c.stl10 = _dataset_block("stl10", quick)
    c.mnist = _dataset_block("mnist", quick)
    c.num_epochs = 5 if quick else 50
    c.batch_size = 128
    c.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                 final_lr_fraction=0.05 if quick else 0.01, clip_grad_norm=1000.0)
    c.num_val = 500 if quick else 2000  # test images evaluated after every epoch
    c.num_test = 2000 if quick else None  # None: every test image
    c.eval_batch = 250
    c.num_labelled = 5000  # the first labelled training images (all of STL-10's), for the class means
    c.num_class_mean = 300 if quick else 500  # of them, images per class averaged into z_mean
    c.num_path_pairs = 40 if quick else 200
    c.num_metric_images = 200 if quick else 8000
    c.fd_vgg16 = True  # VGG16 features cost ~0.07 CPU s per 32x32 image with XLA:CPU (~0.6 s at 96x96)
    c.lpips_min_size = 64  # AlexNet's receptive fields need more than MNIST's 28 px
    c.vgg_min_size = 16  # VGG16's five stages need 16 px; MNIST stays at 28
    c.metric_batch = 100
    c.num_threads = 2  # grain reader threads
    return c


def validate_config(config) -> None:
    if config.dataset not in CLASSES:
        raise experiment.ConfigError(f"config.dataset={config.dataset!r} is not known; expected one of "
                                     f"{', '.join(CLASSES)} (mnist runs offline)")
    for name in CLASSES:
        block = config[name]
        vae.check_config(block.model, f"{name}.model")
        if tuple(block.model.image_shape) != IMAGE_SHAPES[name]:
            raise experiment.ConfigError(f"config.{name}.model.image_shape={tuple(block.model.image_shape)} must "
                                         f"be {name}'s image shape {IMAGE_SHAPES[name]}")
        if block.model.likelihood not in LIKELIHOODS:
            raise experiment.ConfigError(f"config.{name}.model.likelihood={block.model.likelihood!r}: the images are "
                                         f"intensities in [0, 1]; use one of {', '.join(LIKELIHOODS)}")


# Data -----------------------------------------------------------------------------------------------------
def _missing_stl10(e: MissingDataError) -> MissingDataError:
    err = MissingDataError(e.name, e.files, e.directory)
    err.args = (f"{e}\nvae_stl10 needs the STL-10 binary release (stl10_binary.tar.gz, 2.6 GB, from "
                f"{Stl10.HOMEPAGE}); without it, run the same experiment offline on MNIST with "
                "--config.dataset=mnist.",)
    return err


def _load_data(config) -> tuple[StreamingBatches, dict[str, np.ndarray]]:
    """The streamed training batches and, in memory, the test set and the labelled images for class means."""
    name, block = config.dataset, config[config.dataset]
    try:
        batches = StreamingBatches(name, block.train_split, config.batch_size, seed=config.seed, keys=("image",),
                                   augment=random_flip if block.flip else None, num_threads=config.num_threads)
        test = load(name, "test" if config.num_test is None else f"test[:{config.num_test}]")
        labelled = load(name, f"train[:{config.num_labelled}]")
    except MissingDataError as e:
        raise (_missing_stl10(e) if name == "stl10" else e) from e
    per_class = [np.flatnonzero(labelled["label"] == k)[:config.num_class_mean] for k in range(len(CLASSES[name]))]
    keep = np.sort(np.concatenate(per_class))
    return batches, {"test": test["image"], "test_labels": test["label"], "labelled": labelled["image"][keep],
                     "labelled_labels": labelled["label"][keep]}


def _unit(images_u8) -> np.ndarray:
    return np.asarray(images_u8, np.float32) / 255.0


# Perceptual metrics ---------------------------------------------------------------------------------------
@functools.partial(jax.jit, static_argnums=1)
def _metric_space(x: jax.Array, min_size: int) -> jax.Array:
    """[n, H, W, C] in [0, 1] -> [-1, 1], upsampled bilinearly so the short side is at least `min_size`."""
    n, h, w, c = x.shape
    s = max(1.0, min_size / min(h, w))
    if s > 1:
        x = jax.image.resize(x, (n, round(h * s), round(w * s), c), "bilinear")
    return 2.0 * x - 1.0


def lpips_pairs(x, y, config) -> np.ndarray:
    """LPIPS (AlexNet, v0.1) [n] between image batches x, y [n, H, W, C] in [0, 1]."""
    params = perceptual.load_lpips("alexnet")
    size = config.lpips_min_size
    pairs = np.stack([np.asarray(x, np.float32), np.asarray(y, np.float32)], axis=1)
    return map_batches(lambda p: perceptual.lpips(_metric_space(p[:, 0], size), _metric_space(p[:, 1], size),
                                                  params=params), pairs, config.metric_batch)


def _vgg16(images, config) -> np.ndarray:
    x = map_batches(lambda b: _metric_space(b, config.vgg_min_size), np.asarray(images, np.float32),
                    config.metric_batch)
    return perceptual.vgg16_embedding(x, batch_size=config.metric_batch)


def _reconstruction_quality(originals, recon, others, samples, config) -> dict[str, float]:
    """LPIPS and FD-VGG16 of reconstructions (module docstring), each beside its reference."""
    shift = np.random.default_rng(config.seed + 5).integers(1, len(originals))
    out = {"lpips_alex_recon": float(np.mean(lpips_pairs(originals, recon, config))),
           "lpips_alex_unrelated": float(np.mean(lpips_pairs(originals, np.roll(originals, shift, 0), config)))}
    if config.fd_vgg16:
        e_orig, e_rec, e_other, e_samp = (_vgg16(a, config) for a in (originals, recon, others, samples))
        out.update(fd_vgg16_recon=sample_quality.frechet_distance(e_rec, e_orig),
                   fd_vgg16_samples=sample_quality.frechet_distance(e_samp, e_orig),
                   fd_vgg16_floor=sample_quality.frechet_distance(e_other, e_orig), num_samples=len(originals))
    return out


# Latent paths ---------------------------------------------------------------------------------------------
def _pairs_of_different_classes(labels: np.ndarray, num: int, seed: int) -> np.ndarray:
    """[num, 2] indices (a, b) with labels[a] != labels[b]; the first two pairs use four distinct classes."""
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    first = [rng.choice(np.flatnonzero(labels == c)) for c in classes[:4]] if len(classes) >= 4 else []
    out = [(first[0], first[1]), (first[2], first[3])] if first else []
    while len(out) < num:
        a, b = rng.choice(len(labels), 2, replace=False)
        if labels[a] != labels[b]:
            out.append((a, b))
    return np.asarray(out[:num])


# Each path: (figure name, title, the weight's symbol).
PATHS = {"interpolation": ("interpolation", "latent interpolation z = (1 - alpha) z_1 + alpha z_2", "alpha"),
         "style_lambda": ("style_transfer_lambda", "style transfer z_A + lambda (z_B - z_mean(class of B))", "lambda"),
         "style_alpha": ("style_transfer_alpha", "style transfer z_A + alpha (z_B - z_A)", "alpha")}


def _paths(z_a, z_b, m_b) -> dict[str, tuple[tuple[float, ...], np.ndarray]]:
    """Each path's weights and latents [P, K, D]."""
    return {"interpolation": (INTERPOLATION_ALPHAS, latent.interpolate(z_a, z_b, INTERPOLATION_ALPHAS)),
            "style_lambda": (STYLE_WEIGHTS, latent.style_transfer(z_a, z_b, m_b, STYLE_WEIGHTS)),
            "style_alpha": (STYLE_WEIGHTS, latent.interpolate(z_a, z_b, STYLE_WEIGHTS))}


def _latent_paths(decode_mean, mean, images, labels, class_means, recon, config, wd) -> dict[str, float]:
    pairs = _pairs_of_different_classes(labels, max(2, config.num_path_pairs), config.seed + 9)
    a, b = pairs[:, 0], pairs[:, 1]
    names = CLASSES[config.dataset]
    paths = _paths(mean[a], mean[b], class_means[labels[b]])
    rows, metrics, start_diff = [], {}, 0.0
    fig, axes = viz.panel_grid(1, len(paths), panel_size=(4.2, 3.2), title=f"LPIPS along the latent paths "
                               f"(mean over {len(pairs)} pairs of different classes)")
    for j, (path, (weights, z)) in enumerate(paths.items()):
        P, K, D = z.shape
        decoded = map_batches(decode_mean, z.reshape(P * K, D), config.eval_batch).reshape(P, K, *images.shape[1:])
        start_diff = max(start_diff, float(np.max(np.abs(decoded[:, 0] - recon[a]))))
        flat = decoded.reshape(P * K, *images.shape[1:])
        to_a = lpips_pairs(flat, np.repeat(images[a], K, 0), config).reshape(P, K)
        to_b = lpips_pairs(flat, np.repeat(images[b], K, 0), config).reshape(P, K)
        for k, w in enumerate(weights):
            rows.append({"path": path, "weight": w, "lpips_to_a": float(to_a[:, k].mean()),
                         "lpips_to_b": float(to_b[:, k].mean()), "lpips_to_a_pair1": float(to_a[0, k]),
                         "lpips_to_b_pair1": float(to_b[0, k]), "lpips_to_a_pair2": float(to_a[1, k]),
                         "lpips_to_b_pair2": float(to_b[1, k])})
        monotone = np.mean((np.diff(to_a, axis=1) > 0) & (np.diff(to_b, axis=1) < 0))
        metrics.update({f"{path}_lpips_to_a_start": float(to_a[:, 0].mean()),
                        f"{path}_lpips_to_a_end": float(to_a[:, -1].mean()),
                        f"{path}_lpips_to_b_start": float(to_b[:, 0].mean()),
                        f"{path}_lpips_to_b_end": float(to_b[:, -1].mean()),
                        f"{path}_monotone_fraction": float(monotone)})
        figure, title, symbol = PATHS[path]
        viz.line_plot(np.asarray(weights), {"LPIPS to A": to_a.mean(0), "LPIPS to B": to_b.mean(0)}, marker="o",
                      title=title, xlabel=symbol, ylabel="LPIPS (AlexNet)", ax=axes[0, j])
        # The figure: two pairs, each row A | the path | B.
        shown = [np.concatenate([images[a[p]][None], decoded[p], images[b[p]][None]]) for p in range(2)]
        viz.image_grid(np.concatenate(shown), K + 2, row_labels=[f"{names[labels[a[p]]]} -> {names[labels[b[p]]]}"
                                                                  for p in range(2)],
                       col_labels=["A"] + [f"{w:g}" for w in weights] + ["B"], xlabel=symbol, title=title,
                       path=wd.figure_path(figure))
    wd.save_figure(fig, "lpips_paths")
    wd.save_table("lpips_paths", rows)
    metrics["path_start_max_abs_diff"] = start_diff
    metrics["num_path_pairs"] = len(pairs)
    return metrics


# The experiment -------------------------------------------------------------------------------------------
def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    block = config[config.dataset]
    batches, data = _load_data(config)
    model = vae.make_vae(block.model)
    wd.save_table("architecture", vae.layer_table(block.model))
    if config.dataset != "stl10":
        wd.save_table("architecture_stl10", vae.layer_table(config.stl10.model))
    test = _unit(data["test"])
    val = test[:config.num_val]
    key = jax.random.key(config.seed)
    params = training.init_params(model, block.model, key, val[:1])
    epoch = batches.steps_per_epoch
    num_steps = config.num_epochs * epoch
    val_key = jax.random.key(config.seed + 7)
    eval_fn = lambda p: {"val_neg_elbo": float(-training.elbo_in_batches(model, p, val, val_key,
                                                                         batch_size=config.eval_batch).elbo.mean())}
    fit = train.fit_loss(training.elbo_loss(model, training.scale_uint8), params,
                         optim.make_optimizer(config.optim, num_steps), batches, num_steps, key=key, wd=wd,
                         name="vae", log_every=epoch, eval_every=epoch, ckpt_every=epoch, eval_fn=eval_fn,
                         progress=False)
    params = fit.params
    parts = training.elbo_in_batches(model, params, test, jax.random.key(config.seed + 1), batch_size=config.eval_batch)
    metrics = {"num_train": batches.num_examples, "num_epochs": config.num_epochs, "steps_per_epoch": epoch,
               "num_params": vae.num_params(params), "latent_dim": block.model.latent_dim,
               "test_neg_elbo_nats": float(-parts.elbo.mean()), "test_recon_nats": float(-parts.recon.mean()),
               "test_kl_nats": float(parts.kl.mean()), "num_test": len(test)}

    curves = {name: experiment.curve(fit, k) for name, k in (("total (neg ELBO)", "loss"),
                                                                ("reconstruction", "recon"), ("KL", "kl"))}
    curves["test neg ELBO"] = experiment.curve(fit, "val_neg_elbo")
    curves = {name: (np.asarray(s) / epoch, v) for name, (s, v) in curves.items()}
    by_epoch = {name: dict(zip(*c)) for name, c in curves.items()}
    wd.save_table("epochs", [{"epoch": float(e), **{name: by_epoch[name].get(e) for name in curves}}
                             for e in curves["KL"][0]])
    viz.loss_curves(curves, xlabel="epoch", ylabel="nats per image", title=f"VAE on {config.dataset}: training "
                    f"means per epoch (test neg ELBO {metrics['test_neg_elbo_nats']:.1f})", path=wd.figure_path("loss"))

    encode = jax.jit(lambda x: model.apply(params, x, method="encode"))
    decode_mean = jax.jit(lambda z: model.likelihood.mean(model.apply(params, z, method="decode")))
    mean, _ = map_batches(encode, test, config.eval_batch)
    recon = map_batches(decode_mean, mean, config.eval_batch)
    viz.collage([test[:10], recon[:10]], ["test image", "reconstruction"], title="reconstructions (decoder mean "
                "at the posterior mean)", path=wd.figure_path("reconstructions"))
    n_metric = min(config.num_metric_images, len(test) // 2)
    z_prior = jax.random.normal(jax.random.key(config.seed + 2), (max(10, n_metric), block.model.latent_dim))
    samples = map_batches(decode_mean, np.asarray(z_prior), config.eval_batch)
    viz.image_grid(samples[:10], 10, title="10 samples from the prior (decoder means)", path=wd.figure_path("samples"))

    metrics.update(_reconstruction_quality(test[:n_metric], recon[:n_metric], test[n_metric:2 * n_metric],
                                           samples[:n_metric], config))
    labelled_mean, _ = map_batches(encode, _unit(data["labelled"]), config.eval_batch)
    class_means = latent.class_means(labelled_mean, data["labelled_labels"], len(CLASSES[config.dataset]))
    metrics.update(_latent_paths(decode_mean, mean, test, data["test_labels"], class_means, recon, config, wd))

    m = metrics
    wd.write_checks({
        "interpolation moves from A to B": (m["interpolation_lpips_to_a_end"] > m["interpolation_lpips_to_a_start"]
                                            and m["interpolation_lpips_to_b_end"] < m["interpolation_lpips_to_b_start"],
                                            f"LPIPS to A {m['interpolation_lpips_to_a_start']:.3f} -> "
                                            f"{m['interpolation_lpips_to_a_end']:.3f}, to B "
                                            f"{m['interpolation_lpips_to_b_start']:.3f} -> "
                                            f"{m['interpolation_lpips_to_b_end']:.3f}"),
        "alpha = 0 and lambda = 0 decode A's reconstruction": (m["path_start_max_abs_diff"] < 1e-4,
                                                               f"max |difference| {m['path_start_max_abs_diff']:.2g}"),
        "reconstructions closer than unrelated images": (m["lpips_alex_recon"] < m["lpips_alex_unrelated"],
                                                         f"LPIPS {m['lpips_alex_recon']:.3f} vs "
                                                         f"{m['lpips_alex_unrelated']:.3f}"),
    })
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
