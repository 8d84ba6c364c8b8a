"""jgen.data.faces on fake raw files: loading, resizing, splits by image and by person."""

from __future__ import annotations

import numpy as np
import pytest

from jgen.data import faces

from .fakes import fake_frey, fake_olivetti


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces_raw")
    return root, fake_olivetti(root), fake_frey(root, "pkl", n=30)


@pytest.fixture(scope="module")
def kw(raw_root, tmp_path_factory):
    return dict(data_dir=raw_root[0], cache_dir=tmp_path_factory.mktemp("faces_cache"), download=False)


def test_olivetti_native_and_resized(raw_root, kw):
    imgs = raw_root[1]
    d = faces.olivetti(**kw)
    np.testing.assert_array_equal(d["image"][..., 0], imgs)
    np.testing.assert_array_equal(d["label"], np.repeat(np.arange(40), 10))
    np.testing.assert_array_equal(d["index"], np.arange(400))
    small = faces.olivetti(size=32, **kw)["image"]
    assert small.shape == (400, 32, 32, 1) and small.dtype == np.uint8
    blocks = imgs.reshape(400, 32, 2, 32, 2).astype(np.float64).mean((2, 4))  # 2 x 2 means
    np.testing.assert_allclose(small[..., 0], np.round(blocks), atol=1)  # round half: float32 vs float64
    assert faces.olivetti(size=64, **kw)["image"].shape == (400, 64, 64, 1)


def test_split_by_image_is_the_seeded_permutation(kw):
    d = faces.olivetti(**kw)
    parts = faces.split(d, test_fraction=0.2, seed=3)
    perm = np.random.default_rng(3).permutation(400)
    np.testing.assert_array_equal(parts["test"]["index"], perm[:80])
    np.testing.assert_array_equal(parts["train"]["index"], perm[80:])
    np.testing.assert_array_equal(parts["train"]["image"], d["image"][perm[80:]])
    np.testing.assert_array_equal(parts["test"]["label"], d["label"][perm[:80]])
    again = faces.olivetti_splits(test_fraction=0.2, seed=3, **kw)
    np.testing.assert_array_equal(again["test"]["index"], perm[:80])


def test_split_by_person_holds_out_whole_people(kw):
    parts = faces.olivetti_splits(by="person", test_fraction=0.2, seed=0, **kw)
    train_people, test_people = set(parts["train"]["label"]), set(parts["test"]["label"])
    assert len(test_people) == 8 and len(train_people) == 32 and not train_people & test_people
    assert len(parts["test"]["image"]) == 80 and len(parts["train"]["image"]) == 320
    np.testing.assert_array_equal(np.sort(np.concatenate([parts["train"]["index"], parts["test"]["index"]])),
                                  np.arange(400))


def test_a_generator_seed_is_advanced(kw):
    d = faces.frey(**kw)
    g = np.random.default_rng(5)
    parts = faces.split(d, test_fraction=0.5, seed=g)
    ref = np.random.default_rng(5)
    np.testing.assert_array_equal(parts["test"]["index"], ref.permutation(30)[:15])
    assert g.random() == ref.random()  # the caller's generator went on from where the split left it


def test_frey_splits_and_errors(raw_root, kw):
    parts = faces.frey_splits(test_fraction=0.2, seed=0, **kw)
    assert set(parts["train"]) == {"image", "index"} and len(parts["test"]["image"]) == 6
    np.testing.assert_array_equal(parts["train"]["image"][..., 0], raw_root[2][parts["train"]["index"]])
    assert len(faces.frey_splits(test_fraction=0.0, **kw)["test"]["image"]) == 0
    with pytest.raises(ValueError, match="Frey faces are all one person"):
        faces.split(faces.frey(**kw), by="person")
    with pytest.raises(ValueError, match="by must be one of"):
        faces.split(faces.frey(**kw), by="subject")
    with pytest.raises(ValueError, match=r"test_fraction must lie in \[0, 1\)"):
        faces.split(faces.frey(**kw), test_fraction=1.0)
