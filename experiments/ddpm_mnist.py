"""DDPM on MNIST: a U-Net noise predictor, the number-of-steps study, the generative process, nearby latents.

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020; DDIM: Song, Meng & Ermon,
"Denoising Diffusion Implicit Models", ICLR 2021.

Data: the first `num_train` of the 55,000 non-validation MNIST training digits, scaled to [-1, 1]. The full
preset trains at 28x28; the quick preset trains at `image_size` = 14 (2x2 area means), because a 28x28
U-Net step costs seconds on this 2-core CPU, and its samples are upsampled (nearest, 2x) back to 28x28
before every metric, so every number is on the classifier's 28x28 scale (a quick-preset FD includes the
blur of 14x14 digits; the floor does not). Model: `jgen.diffusion.UNet` (`config.model`; the parameter
count is `num_params`), the epsilon-prediction loss with t ~ U{1..T} under the schedule `config.schedule`
(the linear one's beta range [1e-4, 0.02] is Ho et al.'s at T = 1000, scaled by 1000 / T for other T),
trained with `jgen.train.fit_loss` and the optimizer of `config.optim`; every sample is drawn from the EMA
parameters (`config.optim.ema_decay`).

What is reported:

* (a) The loss curve (`figures/loss`) and 100 samples as a 10x10 grid (`figures/samples`, drawn with
  `config.sampler`).
* (b) The number of steps, both readings. `tables/steps_T`: models trained with T in `t_study` (the
  main model is the row T = `num_diffusion_steps`; the others train `t_study_num_steps` steps), each
  sampled by the ancestral sampler with its own T steps. `tables/steps_ddim`: the main model sampled by
  DDIM (eta = 0) with `ddim_study` steps. Each row: classifier FD, precision, recall, density, coverage,
  class coverage on `num_quality_samples` samples, each beside its floor (the same metric for as many real
  test digits), and the sampling seconds per 1000 images (compilation excluded; measured on this machine,
  under whatever load it had). Metric keys carry the row: `fd_classifier_T50`, `fd_classifier_ddim10`, ...
* (c) The generative process: `figures/generative_process`, rows x_T -> x_0 at `process_columns` evenly
  spaced steps of the ancestral sampler for `process_seeds` seeds.
* (d) Nearby latents: with DDIM at eta = 0 the map x_T -> x_0 is deterministic, so x_T is a latent code.
  `figures/latent_slerp`: spherical interpolation between two x_T (two pairs); `figures/latent_perturbations`:
  x_T + r u for growing r (u a random unit direction). `latent_smoothness` is measured as in `vae_mnist`:
  the mean pixel distance (28x28 images in [0, 1]) between the images of x_T and x_T + r u per unit latent
  distance (`jgen.vae.latent.latent_smoothness`, r = `smoothness_radius`, over `num_analysis` latents),
  `latent_smoothness_classifier` the same in the classifier's features, `latent_smoothness_random_pairs`
  the ratio for two unrelated x_T; `tables/smoothness` has several radii. The latent here is
  H x W-dimensional (|x_T| ~ sqrt(HW)), the VAE's is `latent_dim`-dimensional: the ratios compare how
  fast images change per unit of each model's own latent distance.
* (e) Quality and diversity of the main model's samples with the shared metrics
  (`jgen.metrics.sample_quality.evaluate_samples`): `fd_classifier`, `precision`, `recall`, `density`,
  `coverage`, `class_coverage`, each beside its `_floor`. During training, `eval_fn` logs a small-sample
  classifier FD (`fd_track_samples` DDIM samples with `fd_track_steps` steps) with the seconds the fit had
  run (`train_seconds`, evaluation excluded); `artifacts/fd_curve.npz` holds that curve for
  `compare_ddpm_vae`, `artifacts/samples.npz` the main samples (uint8 28x28).

MNIST 7x7: a second, small U-Net on 8-bit 7x7 digits (`jgen.data.mnist7`) padded to 8x8 at the network's
input (the diffusion itself runs on the 49 pixels; the prediction is cropped back) reports
`test_bpd_ddpm`, the variational bound (`jgen.diffusion.vlb`: prior term, every KL term, discretised
decoder) in bits/dim on the first `mnist7.num_test` test digits, one noise draw per term and image. It is
an upper bound on the discrete NLL, looser for small T (the quick preset uses T = 100), and on a subset
of the test set when `mnist7.num_test` < 10,000 (`num_test_mnist7` says how many). Its ancestral samples
are saved as `artifacts/samples_mnist7.npz` (`images`, uint8 [n, 7, 7]) for `likelihood_table`.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, viz
from jgen.batching import map_batches
from jgen.data import BatchIterator, load, preprocess
from jgen.data.mnist7 import mnist7_splits
from jgen.diffusion import UNet, make_schedule, noise_prediction_loss, samplers, vlb
from jgen.diffusion.unet import num_params
from jgen.metrics.fd_tracking import FDTracker
from jgen.sharding import shard_if_divisible
from jgen.vae import latent

NUM_VAL = 5000
QUALITY_KEYS = ("fd_classifier", "precision", "recall", "density", "coverage", "class_coverage")


def _unet_config(quick: bool, *, small: bool = False) -> ml_collections.ConfigDict:
    if small:  # the 8x8 (padded 7x7) model
        return ml_collections.ConfigDict(dict(channels=16 if quick else 64, channel_mults=(1, 2),
                                              num_res_blocks=1 if quick else 2,
                                              attention_resolutions=(), dropout=0.0 if quick else 0.1, num_groups=8))
    return ml_collections.ConfigDict(dict(channels=16 if quick else 64, channel_mults=(1, 2) if quick else (1, 2, 2),
                                          num_res_blocks=1 if quick else 2, attention_resolutions=() if quick else (7,),
                                          dropout=0.0 if quick else 0.1, num_groups=8 if quick else 32))


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_train = 20000 if quick else None  # None: all 55,000 non-validation training digits
    c.image_size = 14 if quick else 28
    c.num_diffusion_steps = 100 if quick else 1000  # T of the main model
    c.schedule = "linear"
    c.beta_start = 1e-4  # the linear schedule's range at T = 1000 (scaled by 1000 / T, see _schedule)
    c.beta_end = 2e-2
    c.model = _unet_config(quick)
    c.batch_size = 64 if quick else 128
    c.num_steps = 800 if quick else 200_000
    c.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 2e-4,
                                 warmup_steps=100 if quick else 5000,
                                 schedule="cosine" if quick else "constant", final_lr_fraction=0.1,
                                 clip_grad_norm=1.0, ema_decay=0.995 if quick else 0.9999)
    c.log_every = 50 if quick else 500
    c.eval_every = 200 if quick else 20_000
    c.fd_track_samples = 200 if quick else 1000
    c.fd_track_steps = 10 if quick else 20
    c.sampler = "ddim" if quick else "ddpm"  # of the main samples: "ddpm" (ancestral, T steps) or "ddim"
    c.sample_steps = 50  # DDIM steps when sampler = "ddim"
    c.sample_batch = 100 if quick else 500  # a chunk of every sampling call (quick: quality, FD tracking and latents)
    c.quality_metrics = True
    c.num_quality_samples = 200 if quick else 10000
    c.t_study = (50, 100) if quick else (50, 200, 1000)
    c.t_study_num_steps = 200 if quick else 100_000
    c.ddim_study = (10, 20, 50) if quick else (10, 20, 50, 100, 1000)
    c.process_seeds = 6
    c.process_columns = 10
    c.latent_ddim_steps = 10 if quick else 50
    c.num_analysis = 80 if quick else 1000
    c.smoothness_radius = 0.5
    c.smoothness_radii = (0.5, 2.0) if quick else (0.5, 2.0, 8.0)

    c.mnist7 = ml_collections.ConfigDict()
    c.mnist7.num_diffusion_steps = 100 if quick else 1000
    c.mnist7.model = _unet_config(quick, small=True)
    c.mnist7.batch_size = 64 if quick else 128  # quick: half the compute of the 8x8 U-Net's 500 steps
    c.mnist7.num_steps = 500 if quick else 50_000
    c.mnist7.optim = optim.optim_config(name="adam", learning_rate=2e-3 if quick else 2e-4, warmup_steps=100,
                                        schedule="cosine", final_lr_fraction=0.1, clip_grad_norm=1.0,
                                        ema_decay=0.995 if quick else 0.9999)
    c.mnist7.num_test = 500 if quick else 10000
    c.mnist7.eval_batch = 500  # a chunk of the bound's test digits and of the samples
    c.mnist7.num_samples = 1000 if quick else 10000
    return c


def validate_config(config) -> None:
    if config.image_size not in (14, 28):
        raise experiment.ConfigError(f"config.image_size={config.image_size}: expected 28 (MNIST) or 14 (2x2 means)")
    if config.sampler not in ("ddpm", "ddim"):
        raise experiment.ConfigError(f"config.sampler={config.sampler!r}: expected 'ddpm' or 'ddim'")
    T = config.num_diffusion_steps
    if T not in config.t_study:
        raise experiment.ConfigError(f"config.t_study={tuple(config.t_study)} must contain the main model's "
                                     f"num_diffusion_steps={T} (its row is the main model)")
    bad = [s for s in (*config.ddim_study, config.sample_steps, config.fd_track_steps, config.latent_ddim_steps)
           if not 1 <= s <= T]
    if bad:
        raise experiment.ConfigError(f"DDIM step counts {bad} must lie in 1..num_diffusion_steps={T}")
    if config.quality_metrics and not 20 <= config.num_quality_samples <= 10000:
        raise experiment.ConfigError(f"config.num_quality_samples={config.num_quality_samples} must lie in 20..10000")
    factor = 2 ** (len(config.model.channel_mults) - 1)
    if config.image_size % factor:
        raise experiment.ConfigError(f"image_size={config.image_size} is not divisible by 2^(levels - 1) = {factor}; "
                                     "use fewer config.model.channel_mults")


# The denoiser and its samplers --------------------------------------------------------------------------
class Denoiser(NamedTuple):
    """eps_theta(x_t, t) of a U-Net on images [b, H, W, 1], zero-padded at its input by `pad` pixels
    (bottom/right) and cropped back, so 7x7 digits run through an 8x8 U-Net. With a `mesh` the samplers
    split their chunks over its `data` axis (`jgen.sharding`: one device per CPU core by default)."""

    unet: UNet
    pad: int = 0
    mesh: Any = None

    def apply(self, params, x, t, train: bool = False, key=None):
        p = self.pad
        h = jnp.pad(x, ((0, 0), (0, p), (0, p), (0, 0))) if p else x
        out = self.unet.apply(params, h, t, train, rngs=None if key is None else {"dropout": key})
        return out[:, :x.shape[1], :x.shape[2]] if p else out


def _unet(cfg) -> UNet:
    return UNet(channels=cfg.channels, channel_mults=tuple(cfg.channel_mults), num_res_blocks=cfg.num_res_blocks,
                attention_resolutions=tuple(cfg.attention_resolutions), dropout=cfg.dropout, num_groups=cfg.num_groups)


_STEP_FNS: dict = {}


def _step_fns(den: Denoiser):
    """Jitted single sampler steps `(params, schedule, x, t, ...)` with traced t: one compilation serves every
    step count, eta and sub-sequence (a `lax.scan` per sub-sequence length would compile the U-Net again for
    each row of the steps study)."""
    if den not in _STEP_FNS:
        # The step's key is fold_in(key, i) inside the jitted step: an eager fold_in per step cost more
        # than the U-Net call on this CPU.
        def ddim(params, schedule, x, t, s, key, i, eta):
            return samplers.ddim_step(lambda x, t: den.apply(params, x, t), schedule, x, t, s,
                                      jax.random.fold_in(key, i), eta, True)

        def ddpm(params, schedule, x, t, key, i):
            return samplers.ddpm_step(lambda x, t: den.apply(params, x, t), schedule, x, t,
                                      jax.random.fold_in(key, i), "beta", True)

        _STEP_FNS[den] = (jax.jit(ddim), jax.jit(ddpm))
    return _STEP_FNS[den]


def sample_chain(den: Denoiser, params, schedule, x_T, key, *, sampler: str, steps: int | None = None,
                 eta: float = 0.0, keep: int = 0):
    """x_0 [b, H, W, 1] in [-1, 1] from x_T by "ddpm" (T ancestral steps) or "ddim" (`steps` evenly spaced).

    With `keep` = k > 0 also returns the states after k evenly spaced steps, x_T first, [k + 1, b, H, W, 1].
    """
    ddim_fn, ddpm_fn = _step_fns(den)
    T = schedule.num_steps
    ts = np.arange(T, 0, -1, dtype=np.int32) if sampler == "ddpm" else samplers.ddim_timesteps(T, steps or T)
    marks = set(np.round(np.linspace(0, len(ts), keep + 1)[1:]).astype(int)) if keep else set()
    x = shard_if_divisible(jnp.asarray(x_T), den.mesh)
    states = [x]
    for i, t in enumerate(ts):
        if sampler == "ddpm":
            x = ddpm_fn(params, schedule, x, np.int32(t), key, np.int32(i))
        else:
            s = ts[i + 1] if i + 1 < len(ts) else 0
            x = ddim_fn(params, schedule, x, np.int32(t), np.int32(s), key, np.int32(i), np.float32(eta))
        if i + 1 in marks:
            states.append(x)
    return (x, jnp.stack(states)) if keep else x


def draw_samples(den, params, schedule, x_T: np.ndarray, key, batch: int, **kw) -> tuple[np.ndarray, float]:
    """Samples [n, H, W, 1] from the noises x_T [n, ...] in chunks of `batch`, and the sampling seconds per
    1000 images (one step is run on a chunk before timing, so compilation is not timed)."""
    run = lambda xt: sample_chain(den, params, schedule, xt, key, **kw)
    chunk = shard_if_divisible(jnp.asarray(np.resize(x_T, (batch, *x_T.shape[1:]))), den.mesh)
    ddim_fn, ddpm_fn = _step_fns(den)
    T, i = np.int32(schedule.num_steps), np.int32(0)
    jax.block_until_ready(ddpm_fn(params, schedule, chunk, T, key, i) if kw.get("sampler") == "ddpm" else
                          ddim_fn(params, schedule, chunk, T, np.int32(0), key, i, np.float32(0.0)))
    start = time.perf_counter()
    out = map_batches(run, x_T, batch)
    return out, (time.perf_counter() - start) / len(x_T) * 1000.0


def to_uint8_28(x: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] [n, h, h, 1] -> uint8 [n, 28, 28] (nearest upsampling when h = 14)."""
    x = np.asarray(x)[..., 0]
    if x.shape[1] != 28:
        r = 28 // x.shape[1]
        x = np.repeat(np.repeat(x, r, axis=1), r, axis=2)
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def slerp(a: np.ndarray, b: np.ndarray, alphas) -> np.ndarray:
    """Spherical interpolation sin((1 - s) w) / sin w a + sin(s w) / sin w b, w the angle between a and b
    (Shoemake 1985; White 2016): Gaussian noises keep their typical norm along the path. [K, *a.shape]."""
    a64, b64 = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    w = math.acos(float(np.clip(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)), -1.0, 1.0)))
    out = [(math.sin((1 - s) * w) * a64 + math.sin(s * w) * b64) / math.sin(w) for s in alphas]
    return np.stack(out).reshape((len(out),) + np.shape(a)).astype(np.float32)


