"""Builders on the real raw files (skipped unless JGEN_DATA_DIR points at the shared data)."""

from __future__ import annotations

import numpy as np
import pytest

import jgen.data as jd


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("real_cache")


@pytest.fixture(scope="module")
def mnist_train(real_data_dir, cache):
    return jd.load("mnist", "train", data_dir=real_data_dir, cache_dir=cache, download=False)


def _load(name, split, real_data_dir, cache, **kw):
    return jd.load(name, split, data_dir=real_data_dir, cache_dir=cache, download=False, **kw)


def test_mnist_train(mnist_train):
    assert mnist_train["image"].shape == (60000, 28, 28, 1) and mnist_train["image"].dtype == np.uint8
    assert mnist_train["image"].max() == 255
    np.testing.assert_array_equal(np.bincount(mnist_train["label"]),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])


def test_mnist_test_matches_the_raw_idx(real_data_dir, cache, mnist_train):
    d = _load("mnist", "test", real_data_dir, cache)
    np.testing.assert_array_equal(np.bincount(d["label"]), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    x = jd.raw.read_idx(real_data_dir / "mnist" / "t10k-images-idx3-ubyte.gz", 2051)
    np.testing.assert_array_equal(d["image"][..., 0], x)


def test_usps(real_data_dir, cache):
    tr, te = _load("usps", "train", real_data_dir, cache), _load("usps", "test", real_data_dir, cache)
    assert tr["image"].shape == (7291, 16, 16, 1) and te["image"].shape == (2007, 16, 16, 1)
    np.testing.assert_array_equal(np.bincount(tr["label"]), [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644])
    np.testing.assert_array_equal(np.bincount(te["label"]), [359, 264, 198, 166, 200, 160, 170, 147, 166, 177])
    assert tr["image"].min() == 0 and tr["image"].max() == 255


def test_datasaurus(real_data_dir, cache):
    d = _load("datasaurus", "train", real_data_dir, cache)
    assert d["xy"].shape == (13 * 142, 2)
    np.testing.assert_array_equal(np.bincount(d["dataset"]), [142] * 13)
    dino = _load("datasaurus", "train", real_data_dir, cache, dataset="dino")["xy"]
    csv = np.loadtxt(real_data_dir / "datasaurus" / "Datasaurus_data.csv", delimiter=",")
    np.testing.assert_allclose(dino, csv, rtol=1e-6)
    np.testing.assert_allclose(dino.mean(0), [54.26, 47.83], atol=0.01)


def test_olivetti(real_data_dir, cache):
    d = _load("olivetti_faces", "train", real_data_dir, cache)
    assert d["image"].shape == (400, 64, 64, 1)
    np.testing.assert_array_equal(d["label"], np.repeat(np.arange(40), 10))
    x = d["image"].astype(np.float32)
    x = (x - x.min()) / (x.max() - x.min())  # scikit-learn's rescaling
    np.testing.assert_allclose(x[0, 0, :6, 0], [0.30991736, 0.3677686, 0.41735536, 0.44214877, 0.5289256, 0.607438],
                               rtol=1e-6)
    assert abs(x.mean() - 0.5470) < 1e-3


def test_frey(real_data_dir, cache):
    d = _load("frey_faces", "train", real_data_dir, cache)
    assert d["image"].shape == (1965, 28, 20, 1) and d["image"].dtype == np.uint8
    assert (d["image"].min(), d["image"].max()) == (8, 238)
    assert abs(d["image"].mean() / 255 - 0.6057) < 1e-3


def test_binary_alphadigits_and_letters(real_data_dir, cache):
    d = _load("binary_alphadigits", "train", real_data_dir, cache)
    assert d["image"].shape == (1404, 20, 16, 1)
    assert set(np.unique(d["image"])) == {0, 1}
    np.testing.assert_array_equal(np.bincount(d["label"]), [39] * 36)
    letters, labels = jd.preprocess.letters_5x5(d["image"], d["label"])
    assert letters.shape == (1014, 5, 5) and letters.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels), [39] * 26)
    # Thresholding at 0.5 keeps the ink fraction of the glyphs.
    assert abs(letters.mean() - d["image"][d["label"] >= 10].mean()) < 0.03
