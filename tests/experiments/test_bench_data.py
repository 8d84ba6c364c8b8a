"""bench_data at tiny sizes: every row (in-memory MNIST, TFDS, grain streaming of STL-10) runs and is timed."""

import csv
import os

import pytest

from experiments import bench_data
from jgen import experiment

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")


def test_tiny_benchmark_writes_every_row(tmp_path):
    tiny = {"num_batches": 3, "tfds_batches": 2, "repeats": 1, "stream_batches": 3, "stl10_examples": 300}
    metrics = experiment.run_experiment(bench_data.get_config, bench_data.run, tmp_path / "bench_data",
                                        overrides=tiny)
    with open(tmp_path / "bench_data" / "tables" / "throughput.csv") as f:
        rows = {r["method"]: r for r in csv.DictReader(f)}
    assert {"jgen", "tfds_getitems", "stream_stl10", "stream_stl10_no_prefetch", "memory_stl10"} <= set(rows)
    assert all(float(r["images_per_s"]) > 0 for r in rows.values())
    assert metrics["images_per_s_stream_stl10"] > 0
    if not metrics["stl10_real_data"]:
        assert metrics["stl10_streamed_examples"] == 300
