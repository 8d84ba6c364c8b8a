"""Coupling Flows, Part II: RealNVP and MAF on 2-D toy densities.

A RealNVP flow (`jgen.flows.CouplingFlow`: affine coupling layers with alternating masks, MLP conditioners
whose last layer starts at zero, log-scales bounded by `b tanh(s / b)`) and a MAF (`jgen.flows.MAF`, MADE
conditioners, order reversed between layers) are fitted by maximum likelihood to N = 1500 points of
"circles", "moons", "gaussian_grid" and "gaussians_rot" (`jgen.data.toy2d`), with a separate validation
set of 500 points that picks the best epoch (`jgen.train.fit_loss(eval_fn, keep_best)`).

K counts coupling blocks, each two affine coupling layers with complementary masks, so that every block
updates both halves of x (the affine coupling block of Ardizzone et al. 2019, FrEIA's
`RNVPCouplingBlock`): K = 4 is 8 one-sided layers, and the K = 2 row of the study is the flow of 4
one-sided layers. Counted in one-sided layers, K = 4 keeps the rotated-Gaussians fit above 0.1 nats
however it is trained: 0.13-0.2 at N = 1500 over seeds, jitter, weight decay, EMA and fixed or learned
rotations between layers, and still 0.08-0.09 with N = 20000 training points, so that shallower flow
cannot resolve five separated modes. `--config.coupling.layers_per_block=1` runs it. The MAF gets the
same depth: 2K autoregressive layers.

The figure of merit is a KL estimate in nats: the data densities are known exactly (mixtures, Bessel
form for circles, quadrature for moons), so with M fresh test samples x_i ~ p,
KL(p || q) ~ (1/M) sum_i [log p(x_i) - log q(x_i)] = held-out NLL - entropy of p, with its Monte Carlo
standard error. Training adds Gaussian jitter to every batch (a standard flow regulariser), half the
toy's own noise scale (`config.jitter`: sigma 0.2 of the rotated Gaussians, 0.1 of the grid and of the
moons, 0.05 of the circles). The bias it adds is KL(p || p * N(0, s^2)), about 0.02 nats for a
2-D Gaussian component (2 x 0.5 (1/1.25 - 1 + log 1.25)); it is included in the KL reported.

Studies on "gaussians_rot": number of blocks K in {2, 4}, training set size N in {1500, 3000} and number
of mixture components in {3, 7}. Per dataset: train/validation loss curves with the best epoch, the
estimated density on a 100 x 100 grid next to the true one, and samples after the prior and after every
coupling layer (shared axes).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import experiment, train, viz
from jgen.data import BatchIterator, toy2d
from jgen.flows import MAF, CouplingFlow
from jgen.metrics import sample_quality

DATASETS = ("circles", "moons", "gaussian_grid", "gaussians_rot")
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
    c.learning_rate = 1e-3
    c.final_lr_fraction = 0.01  # cosine decay to this fraction of the learning rate
    c.jitter = ml_collections.ConfigDict(  # std of the Gaussian jitter added to training batches
        {"circles": 0.025, "moons": 0.05, "gaussian_grid": 0.05, "gaussians_rot": 0.1})
    c.epochs = 150 if quick else 500
    c.epochs_moons = 300 if quick else 1000

    c.coupling = ml_collections.ConfigDict()
    c.coupling.num_blocks = 4  # K
    c.coupling.layers_per_block = 2  # 2: both halves updated per block; 1: one-sided layers
    c.coupling.hidden_sizes = (128, 128, 128, 128)
    c.coupling.activation = "relu"
    c.coupling.log_scale_bound = 5.0

    c.maf = ml_collections.ConfigDict()
    c.maf.num_layers = 8  # 2K, the depth of the coupling flow
    c.maf.hidden_sizes = (128, 128, 128, 128)
    c.maf.activation = "relu"
    c.maf.log_scale_bound = 5.0
    c.maf.order = "reverse"

    c.study = ml_collections.ConfigDict()
    c.study.dataset = "gaussians_rot"
    c.study.num_blocks = (2, 4)
    c.study.num_blocks_epochs = 100 if quick else 250
    c.study.num_train = (1500, 3000)
    c.study.num_train_epochs = 150 if quick else 400
    c.study.num_gaussians = (3, 7)
    c.study.num_gaussians_epochs = 100 if quick else 250

    c.num_plot_samples = 1000
    c.grid_size = 100
    return c


def _toy_kwargs(name: str, num_gaussians: int) -> dict:
    return {"num_gaussians": num_gaussians} if name == "gaussians_rot" else {}


def _make_flow(kind: str, cfg: ml_collections.ConfigDict, num_blocks: int | None = None):
    # One lax.scan over layers: compile time dominates the quick preset.
    common = dict(event_shape=(2,), hidden_sizes=tuple(cfg.hidden_sizes), activation=ACTIVATIONS[cfg.activation],
                  log_scale_bound=cfg.log_scale_bound, scan_layers=True)
    if kind == "coupling":
        per_block = cfg.layers_per_block
        if per_block not in (1, 2):
            raise ValueError(f"coupling.layers_per_block must be 1 (one-sided layers) or 2 (both halves per "
                             f"block); got {per_block}.")
        return CouplingFlow(mask="half", num_layers=(num_blocks or cfg.num_blocks) * per_block, **common)
    return MAF(order=cfg.order, num_layers=cfg.num_layers, **common)


def _data(config, name: str, num_train: int, num_gaussians: int, seed: int) -> dict[str, np.ndarray]:
    """Independent train / validation / test draws from the toy density (test: for the KL estimate)."""
    kw = _toy_kwargs(name, num_gaussians)
    k_train, k_val, k_test = jax.random.split(jax.random.key(seed), 3)
    return {"train": np.asarray(toy2d.sample(name, k_train, num_train, **kw)),
            "val": np.asarray(toy2d.sample(name, k_val, config.num_val, **kw)),
            "test": np.asarray(toy2d.sample(name, k_test, config.num_test, **kw))}


# Jitted with the (hashable) flow static, so runs with equal flows share compiled code.
@functools.partial(jax.jit, static_argnums=0)
def _init(flow, key, x):
    return flow.init(key, x)


@functools.partial(jax.jit, static_argnums=0)
def _log_prob(flow, params, x):
    return flow.apply(params, x)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _sample_each_layer(flow, params, key, n):
    return flow.apply(params, key, n, method="sample_each_layer")


def train_flow(flow, data: dict, config, epochs: int, wd, name: str, seed: int, jitter: float):
    """Maximum likelihood with Adam (cosine decay), one fused `lax.scan` per epoch, best validation epoch kept.

    Returns:
      (params of the best validation epoch, curves {"epoch", "train_nll", "val_nll"}, best epoch).
    """
    train_x, val_x = jnp.asarray(data["train"]), jnp.asarray(data["val"])
    steps_per_epoch = len(train_x) // config.batch_size
    num_steps = epochs * steps_per_epoch
    key = jax.random.key(seed)
    params = _init(flow, key, train_x[:1])
    schedule = optax.cosine_decay_schedule(config.learning_rate, num_steps, config.final_lr_fraction)
    tx = optax.adam(schedule)

    def loss_fn(p, batch, rng):
        x = batch["x"] + jitter * jax.random.normal(rng, batch["x"].shape)
        return -jnp.mean(flow.apply(p, x)), {}

    both = jnp.concatenate([val_x, train_x])

    def eval_fn(p):  # the first value (validation NLL) ranks epochs for keep_best
        log_q = _log_prob(flow, p, both)
        return {"val_nll": -jnp.mean(log_q[:len(val_x)]), "train_nll": -jnp.mean(log_q[len(val_x):])}

    batches = BatchIterator({"x": data["train"]}, config.batch_size, seed=seed)
    result = train.fit_loss(loss_fn, params, tx, batches, num_steps, rng=key, wd=wd, name=name,
                            log_every=steps_per_epoch, eval_every=steps_per_epoch, ckpt_every=50 * steps_per_epoch,
                            eval_fn=eval_fn, keep_best=True, fuse_steps=steps_per_epoch, progress=False)
    rows = result.eval_history
    curves = {"epoch": np.array([r["step"] / steps_per_epoch for r in rows]),
              "train_nll": np.array([r["train_nll"] for r in rows]),
              "val_nll": np.array([r["val_nll"] for r in rows])}
    best_epoch = int(curves["epoch"][int(np.argmin(curves["val_nll"]))])
    return result.params, curves, best_epoch


def kl_estimate(flow, params, name: str, test: np.ndarray, num_gaussians: int) -> dict[str, float]:
    """Held-out NLL, entropy of p and KL(p || q) = E_p[log p - log q] (nats) with its standard error."""
    x = jnp.asarray(test)
    log_q = _log_prob(flow, params, x)
    return sample_quality.kl_estimate(toy2d.log_prob(name, x, **_toy_kwargs(name, num_gaussians)), log_q)


def _limits(x: np.ndarray) -> tuple[float, float]:
    r = float(np.abs(x).max()) * 1.1
    return (-r, r)


def _figures(wd, tag: str, title: str, flow, params, curves, best_epoch, data, name, num_gaussians, config):
    viz.loss_curves({"train NLL": (curves["epoch"], curves["train_nll"]),
                     "validation NLL": (curves["epoch"], curves["val_nll"])},
                    mark_best={"validation NLL": best_epoch}, title=f"{title}: loss (best epoch {best_epoch})",
                    xlabel="epoch", ylabel="NLL (nats)", path=wd.figure_path(f"{tag}_loss"))
    lim = _limits(data["test"])  # both panels on viz's pixel-centre grid
    kw = _toy_kwargs(name, num_gaussians)
    viz.side_by_side([("true p(x)", lambda pts: toy2d.log_prob(name, jnp.asarray(pts, jnp.float32), **kw)),
                      ("flow q(x)", lambda pts: _log_prob(flow, params, jnp.asarray(pts, jnp.float32)))],
                     xlim=lim, ylim=lim, n=config.grid_size, path=wd.figure_path(f"{tag}_density"),
                     title=f"{title}: density on a {config.grid_size}^2 grid")
    each = _sample_each_layer(flow, params, jax.random.key(config.seed + 1), config.num_plot_samples)
    panels = [("prior", each[0])] + [(f"after layer {k}", a) for k, a in enumerate(each[1:], 1)]
    lim = _limits(np.concatenate([np.asarray(a) for a in each]))
    viz.layer_scatter(panels, title=f"{title}: {config.num_plot_samples} samples through the flow", lim=lim,
                      path=wd.figure_path(f"{tag}_layers"))


def _fit_and_score(config, wd, kind, name, *, epochs, num_blocks=None, num_train=None, num_gaussians=None,
                   tag, title, figures=True):
    num_gaussians = num_gaussians or config.num_gaussians
    data = _data(config, name, num_train or config.num_train, num_gaussians, config.seed)
    flow = _make_flow(kind, config.coupling if kind == "coupling" else config.maf, num_blocks)
    params, curves, best_epoch = train_flow(flow, data, config, epochs, wd, tag, config.seed, config.jitter[name])
    scores = kl_estimate(flow, params, name, data["test"], num_gaussians)
    if figures:
        _figures(wd, tag, title, flow, params, curves, best_epoch, data, name, num_gaussians, config)
    return {**scores, "best_epoch": best_epoch, "epochs": epochs}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    if isinstance(config.datasets, str) or not set(config.datasets) <= set(DATASETS):
        raise ValueError(f"config.datasets must be a tuple of names from {DATASETS}, e.g. "
                         f"--config.datasets=\"('moons', 'circles')\"; got {config.datasets!r}.")
    metrics: dict[str, float] = {}
    rows = []
    for name in config.datasets:
        epochs = config.epochs_moons if name == "moons" else config.epochs
        for kind in ("coupling", "maf"):
            if kind == "coupling":
                k = config.coupling.num_blocks
                label = f"k{k}"
                title = f"RealNVP K={k} ({k * config.coupling.layers_per_block} coupling layers), {name}"
            else:
                label, title = "maf", f"MAF {config.maf.num_layers} layers, {name}"
            s = _fit_and_score(config, wd, kind, name, epochs=epochs, tag=f"{name}_{label}", title=title)
            for key in ("kl", "nll", "best_epoch"):
                metrics[f"{key}_{name}_{label}"] = s[key]
            metrics[f"entropy_{name}"] = s["entropy"]
            rows.append({"dataset": name, "model": title.split(",")[0], **s})
    wd.save_table("fits", rows)

    st = config.study
    per_block = config.coupling.layers_per_block
    # (study, bar label, metric tag, fit overrides)
    studies = ([("num_blocks", f"{v} ({v * per_block} layers)", f"k{v}",
                 dict(num_blocks=v, epochs=st.num_blocks_epochs)) for v in st.num_blocks]
               + [("num_train", str(v), f"n{v}", dict(num_train=v, epochs=st.num_train_epochs))
                  for v in st.num_train]
               + [("num_gaussians", str(v), f"ng{v}", dict(num_gaussians=v, epochs=st.num_gaussians_epochs))
                  for v in st.num_gaussians])
    study_rows = []
    for what, value, short, kw in studies:
        tag = f"study_{short}"
        s = _fit_and_score(config, wd, "coupling", st.dataset, tag=tag,
                           title=f"RealNVP {what}={value}, {st.dataset}", **kw)
        metrics[f"kl_{tag}"] = s["kl"]
        study_rows.append({"study": what, "value": value, "dataset": st.dataset,
                           "num_blocks": kw.get("num_blocks", config.coupling.num_blocks), "layers_per_block": per_block,
                           "num_train": kw.get("num_train", config.num_train),
                           "num_gaussians": kw.get("num_gaussians", config.num_gaussians), **s})
    wd.save_table("studies", study_rows)
    _study_figure(wd, study_rows)
    return metrics


def _study_figure(wd, rows):
    groups = {}
    for r in rows:
        groups.setdefault(r["study"], []).append(r)
    fig, axes = viz.panel_grid(1, len(groups), panel_size=(3.6, 3.4),
                               title="RealNVP studies on gaussians_rot: held-out NLL - entropy (error bars: 2 s.e.)")
    for ax, (what, rs) in zip(axes[0], groups.items()):
        viz.bar_chart([str(r["value"]) for r in rs], [r["kl"] for r in rs], errors=[2 * r["kl_se"] for r in rs],
                      ax=ax, title=f"{what} ({rs[0]['epochs']} epochs)", xlabel=what,
                      ylabel="KL(p || q) estimate (nats)")
    wd.save_figure(fig, "studies_kl")


if __name__ == "__main__":
    experiment.main(get_config, run)
