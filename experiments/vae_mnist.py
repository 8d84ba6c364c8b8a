"""Variational Autoencoder on MNIST: a conv VAE on dynamically binarised digits, how it uses its latent space.

Data: the 60,000 MNIST training digits minus the last 5,000 (a validation set for the curves), binarised
afresh at every step (each pixel ~ Bernoulli(intensity), Salakhutdinov & Murray 2008); the 10,000 test
digits binarised once with a fixed seed. The model (`jgen.vae`): a convolutional encoder to the mean and
log-variance of q(z | x), a mirrored transposed-convolution decoder to Bernoulli logits, N(0, I) prior,
trained on the negative ELBO (closed-form KL) with the optimizer of `config.optim`. The architecture is
`config.model`, written out as `tables/architecture.csv`.

What is reported:

* Likelihood: `test_neg_elbo_nats` (one posterior sample per image, all test digits) and the
  importance-weighted bound `test_iwae_nll_nats` with `iwae_k` samples (Burda et al. 2016) on
  `iwae_num_test` test digits (the first ones; the full preset uses k = 5000 on all 10,000), in nats per
  image; the anchors on the same data are 86.76 (single-layer VAE, ELBO) and 84.78 (IWAE, k = 50).
  Curves of the reconstruction term, the KL and their sum; reconstructions; 100 prior samples (Bernoulli
  means).
* (b) q(z | x) depends on x. If it did not (posterior collapse: q(z | x) = p(z) for every x), the KL term
  would be 0, the decoder would ignore z, and every sample would be the same average digit whatever z is.
  The numbers that rule this out: `active_units` (dimensions whose posterior mean varies over test digits
  by more than 0.01; an inactive one carries no information about x), `mutual_information_nats` (a
  minibatch estimate of I(x; z), at most log N = `mutual_information_max_nats`), `mean_posterior_variance`
  (the posterior variances averaged over active units, against the prior's 1: a posterior far narrower than
  the prior pins z down from x), and `posterior_class_r2` (the fraction of the posterior means' variance
  explained by the digit class, 0 when q ignores x). Figures: posterior means of test digits projected on
  their two principal directions and coloured by class; per-dimension posterior variance and KL against
  the prior.
* (c) Latent neighbourhoods: the decoder's images over a 2-D grid (the plane of the
  main run's two principal directions, and a 2-D-latent run's prior quantiles when `latent2d` is set, as
  in the full preset), decodings of small perturbations of encoded test digits, and `latent_smoothness`: the mean pixel distance between the
  decoded images of z and z + r u (u a random unit direction, r = `smoothness_radius`) per unit latent
  distance, over `num_analysis` test digits; `latent_smoothness_classifier` is the same ratio in the MNIST
  classifier's features, and `latent_smoothness_random_pairs` the ratio between two unrelated test digits'
  latents: a local ratio close to it means the images change at the decoder's global rate, without jumps,
  so the image distance shrinks in proportion to the latent distance (`tables/smoothness.csv` has several
  radii).
* (d) Quality and diversity of prior samples with the shared metrics in the feature space of jgen's MNIST
  classifier (`jgen.metrics.classifier`): `fd_classifier`, `precision`, `recall`, `density`, `coverage`,
  `class_coverage` (normalised entropy of the predicted classes, 1 = uniform) and `memorisation` (pixel
  nearest-neighbour ratio test against the training digits), each beside its `_floor`: the same metric
  for as many real test digits (`jgen.metrics.sample_quality.evaluate_samples`).

A second model on 8-bit 7x7 MNIST (`jgen.data.mnist7`, the likelihood table's data) uses the discretised
logistic likelihood, so its IWAE bound is a bound on the discrete NLL in bits/dim: `test_bpd_vae`; its
prior samples (the decoder's modal level) are saved as `artifacts/samples_mnist7.npz` (`images`, uint8
[n, 7, 7]) for `likelihood_table`.

For `compare_ddpm_vae`: `artifacts/samples.npz` (the prior samples, uint8 28x28), `sampling_seconds_per_image`
(decoding, compilation excluded), `train_seconds`, and `artifacts/fd_curve.npz`: the classifier FD of
`fd_track_samples` prior samples at every evaluation against the seconds the fit had run
(`jgen.metrics.fd_tracking.FDTracker`, evaluations excluded).
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, vae, viz
from jgen.batching import map_batches
from jgen.data import BatchIterator, load
from jgen.data.mnist7 import mnist7_splits
from jgen.metrics.fd_tracking import FDTracker
from jgen.vae import latent

NUM_VAL = 5000


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train = 30000 if quick else None  # None: all 55,000 non-validation training digits
    c.batch_size = 64 if quick else 128
    c.num_steps = 1200 if quick else 100_000
    c.fuse_steps = 1  # XLA:CPU runs conv gradients inside a lax.scan ~8x slower; fuse on GPU only
    c.log_every = 100
    c.eval_every = 300 if quick else 5000
    c.num_val = 1000 if quick else NUM_VAL
    c.model = vae.vae_config(image_shape=(28, 28, 1), latent_dim=16 if quick else 32,
                             channels=(32, 64) if quick else (64, 128), kernels=(4, 4), strides=(2, 2),
                             hidden=0 if quick else 512, activation="relu" if quick else "swish")
    c.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                 final_lr_fraction=0.05 if quick else 0.01, clip_grad_norm=100.0)
    c.eval_batch = 500
    c.iwae_k = 100 if quick else 5000
    c.iwae_num_test = 500 if quick else 10000
    c.iwae_batch = 25 if quick else 50
    c.iwae_chunk = 100 if quick else 500
    c.num_analysis = 2000
    c.smoothness_radius = 0.5
    c.smoothness_radii = (0.1, 0.25, 0.5, 1.0, 2.0)
    c.grid_size = 15
    c.latent2d = not quick  # also train a 2-D-latent model for the latent grid
    c.latent2d_steps = 30_000
    c.quality_metrics = True
    c.num_quality_samples = 1000 if quick else 10000
    c.fd_track_samples = 200 if quick else 1000  # prior samples of the FD logged during training (< 20: off)

    c.mnist7 = ml_collections.ConfigDict()
    c.mnist7.num_steps = 1000 if quick else 30_000
    c.mnist7.batch_size = 128
    c.mnist7.model = vae.vae_config(image_shape=(7, 7, 1), latent_dim=8 if quick else 16,
                                    channels=(32, 64) if quick else (64, 128), kernels=(3, 3), strides=(1, 1),
                                    hidden=0 if quick else 256, activation="relu" if quick else "swish",
                                    likelihood="logistic")
    c.mnist7.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 1e-3, schedule="cosine",
                                        final_lr_fraction=0.05 if quick else 0.01, clip_grad_norm=100.0)
    c.mnist7.iwae_k = 50 if quick else 5000
    c.mnist7.iwae_batch = 500 if quick else 100
    c.mnist7.num_samples = 1000 if quick else 10000  # prior samples saved for likelihood_table
    return c


def validate_config(config) -> None:
    for prefix, cfg in (("model", config.model), ("mnist7.model", config.mnist7.model)):
        vae.check_config(cfg, prefix)
    if config.model.likelihood != "bernoulli":
        raise experiment.ConfigError(f"config.model.likelihood={config.model.likelihood!r}: vae_mnist trains on "
                                     "binarised digits; set --config.model.likelihood=bernoulli")
    if config.mnist7.model.likelihood != "logistic":
        raise experiment.ConfigError("config.mnist7.model.likelihood must be 'logistic' (test_bpd_vae is a "
                                     "discrete NLL); set --config.mnist7.model.likelihood=logistic")


# Data -----------------------------------------------------------------------------------------------------
def _binarize(key, images_u8) -> jax.Array:
    return jax.random.bernoulli(key, jnp.asarray(images_u8, jnp.float32) / 255.0).astype(jnp.float32)


def _mnist(config) -> dict[str, np.ndarray]:
    tr, te = load("mnist", "train"), load("mnist", "test")
    n = len(tr["image"]) - NUM_VAL
    train_end = n if config.num_train is None else min(config.num_train, n)
    test_bin = np.asarray(_binarize(jax.random.key(config.seed + 100), te["image"]))
    val_bin = np.asarray(_binarize(jax.random.key(config.seed + 101), tr["image"][n:n + config.num_val]))
    return {"train": tr["image"][:train_end], "train_labels": tr["label"][:train_end], "val": val_bin,
            "test": test_bin, "test_grey": te["image"], "test_labels": te["label"]}


# Training -------------------------------------------------------------------------------------------------
_ELBO_FNS: dict = {}


def _elbo_fn(model):
    """One jitted `(params, x, key) -> Elbo` per model, shared by validation and test."""
    if model not in _ELBO_FNS:
        _ELBO_FNS[model] = jax.jit(lambda p, x, k: vae.elbo(model, p, k, x))
    return _ELBO_FNS[model]


def _train(model, cfg_optim, num_steps: int, batches, prepare, val, config, wd, name: str, key, tracker=None):
    """Minimises the negative ELBO; logs its reconstruction and KL parts; validation neg ELBO every
    `eval_every` steps (and, with a `FDTracker`, the classifier FD of prior samples against seconds)."""
    x0 = prepare(key, jnp.asarray(val[:1]))
    params = jax.jit(model.init)(key, x0, key)
    tx = optim.make_optimizer(cfg_optim, num_steps)

    def loss_fn(p, batch, rng):
        data_key, noise_key = jax.random.split(rng)
        parts = vae.elbo(model, p, noise_key, prepare(data_key, batch["image"]))
        return -jnp.mean(parts.elbo), {"recon": -jnp.mean(parts.recon), "kl": jnp.mean(parts.kl)}

    parts = _elbo_fn(model)
    val_key = jax.random.key(config.seed + 7)
    eval_fn = lambda p: {"val_neg_elbo": float(-map_batches(lambda x: parts(p, x, val_key).elbo, val, config.eval_batch).mean()),
                         **(tracker(p) if tracker is not None else {})}
    if tracker is not None:
        tracker.start()
    return train.fit_loss(loss_fn, params, tx, batches, num_steps, key=key, wd=wd, name=name,
                          log_every=min(config.log_every, num_steps), eval_every=min(config.eval_every, num_steps),
                          ckpt_every=max(config.eval_every, 1), eval_fn=eval_fn, fuse_steps=min(config.fuse_steps, num_steps),
                          progress=False)


def _test_bounds(model, params, x: np.ndarray, key, *, iwae_num: int, iwae_k: int, iwae_batch: int,
                 iwae_chunk: int, eval_batch: int) -> dict[str, float]:
    parts = _elbo_fn(model)
    e = map_batches(lambda b: parts(params, b, key), x, eval_batch)
    iwae = jax.jit(lambda p, x, k: vae.iwae_bound(model, p, k, x, iwae_k, chunk_size=iwae_chunk))
    sub = x[:iwae_num]
    bound = map_batches(lambda b: iwae(params, b, key), sub, iwae_batch)
    return {"test_neg_elbo_nats": float(-e.elbo.mean()), "test_recon_nats": float(-e.recon.mean()),
            "test_kl_nats": float(e.kl.mean()), "test_iwae_nll_nats": float(-bound.mean()),
            "test_neg_elbo_iwae_subset_nats": float(-e.elbo[:iwae_num].mean()), "iwae_k": iwae_k,
            "iwae_num_test": len(sub)}


# Latent-space studies -------------------------------------------------------------------------------------
def _class_r2(mean: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of the posterior means' total variance explained by the class (between-class / total)."""
    m = mean - mean.mean(0)
    between = sum((labels == c).sum() * np.sum(m[labels == c].mean(0) ** 2) for c in np.unique(labels))
    return float(between / np.sum(m**2))


