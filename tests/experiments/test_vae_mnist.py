"""vae_mnist on a tiny budget: files and metrics are written, the ELBO improves clearly on the initial
model, IWAE >= ELBO, and q(z | x) depends on x (posterior means differ across classes)."""

import json
import math
import os

import numpy as np
import pytest

from experiments import vae_mnist
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")

TINY = {"num_train": 3000, "num_steps": 200, "batch_size": 64, "eval_every": 100, "log_every": 50, "num_val": 200,
        "model.channels": (8, 16), "model.latent_dim": 8, "iwae_k": 20, "iwae_num_test": 50, "iwae_batch": 25,
        "iwae_chunk": 10, "num_analysis": 300, "quality_metrics": False, "num_quality_samples": 100,
        "grid_size": 5, "mnist7.num_steps": 60, "mnist7.model.channels": (8, 8), "mnist7.iwae_k": 5,
        "mnist7.model.latent_dim": 4}


def test_tiny_run_learns_and_its_posterior_depends_on_x(tmp_path):
    wd = tmp_path
    m = experiment.run_experiment(vae_mnist.get_config, vae_mnist.run, wd, "quick", overrides=TINY)
    rows = [json.loads(line) for line in (wd / "log.jsonl").read_text().splitlines()]
    evals = [r["val_neg_elbo"] for r in rows if r.get("name") == "vae" and "val_neg_elbo" in r]
    # 784 binary pixels: an untrained decoder (logits ~ 0) costs ~ 784 ln 2 = 543 nats; 200 steps halve that.
    assert m["test_neg_elbo_nats"] < 0.5 * 784 * math.log(2) and evals[-1] < evals[0], (m["test_neg_elbo_nats"], evals)
    assert m["test_iwae_nll_nats"] <= m["test_neg_elbo_iwae_subset_nats"] + 0.5 and m["iwae_k"] == 20
    assert m["active_units"] >= 1 and m["mutual_information_nats"] > 0.5 and m["posterior_class_r2"] > 0.1, m
    assert m["latent_smoothness"] > 0 and m["latent_smoothness_random_pairs"] > 0
    assert 0 < m["test_bpd_vae"] < 8 and m["test_bpd_vae"] <= m["test_bpd_vae_elbo"] + 0.01
    figures = {p.stem for p in (wd / "figures").iterdir()}
    assert {"loss", "reconstructions", "samples", "posterior_means_pca", "posterior_vs_prior", "latent_plane",
            "perturbations"} <= figures
    assert {p.stem for p in (wd / "tables").iterdir()} >= {"architecture", "smoothness", "posterior_dimensions"}
    # What likelihood_table and compare_ddpm_vae read: the 7x7 model's samples, the main samples, sampling time.
    s7 = np.load(wd / "artifacts" / "samples_mnist7.npz")["images"]
    assert s7.shape == (1000, 7, 7) and s7.dtype == np.uint8 and s7.max() > 0
    assert np.load(wd / "artifacts" / "samples.npz")["images"].shape == (100, 28, 28)
    assert m["sampling_seconds_per_image"] > 0 and m["train_seconds"] > 0

