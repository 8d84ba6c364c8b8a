"""flows_toy2d: block counting, the KL estimate against a closed form, and a tiny end-to-end run."""

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
    c.coupling.layers_per_block = 1
    assert flows_toy2d._make_flow("coupling", c.coupling).num_layers == c.coupling.num_blocks
    c.coupling.layers_per_block = 3
    with pytest.raises(ValueError, match="layers_per_block must be 1"):
        flows_toy2d._make_flow("coupling", c.coupling)
    assert set(c.jitter.keys()) == set(flows_toy2d.DATASETS)


def test_kl_estimate_of_the_identity_flow_matches_the_closed_form():
    # A fresh coupling flow is the identity, so q = N(0, I) and, for the ring of Gaussians (radius r, std s),
    # KL(p || q) = -H(p) + E_p[|x|^2] / 2 + log(2 pi), with E_p[|x|^2] = r^2 + 2 s^2.
    flow = flows_toy2d._make_flow("coupling", flows_toy2d.get_config("quick").coupling)
    params = flows_toy2d._init(flow, jax.random.key(0), np.zeros((1, 2), np.float32))
    test = np.asarray(toy2d.sample("gaussians_rot", jax.random.key(1), 100_000, num_gaussians=5))
    got = flows_toy2d.kl_estimate(flow, params, "gaussians_rot", test, 5)
    means, s = toy2d.mixture_params("gaussians_rot", num_gaussians=5)
    r2 = float(np.sum(np.asarray(means[0]) ** 2))
    # The components barely overlap, so H(p) = log K + log(2 pi e s^2) to far below the tolerance.
    entropy = math.log(5) + math.log(2 * math.pi * math.e * s**2)
    expected = -entropy + (r2 + 2 * s**2) / 2 + math.log(2 * math.pi)
    assert got["entropy"] == pytest.approx(entropy, abs=5 * got["kl_se"])
    assert got["kl"] == pytest.approx(expected, abs=5 * got["kl_se"] + 1e-3)


def test_tiny_run_writes_every_fit_and_study(tmp_path):
    overrides = {"datasets": ("gaussians_rot",), "epochs": 2, "num_test": 2000, "num_plot_samples": 100,
                 "grid_size": 20, "coupling.hidden_sizes": (8,), "maf.hidden_sizes": (8,),
                 "study.num_blocks": (2,), "study.num_train": (1500,), "study.num_gaussians": (3,),
                 "study.num_blocks_epochs": 1, "study.num_train_epochs": 1, "study.num_gaussians_epochs": 1}
    m = experiment.run_experiment(flows_toy2d.get_config, flows_toy2d.run, tmp_path, "quick", overrides=overrides)
    for key in ("kl_gaussians_rot_k4", "kl_gaussians_rot_maf", "kl_study_k2",
                "kl_study_n1500", "kl_study_ng3"):
        assert np.isfinite(m[key]), key
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"gaussians_rot_k4_layers.png", "gaussians_rot_maf_density.png", "studies_kl.png"} <= figures
    assert json.loads((tmp_path / "metrics.json").read_text())["preset"] == "quick"
