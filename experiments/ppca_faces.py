"""Probabilistic PCA on faces: latent projections, reconstructions, samples and latent traversals.

The exercise "PPCA on faces". Olivetti faces (400 images of 64 x 64, 10 per person for 40 people; D = 4096) or,
with `--config.dataset=frey_faces`, the Frey faces (1965 frames of 28 x 20). Pixels are scaled to [0, 1] and a
random `test_fraction` of the images is held out (`jgen.data.faces.split`, by image). For each latent dimension d
in {16, 32, 64} the maximum likelihood PPCA (Tipping & Bishop 1999) is fitted in closed form from the thin SVD of
the centred N x D data matrix, and evaluated by the average log-likelihood (nats per image) and the reconstruction
error (mean squared error per pixel of E[x | z = E[z | x]]) on the training and held-out images. With N < D the ML
noise variance averages the discarded eigenvalues over D - q, most of them zero, so sigma2 is small and the gap
between training and held-out likelihood widens as d grows. EM (`em_steps` iterations from `ppca.init_em`'s start)
is run for the smallest d and compared with the closed form. Figures: 2-D and 3-D scatter of the posterior-mean
projections (q = 2, 3; coloured by person for Olivetti, by frame index for Frey), reconstructions of 25 held-out
faces per d, a 10 x 10 collage of E[x | z] for z ~ p(z), and traversals of the leading latent dimensions in
multiples of their prior standard deviation (1) around the mean face.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, ppca, viz
from jgen.data import faces, preprocess


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.dataset = "olivetti_faces"  # or "frey_faces"
    c.latent_dims = (16, 32, 64)
    c.test_fraction = 0.2
    c.num_reconstructions = 25
    c.sample_dim = 64  # model used for the 10 x 10 samples and the traversals
    c.num_traversal_dims = 6
    c.traversal_stds = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
    c.em_steps = 300 if preset == "full" else 100
    return c


def _load(name: str) -> dict[str, np.ndarray]:
    if name not in ("olivetti_faces", "frey_faces"):
        raise ValueError(f"dataset must be 'olivetti_faces' or 'frey_faces', got {name!r}")
    return faces.olivetti() if name == "olivetti_faces" else faces.frey()


def _flat(images) -> np.ndarray:
    return np.asarray(preprocess.to_unit(images)).reshape(len(images), -1)


def run(config, wd: experiment.Workdir) -> dict[str, float]:
    data = _load(config.dataset)
    rng = np.random.default_rng(config.seed)  # draws the split, then the faces shown
    parts = faces.split(data, test_fraction=config.test_fraction, seed=rng)
    x = _flat(data["image"])
    x_train, x_test = (jnp.asarray(_flat(parts[s]["image"])) for s in ("train", "test"))
    colour = data["label"] if "label" in data else data["index"].astype(np.float64)  # person / frame
    h, w = data["image"].shape[1:3]
    short = {"olivetti_faces": "Olivetti", "frey_faces": "Frey"}[config.dataset]
    n, d_pix = x.shape
    n_test = len(x_test)
    img = lambda v: np.asarray(v).reshape(-1, h, w)
    metrics: dict[str, float] = {"num_train": float(len(x_train)), "num_test": float(n_test),
                                 "data_dim": float(d_pix)}

    # Latent projections for visualisation (q = 2 and 3), all images.
    for q in (2, 3):
        p = ppca.fit(x_train, q)
        z = np.asarray(ppca.project(p, jnp.asarray(x)))
        by = "person" if colour.dtype.kind in "iu" else "frame"
        kw = dict(c=colour, clabel=by, s=10.0, cmap="nipy_spectral",
                  title=f"{short}: E[z | x], q = {q}, colour = {by}")
        if q == 2:
            viz.scatter2d(z, xlabel="$z_1$", ylabel="$z_2$", path=wd.figure_path("latent_2d"), **kw)
        else:
            viz.scatter3d(z, xlabel="$z_1$", ylabel="$z_2$", zlabel="$z_3$", path=wd.figure_path("latent_3d"), **kw)

    # One model per latent dimension: likelihood and reconstruction, train and held-out.
    shown = rng.choice(max(n_test, 1), size=min(config.num_reconstructions, n_test), replace=False)
    rows, recon_rows, models = [], [img(x_test[shown])], {}
    for q in config.latent_dims:
        p = ppca.fit(x_train, q)
        models[q] = p
        row = {"d": q, "sigma2": float(p.sigma2)}
        for split, data in (("train", x_train), ("test", x_test)):
            if data.shape[0] == 0:
                continue
            ll = float(ppca.average_log_likelihood(p, data))
            mse = float(jnp.mean((ppca.reconstruct(p, data) - data) ** 2))
            mse_proj = float(jnp.mean((ppca.reconstruct(p, data, mode="projection") - data) ** 2))
            prefix = "" if split == "train" else "test_"
            metrics[f"{prefix}loglik_d{q}"] = ll
            metrics[f"{prefix}recon_mse_d{q}"] = mse
            metrics[f"{prefix}recon_proj_mse_d{q}"] = mse_proj
            row.update({f"{split}_loglik_nats": ll, f"{split}_loglik_nats_per_pixel": ll / d_pix,
                        f"{split}_recon_mse": mse, f"{split}_recon_proj_mse": mse_proj})
        metrics[f"sigma2_d{q}"] = float(p.sigma2)
        rows.append(row)
        if n_test:
            recon_rows.append(img(ppca.reconstruct(p, x_test[shown])))
    wd.save_table("ppca_faces", rows)
    if n_test:
        viz.collage(recon_rows, ["original"] + [f"d = {q}" for q in config.latent_dims], vmin=0.0, vmax=1.0,
                    title=f"{short}: held-out faces and PPCA reconstructions E[x | E[z | x]]",
                    path=wd.figure_path("reconstructions"))
    dims = np.asarray(config.latent_dims, np.float64)
    curves = {"train": [metrics[f"loglik_d{q}"] for q in config.latent_dims]}
    if n_test:
        curves["held-out"] = [metrics[f"test_loglik_d{q}"] for q in config.latent_dims]
    viz.line_plot(dims, curves, title="PPCA average log-likelihood vs latent dimension", xlabel="latent dimension d",
                  ylabel="log-likelihood (nats per image)", marker="o", path=wd.figure_path("loglik_vs_d"))

    # EM for the smallest d, from its default start, against the closed form.
    q_em = min(config.latent_dims)
    em, lls = ppca.fit_em(x_train, q_em, jax.random.key(config.seed), num_steps=config.em_steps)
    metrics[f"em_loglik_d{q_em}"] = float(ppca.average_log_likelihood(em, x_train))
    metrics[f"em_minus_closed_loglik_d{q_em}"] = metrics[f"em_loglik_d{q_em}"] - metrics[f"loglik_d{q_em}"]
    wd.log_curve("em", "loglik", lls)
    closed_ll = np.full(len(lls), metrics[f"loglik_d{q_em}"])
    viz.line_plot(np.arange(len(lls)), {"EM": np.asarray(lls), "closed form": closed_ll},
                  title=f"EM for PPCA, d = {q_em}", xlabel="EM iteration", ylabel="log-likelihood (nats per image)",
                  path=wd.figure_path("em_loglik"))

    # Samples E[x | z], z ~ p(z), and latent traversals around the mean face.
    q_s = config.sample_dim if config.sample_dim in models else max(models)
    p = models[q_s]
    samples = ppca.sample(p, jax.random.key(config.seed + 1), 100, noise=False)
    viz.image_grid(img(samples), nrow=10, vmin=0.0, vmax=1.0,
                   title=f"100 faces E[x | z], z ~ N(0, I), d = {q_s}", path=wd.figure_path("samples"))
    k = min(config.num_traversal_dims, q_s)
    stds = np.asarray(config.traversal_stds, np.float32)
    z = np.zeros((k, len(stds), q_s), np.float32)
    for j in range(k):
        z[j, :, j] = stds  # the prior std of every latent is 1
    traversal = ppca.decode(p, jnp.asarray(z.reshape(-1, q_s)))
    viz.image_grid(img(traversal), nrow=len(stds), vmin=0.0, vmax=1.0,
                   row_labels=[f"$z_{j + 1}$" for j in range(k)], col_labels=[f"{s:+g} sd" for s in stds],
                   title=f"E[x | z] moving one latent by multiples of its prior std (d = {q_s})",
                   path=wd.figure_path("traversals"))
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
