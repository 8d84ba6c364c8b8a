"""compare_ddpm_vae reads both siblings' metrics and artifacts: the table holds each model's numbers, the
quality metrics are recomputed at one sample count, the time to a fixed FD comes from the logged curves, and
the answers quote the table's numbers (fake siblings: real digits as the "DDPM", noise as the "VAE")."""

import csv
import json
import os

import numpy as np
import pytest

from experiments import compare_ddpm_vae
from jgen import experiment
from tests.experiments.helpers import tiny_classifier

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")


@pytest.fixture(scope="module", autouse=True)
def classifier():
    """A one-epoch narrow mnist classifier in place of the default one."""
    clf = tiny_classifier("mnist")
    patch = pytest.MonkeyPatch()
    patch.setattr(compare_ddpm_vae, "_classifier", lambda: clf)
    yield clf
    patch.undo()


def _fake_run(path, arrays, **metrics):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({**metrics, "preset": "quick"}))
    (path / "run.json").write_text(json.dumps({"status": "ok"}))
    wd = experiment.Workdir(path)
    for name, a in arrays.items():
        wd.save_arrays(name, **a)


def test_table_and_answers_quote_both_siblings(tmp_path):
    from jgen.data import load

    suite = tmp_path / "suite"
    digits = load("mnist", "train")["image"][-300:].reshape(-1, 28, 28)  # validation digits: not the floor's
    noise = np.random.default_rng(0).integers(0, 256, (400, 28, 28)).astype(np.uint8)
    _fake_run(suite / "ddpm_mnist", {"samples": {"images": digits},
                                     "fd_curve": {"seconds": [10.0, 20.0, 40.0], "fd": [50.0, 9.0, 4.0], "num_samples": 200}},
              test_bpd_ddpm=1.75, num_params=123456, sampling_seconds_per_image=0.02, train_seconds=44.0,
              num_diffusion_steps_mnist7=100, num_test_mnist7=500, fd_track_samples=200, latent_smoothness=0.9)
    _fake_run(suite / "vae_mnist", {"samples": {"images": noise},
                                    "fd_curve": {"seconds": [5.0, 15.0, 30.0], "fd": [30.0, 12.0, 8.0], "num_samples": 200}},
              test_bpd_vae=1.5, num_params=65432, sampling_seconds_per_image=0.0001, train_seconds=33.0,
              latent_smoothness=2.5)
    wd = suite / "compare_ddpm_vae"
    m = experiment.run_experiment(compare_ddpm_vae.get_config, compare_ddpm_vae.run, wd)
    assert m["num_samples"] == 300  # the smaller saved count: both scored at one count, one floor
    assert m["fd_classifier_ddpm"] < m["fd_classifier_vae"] and m["class_coverage_ddpm"] > m["class_coverage_vae"]
    assert (m["test_bpd_ddpm"], m["test_bpd_vae"]) == (1.75, 1.5) and m["num_params_ddpm"] == 123456
    # Fixed quality: the largest FD both reached = the VAE's best, 8; DDPM got there at 40 s, the VAE at 30 s.
    assert m["fd_threshold"] == 8.0
    assert (m["seconds_to_fd_threshold_ddpm"], m["seconds_to_fd_threshold_vae"]) == (40.0, 30.0)
    with open(wd / "tables" / "comparison.csv") as f:
        rows = {r["metric"]: r for r in csv.DictReader(f)}
    assert rows["test bits/dim"]["better"] == "VAE" and rows["fd_classifier"]["better"] == "DDPM"
    assert float(rows["parameters"]["VAE"]) == 65432 and rows["parameters"]["better"] == "VAE"  # the smaller
    assert rows["pixel distance per unit latent distance"]["better"] == "n/a"
    with open(wd / "tables" / "answers.csv") as f:
        answers = [r["answer"] for r in csv.DictReader(f)]
    assert len(answers) == 3
    assert f"DDPM {m['fd_classifier_ddpm']:.3g}, VAE {m['fd_classifier_vae']:.3g}" in answers[0]
    assert "1.75 bits/dim" in answers[1] and "1.5 bits/dim" in answers[1] and "VAE gives the lower" in answers[1]
    assert "the DDPM trained 40 s and the VAE 30 s, so VAE gets there first" in answers[2]
    assert {p.stem for p in (wd / "figures").iterdir()} >= {"samples_side_by_side", "fd_vs_time"}
