"""Coupling Flows, Part II: RealNVP, MAF and a neural spline flow on 2-D toy densities.

Three flows are fitted by maximum likelihood to N = 1500 points of "circles", "moons", "gaussian_grid" and
"gaussians_rot" (`jgen.data.toy2d`), with a separate validation set of 500 points that picks the best epoch:

* RealNVP (`jgen.flows.CouplingFlow`), the exercise's model: affine coupling layers with alternating half
  masks, MLP conditioners whose last layer starts at zero, log-scales bounded by `b tanh(s / b)`. K counts
  coupling blocks, each two layers with complementary masks so that every block updates both halves of x
  (the affine coupling block of Ardizzone et al. 2019, FrEIA's `RNVPCouplingBlock`): K = 4 is 8 one-sided
  layers; `--config.coupling.layers_per_block=1` runs one-sided layers.
* MAF (`jgen.flows.MAF`) at the same depth, 2K autoregressive layers, MADE conditioners, order reversed
  between layers.
* A neural spline flow (`jgen.flows.SplineCouplingFlow`; Durkan et al. 2019): the same coupling blocks with
  a monotone rational-quadratic spline of `spline.num_bins` bins per transformed coordinate instead of the
  affine map. The splines act on [-B, B] (`spline.boundary`) and are the identity outside; B covers the
  data (every toy lies within |x_i| < 3; a test checks it) and all but ~1e-4 of the N(0, 1) base samples.

The figure of merit is a KL estimate in nats: the data densities are known exactly (mixtures, Bessel
form for circles, quadrature for moons), so with M fresh test samples x_i ~ p,
KL(p || q) ~ (1/M) sum_i [log p(x_i) - log q(x_i)] = held-out NLL - entropy of p, with its Monte Carlo
standard error. Training adds Gaussian jitter to every batch (a standard flow regulariser), half the
toy's own noise scale (`config.jitter`). The bias it adds is KL(p || p * N(0, s^2)), about 0.02 nats for a
2-D Gaussian component (2 x 0.5 (1/1.25 - 1 + log 1.25)); it is included in the KL reported.

Convergence, per fit (table `fits`, columns `best_epoch`, `epochs`, `converged`, `verdict`): a fit
converged when its KL is below `convergence.kl_threshold` and its validation NLL has flattened (it fell by
less than `convergence.plateau_tol` nats over the last `convergence.plateau_fraction` of the epochs);
`verdict` says which test failed. `num_failed_fits` counts the main fits that did not converge, and
`checks.json` holds one check per main fit (`Workdir.write_checks`), so the report marks failed fits.

Far samples: `far_fraction_<dataset>_<model>` is the fraction of `num_far_samples` flow samples farther
than `far_radii` data radii from the data mean, where the data radius is the 99.5% quantile of the
distance of fresh data samples from their mean (issue: a flow with bounded log-scales can still throw a
handful of samples to |x| ~ 1e5).

Studies on "gaussians_rot" with the RealNVP, each changing one setting of the main fit: number of blocks K
in {2, 4}, training set size N in {1500, 3000} and number of mixture components in {3, 7}; the rows that
equal the main fit (K = 4, N = 1500) are the main fit, not a second run.

The quick preset trains smaller conditioners (3 x 64 hidden units, 2 x 64 for the splines, 8 bins) for 100
epochs; the full preset the exercise's 4 x 128 for 500 (moons 1000), splines 2 x 128 with 16 bins.

Speed: every fit of one architecture and data size trains all its datasets at once, the same network
`jax.vmap`ped over stacked parameters (Adam is elementwise, so each dataset follows its own separate-run
trajectory), one compiled epoch (`fuse_steps`) for the four toys; the validation NLL of every dataset is
computed inside the step at the end of each epoch and the best parameters kept per dataset in
`TrainState.extra` (checkpointed, so a resumed run picks the same epochs).

Figures per dataset: train/validation curves of the three flows, the true density beside the three
flows' on a 100 x 100 grid, and per flow the samples after the prior and after every second layer (every
coupling block), on axes set by robust quantiles of the prior and the final samples (`robust_limits`; the share of samples
outside is in each panel's title).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, optim, train, viz
from jgen.data import BatchIterator, toy2d
from jgen.flows import MAF, CouplingFlow, SplineCouplingFlow

DATASETS = ("circles", "moons", "gaussian_grid", "gaussians_rot")
KINDS = ("coupling", "maf", "spline")
ACTIVATIONS = {"relu": nn.relu, "tanh": nn.tanh, "gelu": nn.gelu, "silu": nn.silu}


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.datasets = DATASETS
    c.num_gaussians = 5
    c.num_train = 1500
    c.num_val = 500
    c.num_test = 20000  # fresh samples for the held-out NLL / KL estimate
    c.batch_size = 128
    c.jitter = ml_collections.ConfigDict(  # std of the Gaussian jitter added to training batches
        {"circles": 0.025, "moons": 0.05, "gaussian_grid": 0.05, "gaussians_rot": 0.1})
    c.epochs = 100 if quick else 500
    c.epochs_moons = 100 if quick else 1000
    c.ckpt_epochs = 100  # epochs between checkpoints

    c.coupling = ml_collections.ConfigDict()
    c.coupling.num_blocks = 4  # K
    c.coupling.layers_per_block = 2  # 2: both halves updated per block; 1: one-sided layers
    c.coupling.hidden_sizes = (64, 64, 64) if quick else (128, 128, 128, 128)
    c.coupling.activation = "relu"
    c.coupling.log_scale_bound = 5.0
    c.coupling.optim = optim.optim_config(name="adam", learning_rate=1e-3, schedule="cosine",
                                          final_lr_fraction=0.01)

    c.maf = ml_collections.ConfigDict()
    c.maf.num_layers = 8  # 2K, the depth of the coupling flow
    c.maf.hidden_sizes = (64, 64, 64) if quick else (128, 128, 128, 128)
    c.maf.activation = "relu"
    c.maf.log_scale_bound = 5.0
    c.maf.order = "reverse"
    c.maf.optim = optim.optim_config(name="adam", learning_rate=1e-3, schedule="cosine", final_lr_fraction=0.01)

    c.spline = ml_collections.ConfigDict()
    c.spline.num_blocks = 4
    c.spline.layers_per_block = 2
    c.spline.hidden_sizes = (64, 64) if quick else (128, 128)
    c.spline.activation = "relu"
    c.spline.num_bins = 8 if quick else 16
    c.spline.boundary = 4.0  # B: splines on [-B, B], identity outside
    c.spline.optim = optim.optim_config(name="adam", learning_rate=1e-3, schedule="cosine",
                                        final_lr_fraction=0.01)

    c.convergence = ml_collections.ConfigDict()
    c.convergence.kl_threshold = 0.1  # nats
    c.convergence.plateau_fraction = 0.2  # last fifth of the epochs
    c.convergence.plateau_tol = 0.01  # nats of validation NLL

    c.far_radii = 3.0
    c.num_far_samples = 10000

    c.study = ml_collections.ConfigDict()
    c.study.dataset = "gaussians_rot"
    c.study.num_blocks = (2, 4)
    c.study.num_train = (1500, 3000)
    c.study.num_gaussians = (3, 7)

    c.num_plot_samples = 1000
    c.layers_per_panel = 2  # per-layer figures: the prior, then the samples after every second layer
    c.grid_size = 100
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    if isinstance(config.datasets, str) or not set(config.datasets) <= set(DATASETS) or not config.datasets:
        raise experiment.ConfigError(
            f"config.datasets={config.datasets!r} is not valid: expected a non-empty tuple of names from "
            f"{DATASETS}. Set e.g. --config.datasets=\"('moons', 'circles')\".")
    for key in ("num_train", "num_val"):
        if config.batch_size > config[key]:
            raise experiment.ConfigError(
                f"config.batch_size={config.batch_size} is not valid: expected at most config.{key}="
                f"{config[key]} (one batch must fit in the data). Lower --config.batch_size.")
    if config.study.dataset not in DATASETS:
        raise experiment.ConfigError(f"config.study.dataset={config.study.dataset!r} is not valid: expected "
                                     f"one of {DATASETS}.")
    for block in ("coupling", "spline"):
        if config[block].layers_per_block not in (1, 2):
            raise experiment.ConfigError(
                f"config.{block}.layers_per_block={config[block].layers_per_block!r} is not valid: expected 1 "
                "(one-sided layers) or 2 (both halves per block).")
    if isinstance(config.layers_per_panel, bool) or not isinstance(config.layers_per_panel, int) \
            or config.layers_per_panel < 1:
        raise experiment.ConfigError(f"config.layers_per_panel={config.layers_per_panel!r} is not valid: "
                                     "expected a whole number of layers >= 1.")
    if not config.spline.boundary > 0:
        raise experiment.ConfigError(f"config.spline.boundary={config.spline.boundary!r} is not valid: "
                                     "expected a positive half-width B of the spline range [-B, B].")


def _toy_kwargs(name: str, num_gaussians: int) -> dict:
    return {"num_gaussians": num_gaussians} if name == "gaussians_rot" else {}


def _epochs(config, name: str) -> int:
    return config.epochs_moons if name == "moons" else config.epochs


def _label(config, kind: str, num_blocks: int | None = None) -> str:
    return {"coupling": f"k{num_blocks or config.coupling.num_blocks}", "maf": "maf", "spline": "spline"}[kind]


def _title(config, kind: str, num_blocks: int | None = None) -> str:
    if kind == "coupling":
        k = num_blocks or config.coupling.num_blocks
        return f"RealNVP K={k} ({k * config.coupling.layers_per_block} coupling layers)"
    if kind == "maf":
        return f"MAF {config.maf.num_layers} layers"
    s = config.spline
    return f"spline flow K={s.num_blocks} ({s.num_blocks * s.layers_per_block} layers, {s.num_bins} bins)"


def _make_flow(kind: str, cfg: ml_collections.ConfigDict, num_blocks: int | None = None):
    # One lax.scan over layers: compile time matters in the quick preset.
    common = dict(event_shape=(2,), hidden_sizes=tuple(cfg.hidden_sizes), activation=ACTIVATIONS[cfg.activation],
                  scan_layers=True)
    if kind == "maf":
        return MAF(order=cfg.order, num_layers=cfg.num_layers, log_scale_bound=cfg.log_scale_bound, **common)
    per_block = cfg.layers_per_block
    if per_block not in (1, 2):
        raise ValueError(f"layers_per_block must be 1 (one-sided layers) or 2 (both halves per block); got "
                         f"{per_block}.")
    num_layers = (num_blocks or cfg.num_blocks) * per_block
    if kind == "coupling":
        return CouplingFlow(mask="half", num_layers=num_layers, log_scale_bound=cfg.log_scale_bound, **common)
    return SplineCouplingFlow(mask="half", num_layers=num_layers, num_bins=cfg.num_bins, boundary=cfg.boundary,
                              **common)


def _data(config, name: str, num_train: int, num_gaussians: int, seed: int) -> dict[str, np.ndarray]:
    """Train / validation / test points (test: for the KL estimate), disjoint parts of one draw.

    One draw of `max(study.num_train) + num_val + num_test` points per toy (one compiled sampler), whose
    first `num_train` are the training set: the N = 1500 training set is part of the N = 3000 one.
    """
    pool = max(config.num_train, *config.study.num_train)
    x = np.asarray(toy2d.sample(name, jax.random.key(seed), pool + config.num_val + config.num_test,
                                **_toy_kwargs(name, num_gaussians)))
    return {"train": x[:num_train], "val": x[pool:pool + config.num_val], "test": x[pool + config.num_val:]}


# Jitted with the (hashable) flow static, so fits with equal flows share compiled code.
@functools.partial(jax.jit, static_argnums=(0, 2))
def _init(flow, key, copies: int):
    """`copies` stacked copies of the flow's initial parameters (building them does not trace log_prob)."""
    params = flow.init(key, method=lambda module: module.layer_params)
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (copies,) + a.shape), params)


