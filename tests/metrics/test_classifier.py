"""The in-project classifier and `evaluate_samples` on real USPS digits, with one tiny classifier trained once.

The accuracy targets of the default classifiers are checked in test_classifier_accuracy.py (marked slow).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from jgen.metrics import classifier, sample_quality

pytestmark = pytest.mark.skipif(not Path(os.environ.get("JGEN_DATA_DIR", "/nonexistent"), "usps").is_dir(),
                                reason="needs JGEN_DATA_DIR with usps")


def _tiny_config():
    c = classifier.classifier_config("usps")
    c.channels, c.features, c.epochs, c.max_shift = (8,), 32, 2, 0
    c.optim.warmup_steps = 10
    return c


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jgen_cache")


@pytest.fixture(scope="module")
def clf(cache):
    return classifier.get_classifier("usps", config=_tiny_config(), cache_dir=cache)


@pytest.fixture(scope="module")
def usps():
    return classifier.dataset_splits("usps")


def test_tiny_classifier_learns_and_is_cached(clf, cache):
    assert clf.test_accuracy > 0.85  # two epochs of an 8-channel CNN; the default one reaches >= 97%
    assert (clf.path / "meta.json").is_file() and clf.path.parent == cache / "classifiers"
    start = time.perf_counter()
    again = classifier.get_classifier("usps", config=_tiny_config(), cache_dir=cache)
    assert time.perf_counter() - start < 1.0
    np.testing.assert_array_equal(again.params["Dense_1"]["kernel"], clf.params["Dense_1"]["kernel"])
    other = _tiny_config()
    other.seed = 1
    assert classifier._cache_key(other, "x") != classifier._cache_key(_tiny_config(), "x")
    assert classifier._cache_key(_tiny_config(), "x") != classifier._cache_key(_tiny_config(), "y")


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 7, 5, 2)])
def test_max_pool_matches_flax_in_value_and_gradient_ties_included(shape):
    import flax.linen as nn
    import jax

    x = jax.random.normal(jax.random.key(0), shape)
    x = jnp.round(jnp.maximum(x, 0.2) * 2) / 2  # many windows with tied maxima
    g = jax.random.normal(jax.random.key(1), (shape[0], shape[1] // 2, shape[2] // 2, shape[3]))
    y_ref, vjp_ref = jax.vjp(lambda v: nn.max_pool(v, (2, 2), strides=(2, 2)), x)
    y, vjp = jax.vjp(classifier.max_pool_2x2, x)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(vjp(g)[0], vjp_ref(g)[0])  # the whole gradient to the first maximum


def test_features_probs_and_input_checks(clf, usps):
    x = usps["test_x"][:5]
    f, logits = clf.features_and_logits(x)
    assert f.shape == (5, 32) and logits.shape == (5, 10)
    np.testing.assert_allclose(clf.probs(x[..., 0]).sum(-1), 1.0, rtol=1e-5)  # [n, H, W] accepted too
    with pytest.raises(ValueError, match=r"takes images \[n, 16, 16"):
        clf.features(np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="no in-project classifier"):
        classifier.classifier_config("cifar10")


@pytest.fixture(scope="module")
def scores_of(clf):
    return lambda images, n=400: sample_quality.evaluate_samples(images, "usps", num_samples=n, clf=clf)


def test_floor_is_small_and_noise_is_far(scores_of, usps):
    noise = np.random.default_rng(0).integers(0, 256, (400, 16, 16, 1))
    s = scores_of(noise)
    assert s["num_samples"] == 400 and set(k + "_floor" for k in ("fd_classifier", "recall")) <= set(s)
    assert s["fd_classifier"] > 10 * s["fd_classifier_floor"]
    assert s["kid_classifier"] > 10 * max(s["kid_classifier_floor"], s["kid_classifier_se"])
    assert s["precision"] < 0.5 * s["precision_floor"]
    assert s["recall"] < 0.1 < 0.8 < s["recall_floor"]
    assert s["memorisation"] == 0.0


def test_training_images_score_like_the_floor_and_copies_are_memorised(scores_of, usps):
    s = scores_of(usps["train_x"][:400])
    for k in ("precision", "recall", "density", "coverage"):
        assert s[k] == pytest.approx(s[f"{k}_floor"], abs=0.15)
        assert s[k] > 0.6
    assert s["fd_classifier"] < 3 * s["fd_classifier_floor"]
    assert s["memorisation"] > 0.9 and s["memorisation_floor"] < 0.2


def test_a_model_of_one_class_has_low_class_coverage_and_recall(scores_of, usps):
    zeros = usps["train_x"][usps["train_y"] == 0][:400]
    s = scores_of(zeros)
    assert s["class_coverage"] < 0.3 < 0.9 < s["class_coverage_floor"]
    assert s["classes_present"] < s["classes_present_floor"] == 1.0
    assert s["recall"] < 0.4 < s["recall_floor"]
    assert s["inception_score_classifier"] < 0.5 * s["inception_score_classifier_floor"]


def test_evaluate_samples_refuses_more_samples_than_the_floor_has(scores_of, usps):
    with pytest.raises(ValueError, match="num_samples <= 2007"):
        scores_of(np.concatenate([usps["train_x"][:2100]]), n=2100)


def test_keys_and_suffix_select_and_rename_the_model_metrics(clf, usps):
    x = usps["train_x"][:400]
    full = sample_quality.evaluate_samples(x, "usps", num_samples=400, clf=clf, memorisation=False)
    some = sample_quality.evaluate_samples(x, "usps", num_samples=400, clf=clf, memorisation=False,
                                           keys=("fd_classifier", "recall"), suffix="_T50")
    assert set(some) == {"fd_classifier_T50", "recall_T50", "fd_classifier_floor", "recall_floor", "num_samples",
                         "classifier_test_accuracy"}
    assert some["fd_classifier_T50"] == full["fd_classifier"] and some["recall_floor"] == full["recall_floor"]
    with pytest.raises(ValueError, match="no metric \\['memorisation'\\]"):
        sample_quality.evaluate_samples(x, "usps", num_samples=400, clf=clf, memorisation=False,
                                        keys=("memorisation",))
