"""likelihood_table reads the experiments it REQUIRES through Workdir.sibling, and only those."""

import csv
import json
import os

import pytest

from experiments import likelihood_table
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")


def _fake_run(path, **metrics):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({**metrics, "preset": "quick"}))
    (path / "run.json").write_text(json.dumps({"status": "ok"}))


def _rows(wd):
    with open(wd / "tables" / "test_bits_per_dim.csv") as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def test_table_reads_required_siblings_and_says_what_is_missing(tmp_path):
    suite = tmp_path / "suite"
    _fake_run(suite / "flows_mnist7", test_bpd_realnvp=3.2, test_bpd_maf=3.1, test_bpd_independent=3.3281,
              num_test=10000)
    _fake_run(suite / "vae_mnist7", test_bpd_vae=2.5, num_test=10000)  # not in REQUIRES: never read
    wd = suite / "likelihood_table"
    m = experiment.run_experiment(likelihood_table.get_config, likelihood_table.run, wd)
    assert (m["found_flows_mnist7"], m["found_ar_mnist7"]) == (1.0, 0.0)
    assert (m["test_bpd_realnvp"], m["test_bpd_maf"]) == (3.2, 3.1) and "test_bpd_vae" not in m
    # The reported baseline is the flows experiment's; the one computed here is compared with it.
    assert m["test_bpd_independent"] == 3.3281
    assert m["independent_abs_diff_vs_flows"] == pytest.approx(abs(3.3281 - m["test_bpd_independent_computed"]))
    assert 3.0 < m["test_bpd_independent_computed"] < 3.6  # 8-bit 7x7 MNIST: far below 8 bits (uniform)
    rows = _rows(wd)
    assert rows["WaveNet"]["test_bits_per_dim"] == "not yet available" and rows["WaveNet"]["source"] == "ar_mnist7"
    assert rows["RealNVP"]["source"] == "flows_mnist7" and rows["RealNVP"]["test_images"] == "10000"

    # The same table with the autoregressive run found elsewhere (--requires_root) and evaluated on fewer images.
    elsewhere = tmp_path / "elsewhere"
    _fake_run(elsewhere / "ar_mnist7", test_bpd_wavenet=2.9, test_bpd_pixelcnn=2.95, num_test=500)
    _fake_run(elsewhere / "flows_mnist7", test_bpd_realnvp=3.0, num_test=10000)
    _fake_run(elsewhere / "vae_mnist", test_bpd_vae=2.6)
    m = experiment.run_experiment(likelihood_table.get_config, likelihood_table.run, tmp_path / "lt",
                                  requires_root=elsewhere)
    assert (m["test_bpd_wavenet"], m["test_bpd_realnvp"], m["num_models_available"]) == (2.9, 3.0, 5.0)
    assert m["test_bpd_vae"] == 2.6 and _rows(tmp_path / "lt")["VAE"]["source"] == "vae_mnist"
    assert "evaluated on 500 test images" in _rows(tmp_path / "lt")["WaveNet"]["warning"]
