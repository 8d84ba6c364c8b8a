"""ar_mnist7 on a tiny budget: both models beat independent pixels, and cached sampling is naive sampling."""

import json
import os

import pytest

from experiments import ar_mnist7
from jgen import experiment
from jgen.data.mnist7 import mnist7_splits
from jgen.metrics.likelihood import independent_pixel_bits_per_dim

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")

TINY = {"num_train": 4000, "eval_every": 150, "num_samples": 16, "timing_repeats": 1,
        "wavenet.channels": 16, "wavenet.skip_channels": 32, "wavenet.num_steps": 300,
        "wavenet.optim.learning_rate": 5e-3,
        "pixelcnn.channels": 16, "pixelcnn.head_channels": 32, "pixelcnn.num_steps": 300,
        "pixelcnn.optim.learning_rate": 5e-3}


def test_tiny_run_beats_independent_pixels_and_cached_sampling_is_exact(tmp_path):
    m = experiment.run_experiment(ar_mnist7.get_config, ar_mnist7.run, tmp_path, "quick", overrides=TINY)
    splits = mnist7_splits(TINY["num_train"])
    baseline = independent_pixel_bits_per_dim(splits["train"], splits["test"])  # same training images
    assert m["test_bpd_wavenet"] < baseline and m["test_bpd_pixelcnn"] < baseline, (m, baseline)
    assert m["cached_equals_naive_samples"] == 1.0
    assert m["samples_per_s_wavenet_cached"] > 0 and m["num_test"] == 10000
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert {r["name"] for r in rows} == {"wavenet", "pixelcnn"} and any("val_bpd" in r for r in rows)
