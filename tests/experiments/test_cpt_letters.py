"""cpt_letters on a small budget: held-out letters below the uniform 25 log 2 nats and the independent model."""

import numpy as np
import pytest


def test_cpt_test_nll_is_below_uniform_and_independent_pixels(letters_suite):
    root, m = letters_suite
    assert m["uniform_nll_nats"] == pytest.approx(25 * np.log(2))
    # The exercise's claim: the smoothed CPT gives held-out letters a finite likelihood, above uniform's.
    assert m["test_nll_nats"] < m["test_nll_independent_nats"] < m["uniform_nll_nats"]
    assert m["train_nll_nats"] < m["test_nll_nats"]  # a general table memorises part of its training set
    assert m["test_nll_bits_per_image"] == pytest.approx(m["test_nll_nats"] / np.log(2))
    assert m["num_train"] + m["num_test"] == 1014 and m["table_entries"] == 2**25 - 1
    assert 0 < m["test_unseen_context_fraction"] < 1
    assert np.isfinite(m["sampling_images_per_s"]) and m["sampling_images_per_s"] > 0
    # Less smoothing memorises: most samples are training letters.
    assert m["samples_in_train_fraction_smoothing_low"] > m["samples_in_train_fraction"]
    wd = root / "cpt_letters"
    sweep = (wd / "tables" / "smoothing_sweep.csv").read_text().splitlines()
    assert sweep[0].startswith("smoothing,") and len(sweep) == 4
    assert {"samples.png", "samples_smoothing_low.png", "train_letters.png"} <= {p.name for p in (wd / "figures").iterdir()}
    with np.load(wd / "artifacts" / "split.npz") as z:
        assert len(z["test_idx"]) == m["num_test"]