@functools.partial(jax.jit, static_argnums=0)
def _log_prob(flow, params, x):
    return flow.apply(params, x)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _sample(flow, params, key, num_samples):
    return flow.apply(params, key, num_samples, method="sample")


@functools.partial(jax.jit, static_argnums=(0, 3))
def _sample_each_layer(flow, params, key, num_samples):
    return flow.apply(params, key, num_samples, method="sample_each_layer")


class Fit(NamedTuple):
    """One dataset's result of `train_flows`: best params, curves per epoch and the best epoch (1-based)."""
    params: dict
    train_nll: np.ndarray  # [epochs] mean jittered training NLL over each epoch's batches
    val_nll: np.ndarray  # [epochs] validation NLL after each epoch
    best_epoch: int


def train_flows(flow, train_x: np.ndarray, val_x: np.ndarray, jitter: np.ndarray, optim_cfg, *, epochs: int,
                batch_size: int, seed: int, wd=None, name: str = "flows", ckpt_epochs: int = 100) -> list[Fit]:
    """Maximum likelihood for D datasets at once: one network vmapped over D parameter sets.

    Every dataset starts from the same initial parameters and sees the same batch indices as a separate
    run with `seed` would; Adam and the schedule act elementwise, so the D fits do not interact. The step
    is one epoch fused in a `lax.scan`; at the end of each epoch it computes every dataset's validation
    NLL and keeps its best parameters in `state.extra`.

    Args:
      flow: a 2-D flow module.
      train_x: `[D, N, 2]` training points.
      val_x: `[D, M, 2]` validation points.
      jitter: `[D]` std of the Gaussian noise added to each dataset's training batches.
      optim_cfg: a `jgen.optim` block.
      epochs, batch_size, seed: the schedule; `N // batch_size` steps per epoch (remainder dropped).
      wd, name, ckpt_epochs: checkpoints and log rows in the workdir (resumable).

    Returns:
      D `Fit`s in the order of the datasets.
    """
    d, n = train_x.shape[:2]
    steps_per_epoch = n // batch_size
    num_steps = epochs * steps_per_epoch
    key = jax.random.key(seed)
    params = _init(flow, key, d)
    tx = optim.make_optimizer(optim_cfg, num_steps)
    log_q = jax.vmap(flow.apply)  # params [D, ...], x [D, B, 2] -> [D, B]
    val_x, jitter = jnp.asarray(val_x), jnp.asarray(jitter, jnp.float32)

    def loss_fn(p, batch, rng):
        x = jnp.swapaxes(batch["x"], 0, 1)  # [D, B, 2]
        x = x + jitter[:, None, None] * jax.random.normal(rng, x.shape)
        nll = -jnp.mean(log_q(p, x), axis=1)
        # The sum's gradient w.r.t. one dataset's parameters is that dataset's own gradient.
        return jnp.sum(nll), {f"nll_{i}": nll[i] for i in range(d)}

    grad_step = train.make_train_step(loss_fn, tx)

    def record(state):
        extra, epoch = state.extra, state.step // steps_per_epoch
        val = -jnp.mean(log_q(state.params, val_x), axis=1)
        better = val < extra["best_val"]
        pick = lambda best, p: jnp.where(better.reshape((d,) + (1,) * (p.ndim - 1)), p, best)
        return {"best_params": jax.tree.map(pick, extra["best_params"], state.params),
                "best_val": jnp.where(better, val, extra["best_val"]),
                "best_epoch": jnp.where(better, epoch, extra["best_epoch"]),
                "val_nll": extra["val_nll"].at[epoch - 1].set(val)}

    def step(state, batch):
        state, metrics = grad_step(state, batch)
        extra = jax.lax.cond(state.step % steps_per_epoch == 0, record, lambda s: s.extra, state)
        return state.replace(extra=extra), metrics

    # Finite initial values: `fit` refuses to checkpoint a state holding NaN/Inf.
    extra = {"best_params": params, "best_val": jnp.full((d,), jnp.finfo(jnp.float32).max),
             "best_epoch": jnp.zeros((d,), jnp.int32), "val_nll": jnp.zeros((epochs, d), jnp.float32)}
    state = train.create_train_state(params, tx, key, extra=extra)
    batches = BatchIterator({"x": np.swapaxes(train_x, 0, 1)}, batch_size, seed=seed)
    result = train.fit(step, state, batches, num_steps, wd=wd, name=name, log_every=steps_per_epoch,
                       ckpt_every=ckpt_epochs * steps_per_epoch, fuse_steps=steps_per_epoch, progress=False)
    extra = jax.device_get(result.state.extra)
    rows = result.history  # one row per epoch
    return [Fit(jax.tree.map(lambda a: jnp.asarray(a[i]), extra["best_params"]),
                np.array([r[f"nll_{i}"] for r in rows]), extra["val_nll"][:, i], int(extra["best_epoch"][i]))
            for i in range(d)]


