"""vae_stl10 on tiny budgets: on MNIST the exercise's claims hold (the alpha path morphs A into B, alpha = 0
and lambda = 0 decode A's reconstruction); on fake STL-10 files in the official layout the real loading
path (prepare, stream train+unlabelled, load test and train) runs end to end; absent files give a
MissingDataError that says where to put them."""

import csv
import os

import numpy as np
import pytest

from experiments import vae_stl10
from jgen import experiment
from jgen.data import MissingDataError

from ..data.fakes import fake_stl10

TINY = {"num_epochs": 2, "batch_size": 64, "num_val": 100, "num_test": 300, "eval_batch": 100, "num_class_mean": 20,
        "num_path_pairs": 12, "num_metric_images": 20, "metric_batch": 20, "lpips_min_size": 32,
        "optim.learning_rate": 3e-3}
TINY_MNIST = {**TINY, "dataset": "mnist", "num_labelled": 1000, "mnist.train_split": "train[:3000]",
              "mnist.model.channels": (8, 16), "mnist.model.latent_dim": 8, "mnist.model.gaussian_scale": 0.2}


@pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")
def test_tiny_mnist_run_morphs_a_into_b_and_starts_every_path_at_as_reconstruction(tmp_path):
    m = experiment.run_experiment(vae_stl10.get_config, vae_stl10.run, tmp_path, "quick", overrides=TINY_MNIST)
    assert m["path_start_max_abs_diff"] < 1e-5, m["path_start_max_abs_diff"]  # alpha = 0, lambda = 0: z_A
    lpips = _read_csv(tmp_path / "tables" / "lpips_paths.csv")
    for path in ("interpolation", "style_alpha"):  # away from A, towards B, step by step (mean over pairs)
        to_a, to_b = (np.array([float(r[k]) for r in lpips if r["path"] == path]) for k in ("lpips_to_a",
                                                                                           "lpips_to_b"))
        assert np.mean(np.diff(to_a) > 0) >= 0.75 and np.mean(np.diff(to_b) < 0) >= 0.75, (path, to_a, to_b)
        assert m[f"{path}_lpips_to_a_end"] > m[f"{path}_lpips_to_a_start"], m
        assert m[f"{path}_lpips_to_b_end"] < m[f"{path}_lpips_to_b_start"], m
    assert m["style_lambda_lpips_to_b_end"] < m["style_lambda_lpips_to_b_start"]  # B's style moves it towards B
    assert m["fd_vgg16_floor"] < m["fd_vgg16_recon"] < m["fd_vgg16_samples"] and m["test_kl_nats"] > 1, m
    figures = {p.stem for p in (tmp_path / "figures").iterdir()}
    assert {"loss", "samples", "reconstructions", "interpolation", "style_transfer_lambda", "style_transfer_alpha",
            "lpips_paths"} <= figures
    epochs = (tmp_path / "tables" / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 1 + 2 and epochs[0].startswith("epoch,total (neg ELBO),reconstruction,KL")
    assert "96x96x3" in (tmp_path / "tables" / "architecture_stl10.csv").read_text()


def _read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_tiny_run_on_fake_stl10_files_streams_train_and_unlabelled(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    truth = fake_stl10(raw, counts=(60, 30, 40), seed=1)
    assert len(np.unique(truth["train"][1])) == 10  # every class has a labelled image for its mean
    monkeypatch.setenv("JGEN_DATA_DIR", str(raw))
    monkeypatch.setenv("JGEN_TFDS_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("JGEN_OFFLINE", "1")
    tiny = {**TINY, "dataset": "stl10", "num_epochs": 2, "batch_size": 25, "num_val": 10, "num_test": 30,
            "eval_batch": 10, "num_labelled": 60, "num_class_mean": 3, "num_path_pairs": 2, "num_metric_images": 5,
            "metric_batch": 10, "fd_vgg16": False, "stl10.train_split": "train+unlabelled",
            "stl10.model.channels": (4, 8),
            "stl10.model.strides": (4, 4), "stl10.model.kernels": (4, 4), "stl10.model.latent_dim": 4}
    m = experiment.run_experiment(vae_stl10.get_config, vae_stl10.run, tmp_path / "wd", "quick", overrides=tiny)
    assert m["num_train"] == 100 and m["steps_per_epoch"] == 4 and m["num_test"] == 30
    assert np.isfinite(m["test_neg_elbo_nats"]) and m["path_start_max_abs_diff"] < 1e-5
    rows = (tmp_path / "wd" / "tables" / "architecture.csv").read_text()
    assert "96x96x3" in rows and not (tmp_path / "wd" / "tables" / "architecture_stl10.csv").exists()

    monkeypatch.setenv("JGEN_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("JGEN_TFDS_DIR", str(tmp_path / "cache_empty"))
    with pytest.raises(MissingDataError, match="(?s)train_X.bin.*stl10.*--config.dataset=mnist"):
        experiment.run_experiment(vae_stl10.get_config, vae_stl10.run, tmp_path / "wd2", "quick", overrides=tiny)


def test_config_errors_name_the_field():
    with pytest.raises(experiment.ConfigError, match="dataset"):
        experiment.run_experiment(vae_stl10.get_config, vae_stl10.run, "/nonexistent/never", "quick",
                                  overrides={"dataset": "cifar"})
    with pytest.raises(experiment.ConfigError, match="likelihood"):
        experiment.run_experiment(vae_stl10.get_config, vae_stl10.run, "/nonexistent/never", "quick",
                                  overrides={"mnist.model.likelihood": "bernoulli"})
