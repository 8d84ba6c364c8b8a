"""The dino DDPM experiment on a small budget: the exercise's claim, both schedules, resume, and its command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import dino_ddpm
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (datasaurus)")

ROOT = Path(__file__).resolve().parents[2]
# 500 steps: a quarter of it is not a multiple of fuse_steps, so the derived checkpoint interval is rounded
# (the same case as the quick preset's fuse_steps=100 with --config.train_steps=1000).
SMALL = {"train_steps": 500, "fuse_steps": 50, "eval_every": 250, "num_samples": 300, "test_draws": 1,
         "repeats": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("dino")
    return wd, experiment.run_experiment(dino_ddpm.get_config, dino_ddpm.run, wd, "quick", overrides=SMALL)


def test_fourier_time_beats_no_time_and_the_schedules_are_reported(run):
    wd, m = run
    for v in ("no_time", "linear_time", "fourier", "fourier_cosine"):
        assert 0 < m[f"test_loss_{v}"] < 1.2 and np.isfinite(m[f"mmd_{v}"])
    # The exercise's claim: a denoiser that knows t samples the dino far better than one that does not.
    assert m["mmd_fourier"] < 0.5 * m["mmd_no_time"]
    betas = np.linspace(1e-4, 2e-2, 50)
    assert m["alpha_bar_T"] == pytest.approx(np.prod(1 - betas), rel=1e-5)  # 0.60: x_T is not N(0, I)
    assert m["alpha_bar_T_cosine"] < 1e-4
    table = (wd / "tables" / "variants.csv").read_text().splitlines()
    assert table[0] == "variant,schedule,alpha_bar_T,test_loss,mmd" and len(table) == 5
    figures = {p.name for p in (wd / "figures").iterdir()}
    assert {"dino.png", "alpha_bar.png", "forward_noising.png", "samples.png", "test_loss.png"} <= figures
    names = {json.loads(line)["name"] for line in (wd / "log.jsonl").read_text().splitlines()}
    assert names == {"no_time", "linear_time", "fourier", "fourier_cosine"}


def test_checkpoint_interval_is_rounded_to_fused_calls():
    c = dino_ddpm.get_config("quick")
    c.train_steps = 1000
    assert dino_ddpm._ckpt_every(c) == 200
    c.train_steps = 30
    assert dino_ddpm._ckpt_every(c) == 100


def test_rerun_resumes_with_the_same_numbers_and_adds_its_time(run):
    wd, m = run
    first = json.loads((wd / "run.json").read_text())
    again = experiment.run_experiment(dino_ddpm.get_config, dino_ddpm.run, wd, "quick", overrides=SMALL)
    assert again == m
    info = json.loads((wd / "run.json").read_text())
    assert info["runs"] == 2 and info["seconds_total"] == pytest.approx(
        first["seconds_total"] + info["seconds_last_run"])


def _cli(tmp_path, *flags, **env):
    return subprocess.run([sys.executable, "-m", "experiments.dino_ddpm", f"--workdir={tmp_path / 'w'}", *flags],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=300)


def test_command_line_errors_are_one_paragraph_without_a_traceback(tmp_path):
    bad_key = _cli(tmp_path, "--config.train_step=10")
    assert bad_key.returncode != 0 and "Traceback" not in bad_key.stderr
    assert "'train_step'" in bad_key.stderr and "dino_ddpm" in bad_key.stderr
    assert "Closest known keys: train_steps" in bad_key.stderr
    assert not (tmp_path / "w").exists()

    bad_value = _cli(tmp_path, "--config.comparison_schedule=cosin")
    assert bad_value.returncode != 0 and "Traceback" not in bad_value.stderr
    assert "--config.comparison_schedule='cosin' is not valid" in bad_value.stderr

    empty = tmp_path / "empty_data"
    empty.mkdir()
    missing = _cli(tmp_path, "--config.train_steps=100", JGEN_DATA_DIR=str(empty), JGEN_OFFLINE="1",
                   JGEN_TFDS_DIR=str(tmp_path / "tfds"))
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "'datasaurus'" in missing.stderr and str(empty) in missing.stderr
    assert "Traceback" in (tmp_path / "w" / "error.txt").read_text()  # the traceback is kept for a bug report
    assert " INFO " not in missing.stderr and "orbax" not in missing.stderr.lower()
    assert json.loads((tmp_path / "w" / "run.json").read_text())["status"] == "failed"