def kl_estimate(flow, params, name: str, test: np.ndarray, num_gaussians: int) -> dict[str, float]:
    """Held-out NLL, entropy of p and KL(p || q) = E_p[log p - log q] (nats) with its standard error."""
    x = jnp.asarray(test)
    log_q = np.asarray(_log_prob(flow, params, x), np.float64)
    log_p = np.asarray(toy2d.log_prob(name, x, **_toy_kwargs(name, num_gaussians)), np.float64)
    diff = log_p - log_q
    return {"nll": float(-log_q.mean()), "entropy": float(-log_p.mean()), "kl": float(diff.mean()),
            "kl_se": float(diff.std() / math.sqrt(len(diff)))}


def far_fraction(samples: np.ndarray, data: np.ndarray, radii: float) -> float:
    """Fraction of `samples [n, 2]` farther than `radii` data radii from the mean of `data [m, 2]`.

    The data radius is the 99.5% quantile of `|x - mean|` over the data points, so a few outlying data
    points do not set it.
    """
    samples, data = np.asarray(samples, np.float64), np.asarray(data, np.float64)
    center = data.mean(axis=0)
    radius = np.quantile(np.linalg.norm(data - center, axis=1), 0.995)
    far = ~(np.linalg.norm(samples - center, axis=1) <= radii * radius)  # NaN samples count as far
    return float(far.mean())


