"""The dino DDPM experiment end to end on a small budget: files, metrics, resume."""

import json
import os

import numpy as np
import pytest

from experiments import dino_ddpm
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (datasaurus)")

SMALL = {"train_steps": 400, "fuse_steps": 50, "eval_every": 100, "num_samples": 200, "test_draws": 2}


def test_dino_quick_run_writes_files_and_metrics(tmp_path):
    m = experiment.run_experiment(dino_ddpm.get_config, dino_ddpm.run, tmp_path, "quick", overrides=SMALL)
    for v in ("no_time", "linear_time", "fourier"):
        assert np.isfinite(m[f"test_loss_{v}"]) and 0 < m[f"test_loss_{v}"] < 1.2
        assert np.isfinite(m[f"mmd_{v}"])
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"dino.png", "alpha_bar.png", "forward_noising.png", "samples.png", "test_loss.png"} <= figures
    names = {json.loads(l)["name"] for l in (tmp_path / "log.jsonl").read_text().splitlines()}
    assert names == {"no_time", "linear_time", "fourier"}
    # Re-running resumes from the final checkpoints: same numbers, no retraining.
    again = experiment.run_experiment(dino_ddpm.get_config, dino_ddpm.run, tmp_path, "quick", overrides=SMALL)
    assert again == m


def test_squared_mmd_is_zero_for_the_points_and_positive_for_noise():
    rs = np.random.default_rng(0)
    pts = rs.normal(size=(100, 2)).astype(np.float32)
    same = pts[rs.integers(0, 100, 2000)]
    assert abs(float(dino_ddpm.squared_mmd(same, pts, 0.2))) < 2e-3
    assert float(dino_ddpm.squared_mmd(rs.uniform(-3, 3, (2000, 2)).astype(np.float32), pts, 0.2)) > 0.02
