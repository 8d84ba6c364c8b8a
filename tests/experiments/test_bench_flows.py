"""bench_flows smoke test: the benchmark at tiny sizes (normflows' side runs only when it is installed)."""

import importlib.util
import math

import jax
import numpy as np

from experiments import bench_flows
from jgen import experiment
from jgen.data import toy2d


def test_tiny_benchmark_trains_and_scores_both_sides(tmp_path):
    overrides = {"num_train": 256, "num_test": 512, "epochs": 20, "hidden_sizes": (8,), "repeats": 1}
    m = experiment.run_experiment(bench_flows.get_config, bench_flows.run, tmp_path, "quick", overrides=overrides)
    assert m["seconds_jgen"] > 0
    # 40 Adam steps lower the held-out NLL below the fresh (identity) flow's, log(2 pi) + E|x|^2 / 2.
    x = np.asarray(toy2d.sample("moons", jax.random.key(0), 20000))
    identity_nll = np.log(2 * np.pi) + np.mean(np.sum(x**2, axis=1)) / 2
    assert math.isfinite(m["nll_jgen"]) and m["nll_jgen"] < identity_nll
    has_peer = importlib.util.find_spec("normflows") is not None and importlib.util.find_spec("torch") is not None
    assert m["has_normflows"] == int(has_peer)
    if has_peer:
        assert m["speedup_vs_normflows"] > 0 and math.isfinite(m["nll_normflows"])
    assert (tmp_path / "tables" / "timings.csv").exists()
