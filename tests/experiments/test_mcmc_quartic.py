"""mcmc_quartic on a small budget: the exercise's claim (MALA's ESS per gradient above RWMH's ESS per target
evaluation at d = 10), converged chains, exact moments, files, and no duplicate log rows on a re-run."""

import json

import pytest

from experiments import mcmc_quartic
from jgen import experiment

SMALL = {"dims": (10,), "plot_dim": 10, "num_chains": 4, "warmup": 500, "num_steps": 3000, "max_lag": 30}

#: What an earlier run in the same workdir left in log.jsonl: its rows, and a row of another name.
EARLIER_LOG = [{"name": "rwmh", "step": 10, "accept": 0.5}, {"name": "mala", "step": 10, "accept": 0.5},
               {"name": "other", "step": 3, "loss": 1.0}]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("mcmc_quartic")
    (wd / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EARLIER_LOG))
    return wd, experiment.run_experiment(mcmc_quartic.get_config, mcmc_quartic.run, wd, "quick", overrides=SMALL)


def test_mala_beats_rwmh_per_evaluation_and_chains_converge(quick_run):
    _, m = quick_run
    assert m["ess_per_grad_mala_d10"] > m["ess_per_eval_rwmh_d10"], m
    assert m["rhat_max_all"] < 1.05
    for name, target in (("rwmh", 0.234), ("mala", 0.574)):
        assert abs(m[f"accept_{name}_d10"] - target) < 0.05
        assert abs(m[f"m2_zscore_{name}_d10"]) < 4.0  # E[x^2] against quadrature, in Monte Carlo SEs


def test_files_and_no_duplicate_log_rows_after_a_rerun(quick_run):
    wd, m = quick_run
    figures = {p.stem for p in (wd / "figures").iterdir()}
    assert {"histograms_d10", "trace_rwmh_d10", "trace_mala_d10", "autocorrelation_d10", "scatter_d10",
            "marginals_by_dim"} <= figures
    assert (wd / "tables" / "comparison.csv").exists()
    rows = [json.loads(line) for line in (wd / "log.jsonl").read_text().splitlines()]
    # The earlier run's rows are replaced, one row per sampler and dimension; other names are kept.
    assert sorted((r["name"], r["step"]) for r in rows) == [("mala", 10), ("other", 3), ("rwmh", 10)]
    assert {r["name"]: r.get("accept") for r in rows}["rwmh"] == pytest.approx(m["accept_rwmh_d10"])