# Training ------------------------------------------------------------------------------------------------
_INIT_FNS: dict = {}
_COMPILE_LIGHT = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _init(den: Denoiser, key, shape):
    unet = den.unet
    if unet not in _INIT_FNS:  # one compilation of init per architecture (it takes seconds on this CPU)
        # Init runs once: XLA's backend optimisation passes would cost more than they save (4.9 -> 2.5 s here).
        _INIT_FNS[unet] = jax.jit(lambda k, x: unet.init(k, x, jnp.ones((x.shape[0],), jnp.int32)),
                                  compiler_options=_COMPILE_LIGHT)
    h, w = shape[0] + den.pad, shape[1] + den.pad
    return _INIT_FNS[unet](key, jnp.zeros((1, h, w, shape[2])))


def _train(den, schedule, cfg_optim, num_steps, batches, shape, key, wd, name, *, log_every, eval_every,
           eval_fn=None):
    params = _init(den, key, shape)
    tx = optim.make_optimizer(cfg_optim, num_steps)
    if eval_fn is not None and hasattr(eval_fn, "start"):
        eval_fn.start()  # an FDTracker counts seconds from here, as vae_mnist's does

    def loss_fn(p, batch, rng):
        k_loss, k_drop = jax.random.split(rng)
        eps_fn = lambda x, t: den.apply(p, x, t, train=True, key=k_drop)
        return noise_prediction_loss(eps_fn, schedule, batch["image"], k_loss), {}

    return train.fit_loss(loss_fn, params, tx, batches, num_steps, key=key, wd=wd, name=name,
                          log_every=min(log_every, num_steps), eval_every=min(eval_every, num_steps),
                          ckpt_every=max(eval_every, 1), eval_fn=eval_fn, ema_decay=optim.ema_decay(cfg_optim),
                          progress=False, mesh=den.mesh)


