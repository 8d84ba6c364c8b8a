"""ddpm_mnist on a tiny budget: files and metrics are written, DDIM with eta = 0 is a deterministic map of
x_T (and eta > 0 is not), fewer DDIM steps sample faster, the MNIST 7x7 bound is a finite positive number
of bits/dim on 40 test digits, and its samples are saved for likelihood_table."""

import os

import jax
import numpy as np
import pytest

from experiments import ddpm_mnist
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")

TINY = {"num_train": 1000, "num_diffusion_steps": 20, "model.channels": 8, "model.num_groups": 4,
        "batch_size": 32, "num_steps": 40, "eval_every": 40, "log_every": 10, "quality_metrics": False,
        "num_quality_samples": 40, "sample_batch": 40, "num_analysis": 40, "t_study": (20,), "ddim_study": (2, 20), "sample_steps": 2,
        "process_seeds": 40, "process_columns": 3, "latent_ddim_steps": 3,
        "smoothness_radii": (0.5,), "mnist7.num_diffusion_steps": 50, "mnist7.model.channels": 8,
        "mnist7.num_steps": 60, "mnist7.num_test": 40, "mnist7.eval_batch": 40, "mnist7.num_samples": 40}


def test_tiny_run_writes_the_studies_and_ddim_is_deterministic(tmp_path):
    m = experiment.run_experiment(ddpm_mnist.get_config, ddpm_mnist.run, tmp_path, "quick", overrides=TINY)
    assert m["num_params"] > 0 and m["image_size"] == 14
    # Fewer DDIM steps: the chain is 10x shorter, so it samples faster (per 1000 images).
    assert m["sampling_seconds_per_1000_ddim2"] < m["sampling_seconds_per_1000_ddim20"], m
    # A 60-step model's bound is loose; it is a finite positive number of bits per pixel over 40 test digits.
    assert np.isfinite(m["test_bpd_ddpm"]) and m["test_bpd_ddpm"] > 0 and m["num_test_mnist7"] == 40, m
    assert m["latent_smoothness"] > 0 and m["latent_smoothness_random_pairs"] > 0
    figures = {p.stem for p in (tmp_path / "figures").iterdir()}
    assert {"loss", "samples", "generative_process", "latent_slerp", "latent_perturbations", "samples_mnist7"} <= figures
    assert {p.stem for p in (tmp_path / "tables").iterdir()} >= {"steps_T", "steps_ddim", "smoothness"}
    s7 = np.load(tmp_path / "artifacts" / "samples_mnist7.npz")["images"]
    assert s7.shape == (40, 7, 7) and s7.dtype == np.uint8
    main = np.load(tmp_path / "artifacts" / "samples.npz")["images"]
    assert main.shape == (40, 28, 28) and main.dtype == np.uint8

    # DDIM, eta = 0: the same x_T gives the same x_0 whatever the step keys; eta = 1 depends on them.
    cfg = ddpm_mnist.get_config("quick")
    experiment.apply_overrides(cfg, TINY, "ddpm_mnist")
    den = ddpm_mnist.Denoiser(ddpm_mnist._unet(cfg.model))
    params = ddpm_mnist._init(den, jax.random.key(0), (14, 14, 1))
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape), params)
    sched = ddpm_mnist._schedule(cfg, 20)
    x_T = jax.random.normal(jax.random.key(2), (4, 14, 14, 1))
    run = lambda key, eta: np.asarray(ddpm_mnist.sample_chain(den, params, sched, x_T, jax.random.key(key),
                                                              sampler="ddim", steps=5, eta=eta))
    np.testing.assert_array_equal(run(3, 0.0), run(4, 0.0))
    assert np.abs(run(3, 1.0) - run(4, 1.0)).max() > 1e-3


def test_slerp_keeps_the_endpoints_and_the_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 500))
    path = ddpm_mnist.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-5)
    np.testing.assert_allclose(path[-1], b, atol=1e-5)
    # Two independent Gaussian noises are nearly orthogonal with equal norms: the path keeps that norm,
    # while the straight line's midpoint shrinks it by 1 / sqrt(2).
    norms = np.linalg.norm(path, axis=1)
    assert np.all(np.abs(norms / np.linalg.norm(a) - 1) < 0.1), norms
    assert np.linalg.norm((a + b) / 2) < 0.8 * np.linalg.norm(a)
