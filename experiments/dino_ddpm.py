"""Simple Dinosaur Diffusion Model: a 2-D DDPM on the Datasaurus dino, with three time embeddings.

A denoising MLP (3 hidden layers of 64 ReLU units) learns to predict the noise added to the standardised dino
points under a linear beta schedule with T = 50 steps, beta in [1e-4, 2e-2]. Three variants share schedule,
optimizer and budget: (a) no time input, (b) the linear time (t - 1) / (T - 1) concatenated, (c) fixed random
Fourier features of position (L = 64) and time (L = 32). Samples come from the ancestral sampler; sample
quality is the squared MMD (Gaussian kernel, bandwidth 0.2) between 1000 samples and the empirical
distribution of the dino points.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import data, experiment, train, viz
from jgen.diffusion import DenoisingMLP, ancestral_sample, ddpm, linear_beta_schedule, noise_prediction_loss
from jgen.metrics.sample_quality import squared_mmd

VARIANTS = {"no_time": "none", "linear_time": "linear", "fourier": "fourier"}
NOISING_STEPS = (1, 6, 12, 25, 50)


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_steps = 50  # T
    c.beta_start = 1e-4
    c.beta_end = 2e-2
    c.hidden = (64, 64, 64)
    c.position_frequencies = 64
    c.time_frequencies = 32
    c.position_scale = 1.0
    c.time_scale = 1.0
    c.learning_rate = 1e-3
    c.clip_grad_norm = 1.0
    c.repeats = 8  # each step sees every dino point this many times, with independent t and noise
    c.train_steps = 20_000 if preset == "full" else 4_000
    c.fuse_steps = 100
    c.eval_every = 200
    c.test_draws = 20  # held-out (t, eps) draws per dino point for the test loss
    c.num_samples = 1000
    c.mmd_bandwidth = 0.2
    return c


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    dino = data.toy2d.dino_points()  # standardised to zero mean, unit std
    schedule = linear_beta_schedule(config.num_steps, config.beta_start, config.beta_end)
    key = jax.random.PRNGKey(config.seed)
    k_noise, k_test, k_init, k_train, k_sample = jax.random.split(key, 5)

    viz.scatter2d(dino, title="Datasaurus dino (standardised)", axes_off=True, equal=True,
                  path=wd.figure_path("dino"))
    viz.line_plot(np.arange(config.num_steps + 1), {"alpha_bar": ddpm.alpha_bar_curve(schedule)},
                  title=f"linear schedule, T={config.num_steps}", xlabel="t", ylabel=r"$\bar\alpha_t$",
                  path=wd.figure_path("alpha_bar"))
    eps = jax.random.normal(k_noise, dino.shape)
    noised = [ddpm.q_sample(schedule, dino, t, eps) for t in NOISING_STEPS]
    viz.subplots_panels(noised, [f"t = {t}" for t in NOISING_STEPS], title="forward noising q(x_t | x_0)",
                        kind="points", axes_off=True, path=wd.figure_path("forward_noising"))

    # Held-out (x_0, t, eps) triples: a fixed Monte Carlo estimate of the loss on noise the model never saw.
    x_test = jnp.tile(jnp.asarray(dino), (config.test_draws, 1))
    kt, ke = jax.random.split(k_test)
    t_test = jax.random.randint(kt, x_test.shape[:1], 1, config.num_steps + 1)
    eps_test = jax.random.normal(ke, x_test.shape)
    xt_test = ddpm.q_sample(schedule, x_test, t_test, eps_test)
    batch = {"x0": jnp.tile(jnp.asarray(dino), (config.repeats, 1))}

    metrics, curves, samples = {}, {}, {}
    for name, embedding in VARIANTS.items():
        model = DenoisingMLP(num_steps=config.num_steps, time_embedding=embedding, hidden=tuple(config.hidden),
                             position_frequencies=config.position_frequencies,
                             time_frequencies=config.time_frequencies, position_scale=config.position_scale,
                             time_scale=config.time_scale)
        params = model.init(k_init, batch["x0"][:2], jnp.ones(2, jnp.int32))

        def loss_fn(p, b, rng, model=model):
            loss = noise_prediction_loss(functools.partial(model.apply, p), schedule, b["x0"], rng)
            return loss, {}

        @jax.jit
        def test_loss(p, model=model):
            return jnp.mean((eps_test - model.apply(p, xt_test, t_test)) ** 2)

        tx = optax.chain(optax.clip_by_global_norm(config.clip_grad_norm), optax.adam(config.learning_rate))
        result = train.fit_loss(loss_fn, params, tx, train.FullBatch(batch), config.train_steps, rng=k_train, wd=wd,
                                name=name, log_every=config.eval_every, ckpt_every=config.train_steps // 4,
                                eval_fn=lambda p, f=test_loss: {"test_loss": f(p)}, eval_every=config.eval_every,
                                fuse_steps=config.fuse_steps)
        eps_fn = functools.partial(model.apply, result.params)
        samples[name] = np.asarray(jax.jit(lambda k, f=eps_fn: ancestral_sample(f, schedule, k, (
            config.num_samples, 2)))(k_sample))
        curves[f"{name} (test)"] = ([r["step"] for r in result.eval_history],
                                    [r["test_loss"] for r in result.eval_history])
        metrics[f"test_loss_{name}"] = result.eval_history[-1]["test_loss"]
        metrics[f"mmd_{name}"] = float(squared_mmd(jnp.asarray(samples[name]), jnp.asarray(dino),
                                                   config.mmd_bandwidth))

    viz.subplots_panels([dino] + list(samples.values()),
                        ["dino data"] + [f"{n}\nMMD$^2$={metrics[f'mmd_{n}']:.4f}" for n in samples],
                        title=f"{config.num_samples} ancestral samples per variant", kind="points", s=1.5,
                        lim=((-2.5, 2.5), (-2.5, 2.5)), path=wd.figure_path("samples"))
    viz.loss_curves(curves, smoothing=0.8, title="test loss (noise-prediction MSE, smoothed)", ylabel="MSE",
                    path=wd.figure_path("test_loss"))
    wd.save_table("variants", [{"variant": n, "test_loss": metrics[f"test_loss_{n}"], "mmd2": metrics[f"mmd_{n}"]}
                               for n in VARIANTS])
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