# Data ----------------------------------------------------------------------------------------------------
def _mnist(config) -> np.ndarray:
    tr = load("mnist", "train")["image"]
    n = len(tr) - NUM_VAL
    x = tr[:n if config.num_train is None else min(config.num_train, n)]
    if x.ndim == 3:
        x = x[..., None]
    if config.image_size != 28:
        x = np.asarray(preprocess.area_resize(x, config.image_size))
    return (np.asarray(x, np.float32) / 127.5 - 1.0).astype(np.float32)


def _schedule(config, T):
    """The noise schedule with T steps; the linear one's beta range is Ho et al.'s for T = 1000, scaled by
    1000 / T (Nichol & Dhariwal 2021) so that alpha_bar_T ~ 0 for every T of the steps study."""
    scale = 1000.0 / T
    return make_schedule(config.schedule, T, config.beta_start * scale, min(config.beta_end * scale, 0.999))


# Studies -------------------------------------------------------------------------------------------------
def _quality_row(name, samples_u8, seconds_per_1000, clf, config, suffix) -> tuple[dict, dict]:
    from jgen.metrics import sample_quality

    row = {"row": name, "seconds_per_1000_images": seconds_per_1000}
    m = {f"sampling_seconds_per_1000{suffix}": seconds_per_1000}
    if clf is not None:
        q = sample_quality.evaluate_samples(samples_u8, "mnist", seed=config.seed, clf=clf, memorisation=False,
                                            keys=QUALITY_KEYS, suffix=suffix)
        m.update(q)
        for k in QUALITY_KEYS:
            row[k], row[f"{k}_floor"] = q[f"{k}{suffix}"], q[f"{k}_floor"]
    return row, m


