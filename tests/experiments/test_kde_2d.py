"""kde_2d on a small budget: the exercise's claim that h = 0.1 beats h = 1 on the sigma = 1/2 mixture."""

import json

import numpy as np

from experiments import kde_2d
from jgen import experiment

TINY = {"num_samples": 2000, "grid_size": 60, "include_scott": False, "scatter_points": 200}


def test_tiny_run_small_bandwidth_is_closer_to_the_narrow_mixture(tmp_path):
    m = experiment.run_experiment(kde_2d.get_config, kde_2d.run, tmp_path, "quick", overrides=TINY)
    # sigma = 1/2: h = 1 smooths the four modes into one blob; h = 0.1 keeps them (KL(f || f_hat), nats).
    assert m["kl_mix05_h01"] < m["kl_mix05_h1"]
    assert m["ise_mix05_h01"] < m["ise_mix05_h1"]
    assert 0.95 < m["mass_f_mix05"] < 1.001  # the box holds the density, so the integrals mean something
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"heatmaps_mix05.png", "error_vs_h_mix05.png", "samples.png"} <= figures
    assert json.loads((tmp_path / "metrics.json").read_text())["preset"] == "quick"
    assert all(np.isfinite(v) for k, v in m.items() if k != "preset")
