"""ebm_usps on a tiny budget: its files and metrics, data below noise in energy, and the 2-D version's KL."""

import json
import os

import numpy as np
import pytest

from experiments import ebm_usps
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (usps, mnist)")

TINY = {"model.channels": (8, 16), "model.hidden": 16, "langevin.num_steps": 10, "buffer_size": 256,
        "batch_size": 32, "train_steps": 60, "optim.learning_rate": 1e-3, "log_every": 20, "ckpt_every": 20,
        "fresh_steps": 20, "num_quality_samples": 64, "quality_metrics": False, "num_ood": 200, "mala_steps": 5,
        "num_mala_chains": 16, "num_strip_chains": 2, "strip_records": 2}
TOY = {"dataset": "mixture4", "toy.hidden": (32, 32), "toy.train_steps": 200, "toy.buffer_size": 512,
       "toy.batch_size": 128, "toy.num_train": 2000, "toy.grid_size": 40, "log_every": 50, "ckpt_every": 100}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("ebm_usps")
    return wd, experiment.run_experiment(ebm_usps.get_config, ebm_usps.run, wd, "quick", overrides=TINY)


def test_tiny_run_writes_its_files_and_puts_digits_below_noise(tiny_run):
    wd, m = tiny_run
    assert m["auroc_noise"] > 0.9  # E(real) < E(noise) after training
    for key in ("auroc_blur", "auroc_mnist", "mala_acceptance"):
        assert 0.0 <= m[key] <= 1.0
    assert np.isfinite(m["mala_energy_start"]) and np.isfinite(m["mala_energy_end"])
    figures = {p.name for p in (wd / "figures").iterdir()}
    assert {"loss.png", "energies.png", "buffer_samples.png", "fresh_samples.png", "chains.png", "ood_examples.png",
            "mala_samples.png"} <= figures
    assert (wd / "tables" / "ood.csv").read_text().splitlines()[0] == "set,mean_energy,auroc"
    rows = [json.loads(line) for line in (wd / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["name"] == "ebm"] == [20, 40, 60]
    assert {"e_real", "e_fake", "energy_magnitude"} <= set(rows[-1])


def test_the_2d_version_learns_the_density(tmp_path):
    m = experiment.run_experiment(ebm_usps.get_config, ebm_usps.run, tmp_path, "quick", overrides=TOY)
    assert m["kl_grid"] < 0.5 * m["kl_grid_init"]
    assert (tmp_path / "figures" / "density.png").exists()


def test_bad_values_are_refused_before_any_work(tmp_path):
    with pytest.raises(experiment.ConfigError, match="--config.dataset='cifar' is not valid"):
        experiment.run_experiment(ebm_usps.get_config, ebm_usps.run, tmp_path / "a", "quick",
                                  overrides={"dataset": "cifar"})
    with pytest.raises(experiment.ConfigError, match="reinit_fraction"):
        experiment.run_experiment(ebm_usps.get_config, ebm_usps.run, tmp_path / "b", "quick",
                                  overrides={"reinit_fraction": 1.5})
    assert not (tmp_path / "a").exists()
