"""bench_kde smoke test at tiny sizes: jgen agrees with scipy and scikit-learn; absent peers are skipped."""

import importlib.util

from experiments import bench_kde
from jgen import experiment

TINY = {"num_points": 400, "grid_sizes": (24,), "sklearn_grid_size": 24, "binned_grid_size": 96,
        "repeats": 1, "binned_repeats": 1}


def test_tiny_benchmark_agrees_with_its_peers(tmp_path):
    m = experiment.run_experiment(bench_kde.get_config, bench_kde.run, tmp_path, "quick", overrides=TINY)
    assert m["max_rel_diff_vs_scipy_24"] < 1e-4  # float32 jgen vs float64 scipy, same H H^T
    assert m["speedup_vs_scipy_24"] > 0
    has_sklearn = importlib.util.find_spec("sklearn") is not None
    assert m["has_sklearn"] == float(has_sklearn)
    if has_sklearn:
        assert m["max_rel_diff_vs_sklearn_24"] < 1e-4
    assert m["has_kdepy"] == float(importlib.util.find_spec("KDEpy") is not None)  # skipped with a note if absent
    # Linear binning + FFT against the exact density; the binning correction removes the leading error term.
    assert m["binned_rel_error"] < m["binned_rel_error_uncorrected"] < 0.05
    assert (tmp_path / "tables" / "bench_kde.csv").exists()
