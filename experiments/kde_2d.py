"""Kernel density estimation of 2-D toy densities: bandwidth vs integrated squared error and KL.

Part I of the KDE exercise. N = 10000 points are drawn from three densities (jgen.data.toy2d): the equal mixture
of four Gaussians at (0,0), (0,2), (2,0), (2,2) with sigma = 1/2 ("mix05") and sigma = 1 ("mix1"), and the spiral
(theta ~ U[0, 4 pi], r ~ N(theta / 2, 1/4); its exact density comes from integrating over theta, which reduces to
a sum over the pre-images of x). Each is estimated by a Gaussian KDE with H = h I for h in {0.1, 0.5, 1} and,
for reference, with Scott's rule (full H). f and f_hat are compared on a grid of cell centres (midpoint rule):
mixtures on [-4, 6]^2 (4 sigma beyond the outer means for sigma = 1), the spiral on [-9, 9]^2 (its radius
reaches 2 pi + 5 std). Metrics: integrated squared error ISE = int (f - f_hat)^2 and KL(f || f_hat) =
int f log(f / f_hat), per distribution and h (`ise_mix05_h01`, `kl_spiral_h1`, ...), the grid mass of f
(`mass_f_*`, close to 1 when the box holds the density), and which distribution is hardest: the one whose best
KL over the bandwidths is largest (`hardest_index` into mix05, mix1, spiral; `hardest_is_spiral`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, kde, viz
from jgen.data import toy2d

# name -> (toy, toy options, plotting/integration box)
DISTRIBUTIONS = {
    "mix05": ("mixture4", {"sigma": 0.5}, (-4.0, 6.0)),
    "mix1": ("mixture4", {"sigma": 1.0}, (-4.0, 6.0)),
    "spiral": ("spiral", {}, (-9.0, 9.0)),
}


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_samples = 10_000
    c.bandwidths = (0.1, 0.5, 1.0)
    c.include_scott = True  # also Scott's rule (full H) for reference
    c.grid_size = 300 if preset == "full" else 160  # cells per side for the heatmaps and the integrals
    c.scatter_points = 3000  # points shown in the scatter plots
    return c


def _tag(h: float) -> str:
    """0.1 -> 'h01', 0.5 -> 'h05', 1.0 -> 'h1' (metric names without dots)."""
    return "h" + f"{h:g}".replace(".", "")


def _cell_centres(box: tuple[float, float], n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Centres of an n x n grid of cells on box^2 as points [n*n, 2] (x fastest: values reshape to [ny, nx])."""
    lo, hi = box
    c = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    gx, gy = np.meshgrid(c, c)
    return c, np.stack([gx.ravel(), gy.ravel()], -1).astype(np.float32), ((hi - lo) / n) ** 2


def _compare(log_f: np.ndarray, log_g: np.ndarray, cell_area: float) -> dict[str, float]:
    """ISE and KL(f || g) by the midpoint rule from log densities on the cell centres (float64)."""
    f, g = np.exp(log_f), np.exp(log_g)
    with np.errstate(invalid="ignore"):
        kl_terms = np.where(f > 0, f * (log_f - log_g), 0.0)
    return {"ise": float(np.sum((f - g) ** 2) * cell_area), "kl": float(np.sum(kl_terms) * cell_area),
            "mass_f": float(np.sum(f) * cell_area), "mass_fhat": float(np.sum(g) * cell_area)}


def run(config, wd: experiment.Workdir) -> dict[str, float]:
    key = jax.random.key(config.seed)
    metrics: dict[str, float] = {}
    rows = []
    scatter = []
    best_kl = {}
    for i, (name, (toy, kw, box)) in enumerate(DISTRIBUTIONS.items()):
        x = toy2d.sample(toy, jax.random.fold_in(key, i), config.num_samples, **kw)
        scatter.append(np.asarray(x[: config.scatter_points]))
        centres, grid, area = _cell_centres(box, config.grid_size)
        log_f = np.asarray(toy2d.log_prob(toy, jnp.asarray(grid), **kw), np.float64)
        metrics[f"mass_f_{name}"] = float(np.sum(np.exp(log_f)) * area)

        estimates = [(_tag(h), f"h = {h:g}", kde.fit(x, float(h))) for h in config.bandwidths]
        if config.include_scott:
            estimates.append(("scott", "Scott's rule", kde.fit(x, "scott")))
        # The spiral's density has a 1/|x| singularity at the origin: cap the colour scale (shared by the panels)
        # at a high quantile of f so that the arms stay visible.
        cap = float(np.quantile(np.exp(log_f), 0.995)) if toy == "spiral" else np.inf
        shape = (config.grid_size, config.grid_size)
        panels = [("true f", np.minimum(np.exp(log_f), cap).reshape(shape))]
        for tag, label, k in estimates:
            log_g = np.asarray(kde.log_prob(k, grid), np.float64)
            m = _compare(log_f, log_g, area)
            metrics[f"ise_{name}_{tag}"] = m["ise"]
            metrics[f"kl_{name}_{tag}"] = m["kl"]
            rows.append({"distribution": name, "bandwidth": tag, "h_x": float(k.bandwidth[0, 0]), **m})
            panels.append((f"KDE, {label}", np.minimum(np.exp(log_g), cap).reshape(shape)))
        best_kl[name] = min(metrics[f"kl_{name}_{_tag(h)}"] for h in config.bandwidths)
        capped = f", colour scale capped at {cap:.3g}" if np.isfinite(cap) else ""
        viz.side_by_side(panels, xlim=box, ylim=box,
                         title=f"{name}: true density vs KDE (N = {config.num_samples}{capped})",
                         path=wd.figure_path(f"heatmaps_{name}"))

    viz.subplots_panels(scatter, [f"{n} ({config.scatter_points} of {config.num_samples} points)"
                                  for n in DISTRIBUTIONS], kind="points", share=False, s=1.0,
                        title="samples from the three toy densities", path=wd.figure_path("samples"))
    names = list(DISTRIBUTIONS)
    hardest = max(names, key=best_kl.get)
    metrics["hardest_index"] = float(names.index(hardest))
    metrics["hardest_is_spiral"] = float(hardest == "spiral")
    wd.save_table("kde_errors", rows)
    wd.save_table("hardest", [{"distribution": n, "best_kl_over_h": best_kl[n],
                               "best_h": min(config.bandwidths, key=lambda h: metrics[f"kl_{n}_{_tag(h)}"]),
                               "hardest": n == hardest} for n in names])
    for n in names:
        viz.line_plot(np.asarray(config.bandwidths), {
            "ISE": [metrics[f"ise_{n}_{_tag(h)}"] for h in config.bandwidths],
            "KL(f || f_hat)": [metrics[f"kl_{n}_{_tag(h)}"] for h in config.bandwidths],
        }, title=f"{n}: error vs bandwidth", xlabel="bandwidth h (H = h I)", ylabel="ISE, and KL in nats",
            marker="o", logy=True,
            path=wd.figure_path(f"error_vs_h_{n}"))
    assert all(math.isfinite(v) for v in metrics.values())
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