def _posterior_study(mean, log_var, labels, config, wd) -> dict[str, float]:
    au_var = latent.posterior_mean_variance(mean)
    active = au_var > 0.01
    post_var = np.exp(log_var).mean(0)
    kl_dim = 0.5 * np.mean(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=0)
    order = np.argsort(-au_var)
    wd.save_table("posterior_dimensions", [
        {"dimension": int(d), "variance_of_posterior_mean": float(au_var[d]),
         "mean_posterior_variance": float(post_var[d]), "kl_nats": float(kl_dim[d]), "active": bool(active[d])}
        for d in order])
    centre, directions, _ = latent.pca_plane(mean)
    viz.scatter2d((mean - centre) @ directions.T, c=labels, s=3, clabel="digit", xlabel="principal direction 1",
                  ylabel="principal direction 2", title=f"posterior means of {len(mean)} test digits (PCA of "
                  f"{mean.shape[1]}-d latents)", path=wd.figure_path("posterior_means_pca"))
    fig = viz.line_plot(np.arange(len(order)), {"mean posterior variance": post_var[order],
                                               "variance of the posterior mean (active if > 0.01)": au_var[order],
                                               "KL per dimension (nats)": kl_dim[order]},
                        title="q(z | x) against the prior N(0, 1) per latent dimension (prior variance 1)",
                        xlabel="latent dimension (sorted by variance of the posterior mean)", ylabel="value")
    wd.save_figure(fig, "posterior_vs_prior")
    mi = latent.mutual_information(jax.random.key(config.seed + 11), mean, log_var)
    return {"active_units": int(active.sum()), "latent_dim": mean.shape[1],
            "mutual_information_nats": mi, "mutual_information_max_nats": math.log(len(mean)),
            "mean_posterior_variance": float(post_var[active].mean()) if active.any() else 1.0,
            "posterior_class_r2": _class_r2(mean, labels)}