def _generative_process(den, params, schedule, config, wd) -> None:
    key = jax.random.key(config.seed + 30)
    x_T = jax.random.normal(key, (config.process_seeds, config.image_size, config.image_size, 1))
    _, states = sample_chain(den, params, schedule, x_T, key, sampler="ddpm", keep=config.process_columns - 1)
    T = schedule.num_steps
    cols = [f"t={int(round(T - i * T / (config.process_columns - 1)))}" for i in range(config.process_columns)]
    imgs = np.clip(np.asarray(states), -1, 1).transpose(1, 0, 2, 3, 4).reshape(-1, *states.shape[2:])
    viz.image_grid(imgs, config.process_columns, col_labels=cols, vmin=-1, vmax=1,
                   xlabel="ancestral sampling from x_T (left) to x_0 (right)",
                   title=f"the generative process, {config.process_seeds} seeds",
                   path=wd.figure_path("generative_process"))


def _nearby_latents(den, params, schedule, config, wd, clf) -> dict[str, float]:
    h = config.image_size
    key = jax.random.key(config.seed + 40)
    ddim = lambda z: sample_chain(den, params, schedule, jnp.asarray(z).reshape(-1, h, h, 1), key, sampler="ddim",
                                  steps=config.latent_ddim_steps, eta=0.0)
    batch = min(config.sample_batch, config.num_analysis)
    def decode(z):  # latents [n, H * W] -> 28x28 images in [0, 1], as vae_mnist's decoder gives
        return to_uint8_28(map_batches(ddim, np.asarray(z, np.float32), batch)).astype(np.float32)[..., None] / 255.0
    k1, k2, k3 = jax.random.split(key, 3)
    ends = np.asarray(jax.random.normal(k1, (4, h * h)))
    alphas = np.linspace(0, 1, 9)
    path = np.concatenate([slerp(ends[0], ends[1], alphas), slerp(ends[2], ends[3], alphas)])
    viz.image_grid(decode(path), len(alphas), col_labels=[f"{a:.2g}" for a in alphas], xlabel="slerp weight",
                   title=f"DDIM (eta = 0, {config.latent_ddim_steps} steps) of slerp(x_T^a, x_T^b), two pairs",
                   path=wd.figure_path("latent_slerp"))
    u = np.array(jax.random.normal(k2, (4, h * h)))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    radii = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
    zs = (ends[:4, None] + radii[None, :, None] * u[:, None]).reshape(-1, h * h)
    viz.image_grid(decode(zs), len(radii), col_labels=[f"{r:.2g}" for r in radii],
                   xlabel=f"latent distance r from x_T (|x_T| ~ {math.sqrt(h * h):.0f})",
                   title="DDIM (eta = 0) of x_T + r u for 4 noises x_T", path=wd.figure_path("latent_perturbations"))

    z = jax.random.normal(k3, (config.num_analysis, h * h))
    features = None if clf is None else (lambda x: clf.features(np.asarray(x) * 255.0))
    rows = []
    for r in config.smoothness_radii:
        s = latent.latent_smoothness(decode, z, jax.random.fold_in(k3, 1), float(r), features=features)
        rows.append({"radius": float(r), "pixel_distance_per_unit": s["pixels"], "pixel_rms_per_unit": s["pixels_rms"],
                     **({"feature_distance_per_unit": s["features"]} if "features" in s else {})})
    random_pairs, mean_dz = latent.unrelated_pairs_ratio(decode, np.asarray(z), config.seed)
    rows.append({"radius": "unrelated noises", "pixel_distance_per_unit": random_pairs,
                 "mean_latent_distance": mean_dz})
    wd.save_table("smoothness", rows)
    main = next((r for r in rows if r["radius"] == config.smoothness_radius), rows[0])
    out = {"latent_smoothness": main["pixel_distance_per_unit"], "latent_smoothness_random_pairs": random_pairs,
           "latent_smoothness_radius": float(main["radius"]), "latent_dim": h * h}
    if "feature_distance_per_unit" in main:
        out["latent_smoothness_classifier"] = main["feature_distance_per_unit"]
    return out


