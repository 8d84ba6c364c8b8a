"""flows_toy2d: block counting, the KL estimate against a closed form, robust plot limits, far samples,
the convergence verdict, the spline range, and a tiny end-to-end run that beats the identity flow."""

import json
import math

import jax
import numpy as np
import pytest

from experiments import flows_toy2d
from jgen import experiment
from jgen.data import toy2d


def test_a_coupling_block_is_two_one_sided_layers_and_the_maf_matches_its_depth():
    c = flows_toy2d.get_config("full")
    assert flows_toy2d._make_flow("coupling", c.coupling).num_layers == 2 * c.coupling.num_blocks
    assert flows_toy2d._make_flow("maf", c.maf).num_layers == 2 * c.coupling.num_blocks
    assert flows_toy2d._make_flow("spline", c.spline).num_layers == 2 * c.spline.num_blocks
    c.coupling.layers_per_block = 1
    assert flows_toy2d._make_flow("coupling", c.coupling).num_layers == c.coupling.num_blocks
    c.coupling.layers_per_block = 3
    with pytest.raises(ValueError, match="layers_per_block must be 1"):
        flows_toy2d._make_flow("coupling", c.coupling)
    assert set(c.jitter.keys()) == set(flows_toy2d.DATASETS)


def _identity_kl_of_the_ring(num_gaussians=5):
    """(entropy, KL) of the ring of Gaussians (radius r, std s) against q = N(0, I), the fresh flow:
    KL(p || q) = -H(p) + E_p[|x|^2] / 2 + log(2 pi), with E_p[|x|^2] = r^2 + 2 s^2."""
    means, s = toy2d.mixture_params("gaussians_rot", num_gaussians=num_gaussians)
    r2 = float(np.sum(np.asarray(means[0]) ** 2))
    # The components barely overlap, so H(p) = log K + log(2 pi e s^2) to far below the tolerance.
    entropy = math.log(num_gaussians) + math.log(2 * math.pi * math.e * s**2)
    return entropy, -entropy + (r2 + 2 * s**2) / 2 + math.log(2 * math.pi)


def test_kl_estimate_of_the_identity_flow_matches_the_closed_form():
    flow = flows_toy2d._make_flow("coupling", flows_toy2d.get_config("quick").coupling)
    params = jax.tree.map(lambda a: a[0], flows_toy2d._init(flow, jax.random.key(0), 1))
    test = np.asarray(toy2d.sample("gaussians_rot", jax.random.key(1), 100_000, num_gaussians=5))
    got = flows_toy2d.kl_estimate(flow, params, "gaussians_rot", test, 5)
    entropy, expected = _identity_kl_of_the_ring()
    assert got["entropy"] == pytest.approx(entropy, abs=5 * got["kl_se"])
    assert got["kl"] == pytest.approx(expected, abs=5 * got["kl_se"] + 1e-3)


def test_robust_limits_ignore_a_far_outlier():
    x = np.random.default_rng(0).normal(size=(1000, 2))
    x[0] = [7e5, -7e5]
    x[1] = [np.nan, 0.0]
    lo, hi = flows_toy2d.robust_limits(x)
    assert -4.5 < lo < -2.0 and 2.0 < hi < 4.5
    # The padding is a fraction of the box width, and the box contains the central 99% of each coordinate.
    lo0, hi0 = flows_toy2d.robust_limits(x, pad=0.0)
    assert hi - lo == pytest.approx(1.2 * (hi0 - lo0))
    assert np.mean((x[2:] >= lo0) & (x[2:] <= hi0)) > 0.98


def test_far_fraction_counts_samples_beyond_a_few_data_radii():
    data = np.random.default_rng(1).normal(size=(20000, 2))
    radius = np.quantile(np.linalg.norm(data - data.mean(0), axis=1), 0.995)
    samples = np.zeros((100, 2))
    samples[:7, 0] = 3.2 * radius  # beyond 3 radii
    samples[7:10, 0] = 2.8 * radius  # within
    samples[10] = np.nan  # a sample that left the float range counts as far
    assert flows_toy2d.far_fraction(samples, data, 3.0) == pytest.approx(0.08)


