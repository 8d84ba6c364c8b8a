"""ppca_faces on a small budget: held-out likelihood grows with the latent dimension, EM matches the closed form."""

import os

import numpy as np
import pytest

from experiments import ppca_faces
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (Olivetti faces)")

# Latent dimensions 2 and 3 are fitted anyway (the scatter plots): each new one costs compilations, not compute.
TINY = {"latent_dims": (2, 3, 8), "sample_dim": 8, "num_reconstructions": 4, "num_traversal_dims": 2,
        "traversal_stds": (-2.0, 0.0, 2.0), "em_steps": 100}


def test_tiny_run_held_out_likelihood_grows_with_d_and_em_matches_the_closed_form(tmp_path):
    m = experiment.run_experiment(ppca_faces.get_config, ppca_faces.run, tmp_path, "quick", overrides=TINY)
    assert (m["num_train"], m["num_test"], m["data_dim"]) == (320, 80, 4096)
    assert m["test_loglik_d2"] < m["test_loglik_d3"] < m["test_loglik_d8"]  # nats per held-out image
    assert m["loglik_d8"] > m["test_loglik_d8"]  # and the model fits its training faces better
    assert abs(m["em_minus_closed_loglik_d2"]) < 0.01
    for q in (2, 3, 8):  # the posterior mean shrinks towards the mean: never a smaller error than projection
        assert m[f"test_recon_mse_d{q}"] >= m[f"test_recon_proj_mse_d{q}"] * (1 - 1e-6)
    figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"latent_2d.png", "reconstructions.png", "em_loglik.png", "samples.png", "traversals.png"} <= figures
    assert all(np.isfinite(v) for k, v in m.items() if k != "preset")
