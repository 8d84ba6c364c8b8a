"""ar_mnist7 on a tiny budget: both models beat independent pixels, cached sampling is naive sampling, and the
samples the likelihood table scores are saved."""

import json
import os

import numpy as np
import pytest

from experiments import ar_mnist7
from jgen import experiment
from jgen.data.mnist7 import mnist7_splits
from jgen.metrics.likelihood import independent_pixel_bits_per_dim

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (mnist)")

# 500 evaluation images (test, validation, training subset and curve: one compiled shape); 2 sampler blocks.
TINY = {"num_train": 4000, "eval_every": 100, "num_samples": 16, "num_quality_samples": 24, "timing_repeats": 1,
        "max_eval_images": 500,
        "wavenet.channels": 16, "wavenet.skip_channels": 32, "wavenet.num_steps": 200,
        "wavenet.optim.learning_rate": 5e-3,
        "pixelcnn.channels": 16, "pixelcnn.head_channels": 32, "pixelcnn.num_steps": 200,
        "pixelcnn.optim.learning_rate": 5e-3}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    wd = tmp_path_factory.mktemp("ar_mnist7")
    return wd, experiment.run_experiment(ar_mnist7.get_config, ar_mnist7.run, wd, "quick", overrides=TINY)


def test_tiny_run_beats_independent_pixels_and_cached_sampling_is_exact(tiny_run):
    wd, m = tiny_run
    splits = mnist7_splits(TINY["num_train"])
    baseline = independent_pixel_bits_per_dim(splits["train"], splits["test"][:500])  # same images
    assert m["test_bpd_wavenet"] < baseline and m["test_bpd_pixelcnn"] < baseline, (m, baseline)
    assert m["cached_equals_naive_samples"] == 1.0
    assert m["samples_per_s_wavenet_cached"] > 0 and m["num_test"] == 500
    assert ar_mnist7.get_config("quick").max_eval_images is None  # the presets use all 10,000 test images
    rows = [json.loads(line) for line in (wd / "log.jsonl").read_text().splitlines()]
    assert {r["name"] for r in rows} == {"wavenet", "pixelcnn"} and any("val_bpd" in r for r in rows)


def test_samples_for_the_table_and_convergence_checks_are_written(tiny_run):
    wd, m = tiny_run
    samples = experiment.Workdir(wd).load_arrays("samples_mnist7")
    assert set(samples) == {"images_wavenet", "images_pixelcnn"}
    for x in samples.values():
        assert x.shape == (24, 7, 7) and x.dtype == np.uint8
        assert len({im.tobytes() for im in x}) == 24  # the second sampler block draws new images
    checks = json.loads((wd / "checks.json").read_text())
    assert set(checks) == {"wavenet validation curve flattened", "pixelcnn validation curve flattened"}
    assert m["best_step_wavenet"] in (100, 200) and m["val_plateau_drop_wavenet"] >= 0
    assert "at step" in checks["wavenet validation curve flattened"]["detail"]
