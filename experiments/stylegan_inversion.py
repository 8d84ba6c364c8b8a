"""StyleGAN inversion in z, w and w+ with MSE and MSE + LPIPS + cosine losses, and w+ layer crossover.

Generator (`config.weights`): "" is a user's real checkpoint when one is in place
(`jgen.gan.convert.user_weights_path()`: `$JGEN_STYLEGAN2_WEIGHTS`, or the one file in
`$JGEN_CACHE_DIR/stylegan2/`), else the shipped in-project generator (`jgen.gan.pretrained.load(
"olivetti64")`, Olivetti faces 64 x 64 grey, trained on the train people only); a path to a `.pkl` (NVlabs)
or `.pt` (rosinality) checkpoint is converted by `jgen.gan.convert.load_checkpoint` (no PyTorch needed);
"random" is a randomly initialised generator of `config.random_model` (tests and smoke runs only).

Targets: `num_targets` held-out Olivetti faces (the people the shipped generator never saw: the "test" part of
the split recorded in its json, `pretrained.data_splits`), spread over the held-out people, scaled to [-1, 1]
and resized (area / bilinear) to the generator's side, grey repeated to its channels.

Inversion (`jgen.gan.invert`): every target of a (space, loss) run is optimised at once (one batch, one
jitted step), Adam with constant lr `invert.optim.learning_rate` (0.01) for `invert.num_steps` steps (1000 in
the full preset), the same for every space and loss; w and w+ start at w_avg, z at the z whose w is nearest
w_avg. Losses: "mse", and "combined" = MSE + `lpips_weight` LPIPS (AlexNet, v0.1) + `cosine_weight` (1 - cos)
in the flattened AlexNet relu5 features (`invert.FEATURE_SPACE`).

What is reported:

* Parts 1 and 2: `tables/inversion.csv` and metrics `{l2,lpips,cos}_{mse,combined}_{z,w,wplus}` (means over
  the targets; `_std` beside each): l2 = RMS pixel difference in [-1, 1] units, LPIPS, cosine distance.
  Figures `recon_<loss>_<space>`: the first `num_figure` targets above their reconstructions, and the loss
  curves of every run.
* Part 3 (crossover, w+ codes of the combined loss): `num_pairs` (content, style) pairs of targets. Split A
  takes layers 1..n/2 (the coarse ones) from the content code and the rest from the style code; split B
  the reverse; no fine-tuning. Metrics `l2_content_split_{a,b}` = L2(I_c, A/B), `lpips_style_split_{a,b}` =
  LPIPS(I_s, A/B) (means, `_std` beside), and `delta_style` = lpips_style_split_a - lpips_style_split_b
  (> 0: the style image is closer to B, whose coarse layers it gave). A 2 x 4 panel per pair (I_c, I_s, A,
  B above, zoomed centre crops below).
* Checks (`checks.json`): images the generator made from known w (truncation `known_psi`) are recovered in
  w+ (mean L2 < `known_l2_max`, mean LPIPS < `known_lpips_max`, starting from w_avg); on the real held-out
  targets the mean L2 orders w+ < w < z, for each loss. Failing checks say so, with the numbers.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import ml_collections
import numpy as np

from jgen import experiment, viz
from jgen.data import faces
from jgen.gan import invert as inv, pretrained, stylegan2 as sg
from jgen.metrics import perceptual

DEFAULT_SPLIT = {"by": "person", "test_fraction": 0.2, "seed": 0}  # stylegan_train's split


def get_config(preset: str) -> ml_collections.ConfigDict:
    quick = preset == "quick"
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.weights = ""  # "": shipped olivetti64; a .pkl / .pt path; "random": random_model (tests only)
    c.random_model = sg.stylegan2_config(resolution=16, img_channels=1, z_dim=16, w_dim=16, mapping_layers=2,
                                         channel_base=64, channel_max=16)
    c.num_targets = 5 if quick else 20
    c.num_figure = 5
    c.num_pairs = 5
    c.spaces = ("z", "w", "wplus")
    c.losses = ("mse", "combined")
    c.invert = inv.invert_config(num_steps=100 if quick else 1000, learning_rate=0.01, lpips_weight=1.0,
                                 cosine_weight=0.5, net="alexnet", feature_size=64)
    c.known_psi = 0.7
    c.known_l2_max = 0.05
    c.known_lpips_max = 0.05
    c.crop = 0.5  # side of the zoomed centre crop, as a fraction of the image
    return c


def validate_config(config: ml_collections.ConfigDict) -> None:
    try:
        inv.check_invert_config(config.invert)
    except ValueError as e:
        raise experiment.ConfigError(f"--config.invert: {e}") from None
    for name, allowed in (("spaces", inv.SPACES), ("losses", inv.LOSSES)):
        bad = [v for v in config[name] if v not in allowed]
        if bad or not config[name]:
            raise experiment.ConfigError(f"--config.{name}={tuple(config[name])} is not valid: expected a non-empty "
                                         f"subset of {allowed}")
    if config.num_targets < 2:
        raise experiment.ConfigError(f"--config.num_targets={config.num_targets} is not valid: expected >= 2 "
                                     "(crossover pairs need two targets)")
    if not 1 <= config.num_figure <= config.num_targets or not 1 <= config.num_pairs:
        raise experiment.ConfigError(f"--config.num_figure={config.num_figure} / num_pairs={config.num_pairs}: "
                                     f"expected 1 <= num_figure <= num_targets ({config.num_targets}), num_pairs >= 1")
    if config.weights not in ("", "random") and not Path(config.weights).is_file():
        raise experiment.ConfigError(f"--config.weights={config.weights!r}: no such file; expected '' (the shipped "
                                     "generator), 'random', or a .pkl (NVlabs) / .pt (rosinality) checkpoint")


def load_generator(config) -> tuple[ml_collections.ConfigDict, object, jax.Array, dict, str]:
    """(g_config, params, w_avg, split, description) of `config.weights`."""
    if config.weights == "random":
        g = config.random_model
        params = sg.init_params(g, jax.random.PRNGKey(config.seed))
        G = sg.Generator(g)
        z = jax.random.normal(jax.random.PRNGKey(config.seed + 1), (1000, g.z_dim))
        w_avg = jnp.mean(jax.jit(lambda p, z: G.apply({"params": p}, z, method=G.mapping))(params, z), 0)
        return g, params, w_avg, dict(DEFAULT_SPLIT), "random (untrained) generator"
    from jgen.gan import convert

    path = config.weights or convert.user_weights_path()  # "": a user's real checkpoint first, if one is in place
    if path:
        g, params, w_avg = convert.load_checkpoint(path)
        return g, params, jnp.asarray(w_avg), dict(DEFAULT_SPLIT), f"converted {Path(path).name}"
    try:
        p = pretrained.load(pretrained.DEFAULT)
    except FileNotFoundError as e:
        raise experiment.ConfigError(f"{e}. Train it with experiments/stylegan_train.py --preset=full "
                                     "--config.export_dir=jgen/gan/pretrained, or pass --config.weights") from None
    return p.config, p.params, p.w_avg, dict(p.meta["split"]), f"shipped {pretrained.DEFAULT}"


def held_out_targets(g_config, split: dict, n: int) -> np.ndarray:
    """`n` held-out Olivetti faces [n, R, R, K] in [-1, 1], spread over the held-out people (file order)."""
    r = g_config.resolution
    test = faces.olivetti_splits(**split, size=min(r, faces.OLIVETTI_SIZE))["test"]  # area-averaged down
    idx = np.linspace(0, len(test["image"]) - 1, n).round().astype(int)
    x = test["image"][idx].astype(np.float32) / 127.5 - 1.0
    if r > x.shape[1]:
        x = np.asarray(jax.image.resize(x, (n, r, r, 1), "linear"))
    return np.repeat(x, g_config.img_channels, axis=-1) if g_config.img_channels != 1 else x


def _images(x) -> np.ndarray:
    return np.clip(np.asarray(x), -1.0, 1.0)


def crossover_panel(c_img, s_img, a_img, b_img, crop: float, title: str):
    """2 x 4 panel: I_c, I_s, split A, split B, and their zoomed centre crops below."""
    fig, axes = plt.subplots(2, 4, figsize=(8, 4.4))
    h = c_img.shape[0]
    k = max(2, int(round(h * crop)))
    lo = (h - k) // 2
    for j, (img, name) in enumerate(((c_img, "content I_c"), (s_img, "style I_s"), (a_img, "split A"),
                                     (b_img, "split B"))):
        im = (np.asarray(img) + 1) / 2
        show = im[..., 0] if im.shape[-1] == 1 else np.clip(im, 0, 1)
        axes[0, j].imshow(show, cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].imshow(show[lo:lo + k, lo:lo + k], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[1, j].set_title("centre crop x%.0f" % (h / k), fontsize=8)
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _mean_std(prefix: str, values) -> dict[str, float]:
    v = np.asarray(values, np.float64)
    return {prefix: float(v.mean()), f"{prefix}_std": float(v.std())}


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    validate_config(config)
    g_config, params, w_avg, split, source = load_generator(config)
    lpips_params = perceptual.load_lpips(config.invert.net)
    targets = held_out_targets(g_config, split, config.num_targets)
    nf = config.num_figure
    metrics, rows, results, curves = {}, [], {}, {}
    for loss in config.losses:
        for space in config.spaces:
            c = ml_collections.ConfigDict(config.invert.to_dict())
            c.space, c.loss = space, loss
            r = inv.invert(g_config, params, targets, c, w_avg=w_avg, lpips_params=lpips_params)
            results[space, loss] = r
            tag = f"{loss}_{space}"
            for name, values in (("l2", r.l2), ("lpips", r.lpips), ("cos", r.cosine)):
                metrics.update(_mean_std(f"{name}_{tag}", values))
            metrics[f"seconds_{tag}"] = r.seconds
            rows.append({"space": space, "loss": loss, **{f"{m}_mean": metrics[f"{m}_{tag}"] for m in
                         ("l2", "lpips", "cos")}, **{f"{m}_std": metrics[f"{m}_{tag}_std"] for m in
                                                     ("l2", "lpips", "cos")}, "seconds": r.seconds})
            curves[f"{space} / {loss}"] = (np.arange(1, len(r.losses) + 1), r.losses)
            wd.save_figure(viz.collage([_images(targets[:nf]), _images(r.images[:nf])], ["target", "inverted"],
                                       title=f"inversion in {space}, loss {loss} ({c.num_steps} Adam steps)",
                                       vmin=-1, vmax=1), f"recon_{tag}")
    wd.save_table("inversion", rows)
    wd.save_table("hparams", [dict(space=s, **results[s, l].hparams) for (s, l) in results])
    wd.save_figure(viz.loss_curves(curves, title="inversion loss (mean over targets) per Adam step"), "losses")

    checks = {}
    # Part 3: crossover of the w+ codes (combined loss when run, else mse).
    if "wplus" in config.spaces:
        loss = "combined" if "combined" in config.losses else config.losses[0]
        ws = results["wplus", loss].ws
        n = len(targets)
        pairs = ([(2 * i, 2 * i + 1) for i in range(config.num_pairs)] if n >= 2 * config.num_pairs
                 else [(i % n, (i + 1) % n) for i in range(config.num_pairs)])
        ci, si = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        G = sg.Generator(g_config)
        synth = jax.jit(lambda p, ws: G.apply({"params": p}, ws, method=G.synthesis, noise_mode="const"))
        a_ws, b_ws = inv.crossover(ws[ci], ws[si])
        a_img, b_img = np.asarray(synth(params, a_ws)), np.asarray(synth(params, b_ws))
        kw = dict(net=config.invert.net, feature_size=config.invert.feature_size, lpips_params=lpips_params)
        da, db = inv.distances(a_img, targets[ci], **kw), inv.distances(b_img, targets[ci], **kw)
        sa, sb = inv.distances(a_img, targets[si], **kw), inv.distances(b_img, targets[si], **kw)
        for key, v in (("l2_content_split_a", da["l2"]), ("l2_content_split_b", db["l2"]),
                       ("lpips_style_split_a", sa["lpips"]), ("lpips_style_split_b", sb["lpips"])):
            metrics.update(_mean_std(key, v))
        metrics["delta_style"] = metrics["lpips_style_split_a"] - metrics["lpips_style_split_b"]
        wd.save_table("crossover", [{"content": int(c), "style": int(s), "l2_content_a": da["l2"][j],
                                     "l2_content_b": db["l2"][j], "lpips_style_a": sa["lpips"][j],
                                     "lpips_style_b": sb["lpips"][j]} for j, (c, s) in enumerate(pairs)])
        half = ws.shape[1] // 2
        for j, (c, s) in enumerate(pairs):
            wd.save_figure(crossover_panel(_images(targets[c]), _images(targets[s]), _images(a_img[j]),
                                           _images(b_img[j]), config.crop,
                                           f"pair {j}: A = layers 1..{half} of I_c + rest of I_s; B = reverse"),
                           f"crossover_{j}")

        # Check 1: generator-made images of known w are recovered in w+ (same batch shape: same compilation).
        Gm = jax.jit(lambda p, z: G.apply({"params": p}, z, method=G.mapping))
        z = jax.random.normal(jax.random.PRNGKey(config.seed + 7), (len(targets), g_config.z_dim))
        w_known = sg.truncate(Gm(params, z), w_avg, config.known_psi)
        made = np.asarray(synth(params, sg.broadcast_ws(w_known, sg.num_ws(g_config.resolution))))
        c = ml_collections.ConfigDict(config.invert.to_dict())
        c.space, c.loss = "wplus", loss
        rk = inv.invert(g_config, params, made, c, w_avg=w_avg, lpips_params=lpips_params, desc="invert known w")
        start = inv.distances(np.asarray(synth(params, sg.broadcast_ws(jnp.broadcast_to(w_avg, w_known.shape),
                                                                         ws.shape[1]))), made, **kw)
        metrics.update(_mean_std("l2_known_wplus", rk.l2))
        metrics.update(_mean_std("lpips_known_wplus", rk.lpips))
        metrics["l2_known_start"] = float(start["l2"].mean())
        metrics["lpips_known_start"] = float(start["lpips"].mean())
        ok = metrics["l2_known_wplus"] < config.known_l2_max and metrics["lpips_known_wplus"] < config.known_lpips_max
        checks["known_w_recovered_in_wplus"] = (
            ok, f"generator-made images (psi {config.known_psi}), w+ {loss} inversion: mean L2 "
                f"{metrics['l2_known_wplus']:.4f} (start {metrics['l2_known_start']:.4f}, needs < "
                f"{config.known_l2_max}), mean LPIPS {metrics['lpips_known_wplus']:.4f} (start "
                f"{metrics['lpips_known_start']:.4f}, needs < {config.known_lpips_max})"
                + ("" if ok else ": NOT recovered to that tolerance in this many steps"))
    # Check 2: on real held-out targets w+ < w < z in L2, per loss.
    if set(config.spaces) == set(inv.SPACES):
        for loss in config.losses:
            v = [metrics[f"l2_{loss}_{s}"] for s in ("wplus", "w", "z")]
            ok = v[0] < v[1] < v[2]
            checks[f"wplus_better_than_w_better_than_z_{loss}"] = (
                ok, f"held-out faces, loss {loss}: mean L2 w+ {v[0]:.4f}, w {v[1]:.4f}, z {v[2]:.4f}"
                    + ("" if ok else ": the expected order w+ < w < z does NOT hold"))
    wd.write_checks(checks)
    (wd.path / "note.txt").write_text(
        f"generator: {source} ({g_config.resolution} px, {g_config.img_channels} channel(s), num_ws "
        f"{sg.num_ws(g_config.resolution)}); {len(targets)} held-out Olivetti targets; Adam lr "
        f"{config.invert.optim.learning_rate}, {config.invert.num_steps} steps in every space; combined loss = "
        f"MSE + {config.invert.lpips_weight} LPIPS({config.invert.net}) + {config.invert.cosine_weight} cosine "
        f"({inv.FEATURE_SPACE}); images below {config.invert.feature_size} px upsampled (bilinear) for the "
        f"backbone\n")
    metrics["num_targets"] = float(len(targets))
    metrics["num_steps"] = float(config.invert.num_steps)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
