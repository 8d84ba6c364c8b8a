"""Benchmark: jgen.kde exact and binned KDE against scipy, scikit-learn and KDEpy on 2-D grids.

N = 10000 points from the four-Gaussian mixture (sigma = 1/2), evaluated on G x G grids (G = 100, 300).
Each comparison runs in one process on the same data, grid and bandwidth; times are the best of `repeats`
runs after one warm-up (which includes jgen's compilation, reported separately as `jgen_compile_s`).

* scipy.stats.gaussian_kde (Scott's rule, full covariance): `evaluate` on the grid vs `jgen.kde.density` with
  H = cholesky(scipy's covariance), exact. Keys `speedup_vs_scipy_{G}` = scipy time / jgen time, and the max
  relative difference `max_rel_diff_vs_scipy_{G}` over grid nodes where the density exceeds 1e-6 of its peak.
* sklearn.neighbors.KernelDensity (kd_tree, atol = rtol = 0, i.e. exact; isotropic bandwidth h):
  `score_samples` vs `jgen.kde.log_prob` with H = h I: `speedup_vs_sklearn_100`.
* KDEpy.FFTKDE (linear binning + FFT, isotropic h) vs `jgen.kde.binned_density` on the same G_b x G_b grid:
  `speedup_vs_kdepy_binned`; errors against jgen's exact density on that grid as max |f_b - f| / max f:
  `binned_rel_error` (jgen, with its binning correction), `binned_rel_error_uncorrected`, `kdepy_rel_error`.

A peer that is not installed is skipped with a note (`has_<peer>` = 0). Install the peers with
`pip install scikit-learn KDEpy`.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from scipy import stats

from jgen import experiment, kde
from jgen.data import toy2d


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_points = 10_000
    c.grid_sizes = (100, 300)
    c.sklearn_grid_size = 100
    c.binned_grid_size = 300
    c.bandwidth = 0.3  # isotropic h for the sklearn and KDEpy comparisons
    c.repeats = 3 if preset == "full" else 1  # scipy at G = 300 takes ~10-20 s per run
    c.binned_repeats = 20 if preset == "full" else 5
    return c


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best, out


def _grid(lower, upper, g: int) -> np.ndarray:
    return kde.grid_nodes(lower, upper, (g, g))[1]


def _rel_diff(a, b, floor: float = 1e-6) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mask = b > floor * b.max()
    return float(np.max(np.abs(a[mask] - b[mask]) / b[mask]))


def run(config, wd: experiment.Workdir) -> dict[str, float]:
    x = np.asarray(toy2d.sample("mixture4", jax.random.key(config.seed), config.num_points, sigma=0.5),
                   np.float64)
    x32 = x.astype(np.float32)
    lower, upper = x.min(0) - 1.0, x.max(0) + 1.0
    metrics: dict[str, float] = {"num_points": float(config.num_points)}
    rows = []
    notes = []

    # --- scipy: exact Gaussian KDE, Scott's rule, full covariance -------------------------------------------
    ref = stats.gaussian_kde(x.T)
    k = kde.fit(x32, np.linalg.cholesky(ref.covariance).astype(np.float32))  # H H^T = scipy covariance
    for g in config.grid_sizes:
        pts = _grid(lower, upper, g)
        pts32 = jnp.asarray(pts, jnp.float32)
        t0 = time.perf_counter()
        jax.block_until_ready(kde.density(k, pts32))
        metrics[f"jgen_compile_s_{g}"] = time.perf_counter() - t0
        t_jgen, f_jgen = _best_time(lambda: kde.density(k, pts32), max(config.repeats, 3))
        t_scipy, f_scipy = _best_time(lambda: ref.evaluate(pts.T), config.repeats)
        metrics[f"time_jgen_exact_{g}"] = t_jgen
        metrics[f"time_scipy_{g}"] = t_scipy
        metrics[f"speedup_vs_scipy_{g}"] = t_scipy / t_jgen
        metrics[f"max_rel_diff_vs_scipy_{g}"] = _rel_diff(f_jgen, f_scipy)
        rows.append({"peer": "scipy gaussian_kde.evaluate", "grid": f"{g}x{g}", "peer_s": t_scipy,
                     "jgen_s": t_jgen, "speedup": t_scipy / t_jgen,
                     "max_rel_diff": metrics[f"max_rel_diff_vs_scipy_{g}"]})
        print(f"scipy {g}x{g}: scipy {t_scipy:.3f}s, jgen {t_jgen:.3f}s, x{t_scipy / t_jgen:.1f}", flush=True)

    # --- scikit-learn: exact tree-based KDE, isotropic h --------------------------------------------------
    h = float(config.bandwidth)
    k_iso = kde.fit(x32, h)
    try:
        from sklearn.neighbors import KernelDensity
    except ImportError:
        KernelDensity = None
        notes.append("scikit-learn not installed: sklearn comparison skipped")
    metrics["has_sklearn"] = float(KernelDensity is not None)
    if KernelDensity is not None:
        g = config.sklearn_grid_size
        pts = _grid(lower, upper, g)
        pts32 = jnp.asarray(pts, jnp.float32)
        sk = KernelDensity(kernel="gaussian", bandwidth=h, algorithm="kd_tree", atol=0.0, rtol=0.0).fit(x)
        jax.block_until_ready(kde.log_prob(k_iso, pts32))
        t_jgen, lp_jgen = _best_time(lambda: kde.log_prob(k_iso, pts32), max(config.repeats, 3))
        t_sk, lp_sk = _best_time(lambda: sk.score_samples(pts), config.repeats)
        metrics[f"time_sklearn_{g}"] = t_sk
        metrics[f"speedup_vs_sklearn_{g}"] = t_sk / t_jgen
        metrics[f"max_rel_diff_vs_sklearn_{g}"] = _rel_diff(np.exp(lp_jgen), np.exp(lp_sk))
        rows.append({"peer": "sklearn KernelDensity(kd_tree, exact).score_samples", "grid": f"{g}x{g}",
                     "peer_s": t_sk, "jgen_s": t_jgen, "speedup": t_sk / t_jgen,
                     "max_rel_diff": metrics[f"max_rel_diff_vs_sklearn_{g}"]})
        print(f"sklearn {g}x{g}: sklearn {t_sk:.3f}s, jgen {t_jgen:.3f}s, x{t_sk / t_jgen:.1f}", flush=True)

    # --- KDEpy: binned FFT KDE vs jgen binned; both against jgen's exact density ---------------------------
    gb = config.binned_grid_size
    axes, nodes = kde.grid_nodes(lower, upper, (gb, gb))
    exact = np.asarray(kde.density(k_iso, jnp.asarray(nodes, jnp.float32)), np.float64).reshape(gb, gb)
    binned = lambda corr: kde.binned_density(k_iso, lower, upper, gb, binning_correction=corr)[1]
    jax.block_until_ready(binned(True))
    t_binned, f_binned = _best_time(lambda: binned(True), config.binned_repeats)
    f_raw = np.asarray(binned(False))
    peak = exact.max()
    metrics["time_jgen_binned"] = t_binned
    metrics["binned_rel_error"] = float(np.abs(np.asarray(f_binned) - exact).max() / peak)
    metrics["binned_rel_error_uncorrected"] = float(np.abs(f_raw - exact).max() / peak)
    try:
        from KDEpy import FFTKDE
    except ImportError:
        FFTKDE = None
        notes.append("KDEpy not installed (pip install KDEpy): binned comparison skipped")
    metrics["has_kdepy"] = float(FFTKDE is not None)
    if FFTKDE is not None:
        t_kdepy, f_kdepy = _best_time(lambda: FFTKDE(kernel="gaussian", bw=h, norm=2).fit(x).evaluate(nodes),
                                      config.binned_repeats)
        f_kdepy = np.asarray(f_kdepy).reshape(gb, gb)  # KDEpy keeps the 'ij' order of the grid it was given
        metrics["time_kdepy_binned"] = t_kdepy
        metrics["speedup_vs_kdepy_binned"] = t_kdepy / t_binned
        metrics["kdepy_rel_error"] = float(np.abs(f_kdepy - exact).max() / peak)
        rows.append({"peer": "KDEpy FFTKDE (binned)", "grid": f"{gb}x{gb}", "peer_s": t_kdepy, "jgen_s": t_binned,
                     "speedup": t_kdepy / t_binned, "max_rel_diff": metrics["kdepy_rel_error"]})
        print(f"KDEpy {gb}x{gb}: KDEpy {t_kdepy * 1e3:.1f}ms (err {metrics['kdepy_rel_error']:.1e}), jgen binned "
              f"{t_binned * 1e3:.1f}ms (err {metrics['binned_rel_error']:.1e}), x{t_kdepy / t_binned:.2f}", flush=True)
    for note in notes:
        print("note:", note)
    wd.save_table("bench_kde", rows)
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
