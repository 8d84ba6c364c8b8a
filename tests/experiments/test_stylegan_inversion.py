"""stylegan_inversion tiny run on a random 8-px generator: every metric key, the tables, figures and checks."""

import json

import pytest

from experiments import stylegan_inversion as si
from jgen import experiment

TINY = {"weights": "random", "num_targets": 2, "num_pairs": 1, "num_figure": 2,
        "random_model.resolution": 8, "random_model.z_dim": 8, "random_model.w_dim": 8,
        "random_model.channel_base": 32, "random_model.channel_max": 8,
        "invert.num_steps": 3, "invert.feature_size": 32, "invert.z_init_draws": 16}


def test_tiny_run_writes_every_key(tmp_path):
    m = experiment.run_experiment(si.get_config, si.run, tmp_path, "quick", overrides=TINY)
    for stat in ("l2", "lpips", "cos"):
        for loss in ("mse", "combined"):
            for space in ("z", "w", "wplus"):
                assert m[f"{stat}_{loss}_{space}"] >= 0 and f"{stat}_{loss}_{space}_std" in m
    for key in ("l2_content_split_a", "l2_content_split_b", "lpips_style_split_a", "lpips_style_split_b"):
        assert m[key] >= 0 and f"{key}_std" in m
    assert m["delta_style"] == pytest.approx(m["lpips_style_split_a"] - m["lpips_style_split_b"])
    checks = json.loads((tmp_path / "checks.json").read_text())
    assert set(checks) == {"known_w_recovered_in_wplus", "wplus_better_than_w_better_than_z_mse",
                           "wplus_better_than_w_better_than_z_combined"}
    assert "start" in checks["known_w_recovered_in_wplus"]["detail"]
    for name in ("recon_mse_z", "recon_combined_wplus", "crossover_0", "losses"):
        assert (tmp_path / "figures" / f"{name}.png").is_file()
    assert (tmp_path / "tables" / "inversion.csv").read_text().count("\n") == 7


def test_bad_values_are_config_errors(tmp_path):
    with pytest.raises(experiment.ConfigError, match="spaces"):
        experiment.run_experiment(si.get_config, si.run, tmp_path, "quick", overrides={**TINY, "spaces": ("v",)})
    with pytest.raises(experiment.ConfigError, match="no such file"):
        experiment.run_experiment(si.get_config, si.run, tmp_path, "quick",
                                  overrides={**TINY, "weights": "/nonexistent.pkl"})