def _mnist7_bpd(config, wd, mesh) -> dict[str, float]:
    """The 8x8 (padded 7x7) U-Net: test_bpd_ddpm from the variational bound, and its samples."""
    c = config.mnist7
    splits = {k: (v[..., None].astype(np.float32) / 127.5 - 1.0) for k, v in mnist7_splits(config.num_train).items()}
    den = Denoiser(_unet(c.model), pad=1, mesh=mesh)
    schedule = _schedule(config, c.num_diffusion_steps)
    key = jax.random.key(config.seed + 50)
    batches = BatchIterator({"image": splits["train"]}, c.batch_size, seed=config.seed + 50, mesh=mesh)
    fit = _train(den, schedule, c.optim, c.num_steps, batches, (7, 7, 1), key, wd, "ddpm_mnist7",
                 log_every=config.log_every, eval_every=c.num_steps)
    params = fit.params
    eps_fn = lambda x, t: den.apply(params, x, t)  # one object: vlb_terms compiles once for every chunk
    rng = jax.random.key(config.seed + 51)
    test = splits["test"][:c.num_test]
    bpd = map_batches(lambda x: vlb.bits_per_dim(eps_fn, schedule, shard_if_divisible(x, mesh), rng), test,
                      min(c.eval_batch, len(test)))
    x_T = np.asarray(jax.random.normal(jax.random.key(config.seed + 52), (c.num_samples, 7, 7, 1)))
    samples, _ = draw_samples(den, params, schedule, x_T, jax.random.key(config.seed + 53),
                              min(c.eval_batch, c.num_samples), sampler="ddpm")
    images = np.clip(np.round((np.asarray(samples)[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
    wd.save_arrays("samples_mnist7", images=images)
    viz.image_grid(images[:100], 10, title=f"MNIST 7x7 DDPM samples (T = {c.num_diffusion_steps})",
                   path=wd.figure_path("samples_mnist7"))
    return {"test_bpd_ddpm": float(np.mean(bpd)), "test_bpd_ddpm_se": float(np.std(bpd) / math.sqrt(len(bpd))),
            "num_test_mnist7": len(test), "num_diffusion_steps_mnist7": c.num_diffusion_steps,
            "num_params_mnist7": num_params(den.unet, (8, 8, 1))}


def _get_classifier():
    from jgen.metrics import classifier

    return classifier.get_classifier("mnist")


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    x = _mnist(config)
    h = config.image_size
    shape = (h, h, 1)
    den = Denoiser(_unet(config.model), mesh=experiment.batch_mesh(config, ("batch_size", "mnist7.batch_size")))
    clf = _get_classifier() if config.quality_metrics else None
    T = config.num_diffusion_steps
    metrics: dict[str, Any] = {"num_train": len(x), "num_params": num_params(den.unet, shape), "image_size": h,
                               "num_diffusion_steps": T}
    batches = BatchIterator({"image": x}, config.batch_size, seed=config.seed, mesh=den.mesh)
    n_q = config.num_quality_samples
    x_T_q = np.asarray(jax.random.normal(jax.random.key(config.seed + 1), (n_q, *shape)))
    sample_key = jax.random.key(config.seed + 2)

    fits, tracker = {}, None
    for T_i in sorted(config.t_study, key=lambda t: t != T):  # the main model first
        schedule = _schedule(config, T_i)
        main = T_i == T
        eval_fn = None
        if main and clf is not None and config.fd_track_samples >= 20:
            x_T_track = np.asarray(jax.random.normal(jax.random.key(config.seed + 3),
                                                     (config.fd_track_samples, *shape)))
            tracker = FDTracker(lambda p, sched=schedule: to_uint8_28(map_batches(
                lambda xt: sample_chain(den, p, sched, xt, sample_key, sampler="ddim", steps=config.fd_track_steps),
                x_T_track, min(config.sample_batch, config.fd_track_samples))), "mnist", clf, config.seed)
            eval_fn = tracker
        start = time.perf_counter()
        fit = _train(den, schedule, config.optim, config.num_steps if main else config.t_study_num_steps, batches,
                     shape, jax.random.key(config.seed + 10 + T_i), wd, "ddpm" if main else f"ddpm_T{T_i}",
                     log_every=config.log_every, eval_every=config.eval_every, eval_fn=eval_fn)
        fits[T_i] = (fit, schedule, time.perf_counter() - start)
    fit, schedule, train_seconds = fits[T]
    params = fit.params
    metrics["train_seconds"] = train_seconds
    if tracker is not None:
        wd.save_arrays("fd_curve", **tracker.arrays(), steps=np.array([r["step"] for r in fit.eval_history]),
                       num_samples=config.fd_track_samples)
    viz.loss_curves({"noise-prediction loss": experiment.curve(fit, "loss")}, smoothing=0.9,
                    ylabel="mean squared error per pixel",
                    title=f"DDPM training (T = {T}, {metrics['num_params']} params)",
                    path=wd.figure_path("loss"))

    # (b) reading 1: models trained with different T, each sampled ancestrally with its T steps.
    cache: dict = {}
    rows_T = []
    for T_i in config.t_study:
        fit_i, sched_i, _ = fits[T_i]
        s, sec = draw_samples(den, fit_i.params, sched_i, x_T_q, sample_key, config.sample_batch, sampler="ddpm")
        cache[("ddpm", T_i)] = (s, sec)
        row, m = _quality_row(f"T={T_i}", to_uint8_28(s), sec, clf, config, f"_T{T_i}")
        rows_T.append({"T": T_i, "train_steps": config.num_steps if T_i == T else config.t_study_num_steps, **row})
        metrics.update(m)
    wd.save_table("steps_T", rows_T)
    # (b) reading 2: the main model sampled by DDIM (eta = 0) with fewer steps.
    rows_ddim = []
    for S in config.ddim_study:
        s, sec = draw_samples(den, params, schedule, x_T_q, sample_key, config.sample_batch, sampler="ddim", steps=S)
        cache[("ddim", S)] = (s, sec)
        row, m = _quality_row(f"DDIM {S}", to_uint8_28(s), sec, clf, config, f"_ddim{S}")
        rows_ddim.append({"sampling_steps": S, **row})
        metrics.update(m)
    wd.save_table("steps_ddim", rows_ddim)

    # (a), (e) the main samples.
    main_key = ("ddpm", T) if config.sampler == "ddpm" else ("ddim", config.sample_steps)
    if main_key not in cache:
        cache[main_key] = draw_samples(den, params, schedule, x_T_q, sample_key, config.sample_batch,
                                       sampler=config.sampler, steps=config.sample_steps)
    samples, sec = cache[main_key]
    samples_u8 = to_uint8_28(samples)
    metrics["sampling_seconds_per_image"] = sec / 1000.0
    metrics["main_sampler_steps"] = T if config.sampler == "ddpm" else config.sample_steps
    wd.save_arrays("samples", images=samples_u8)
    viz.image_grid(samples_u8[:100], 10, title=f"100 samples ({config.sampler}, {metrics['main_sampler_steps']} steps,"
                   f" EMA params)", path=wd.figure_path("samples"))
    if clf is not None:
        from jgen.metrics import sample_quality

        metrics.update(sample_quality.evaluate_samples(samples_u8, "mnist", seed=config.seed, clf=clf,
                                                       memorisation=False, keys=QUALITY_KEYS))
        if tracker is not None and tracker.rows:
            metrics["fd_track_final"] = tracker.rows[-1]["fd_track"]
            metrics["fd_track_samples"] = config.fd_track_samples

    _generative_process(den, params, schedule, config, wd)
    metrics.update(_nearby_latents(den, params, schedule, config, wd, clf))
    metrics.update(_mnist7_bpd(config, wd, den.mesh))
    checks = {"ddim_fewer_steps_faster": (
        cache[("ddim", min(config.ddim_study))][1] < cache[("ddim", max(config.ddim_study))][1],
        f"DDIM {min(config.ddim_study)} steps: {cache[('ddim', min(config.ddim_study))][1]:.3g} s/1000 images, "
        f"{max(config.ddim_study)} steps: {cache[('ddim', max(config.ddim_study))][1]:.3g} s/1000 images")}
    if clf is not None:
        checks["fd_within_3x_floor"] = (metrics["fd_classifier"] <= 3 * metrics["fd_classifier_floor"],
                                        f"fd_classifier {metrics['fd_classifier']:.3g} vs floor "
                                        f"{metrics['fd_classifier_floor']:.3g} (full-preset target; quick misses it)")
    wd.write_checks(checks)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
