"""mle_models on a small budget: the MLE recovers the true parameters within a few standard errors."""

import numpy as np
import pytest

from experiments import mle_models
from jgen import experiment

SMALL = {"reg_num_points": 100, "reg_steps": 600, "graph_num_graphs": 40, "graph_num_nodes": 20,
         "graph_steps": 300, "num_generated": 2, "generated_num_nodes": 8}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("mle_models")
    return wd, experiment.run_experiment(mle_models.get_config, mle_models.run, wd, "quick", overrides=SMALL)


def test_regression_gradient_ascent_reaches_the_closed_form_near_the_truth(run):
    _, m = run
    assert m["reg_w_max_abs_z"] < 4.0  # every weight within 4 standard errors of the truth
    assert m["reg_w_gd_vs_closed_max_abs"] < 1e-3
    assert m["reg_loglik_gd"] == pytest.approx(m["reg_loglik_closed"], abs=1e-2)
    assert m["reg_loglik_closed"] >= m["reg_loglik_true_params"]  # the MLE beats the true parameters
    assert m["reg_sigma2_hat"] == pytest.approx(m["reg_sigma2_unbiased"] * (100 - 3) / 100, rel=1e-4)


def test_graph_mle_recovers_a_and_b_within_a_few_standard_errors(run):
    wd, m = run
    for p in ("a", "b"):
        assert m[f"graph_{p}_err"] < 4 * m[f"graph_{p}_se"], (p, m[f"graph_{p}_hat"], m[f"graph_{p}_se"])
    assert m["graph_grad_norm_at_hat"] < 1e-2 * m["graph_num_pairs"] ** 0.5  # at the maximum
    assert m["graph_loglik_hat"] >= m["graph_loglik_true_params"]
    figures = {p.name for p in (wd / "figures").iterdir()}
    assert {"regression_loglik.png", "regression_fit.png", "graph_loglik.png", "generated_graphs.png",
            "data_graphs.png"} <= figures
    rows = (wd / "tables" / "graph_fit.csv").read_text().splitlines()
    assert rows[0] == "parameter,estimate,std_error,true" and len(rows) == 3
    assert np.isclose(float(rows[1].split(",")[1]), m["graph_a_hat"])
