"""bench_inversion smoke test on an 8-px random generator: the twin computes the same images and loss, keys."""

import pytest

from experiments import bench_inversion
from jgen import experiment

TINY = {"shipped": False, "model.resolution": 8, "model.z_dim": 8, "model.w_dim": 8, "model.mapping_layers": 2,
        "model.channel_base": 32, "model.channel_max": 8, "batch": 2, "repeats": 1, "feature_size": 32,
        "variants": ("step",)}


def test_bench_runs_and_the_torch_twin_matches(tmp_path):
    pytest.importorskip("torch")
    m = experiment.run_experiment(bench_inversion.get_config, bench_inversion.run, tmp_path, "quick",
                                  overrides=TINY)
    assert m["max_abs_image_diff"] < 1e-4 and m["loss_rel_diff"] < 1e-4
    assert m["speedup_vs_torch"] == pytest.approx(m["iters_per_s_jgen"] / m["iters_per_s_torch"])
    assert m["ratio_step"] > 0 and "ratio" in (tmp_path / "note.txt").read_text()


def test_bench_without_torch_and_bad_steps(tmp_path):
    m = experiment.run_experiment(bench_inversion.get_config, bench_inversion.run, tmp_path / "a", "quick",
                                  overrides={**TINY, "torch": False})
    assert m["iters_per_s_jgen"] > 0 and "speedup_vs_torch" not in m
    assert "disabled" in (tmp_path / "a" / "note.txt").read_text()
    with pytest.raises(experiment.ConfigError, match="multiple of 10"):
        experiment.run_experiment(bench_inversion.get_config, bench_inversion.run, tmp_path / "b", "quick",
                                  overrides={**TINY, "num_steps": 15})