def test_verdict_flags_a_high_kl_and_a_still_falling_validation_curve():
    cfg = flows_toy2d.get_config("quick").convergence
    flat = np.r_[np.linspace(2.0, 1.0, 80), np.full(20, 1.0)]
    falling = np.linspace(2.0, 1.0, 100)
    fit = lambda val: flows_toy2d.Fit(None, val, val, int(np.argmin(val)) + 1)
    assert flows_toy2d.verdict(fit(flat), 0.05, cfg) == (True, "ok")
    ok, why = flows_toy2d.verdict(fit(falling), 0.05, cfg)
    assert not ok and why.startswith("validation NLL still falling")
    ok, why = flows_toy2d.verdict(fit(flat), 0.5, cfg)
    assert not ok and why == "KL 0.500 >= 0.1 nats"


def test_the_spline_range_covers_every_toy():
    for preset in ("quick", "full"):
        b = flows_toy2d.get_config(preset).spline.boundary
        for name in flows_toy2d.DATASETS:
            x = np.asarray(toy2d.sample(name, jax.random.key(0), 20000))
            assert np.abs(x).max() < 0.8 * b, name


def test_tiny_run_beats_the_identity_flow_and_reuses_the_main_fit(tmp_path):
    overrides = {"datasets": ("gaussians_rot",), "epochs": 8, "num_train": 512, "num_val": 256,
                 "num_test": 2000, "num_far_samples": 500, "num_plot_samples": 100, "grid_size": 20,
                 "coupling.hidden_sizes": (16,), "maf.hidden_sizes": (16,), "spline.hidden_sizes": (16,),
                 "coupling.optim.learning_rate": 1e-2, "maf.optim.learning_rate": 1e-2,
                 "spline.optim.learning_rate": 1e-2,
                 # Every study row shares the main fit's architecture and data size: one compiled step.
                 "study.num_blocks": (4,), "study.num_train": (512,), "study.num_gaussians": (3,)}
    m = experiment.run_experiment(flows_toy2d.get_config, flows_toy2d.run, tmp_path, "quick", overrides=overrides)
    identity = _identity_kl_of_the_ring()[1]  # 2.65 nats: every flow starts there
    for label in ("k4", "maf", "spline"):
        assert m[f"kl_gaussians_rot_{label}"] < 0.8 * identity, label
        assert 0.0 <= m[f"far_fraction_gaussians_rot_{label}"] <= 1.0
    # The exercise's point at any budget: the spline flow fits the separated modes fastest.
    assert m["kl_gaussians_rot_spline"] < min(m["kl_gaussians_rot_k4"], m["kl_gaussians_rot_maf"])
    assert m["kl_study_n512"] == m["kl_study_k4"] == m["kl_gaussians_rot_k4"]
    assert np.isfinite(m["kl_study_ng3"]) and m["num_failed_fits"] == 3  # KL above 0.1 after 8 epochs
    rows = (tmp_path / "tables" / "fits.csv").read_text().splitlines()
    assert rows[0].split(",")[-4:] == ["best_epoch", "epochs", "converged", "verdict"]
    assert all(",False,KL " in r for r in rows[1:])
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert len(checks) == 3 and not any(c["passed"] for c in checks.values())
    assert checks["spline flow K=4 (8 layers, 8 bins) converged on gaussians_rot"]["detail"].startswith("KL ")
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"gaussians_rot_k4_layers.png", "gaussians_rot_spline_layers.png", "gaussians_rot_density.png",
            "gaussians_rot_loss.png", "studies_kl.png"} <= figures
    assert json.loads((tmp_path / "metrics.json").read_text())["preset"] == "quick"
