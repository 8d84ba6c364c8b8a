"""Energy-based model on USPS: p(x) ~ exp(-E(x)) trained by persistent contrastive divergence.

Data: the 7,291 USPS training digits (16x16) scaled to [-1, 1]. Model (`jgen.ebm`): a small SiLU CNN energy
(`config.model`), trained on `E(real) - E(sampled) + alpha (E(real)^2 + E(sampled)^2)` with Adam (b1 = 0,
gradient clipping; `config.optim`), the samples coming from `config.langevin.num_steps` short-run Langevin
steps (step 10, per-pixel gradient clip 0.03, noise 0.005, clamped to [-1, 1]: the settings of the widely
copied UvA tutorial) started from a replay buffer of `buffer_size` earlier chain ends, `reinit_fraction`
of them restarted from uniform noise every iteration. The buffer is part of the checkpointed train state,
so a re-run resumes the same chains. Training stops on divergence (energies beyond `energy_bound`, or NaN)
and restarts from the last good checkpoint with a new seed up to `divergence_restarts` times (each restart
is its own run, `ebm_restart<k>`, in checkpoints/ and log.jsonl); when none is left the run ends with a
message naming the step and that checkpoint (a larger `--config.divergence_restarts` is a new config: use
a new workdir).

What is reported:

* Curves of the loss, E(real) and E(sampled); replay-buffer samples, samples from fresh uniform noise after
  `fresh_steps` Langevin steps, and a few of those chains as image strips.
* Sample quality with the shared metrics in the USPS classifier's features (`jgen.metrics.classifier`):
  `fd_classifier`, `precision`, `recall`, `density`, `coverage`, `class_coverage` (normalised entropy of
  the predicted digits, 1 = all ten equally often), each beside its `_floor` (real test digits against
  the same training reference), for the fresh-noise samples; `fd_classifier_buffer` and
  `class_coverage_buffer` for the replay buffer.
* Out of distribution: `auroc_noise`, `auroc_blur`, `auroc_mnist`: AUROC of -E separating USPS test digits
  from uniform noise, from Gaussian-blurred test digits (`blur_sigma` pixels) and from MNIST test digits
  area-resized to 16x16 (1 = every USPS digit has a lower energy than every outlier).
* How far the short-run sampler is from exp(-E): `mala_acceptance`, the acceptance rate of MALA on exp(-E)
  itself (no clipping, noise sqrt(2 h), step `mala_step_size`) started from buffer samples, and
  `mala_energy_start` / `mala_energy_end`, their mean energy before and after `mala_steps` steps (a rise
  means the short-run samples are colder than the model's own distribution).

`--config.dataset=<toy>` (a name of `jgen.data.toy2d`) trains an MLP energy (`config.toy`) on that 2-D toy
instead, with Langevin noise sqrt(2 h) (so the chains target exp(-E) itself), and draws exp(-E) normalised
on a grid beside the true density: `kl_grid` = KL(true || model) on the grid, nats, and `kl_grid_init` for
the untrained energy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import ebm, experiment, optim, viz
from jgen.data import BatchIterator, load, preprocess, toy2d
from jgen.ebm import divergence, grid

RUN = "ebm"
QUALITY_KEYS = ("fd_classifier", "precision", "recall", "density", "coverage", "class_coverage", "classes_present")


def _langevin_block(**kw) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(kw))


def get_config(preset: str) -> ml_collections.ConfigDict:
    full = preset == "full"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "usps"  # or a jgen.data.toy2d name: the 2-D version (config.toy)
    c.model = ml_collections.ConfigDict({"channels": (16, 32, 64), "hidden": 64})
    c.langevin = _langevin_block(num_steps=60 if full else 20, step_size=10.0, noise_scale=0.005, clip_value=0.03,
                                 bounds=(-1.0, 1.0))
    c.alpha = 0.1
    c.reinit_fraction = 0.05
    c.real_noise = 0.005
    c.buffer_size = 8192 if full else 4096
    c.batch_size = 128 if full else 64
    c.train_steps = 6000 if full else 1000
    c.optim = optim.optim_config(name="adam", learning_rate=5e-4 if full else 1e-3, b1=0.0, clip_grad_norm=0.1)
    c.energy_bound = 100.0
    c.divergence_restarts = 2
    c.fuse_steps = 10
    c.log_every = 50
    c.ckpt_every = 500
    c.fresh_steps = 256 if full else 200
    c.num_quality_samples = 2000 if full else 500
    c.quality_metrics = True
    c.num_ood = 2000 if full else 1000
    c.blur_sigma = 1.0
    c.mala_steps = 100
    c.mala_step_size = 1e-3
    c.num_mala_chains = 64
    c.num_strip_chains = 6
    c.strip_records = 8
    c.toy = ml_collections.ConfigDict()
    c.toy.hidden = (128, 128)
    c.toy.langevin = _langevin_block(num_steps=20, step_size=0.005, noise_scale=None, clip_value=None, bounds=None)
    c.toy.alpha = 0.01
    c.toy.reinit_fraction = 0.05
    c.toy.real_noise = 0.0
    c.toy.buffer_size = 4096
    c.toy.batch_size = 256
    c.toy.train_steps = 5000 if full else 1500
    c.toy.num_train = 10_000
    c.toy.optim = optim.optim_config(name="adam", learning_rate=1e-3, b1=0.0, clip_grad_norm=1.0)
    c.toy.grid_size = 120
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    allowed = ("usps",) + tuple(toy2d.NAMES)
    if config.dataset not in allowed:
        raise experiment.ConfigError(f"--config.dataset={config.dataset!r} is not valid: expected usps or a 2-D toy "
                                     f"({', '.join(toy2d.NAMES)}). Set --config.dataset to one of them.")
    for key in ("alpha", "real_noise", "toy.alpha", "toy.real_noise"):
        block, leaf = (config.toy, key[4:]) if key.startswith("toy.") else (config, key)
        if not block[leaf] >= 0:
            raise experiment.ConfigError(f"--config.{key}={block[leaf]} is not valid: expected a number >= 0.")
    for key in ("reinit_fraction", "toy.reinit_fraction"):
        block, leaf = (config.toy, key[4:]) if key.startswith("toy.") else (config, key)
        if not 0 <= block[leaf] <= 1:
            raise experiment.ConfigError(f"--config.{key}={block[leaf]} is not valid: expected a fraction in [0, 1].")
    for key in ("energy_bound", "mala_step_size", "blur_sigma"):
        if not config[key] > 0:
            raise experiment.ConfigError(f"--config.{key}={config[key]} is not valid: expected a positive number.")
    if config.divergence_restarts < 0:
        raise experiment.ConfigError(f"--config.divergence_restarts={config.divergence_restarts} is not valid: "
                                     "expected a number of restarts >= 0.")
    for prefix, block in (("langevin", config.langevin), ("toy.langevin", config.toy.langevin)):
        try:
            ebm.LangevinConfig.from_config(block)
        except (ValueError, TypeError) as e:
            raise experiment.ConfigError(f"--config.{prefix} is not valid: {e}. Fix that field.") from None
    if config.buffer_size < config.batch_size or config.toy.buffer_size < config.toy.batch_size:
        raise experiment.ConfigError("--config.buffer_size must be at least --config.batch_size (and toy.buffer_size "
                                     "at least toy.batch_size): each iteration picks batch_size distinct chains.")


def _train(energy_fn, params, x: np.ndarray, block, config, bounds, wd, key):
    """Persistent CD on `x` with the settings of `block` (the config, or config.toy)."""
    k_state, k_buffer = jax.random.split(key)
    tx = optim.make_optimizer(block.optim, block.train_steps)
    langevin = ebm.LangevinConfig.from_config(block.langevin)
    state = ebm.create_state(params, tx, k_state, ebm.init_buffer(k_buffer, block.buffer_size, x.shape[1:], bounds))
    step = ebm.make_step(energy_fn, tx, langevin_config=langevin, alpha=block.alpha,
                         reinit_fraction=block.reinit_fraction, real_noise=block.real_noise, init_bounds=bounds,
                         energy_bound=config.energy_bound)
    batches = BatchIterator({"x": x}, block.batch_size, seed=config.seed)
    ckpt_every = max(config.fuse_steps, min(config.ckpt_every, block.train_steps))
    return divergence.fit(step, state, batches, block.train_steps, wd=wd, name=RUN,
                          energy_bound=config.energy_bound, restarts=config.divergence_restarts,
                          fuse_steps=config.fuse_steps, log_every=config.log_every, ckpt_every=ckpt_every)


def _curves(result, wd, block) -> None:
    viz.loss_curves({"loss": experiment.curve(result, "loss")}, title="CD loss + alpha (E(real)^2 + E(sampled)^2)",
                    ylabel="loss", path=wd.figure_path("loss"))
    viz.loss_curves({"E(real)": experiment.curve(result, "e_real"), "E(sampled)": experiment.curve(result, "e_fake")},
                    title=f"mean energies ({block.langevin.num_steps} Langevin steps per iteration)",
                    ylabel="energy", path=wd.figure_path("energies"))


def _to_u8(x) -> np.ndarray:
    return np.round((np.clip(np.asarray(x), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _energies(energy_fn, params, x, chunk: int = 1000) -> np.ndarray:
    f = jax.jit(energy_fn)
    return np.concatenate([np.asarray(f(params, jnp.asarray(x[i:i + chunk]))) for i in range(0, len(x), chunk)])


def _quality(samples: np.ndarray, config, suffix: str, keys) -> dict[str, float]:
    from jgen.metrics import sample_quality

    return sample_quality.evaluate_samples(_to_u8(samples), "usps", num_samples=len(samples), seed=config.seed,
                                           memorisation=False, keys=keys, suffix=suffix)


def _run_usps(config, wd) -> dict[str, float]:
    train_x = np.asarray(preprocess.to_pm1(load("usps", "train")["image"]))
    test_x = np.asarray(preprocess.to_pm1(load("usps", "test")["image"]))
    model = ebm.ConvEnergy(channels=tuple(config.model.channels), hidden=config.model.hidden)
    keys = jax.random.split(jax.random.key(config.seed), 8)
    params = jax.jit(model.init)(keys[0], jnp.zeros((1, *train_x.shape[1:])))
    bounds = tuple(config.langevin.bounds)
    result = _train(model.apply, params, train_x, config, config, bounds, wd, keys[1])
    params, buffer = result.state.params, np.asarray(result.state.extra["buffer"])
    _curves(result, wd, config)
    metrics = {f"{k}_final": result.history[-1][k] for k in ("loss", "e_real", "e_fake")}

    viz.image_grid(buffer[:64], nrow=8, vmin=-1, vmax=1, title=f"replay buffer after {config.train_steps} iterations",
                   path=wd.figure_path("buffer_samples"))
    fresh_cfg = ebm.LangevinConfig.from_config({**config.langevin.to_dict(), "num_steps": config.fresh_steps})
    n = max(config.num_quality_samples, 64)
    noise = jax.random.uniform(keys[2], (n, *train_x.shape[1:]), minval=bounds[0], maxval=bounds[1])
    fresh, _ = ebm.langevin(model.apply, params, noise, keys[3], fresh_cfg)
    fresh = np.asarray(fresh)
    viz.image_grid(fresh[:64], nrow=8, vmin=-1, vmax=1,
                   title=f"from uniform noise after {config.fresh_steps} Langevin steps", path=wd.figure_path("fresh_samples"))
    records = config.strip_records
    strip_cfg = ebm.LangevinConfig.from_config({**config.langevin.to_dict(),
                                                "num_steps": max(1, config.fresh_steps // records)})
    path = ebm.langevin_path(model.apply, params, noise[:config.num_strip_chains], keys[4], strip_cfg, records)
    strips = np.concatenate([noise[:config.num_strip_chains][None], np.asarray(path)]).swapaxes(0, 1)
    viz.image_grid(strips.reshape(-1, *strips.shape[2:]), nrow=records + 1, vmin=-1, vmax=1,
                   title="Langevin chains from noise", row_labels=[f"chain {i}" for i in range(len(strips))],
                   col_labels=[str(r * strip_cfg.num_steps) for r in range(records + 1)], xlabel="Langevin steps",
                   path=wd.figure_path("chains"))

    if config.quality_metrics:
        metrics.update(_quality(fresh[:config.num_quality_samples], config, "", QUALITY_KEYS))
        metrics.update(_quality(buffer[:config.num_quality_samples], config, "_buffer",
                                ("fd_classifier", "class_coverage")))

    m = min(config.num_ood, len(test_x))
    rng = np.random.default_rng(config.seed)
    real = test_x[rng.choice(len(test_x), m, replace=False)]
    mnist = load("mnist", "test")["image"]
    outliers = {
        "noise": rng.uniform(bounds[0], bounds[1], real.shape).astype(np.float32),
        "blur": np.asarray(ebm.gaussian_blur(real, config.blur_sigma)),
        "mnist": np.asarray(preprocess.area_resize(mnist[rng.choice(len(mnist), m, replace=False)], 16)) / 127.5 - 1.0,
    }
    e_real = _energies(model.apply, params, real)
    rows = [{"set": "usps_test", "mean_energy": float(e_real.mean()), "auroc": 0.5}]
    for name, x in outliers.items():
        e = _energies(model.apply, params, x)
        metrics[f"auroc_{name}"] = ebm.auroc(-e_real, -e)
        rows.append({"set": name, "mean_energy": float(e.mean()), "auroc": metrics[f"auroc_{name}"]})
    wd.save_table("ood", rows)
    viz.image_grid(np.concatenate([real[:8], *(x[:8] for x in outliers.values())]), nrow=8, vmin=-1, vmax=1,
                   title="USPS test digits and the outliers", row_labels=["usps", *outliers],
                   path=wd.figure_path("ood_examples"))

    chains = min(config.num_mala_chains, len(buffer))
    x_mala, info = ebm.mala(model.apply, params, jnp.asarray(buffer[:chains]), keys[5], num_steps=config.mala_steps,
                            step_size=config.mala_step_size)
    metrics["mala_acceptance"] = float(jnp.mean(info.acceptance_rate))
    metrics["mala_energy_start"] = float(np.mean(_energies(model.apply, params, buffer[:chains])))
    metrics["mala_energy_end"] = float(info.energy[-1])
    viz.image_grid(np.clip(np.asarray(x_mala), -1, 1)[:64], nrow=8, vmin=-1, vmax=1,
                   title=f"buffer samples after {config.mala_steps} MALA steps on exp(-E)", path=wd.figure_path("mala_samples"))
    return metrics


def _box(x: np.ndarray) -> tuple[float, float]:
    """A square box around the data with a margin (the support the grid normalises on)."""
    lo, hi = float(x.min()), float(x.max())
    margin = 0.15 * (hi - lo)
    return lo - margin, hi + margin


def _run_toy(config, wd) -> dict[str, float]:
    block = config.toy
    keys = jax.random.split(jax.random.key(config.seed), 4)
    x = np.asarray(toy2d.sample(config.dataset, keys[0], block.num_train), np.float32)
    lim = _box(x)
    model = ebm.MLPEnergy(hidden=tuple(block.hidden))
    params0 = jax.jit(model.init)(keys[1], jnp.zeros((1, 2)))
    result = _train(model.apply, params0, x, block, config, lim, wd, keys[2])
    _curves(result, wd, block)
    n = block.grid_size
    pts = grid.grid_points(lim, lim, n)
    area = ((lim[1] - lim[0]) / n) ** 2
    log_p = grid.normalized_log_density(np.asarray(toy2d.log_prob(config.dataset, jnp.asarray(pts))), area)
    log_q = {name: grid.normalized_log_density(-_energies(model.apply, p, pts, chunk=n * n), area)
             for name, p in (("init", params0), ("trained", result.state.params))}
    kl = {name: grid.grid_kl(log_p, q, area) for name, q in log_q.items()}
    viz.side_by_side([(f"true density ({config.dataset})", np.exp(log_p).reshape(n, n)),
                      (f"exp(-E) normalised, KL = {kl['trained']:.3f} nats", np.exp(log_q["trained"]).reshape(n, n))],
                     xlim=lim, ylim=lim, title="learned density beside the true one", path=wd.figure_path("density"))
    buffer = np.asarray(result.state.extra["buffer"])
    viz.scatter2d(buffer, title=f"replay buffer ({len(buffer)} persistent chains)", xlim=lim, ylim=lim, equal=True,
                  s=2.0, path=wd.figure_path("buffer_samples"))
    return {"kl_grid": kl["trained"], "kl_grid_init": kl["init"],
            **{f"{k}_final": result.history[-1][k] for k in ("loss", "e_real", "e_fake")}}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    return _run_usps(config, wd) if config.dataset == "usps" else _run_toy(config, wd)


if __name__ == "__main__":
    experiment.main(get_config, run)