def robust_limits(*point_sets: np.ndarray, quantiles=(0.005, 0.995), pad: float = 0.1) -> tuple[float, float]:
    """Square axis limits `(lo, hi)` covering the central quantile range of every coordinate of the points.

    Args:
      point_sets: arrays `[n, 2]`; non-finite points are ignored.
      quantiles: the lower and upper quantile of each coordinate that the box must contain.
      pad: margin added on each side, as a fraction of the box width.

    Returns:
      `(lo, hi)` for both axes: a handful of samples at |x| ~ 1e5 does not move it.
    """
    pts = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in point_sets])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        return (-1.0, 1.0)
    lo, hi = np.quantile(pts, quantiles, axis=0)
    lo, hi = float(lo.min()), float(hi.max())
    width = max(hi - lo, 1e-6)
    return (lo - pad * width, hi + pad * width)


def verdict(fit: Fit, kl: float, cfg: ml_collections.ConfigDict) -> tuple[bool, str]:
    """(converged, reason): KL below `cfg.kl_threshold` and validation NLL flat over the last epochs."""
    val = np.asarray(fit.val_nll, np.float64)
    tail = max(1, int(round(cfg.plateau_fraction * len(val))))
    drop = float(np.min(val[:-tail]) - np.min(val)) if len(val) > tail else float("inf")
    problems = []
    if not kl < cfg.kl_threshold:
        problems.append(f"KL {kl:.3f} >= {cfg.kl_threshold:g} nats")
    if not drop < cfg.plateau_tol:
        problems.append(f"validation NLL still falling ({drop:.3f} nats over the last {tail} epochs)")
    return not problems, "; ".join(problems) or "ok"