def _grid(decode_mean, z_grid: np.ndarray, size: int, title: str, wd, name: str) -> None:
    images = map_batches(decode_mean, z_grid.astype(np.float32), 256)
    viz.image_grid(images, size, title=title, path=wd.figure_path(name))


def _neighbourhoods(decode_mean, mean, labels, test_grey, config, wd, clf) -> dict[str, float]:
    size = config.grid_size
    centre, directions, std = latent.pca_plane(mean)
    a = np.linspace(-2.5, 2.5, size)
    plane = centre + (a[None, :, None] * std[0] * directions[0] + a[:, None, None] * std[1] * directions[1]).reshape(-1, len(centre))
    _grid(decode_mean, plane, size, "decodings over the plane of the two principal directions (+-2.5 std)",
          wd, "latent_plane")
    # Perturbations: 8 test digits, each with 9 decodings at growing radius along one random direction.
    key = jax.random.key(config.seed + 12)
    z0 = mean[:8]
    u = np.array(jax.random.normal(key, z0.shape))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radii = np.linspace(0.0, 2.0, 9)
    zs = (z0[:, None] + radii[None, :, None] * u[:, None]).reshape(-1, z0.shape[1])
    viz.image_grid(map_batches(decode_mean, zs.astype(np.float32), 256), len(radii),
                   col_labels=[f"{r:.2g}" for r in radii], xlabel="latent distance from the encoded digit",
                   title="decodings of z + r u around 8 encoded test digits", path=wd.figure_path("perturbations"))
    decode = lambda z: map_batches(decode_mean, np.asarray(z, np.float32), 256)
    features = None if clf is None else (lambda x: clf.features(np.asarray(x) * 255.0))
    rows = []
    for r in config.smoothness_radii:
        s = latent.latent_smoothness(decode, jnp.asarray(mean), jax.random.fold_in(key, 1), float(r), features=features)
        rows.append({"radius": float(r), "pixel_distance_per_unit": s["pixels"],
                     "pixel_rms_per_unit": s["pixels_rms"], **({"feature_distance_per_unit": s["features"]}
                                                                 if "features" in s else {})})
    # Unrelated pairs: two different test digits' posterior means.
    random_pairs, mean_dz = latent.unrelated_pairs_ratio(decode, mean, config.seed)
    rows.append({"radius": "unrelated test digits", "pixel_distance_per_unit": random_pairs,
                 "mean_latent_distance": mean_dz})
    wd.save_table("smoothness", rows)
    main = next(r for r in rows if r["radius"] == config.smoothness_radius) if config.smoothness_radius in \
        config.smoothness_radii else rows[0]
    out = {"latent_smoothness": main["pixel_distance_per_unit"], "latent_smoothness_random_pairs": random_pairs,
           "latent_smoothness_radius": float(main["radius"])}
    if "feature_distance_per_unit" in main:
        out["latent_smoothness_classifier"] = main["feature_distance_per_unit"]
    return out


