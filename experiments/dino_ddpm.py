"""Simple Dinosaur Diffusion Model: a 2-D DDPM on the Datasaurus dino, with three time embeddings.

A denoising MLP (3 hidden layers of 64 ReLU units) learns to predict the noise added to the standardised dino
points under a linear beta schedule with T = 50 steps, beta in [1e-4, 2e-2]. Three variants share schedule,
optimizer and budget: (a) no time input, (b) the linear time (t - 1) / (T - 1) concatenated, (c) fixed random
Fourier features of position (L = 64) and time (L = 32). Samples come from the ancestral sampler; sample
quality is the squared MMD (Gaussian kernel, bandwidth 0.2) between 1000 samples and the empirical
distribution of the dino points.

The exercise's schedule stops at alpha_bar_T = prod (1 - beta_t) ~ 0.60, so x_T keeps sqrt(0.60) ~ 0.78 of
the data's scale, while the sampler starts from N(0, I): the chain starts from a distribution the model never
saw at t = T. A fourth model, the Fourier variant under the cosine schedule of Nichol & Dhariwal (2021),
whose alpha_bar_T is ~0, measures what this costs (`mmd_fourier_<comparison_schedule>`; `alpha_bar_T` of both
schedules is reported).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import data, experiment, optim, train, viz
from jgen.diffusion import DenoisingMLP, ancestral_sample, ddpm, noise_prediction_loss
from jgen.metrics.sample_quality import squared_mmd

VARIANTS = {"no_time": "none", "linear_time": "linear", "fourier": "fourier"}
NOISING_STEPS = (1, 6, 12, 25, 50)


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 50  # T
    c.schedule = "linear"  # of the three variants; one of jgen.diffusion.ddpm.SCHEDULES
    c.beta_start = 1e-4  # linear schedule only
    c.beta_end = 2e-2
    c.comparison_schedule = "cosine"  # a Fourier model under this schedule too ("none": skip it)
    c.hidden = (64, 64, 64)
    c.position_frequencies = 64
    c.time_frequencies = 32
    c.position_scale = 1.0
    c.time_scale = 1.0
    c.optim = optim.optim_config(name="adam", learning_rate=1e-3, clip_grad_norm=1.0)
    c.repeats = 8  # each step sees every dino point this many times, with independent t and noise
    c.train_steps = 20_000 if preset == "full" else 4_000
    c.fuse_steps = 100
    c.eval_every = 200
    c.test_draws = 20  # held-out (t, eps) draws per dino point for the test loss
    c.num_samples = 1000
    c.mmd_bandwidth = 0.2
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    for key in ("schedule", "comparison_schedule"):
        allowed = ddpm.SCHEDULES + (("none",) if key == "comparison_schedule" else ())
        if config[key] not in allowed:
            raise experiment.ConfigError(f"--config.{key}={config[key]!r} is not valid: expected one of "
                                         f"{', '.join(allowed)}. Set --config.{key} to one of them.")
    if not 0 < config.beta_start <= config.beta_end < 1:
        raise experiment.ConfigError(
            f"--config.beta_start={config.beta_start} and --config.beta_end={config.beta_end} are not valid: "
            "expected 0 < beta_start <= beta_end < 1.")
    if not config.mmd_bandwidth > 0:
        raise experiment.ConfigError(f"--config.mmd_bandwidth={config.mmd_bandwidth} is not valid: expected a "
                                     "positive kernel bandwidth.")


def _ckpt_every(config: ml_collections.ConfigDict) -> int:
    """About four checkpoints per run, on a fused-call boundary whatever `train_steps` is."""
    return max(config.fuse_steps, config.train_steps // 4 // config.fuse_steps * config.fuse_steps)


# Jitted: one compilation instead of one per eager op of the initialisers (the same numbers); the model is a
# static argument, so equal models (the Fourier model under both schedules, a re-run) share it.
_init = jax.jit(lambda model, key, x, t: model.init(key, x, t), static_argnums=0)


def _fit_variant(name: str, embedding: str, schedule: ddpm.Schedule, dino: jax.Array, config, wd, keys) -> dict:
    """Trains one denoiser under `schedule`; returns its fit result and its ancestral samples."""
    k_test, k_init, k_train, k_sample = keys

    # Held-out (x_0, t, eps) triples: a fixed Monte Carlo estimate of the loss on noise the model never saw.
    x_test = jnp.tile(dino, (config.test_draws, 1))
    kt, ke = jax.random.split(k_test)
    t_test = jax.random.randint(kt, x_test.shape[:1], 1, config.num_steps + 1)
    eps_test = jax.random.normal(ke, x_test.shape)
    xt_test = ddpm.q_sample(schedule, x_test, t_test, eps_test)
    batch = {"x0": jnp.tile(dino, (config.repeats, 1))}

    model = DenoisingMLP(num_steps=config.num_steps, time_embedding=embedding, hidden=tuple(config.hidden),
                         position_frequencies=config.position_frequencies, time_frequencies=config.time_frequencies,
                         position_scale=config.position_scale, time_scale=config.time_scale)
    params = _init(model, k_init, batch["x0"][:2], jnp.ones(2, jnp.int32))

    def loss_fn(p, b, rng):
        return noise_prediction_loss(functools.partial(model.apply, p), schedule, b["x0"], rng), {}

    @jax.jit
    def test_loss(p):
        return jnp.mean((eps_test - model.apply(p, xt_test, t_test)) ** 2)

    tx = optim.make_optimizer(config.optim, config.train_steps)
    result = train.fit_loss(loss_fn, params, tx, train.FullBatch(batch), config.train_steps, key=k_train, wd=wd,
                            name=name, log_every=config.eval_every, ckpt_every=_ckpt_every(config),
                            eval_fn=lambda p: {"test_loss": test_loss(p)}, eval_every=config.eval_every,
                            fuse_steps=config.fuse_steps)
    eps_fn = functools.partial(model.apply, result.params)
    samples = jax.jit(lambda k: ancestral_sample(eps_fn, schedule, k, (config.num_samples, 2)))(k_sample)
    return {"result": result, "samples": np.asarray(samples)}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    dino = jnp.asarray(data.toy2d.dino_points())  # standardised to zero mean, unit std
    schedule = ddpm.make_schedule(config.schedule, config.num_steps, config.beta_start, config.beta_end)
    key = jax.random.PRNGKey(config.seed)
    k_noise, *keys = jax.random.split(key, 5)

    fits = {name: (_fit_variant(name, embedding, schedule, dino, config, wd, keys), config.schedule)
            for name, embedding in VARIANTS.items()}
    schedules = {config.schedule: schedule}
    if config.comparison_schedule not in ("none", config.schedule):
        other = config.comparison_schedule
        schedules[other] = ddpm.make_schedule(other, config.num_steps, config.beta_start, config.beta_end)
        fits[f"fourier_{other}"] = (_fit_variant(f"fourier_{other}", "fourier", schedules[other], dino, config, wd,
                                                 keys), other)

    rows = [{"variant": name, "schedule": sched, "alpha_bar_T": float(schedules[sched].alpha_bars[-1]),
             "test_loss": fit["result"].eval_history[-1]["test_loss"],
             "mmd": float(squared_mmd(jnp.asarray(fit["samples"]), dino, config.mmd_bandwidth))}
            for name, (fit, sched) in fits.items()]
    metrics = wd.metrics_table("variants", rows, key="variant", columns=("test_loss", "mmd"))
    metrics["alpha_bar_T"] = float(schedule.alpha_bars[-1])
    for name, s in schedules.items():
        if name != config.schedule:
            metrics[f"alpha_bar_T_{name}"] = float(s.alpha_bars[-1])

    viz.scatter2d(dino, title="Datasaurus dino (standardised)", axes_off=True, equal=True,
                  path=wd.figure_path("dino"))
    viz.line_plot(np.arange(config.num_steps + 1), {n: ddpm.alpha_bar_curve(s) for n, s in schedules.items()},
                  title=f"noise schedules, T={config.num_steps}", xlabel="t", ylabel=r"$\bar\alpha_t$",
                  path=wd.figure_path("alpha_bar"))
    eps = jax.random.normal(k_noise, dino.shape)
    noised = [ddpm.q_sample(schedule, dino, t, eps) for t in NOISING_STEPS]
    viz.subplots_panels(noised, [f"t = {t}" for t in NOISING_STEPS],
                        title=f"forward noising q(x_t | x_0), {config.schedule} schedule", kind="points",
                        axes_off=True, path=wd.figure_path("forward_noising"))
    viz.subplots_panels([dino] + [fit["samples"] for fit, _ in fits.values()],
                        ["dino data"] + [f"{r['variant']}\nMMD$^2$={r['mmd']:.4f}" for r in rows],
                        title=f"{config.num_samples} ancestral samples per variant", kind="points", s=1.5,
                        lim=((-2.5, 2.5), (-2.5, 2.5)), path=wd.figure_path("samples"))
    viz.loss_curves({f"{name} ({sched}, test)": experiment.curve(fit["result"], "test_loss")
                     for name, (fit, sched) in fits.items()}, smoothing=0.8,
                    title="test loss (noise-prediction MSE, smoothed)", ylabel="MSE",
                    path=wd.figure_path("test_loss"))
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
