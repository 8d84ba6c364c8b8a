"""likelihood_table reads the experiments it REQUIRES through Workdir.sibling (and only those), scores their
saved samples on the 7x7 classifier beside the real-data floor, and checks the goal per model."""

import csv
import json
import os

import numpy as np
import pytest

from experiments import likelihood_table
from jgen import experiment
from tests.experiments.helpers import tiny_classifier
from jgen.data.mnist7 import mnist7_splits

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")


@pytest.fixture(scope="module", autouse=True)
def classifier():
    """A one-epoch narrow mnist7 classifier in place of the default one."""
    clf = tiny_classifier("mnist7")
    patch = pytest.MonkeyPatch()
    patch.setattr(likelihood_table, "_classifier", lambda: clf)
    yield clf
    patch.undo()


def _fake_run(path, samples=None, **metrics):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({**metrics, "preset": "quick"}))
    (path / "run.json").write_text(json.dumps({"status": "ok"}))
    if samples is not None:
        experiment.Workdir(path).save_arrays(likelihood_table.SAMPLES, **samples)


def _rows(wd):
    with open(wd / "tables" / "likelihood_and_samples.csv") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def test_table_reads_required_siblings_and_says_what_is_missing(tmp_path):
    suite = tmp_path / "suite"
    digits = mnist7_splits()["val"]  # real digits that are neither the floor's test images nor the reference
    _fake_run(suite / "flows_mnist7", test_bpd_realnvp=3.2, test_bpd_maf=3.1, test_bpd_independent=3.3281,
              num_test=10000, samples={"images_realnvp": digits[:300], "images_maf": np.zeros((300, 7, 7), np.uint8)})
    _fake_run(suite / "vae_mnist7", test_bpd_vae=2.5, num_test=10000)  # not in REQUIRES: never read
    wd = suite / "likelihood_table"
    m = experiment.run_experiment(likelihood_table.get_config, likelihood_table.run, wd,
                                  overrides={"num_samples": 200})
    assert (m["found_flows_mnist7"], m["found_ar_mnist7"]) == (1.0, 0.0)
    assert (m["test_bpd_realnvp"], m["test_bpd_maf"]) == (3.2, 3.1) and "test_bpd_vae" not in m
    # The reported baseline is the flows experiment's; the one computed here is compared with it.
    assert m["test_bpd_independent"] == 3.3281
    assert m["independent_abs_diff_vs_flows"] == pytest.approx(abs(3.3281 - m["test_bpd_independent_computed"]))
    assert 3.0 < m["test_bpd_independent_computed"] < 3.6  # 8-bit 7x7 MNIST: far below 8 bits (uniform)
    rows = _rows(wd)
    # Missing numbers are empty cells (the column keeps one number format); the status says why.
    assert rows["WaveNet"]["test_bits_per_dim"] == "" and rows["WaveNet"]["status"] == "not yet available"
    assert rows["WaveNet"]["source"] == "ar_mnist7" and rows["DDPM"]["source"] == "ddpm_mnist"
    assert rows["RealNVP"]["source"] == "flows_mnist7" and rows["RealNVP"]["test_images"] == "10000"

    # Real digits score like the floor and reach the goal; a constant image is one class, far from it.
    assert m["num_samples_realnvp"] == m["num_samples"] == 200 and m["num_models_with_samples"] == 2
    assert m["fd_classifier_realnvp"] < 2 * m["fd_classifier_floor"] < m["fd_classifier_maf"]
    assert m["class_coverage_realnvp"] > 0.9 and m["class_coverage_maf"] == 0.0
    assert m["recall_realnvp"] > 0.5 > m["recall_maf"]
    assert abs(float(rows["RealNVP"]["precision_floor"]) - m["precision_floor"]) < 1e-9
    checks = json.loads((wd / "checks.json").read_text())
    assert set(checks) == {"RealNVP samples reach the goal", "MAF samples reach the goal"}
    assert checks["RealNVP samples reach the goal"]["passed"] and not checks["MAF samples reach the goal"]["passed"]
    assert m["num_models_reaching_goal"] == 1.0
    assert "saved no 'images_spline'" in rows["rational-quadratic spline flow"]["warning"]
    assert rows["rational-quadratic spline flow"]["fd_classifier"] == ""
    assert (wd / "figures" / "samples.png").is_file()

    # The same table with the autoregressive run found elsewhere (--requires_root), evaluated on fewer test
    # images and with fewer samples than asked for.
    elsewhere = tmp_path / "elsewhere"
    _fake_run(elsewhere / "ar_mnist7", test_bpd_wavenet=2.9, test_bpd_pixelcnn=2.95, num_test=500,
              samples={"images_wavenet": digits[:50], "images_pixelcnn": digits[:10]})
    _fake_run(elsewhere / "flows_mnist7", test_bpd_realnvp=3.0, num_test=10000)
    _fake_run(elsewhere / "vae_mnist", test_bpd_vae=2.6)
    m = experiment.run_experiment(likelihood_table.get_config, likelihood_table.run, tmp_path / "lt",
                                  requires_root=elsewhere, overrides={"num_samples": 200})
    assert (m["test_bpd_wavenet"], m["test_bpd_realnvp"], m["num_models_available"]) == (2.9, 3.0, 5.0)
    assert m["test_bpd_vae"] == 2.6 and _rows(tmp_path / "lt")["VAE"]["source"] == "vae_mnist"
    rows = _rows(tmp_path / "lt")
    assert "evaluated on 500 test images" in rows["WaveNet"]["warning"]
    assert "scored on the 50 samples saved, not 200" in rows["WaveNet"]["warning"]
    assert m["num_samples_wavenet"] == 50 and "fd_classifier_floor" not in m  # no model at the shared count
    assert "at least 20 are needed" in rows["gated PixelCNN"]["warning"] and "fd_classifier_pixelcnn" not in m
    with pytest.raises(experiment.ConfigError, match="num_samples"):
        experiment.run_experiment(likelihood_table.get_config, likelihood_table.run, tmp_path / "bad",
                                  overrides={"num_samples": 10})