# The shared metrics reported here, as `sample_quality.evaluate_samples` names them (floors: `<key>_floor`).
QUALITY_KEYS = ("fd_classifier", "precision", "recall", "density", "coverage", "class_coverage", "classes_present",
                "memorisation")


def _quality(samples_u8: np.ndarray, clf, config) -> dict[str, float]:
    """Shared sample metrics in the classifier's features, each beside its floor (real test vs real train)."""
    from jgen.metrics import sample_quality

    return sample_quality.evaluate_samples(samples_u8, "mnist", seed=config.seed, clf=clf, keys=QUALITY_KEYS)


def _mnist7_bpd(config, wd) -> dict[str, float]:
    """The discretised-logistic VAE on 8-bit 7x7 MNIST: test_bpd_vae from the IWAE bound."""
    c = config.mnist7
    splits = {k: v[..., None].astype(np.float32) for k, v in mnist7_splits(config.num_train).items()}
    model = vae.make_vae(c.model)
    key = jax.random.key(config.seed + 20)
    batches = BatchIterator({"image": splits["train"]}, c.batch_size, seed=config.seed + 20)
    fit = _train(model, c.optim, c.num_steps, batches, lambda k, x: x, splits["val"][:config.num_val], config, wd,
                 "vae_mnist7", key)
    z = jax.random.normal(jax.random.key(config.seed + 22), (c.num_samples, c.model.latent_dim))
    dec = jax.jit(lambda z: model.likelihood.mean(model.apply(fit.params, z, method="decode")))
    images = map_batches(dec, np.asarray(z), 500)[..., 0]
    wd.save_arrays("samples_mnist7", images=np.clip(np.round(images), 0, 255).astype(np.uint8))  # likelihood_table
    b = _test_bounds(model, fit.params, splits["test"], jax.random.key(config.seed + 21), iwae_num=len(splits["test"]),
                     iwae_k=c.iwae_k, iwae_batch=c.iwae_batch, iwae_chunk=min(c.iwae_k, 100), eval_batch=config.eval_batch)
    dims = 7 * 7
    return {"test_bpd_vae": vae.bits_per_dim(b["test_iwae_nll_nats"], dims),
            "test_bpd_vae_elbo": vae.bits_per_dim(b["test_neg_elbo_nats"], dims), "iwae_k_mnist7": c.iwae_k}


