"""bench_vae smoke test: the jgen side runs and writes its keys; the torch side is skipped with a note."""

import pytest

from experiments import bench_vae
from jgen import experiment


def test_bench_runs_with_torch_skipped(tmp_path):
    m = experiment.run_experiment(bench_vae.get_config, bench_vae.run, tmp_path, "quick",
                                  overrides={"torch": False, "num_steps": 10, "repeats": 1, "batch_size": 8,
                                             "channels": (4, 8), "variants": ("baseline",)})
    assert m["images_per_s_jgen"] > 0 and m["images_per_s_jgen_baseline"] == m["images_per_s_jgen"]
    assert "speedup_vs_torch" not in m
    assert "disabled" in (tmp_path / "note.txt").read_text()


def test_num_steps_must_be_a_multiple_of_the_fused_block(tmp_path):
    with pytest.raises(experiment.ConfigError, match="multiple of 10"):
        experiment.run_experiment(bench_vae.get_config, bench_vae.run, tmp_path, "quick",
                                  overrides={"num_steps": 15, "torch": False})
