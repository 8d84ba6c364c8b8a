"""BatchIterator: determinism, epoch coverage, exact resume, fused blocks, remainders, device placement, sharding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from jgen.data import BatchIterator


def _arrays(n=50):
    return {"x": np.arange(n * 3, dtype=np.float32).reshape(n, 3), "y": np.arange(n)}


def _take(it, k, start=0):
    out = []
    for b in it.iter_from(start):
        out.append({k2: np.asarray(v) for k2, v in b.items()})
        if len(out) == k:
            break
    return out


@pytest.mark.parametrize("prefetch", [0, 2])
def test_batches_are_device_arrays_and_consistent(prefetch):
    it = BatchIterator(_arrays(), 8, seed=3, prefetch=prefetch)
    b = next(iter(it))
    assert isinstance(b["x"], jax.Array) and b["x"].shape == (8, 3) and b["y"].shape == (8,)
    np.testing.assert_array_equal(np.asarray(b["x"])[:, 0], np.asarray(b["y"]) * 3)  # rows stay aligned


def test_deterministic_given_seed_and_different_across_seeds():
    a = _take(BatchIterator(_arrays(), 8, seed=1), 10)
    b = _take(BatchIterator(_arrays(), 8, seed=1, prefetch=0), 10)
    c = _take(BatchIterator(_arrays(), 8, seed=2), 10)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u["y"], v["y"])
    assert any(not np.array_equal(u["y"], w["y"]) for u, w in zip(a, c))


def test_each_epoch_is_a_fresh_permutation_covering_the_data():
    it = BatchIterator(_arrays(48), 8, seed=0)
    assert it.steps_per_epoch == 6
    batches = _take(it, 18)
    epochs = [np.concatenate([b["y"] for b in batches[e * 6:(e + 1) * 6]]) for e in range(3)]
    for ys in epochs:
        np.testing.assert_array_equal(np.sort(ys), np.arange(48))  # every example exactly once per epoch
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    np.testing.assert_array_equal(epochs[1], it.permutation(1))


@pytest.mark.parametrize("k", [0, 1, 5, 6, 13])
def test_iter_from_equals_skipping(k):
    it = BatchIterator(_arrays(), 8, seed=7)
    full = _take(it, k + 4)
    resumed = _take(BatchIterator(_arrays(), 8, seed=7), 4, start=k)
    for u, v in zip(full[k:], resumed):
        np.testing.assert_array_equal(u["x"], v["x"])


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("start", [0, 5, 13])
def test_fused_blocks_stack_consecutive_batches(start, prefetch):
    """Block j from `start` is batches start + 4j .. start + 4j + 3, across epoch boundaries (6 per epoch)."""
    singles = _take(BatchIterator(_arrays(), 8, seed=7), 12, start=start)
    it = BatchIterator(_arrays(), 8, seed=7, prefetch=prefetch).iter_from(start, fuse=4)
    blocks = [next(it) for _ in range(3)]
    it.close()
    assert all(isinstance(b["x"], jax.Array) and b["x"].shape == (4, 8, 3) and b["y"].shape == (4, 8)
               for b in blocks)
    for j, b in enumerate(blocks):
        for i in range(4):
            np.testing.assert_array_equal(np.asarray(b["x"][i]), singles[4 * j + i]["x"])


def test_fused_blocks_of_one_epoch_and_refused_remainders():
    blocks = list(BatchIterator(_arrays(50), 8, seed=0, repeat=False).iter_from(1, fuse=2))
    assert [b["y"].shape for b in blocks] == [(2, 8), (2, 8), (1, 8)]  # steps 1-2, 3-4, 5 of 6
    with pytest.raises(ValueError, match="drop_remainder=True"):
        BatchIterator(_arrays(50), 8, drop_remainder=False).iter_from(0, fuse=2)
    with pytest.raises(ValueError, match="fuse"):
        BatchIterator(_arrays(50), 8).iter_from(0, fuse=0)


def test_drop_remainder_and_no_repeat():
    it = BatchIterator(_arrays(50), 8, seed=0, repeat=False)
    batches = _take(it, 100)
    assert len(batches) == len(it) == 6 and all(b["y"].shape == (8,) for b in batches)
    it = BatchIterator(_arrays(50), 8, seed=0, repeat=False, drop_remainder=False)
    batches = _take(it, 100)
    assert [b["y"].shape[0] for b in batches] == [8] * 6 + [2]
    np.testing.assert_array_equal(np.sort(np.concatenate([b["y"] for b in batches])), np.arange(50))
    assert _take(it, 5, start=7) == []


def test_no_shuffle_is_in_order():
    batches = _take(BatchIterator(_arrays(20), 5, shuffle=False, repeat=False), 10)
    np.testing.assert_array_equal(np.concatenate([b["y"] for b in batches]), np.arange(20))


def test_abandoned_iterator_stops_its_thread():
    import threading

    it = BatchIterator(_arrays(), 8, seed=0, prefetch=2)
    gen = it.iter_from(0)
    next(gen)
    gen.close()
    assert not any(t.name == "jgen-batch-prefetch" and t.is_alive() for t in threading.enumerate())


def test_errors_in_the_producer_reach_the_consumer(monkeypatch):
    it = BatchIterator(_arrays(), 8, seed=0, prefetch=2)
    monkeypatch.setattr(it, "host_batch", lambda s: (_ for _ in ()).throw(RuntimeError(f"bad step {s}")))
    with pytest.raises(RuntimeError, match="bad step 0"):
        next(iter(it))


def test_bad_arguments():
    with pytest.raises(ValueError, match="same leading"):
        BatchIterator({"x": np.zeros((5, 2)), "y": np.zeros(4)}, 2)
    with pytest.raises(ValueError, match="batch_size"):
        BatchIterator(_arrays(), 0)
    with pytest.raises(ValueError, match="exceeds"):
        BatchIterator(_arrays(10), 16)
    with pytest.raises(ValueError, match="step"):
        BatchIterator(_arrays(), 8).iter_from(-1)
    with pytest.raises(TypeError, match="infinite"):
        len(BatchIterator(_arrays(), 8))


_SHARDED = textwrap.dedent("""
    import numpy as np, jax
    from jax.sharding import Mesh, PartitionSpec
    from jgen.data import BatchIterator
    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.asarray(jax.devices()), ("data",))
    arrays = {"x": np.arange(40 * 2, dtype=np.float32).reshape(40, 2), "y": np.arange(40)}
    plain = BatchIterator(arrays, 8, seed=5, prefetch=0)
    sharded = BatchIterator(arrays, 8, seed=5, mesh=mesh)
    for step, (a, b) in enumerate(zip(plain.iter_from(3), sharded.iter_from(3))):
        assert b["x"].sharding.spec == PartitionSpec("data"), b["x"].sharding
        assert len(b["x"].addressable_shards) == 4
        assert {s.data.shape for s in b["x"].addressable_shards} == {(2, 2)}
        assert {s.device for s in b["x"].addressable_shards} == set(jax.devices())
        np.testing.assert_array_equal(np.asarray(a["x"]), np.asarray(b["x"]))
        np.testing.assert_array_equal(np.asarray(a["y"]), np.asarray(b["y"]))
        if step == 6:
            break
    for a, b in zip(plain.iter_from(3, fuse=2), sharded.iter_from(3, fuse=2)):  # [2, batch, ...] blocks
        assert b["x"].sharding.spec == PartitionSpec(None, "data"), b["x"].sharding
        assert {s.data.shape for s in b["x"].addressable_shards} == {(2, 2, 2)}
        np.testing.assert_array_equal(np.asarray(a["x"]), np.asarray(b["x"]))
        break
    try:
        BatchIterator(arrays, 6, mesh=mesh)
    except ValueError as e:
        assert "divisible" in str(e)
    else:
        raise AssertionError("batch 6 over 4 devices must be refused")
    print("SHARDED_OK")
""")


def test_sharded_over_four_host_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", _SHARDED], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "SHARDED_OK" in r.stdout, r.stderr[-3000:]


def test_each_process_gathers_its_own_slice_of_the_global_batch(monkeypatch):
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]), ("data",))
    it = BatchIterator(_arrays(48), 8, seed=4, mesh=mesh)
    full = it.indices(9)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    parts = []
    for p in range(2):
        monkeypatch.setattr(jax, "process_index", lambda p=p: p)
        parts.append(it.host_batch(9)["y"])
    assert [len(q) for q in parts] == [4, 4]
    np.testing.assert_array_equal(np.concatenate(parts), full)
