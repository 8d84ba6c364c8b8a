"""bench_mcmc at tiny sizes: every implementation samples the target at its tuned step size (the peer
blackjax is left out here, as when it is not installed)."""

from experiments import bench_mcmc
from jgen import experiment

TINY = {"num_chains": 64, "num_steps": 100, "repeats": 1, "tune_steps": 200}


def test_bench_runs_without_blackjax(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_mcmc, "blackjax", None)
    m = experiment.run_experiment(bench_mcmc.get_config, bench_mcmc.run, tmp_path, "quick", overrides=TINY)
    assert not [k for k in m if "blackjax" in k]
    for kind, target in (("rwmh", 0.234), ("mala", 0.574)):
        for name in ("jgen", "numpy"):
            assert m[f"chain_steps_per_s_{name}_{kind}"] > 0
            assert abs(m[f"accept_{name}_{kind}"] - target) < 0.1, (name, kind, m[f"accept_{name}_{kind}"])
            assert abs(m[f"m2_rel_err_{name}_{kind}"]) < 0.2  # E[x^2] against quadrature
        assert m[f"speedup_vs_numpy_{kind}"] > 0
    assert (tmp_path / "tables" / "throughput.csv").exists()