class Spec(NamedTuple):
    """What one fit trains: the model, its depth (coupling blocks) and the data."""
    kind: str
    num_blocks: int | None
    dataset: str
    num_train: int
    num_gaussians: int
    epochs: int


def fit_all(config, wd, specs: list[Spec]) -> dict[Spec, dict]:
    """Trains every distinct spec once, vmapping the datasets of one architecture, size and length."""
    groups: dict[tuple, list[Spec]] = {}
    for s in dict.fromkeys(specs):
        groups.setdefault((s.kind, s.num_blocks, s.num_train, s.epochs), []).append(s)
    out = {}
    for (kind, num_blocks, num_train, epochs), members in groups.items():
        cfg = config[kind]
        flow = _make_flow(kind, cfg, num_blocks)
        data = [_data(config, s.dataset, num_train, s.num_gaussians, config.seed) for s in members]
        tags = [f"{s.dataset}" + (f"_ng{s.num_gaussians}" if s.num_gaussians != config.num_gaussians else "")
                for s in members]
        name = f"{_label(config, kind, num_blocks)}_n{num_train}_{'_'.join(tags)}"
        fits = train_flows(flow, np.stack([dd["train"] for dd in data]), np.stack([dd["val"] for dd in data]),
                           np.array([config.jitter[s.dataset] for s in members]), cfg.optim, epochs=epochs,
                           batch_size=config.batch_size, seed=config.seed, wd=wd, name=name,
                           ckpt_epochs=config.ckpt_epochs)
        for s, dd, fit in zip(members, data, fits):
            scores = kl_estimate(flow, fit.params, s.dataset, dd["test"], s.num_gaussians)
            samples = _sample(flow, fit.params, jax.random.key(config.seed + 2), config.num_far_samples)
            converged, why = verdict(fit, scores["kl"], config.convergence)
            out[s] = {"flow": flow, "fit": fit, "data": dd, **scores,
                      "far_fraction": far_fraction(np.asarray(samples), dd["test"], config.far_radii),
                      "best_epoch": fit.best_epoch, "epochs": epochs, "converged": converged, "verdict": why}
    return out