def _get_classifier():
    from jgen.metrics import classifier

    return classifier.get_classifier("mnist")


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    data = _mnist(config)
    model = vae.make_vae(config.model)
    wd.save_table("architecture", vae.layer_table(config.model))
    key = jax.random.key(config.seed)
    batches = BatchIterator({"image": data["train"]}, config.batch_size, seed=config.seed)
    clf = _get_classifier() if config.quality_metrics else None
    tracker = None
    if clf is not None and config.fd_track_samples >= 20:
        z_track = np.asarray(jax.random.normal(jax.random.key(config.seed + 4),
                                               (config.fd_track_samples, config.model.latent_dim)))
        dec_track = jax.jit(lambda p, z: model.likelihood.mean(model.apply(p, z, method="decode")))
        tracker = FDTracker(lambda p: np.clip(np.round(np.asarray(dec_track(p, z_track)) * 255), 0, 255)
                            .astype(np.uint8), "mnist", clf, config.seed)
    start = time.perf_counter()
    fit = _train(model, config.optim, config.num_steps, batches, _binarize, data["val"], config, wd, "vae", key,
                 tracker=tracker)
    params = fit.params
    metrics = {"num_train": len(data["train"]), "num_params": vae.num_params(params),
               "train_seconds": time.perf_counter() - start}
    if tracker is not None:
        wd.save_arrays("fd_curve", **tracker.arrays(), steps=np.array([r["step"] for r in fit.eval_history]),
                       num_samples=config.fd_track_samples)
        metrics.update(fd_track_final=tracker.rows[-1]["fd_track"], fd_track_samples=config.fd_track_samples)
    metrics.update(_test_bounds(model, params, data["test"], jax.random.key(config.seed + 1),
                                iwae_num=config.iwae_num_test, iwae_k=config.iwae_k, iwae_batch=config.iwae_batch,
                                iwae_chunk=config.iwae_chunk, eval_batch=config.eval_batch))

    curves = {name: experiment.curve(fit, key_) for name, key_ in
              (("total (neg ELBO)", "loss"), ("reconstruction", "recon"), ("KL", "kl"))}
    curves["validation neg ELBO"] = experiment.curve(fit, "val_neg_elbo")
    viz.loss_curves(curves, ylabel="nats per digit", title=f"VAE training (test neg ELBO "
                    f"{metrics['test_neg_elbo_nats']:.2f}, IWAE-{config.iwae_k} {metrics['test_iwae_nll_nats']:.2f})",
                    path=wd.figure_path("loss"))

    encode = jax.jit(lambda x: model.apply(params, x, method="encode"))
    decode_mean = jax.jit(lambda z: model.likelihood.mean(model.apply(params, z, method="decode")))
    n_an = min(config.num_analysis, len(data["test"]))
    mean, log_var = map_batches(encode, data["test"][:n_an], config.eval_batch)
    labels = data["test_labels"][:n_an]
    recon = map_batches(decode_mean, mean[:16], 256)
    viz.collage([data["test"][:16], np.asarray(recon)], ["test digit (binarised)", "reconstruction (mean)"],
                title="reconstructions from the posterior mean", path=wd.figure_path("reconstructions"))
    z_prior = jax.random.normal(jax.random.key(config.seed + 2), (max(100, config.num_quality_samples), config.model.latent_dim))
    samples = map_batches(decode_mean, np.asarray(z_prior), 256)
    t0 = time.perf_counter()  # decode_mean is compiled for 256-row chunks by now
    map_batches(decode_mean, np.asarray(z_prior), 256)
    metrics["sampling_seconds_per_image"] = (time.perf_counter() - t0) / len(z_prior)
    wd.save_arrays("samples", images=np.clip(np.round(samples * 255), 0, 255).astype(np.uint8)[..., 0])
    viz.image_grid(samples[:100], 10, title="100 samples from the prior (Bernoulli means)",
                   path=wd.figure_path("samples"))

    metrics.update(_posterior_study(mean, log_var, labels, config, wd))
    metrics.update(_neighbourhoods(decode_mean, mean, labels, data["test_grey"], config, wd, clf))
    if config.latent2d:
        cfg2 = config.model.copy_and_resolve_references()
        cfg2.latent_dim = 2
        model2 = vae.make_vae(cfg2)
        fit2 = _train(model2, config.optim, config.latent2d_steps, batches, _binarize, data["val"], config, wd,
                      "vae_latent2d", jax.random.key(config.seed + 3))
        q = jax.scipy.stats.norm.ppf(jnp.linspace(0.03, 0.97, config.grid_size))
        z2 = np.stack(np.meshgrid(q, q[::-1]), -1).reshape(-1, 2)
        dec2 = jax.jit(lambda z: model2.likelihood.mean(model2.apply(fit2.params, z, method="decode")))
        _grid(dec2, z2, config.grid_size, "2-D latent run: decodings over prior quantiles", wd, "latent_grid_2d")
        metrics["latent2d_val_neg_elbo"] = fit2.eval_history[-1]["val_neg_elbo"]
    if clf is not None:
        metrics.update(_quality(np.clip(np.round(samples[:config.num_quality_samples] * 255), 0, 255).astype(np.uint8),
                                clf, config))
    metrics.update(_mnist7_bpd(config, wd))
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
