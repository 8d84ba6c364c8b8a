"""StreamingBatches on fake STL-10 files in the official binary layout: epochs, resume, shards, flips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.data import stream

from .fakes import fake_stl10


@pytest.fixture(scope="module")
def stl10(tmp_path_factory):
    root = tmp_path_factory.mktemp("stl10_raw")
    truth = fake_stl10(root, counts=(6, 2, 24))
    kw = dict(data_dir=root, cache_dir=tmp_path_factory.mktemp("stl10_cache"), download=False)
    return truth["unlabeled"][0], kw


def _index(images: np.ndarray, truth: np.ndarray) -> list[int]:
    """Which fake image each batch row is (random images: a few pixels identify one)."""
    keys = {t[:4, :4].tobytes(): i for i, t in enumerate(truth)}
    return [keys[img[:4, :4].tobytes()] for img in np.asarray(images)]


def _take(it, n):
    return [jax.device_get(next(it)) for _ in range(n)]


def test_each_epoch_is_a_fresh_permutation_of_the_split(stl10):
    truth, kw = stl10
    b = stream.StreamingBatches("stl10", "unlabelled", 8, seed=3, **kw)
    assert b.steps_per_epoch == 3
    batches = _take(iter(b), 6)
    assert batches[0]["image"].shape == (8, 96, 96, 3) and batches[0]["image"].dtype == np.uint8
    epochs = [sum((_index(x["image"], truth) for x in batches[e * 3:(e + 1) * 3]), []) for e in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(24))
    assert epochs[0] != epochs[1] and epochs[0] != list(range(24))
    ordered = _take(iter(stream.StreamingBatches("stl10", "unlabelled", 8, shuffle=False, **kw)), 3)
    np.testing.assert_array_equal(np.concatenate([x["image"] for x in ordered]), truth)


@pytest.mark.parametrize("prefetch", [0, 3])
def test_iter_from_equals_skipping_and_the_seed_fixes_the_batches(stl10, prefetch):
    truth, kw = stl10
    make = lambda seed: stream.StreamingBatches("stl10", "unlabelled", 4, seed=seed, prefetch=prefetch,
                                                augment=stream.random_flip, keys=("image",), **kw)
    full = _take(iter(make(0)), 9)
    resumed = _take(make(0).iter_from(5), 4)
    for a, b in zip(full[5:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert set(full[0]) == {"image"}
    other = _take(iter(make(1)), 1)
    assert not np.array_equal(other[0]["image"], full[0]["image"])


def test_random_flip_mirrors_about_half_the_images(stl10):
    truth, kw = stl10
    b = stream.StreamingBatches("stl10", "unlabelled", 24, shuffle=False, augment=stream.random_flip, **kw)
    got = jax.device_get(next(iter(b)))["image"]
    flipped = [bool(np.array_equal(g, t[:, ::-1])) for g, t in zip(got, truth)]
    kept = [bool(np.array_equal(g, t)) for g, t in zip(got, truth)]
    assert all(f != k for f, k in zip(flipped, kept))  # every image is either the original or its mirror
    assert 4 <= sum(flipped) <= 20


def test_hosts_read_disjoint_shards(stl10, monkeypatch):
    truth, kw = stl10
    seen = []
    for p in range(2):
        monkeypatch.setattr(jax, "process_count", lambda: 2)
        monkeypatch.setattr(jax, "process_index", lambda p=p: p)
        b = stream.StreamingBatches("stl10", "unlabelled", 8, seed=0, **kw)
        assert b.host_batch_size == 4 and b.steps_per_epoch == 3
        seen.append(sum((_index(b.host_batch(s)["image"], truth) for s in range(3)), []))
    assert sorted(seen[0] + seen[1]) == list(range(24))
    with pytest.raises(ValueError, match="divisible by the 2 processes"):
        stream.StreamingBatches("stl10", "unlabelled", 7, **kw)


def test_bad_arguments(stl10):
    _, kw = stl10
    with pytest.raises(ValueError, match="exceeds the 6 examples"):
        stream.StreamingBatches("stl10", "train", 8, **kw)
    with pytest.raises(ValueError, match="either a dataset name or source"):
        stream.StreamingBatches(batch_size=8)
    with pytest.raises(ValueError, match="non-negative int"):
        stream.StreamingBatches("stl10", "train", 2, **kw).iter_from(-1)


def test_fit_resumed_from_a_checkpoint_sees_the_same_batches(stl10, tmp_path):
    import optax

    from jgen import train
    from jgen.experiment import Workdir

    _, kw = stl10
    make = lambda: stream.StreamingBatches("stl10", "unlabelled", 4, seed=0, augment=stream.random_flip,
                                           keys=("image",), **kw)
    loss_fn = lambda p, b, rng: (jnp.mean((b["image"][:, :8, :8] / 255.0 - p["w"]) ** 2), {})
    fit = lambda n, wd=None: train.fit_loss(loss_fn, {"w": jnp.zeros((8, 8, 3))}, optax.sgd(0.5), make(), n,
                                            key=jax.random.key(0), wd=wd, log_every=1, ckpt_every=2, progress=False)
    straight = fit(7)
    wd = Workdir(tmp_path)
    fit(4, wd)
    starts = []
    iter_from = stream.StreamingBatches.iter_from
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream.StreamingBatches, "iter_from", lambda self, step: starts.append(step) or iter_from(self, step))
        resumed = fit(7, wd)  # restores step 4, then reads batches 4, 5, 6
    assert starts == [4]
    np.testing.assert_array_equal(np.asarray(resumed.params["w"]), np.asarray(straight.params["w"]))
    assert [r["loss"] for r in resumed.history] == pytest.approx([r["loss"] for r in straight.history])