def _main_specs(config) -> list[Spec]:
    return [Spec(kind, config.coupling.num_blocks if kind == "coupling" else None, name, config.num_train,
                 config.num_gaussians, _epochs(config, name))
            for name in config.datasets for kind in KINDS]


def _study_specs(config) -> list[tuple[str, str, str, Spec]]:
    """(study, bar label, metric tag, spec): each study changes one setting of the main RealNVP fit."""
    st, per_block = config.study, config.coupling.layers_per_block
    base = Spec("coupling", config.coupling.num_blocks, st.dataset, config.num_train, config.num_gaussians,
                _epochs(config, st.dataset))
    return ([("num_blocks", f"{v} ({v * per_block} layers)", f"k{v}", base._replace(num_blocks=v))
             for v in st.num_blocks]
            + [("num_train", str(v), f"n{v}", base._replace(num_train=v)) for v in st.num_train]
            + [("num_gaussians", str(v), f"ng{v}", base._replace(num_gaussians=v)) for v in st.num_gaussians])


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    main, studies = _main_specs(config), _study_specs(config)
    results = fit_all(config, wd, main + [s for *_, s in studies])

    metrics: dict[str, float] = {}
    rows = []
    for s in main:
        r, label = results[s], _label(config, s.kind, s.num_blocks)
        for key in ("kl", "nll", "best_epoch", "far_fraction"):
            metrics[f"{key}_{s.dataset}_{label}"] = r[key]
        metrics[f"entropy_{s.dataset}"] = r["entropy"]
        rows.append({"dataset": s.dataset, "model": _title(config, s.kind, s.num_blocks),
                     **{k: r[k] for k in ("kl", "kl_se", "nll", "entropy", "far_fraction", "best_epoch", "epochs",
                                          "converged", "verdict")}})
    metrics["num_failed_fits"] = sum(not r["converged"] for r in rows)
    wd.save_table("fits", rows)
    wd.write_checks({f"{r['model']} converged on {r['dataset']}": (r["converged"], r["verdict"]) for r in rows})
    for name in config.datasets:
        _dataset_figures(config, wd, name, [s for s in main if s.dataset == name], results)

    study_rows = []
    for what, value, tag, s in studies:
        r = results[s]
        metrics[f"kl_study_{tag}"] = r["kl"]
        study_rows.append({"study": what, "value": value, "dataset": s.dataset, "num_blocks": s.num_blocks,
                           "layers_per_block": config.coupling.layers_per_block, "num_train": s.num_train,
                           "num_gaussians": s.num_gaussians, "same_fit_as_main": s in main,
                           **{k: r[k] for k in ("kl", "kl_se", "nll", "entropy", "best_epoch", "epochs",
                                                "converged", "verdict")}})
    wd.save_table("studies", study_rows)
    _study_figure(wd, study_rows)
    return metrics


def _dataset_figures(config, wd, name: str, specs: list[Spec], results: dict) -> None:
    curves, marks, densities = {}, {}, []
    kw = _toy_kwargs(name, config.num_gaussians)
    for s in specs:
        r, title = results[s], _title(config, s.kind, s.num_blocks).split(" (")[0]
        fit, epochs = r["fit"], np.arange(1, len(r["fit"].val_nll) + 1)
        curves[f"{title} train"] = (epochs, fit.train_nll)
        curves[f"{title} validation"] = (epochs, fit.val_nll)
        marks[f"{title} validation"] = fit.best_epoch
        flow, params = r["flow"], fit.params
        densities.append((f"{title}: KL {r['kl']:.3f}",
                          lambda pts, f=flow, p=params: _log_prob(f, p, jnp.asarray(pts, jnp.float32))))
        _layer_figure(config, wd, f"{name}_{_label(config, s.kind, s.num_blocks)}",
                      f"{_title(config, s.kind, s.num_blocks)}, {name}", flow, params)
    viz.loss_curves(curves, mark_best=marks, title=f"{name}: NLL per epoch (dotted: best validation epoch)",
                    xlabel="epoch", ylabel="NLL (nats)", path=wd.figure_path(f"{name}_loss"))
    lim = robust_limits(results[specs[0]]["data"]["test"], quantiles=(0.0, 1.0), pad=0.05)
    true = ("true p(x)", lambda pts: toy2d.log_prob(name, jnp.asarray(pts, jnp.float32), **kw))
    viz.side_by_side([true] + densities, xlim=lim, ylim=lim, n=config.grid_size,
                     path=wd.figure_path(f"{name}_density"),
                     title=f"{name}: density on a {config.grid_size}^2 grid (KL in nats)")


def _layer_figure(config, wd, tag: str, title: str, flow, params) -> None:
    each = [np.asarray(a) for a in
            _sample_each_layer(flow, params, jax.random.key(config.seed + 1), config.num_plot_samples)]
    lo, hi = robust_limits(each[0], each[-1])
    shown = sorted({0, *range(config.layers_per_panel, len(each), config.layers_per_panel), len(each) - 1})
    panels = []
    for k in shown:
        a = each[k]
        outside = float(np.mean(~np.all((a >= lo) & (a <= hi), axis=1)))
        label = "prior" if k == 0 else f"after layer {k}"
        panels.append((label + (f" ({outside:.0%} outside)" if outside >= 0.005 else ""), a))
    viz.layer_scatter(panels, title=f"{title}: {config.num_plot_samples} samples through the flow",
                      lim=(lo, hi), path=wd.figure_path(f"{tag}_layers"))


def _study_figure(wd, rows):
    from matplotlib.figure import Figure

    groups = {}
    for r in rows:
        groups.setdefault(r["study"], []).append(r)
    fig = Figure(figsize=(3.6 * len(groups), 3.4))
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (what, rs) in zip(axes, groups.items()):
        labels = [str(r["value"]) for r in rs]
        ax.bar(labels, [r["kl"] for r in rs], yerr=[2 * r["kl_se"] for r in rs], color="#4c72b0", capsize=4)
        ax.set_xlabel(what)
        ax.set_ylabel("KL(p || q) estimate (nats)")
        ax.set_title(f"{what} ({rs[0]['epochs']} epochs)")
    fig.suptitle("RealNVP studies on gaussians_rot: held-out NLL - entropy (error bars: 2 s.e.)")
    fig.tight_layout()
    wd.save_figure(fig, "studies_kl")


if __name__ == "__main__":
    experiment.main(get_config, run)
