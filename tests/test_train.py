"""Tests for jgen.train: convergence, exact resume, NaN stop, fused steps and intervals, EMA/best, 1 vs 4 devices.

Custom step functions and the two-player resume are in test_train_custom_step.py; checkpoint reliability
(non-finite states, unreadable checkpoints) in test_train_checkpoints.py.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import train
from jgen.data import BatchIterator
from jgen.experiment import Workdir

D = 3
W_TRUE = np.array([1.5, -2.0, 0.5], np.float32)


def loss_fn(params, batch, rng):
    pred = batch["x"] @ params["w"] + params["b"]
    noise = 0.0 * jax.random.normal(rng)  # rng must be usable inside the loss
    return jnp.mean((pred - batch["y"]) ** 2) + noise, {"mean_pred": jnp.mean(pred)}


class Batches:
    """Deterministic batches: batch s depends only on s (like BatchIterator.iter_from)."""

    def __init__(self, batch_size=16, nan_at=None, stop_at=None):
        self.batch_size, self.nan_at, self.stop_at = batch_size, nan_at, stop_at

    def iter_from(self, step):
        while True:
            if self.stop_at is not None and step == self.stop_at:
                raise KeyboardInterrupt("simulated interruption")
            rs = np.random.default_rng(step)
            x = rs.normal(size=(self.batch_size, D)).astype(np.float32)
            y = x @ W_TRUE + 0.3
            if step == self.nan_at:
                y = y * np.nan
            yield {"x": x, "y": y.astype(np.float32)}
            step += 1


def init_params():
    return {"w": jnp.zeros(D), "b": jnp.zeros(())}


def test_fit_converges_and_logs(tmp_path):
    wd = Workdir(tmp_path)
    res = train.fit_loss(loss_fn, init_params(), optax.adam(0.05), Batches(), 300, key=jax.random.PRNGKey(0),
                         wd=wd, log_every=50, ckpt_every=100, fuse_steps=10, progress=False)
    np.testing.assert_allclose(res.params["w"], W_TRUE, atol=2e-2)
    assert int(res.state.step) == 300
    rows = wd.read_log("train")
    assert [r["step"] for r in rows] == [50, 100, 150, 200, 250, 300]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert {"loss", "grad_norm", "mean_pred"} <= set(rows[0])
    assert sorted(p.name for p in wd.checkpoint_dir("train").iterdir() if p.name.isdigit()) == ["200", "300"]


def test_resume_after_interruption_matches_uninterrupted(tmp_path):
    kw = dict(key=jax.random.PRNGKey(1), log_every=10, ckpt_every=20, progress=False)
    ref = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(), 60, **kw)
    wd = Workdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(stop_at=47), 60, wd=wd, **kw)
    assert [r["step"] for r in wd.read_log("train")][-1] == 40
    resumed = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(), 60, wd=wd, **kw)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 ref.state.params, resumed.state.params)
    assert [r["step"] for r in resumed.history] == [10, 20, 30, 40, 50, 60]
    # A finished run returns at once with the same result.
    again = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(stop_at=0), 60, wd=wd, **kw)
    np.testing.assert_array_equal(again.state.params["w"], resumed.state.params["w"])


def test_nan_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    wd = Workdir(tmp_path)
    with pytest.raises(train.NonFiniteLossError, match=r"at step 8;.*step 5\)"):
        train.fit_loss(loss_fn, init_params(), optax.sgd(0.01), Batches(nan_at=7), 20, key=jax.random.PRNGKey(0),
                       wd=wd, log_every=5, ckpt_every=5, progress=False)
    steps = sorted(int(p.name) for p in wd.checkpoint_dir("train").iterdir() if p.name.isdigit())
    assert steps == [5]


def test_fused_steps_equal_single_steps():
    kw = dict(key=jax.random.PRNGKey(2), log_every=8, progress=False)
    a = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(), 24, **kw)
    b = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(), 24, fuse_steps=4, **kw)
    np.testing.assert_allclose(a.state.params["w"], b.state.params["w"], rtol=1e-6)
    assert [r["step"] for r in b.history] == [8, 16, 24]


def test_keep_best_and_ema():
    evals = iter([3.0, 1.0, 2.0])
    res = train.fit_loss(loss_fn, init_params(), optax.adam(0.05), Batches(), 30, key=jax.random.PRNGKey(0),
                         eval_fn=lambda p: {"val": next(evals)}, eval_every=10, keep_best=True, progress=False)
    assert int(res.state.best_step) == 20 and float(res.state.best_value) == 1.0
    assert not np.allclose(res.params["w"], res.state.params["w"])
    ema = train.fit_loss(loss_fn, init_params(), optax.adam(0.05), Batches(), 30, key=jax.random.PRNGKey(0),
                         ema_decay=0.9, progress=False)
    assert not np.allclose(ema.params["w"], ema.state.params["w"])
    np.testing.assert_allclose(ema.params["w"], ema.state.ema_params["w"])
    # With an EMA, evaluation and keep_best rank the EMA params, the model that is kept.
    seen = []
    best = train.fit_loss(loss_fn, init_params(), optax.adam(0.05), Batches(), 30, key=jax.random.PRNGKey(0),
                          ema_decay=0.9, eval_fn=lambda p: seen.append(p["w"]) or {"val": -len(seen)}, eval_every=10,
                          keep_best=True, progress=False)
    np.testing.assert_allclose(seen[-1], best.state.ema_params["w"])
    np.testing.assert_allclose(best.params["w"], best.state.ema_params["w"])


def test_intervals_are_rounded_up_to_whole_fused_blocks(tmp_path):
    """12 steps in blocks of 4 with log_every=6 and ckpt_every=5: rows and checkpoints at 8 and at the end."""
    wd = Workdir(tmp_path)
    res = train.fit_loss(loss_fn, init_params(), optax.adam(0.01), Batches(), 12, key=jax.random.PRNGKey(0),
                         wd=wd, fuse_steps=4, log_every=6, ckpt_every=5, max_to_keep=5, progress=False)
    assert [r["step"] for r in res.history] == [8, 12]
    assert sorted(int(p.name) for p in wd.checkpoint_dir("train").iterdir() if p.name.isdigit()) == [8, 12]


def test_full_batch_fused_blocks_equal_single_steps():
    batch = next(Batches(batch_size=32).iter_from(0))
    kw = dict(key=jax.random.PRNGKey(4), log_every=6, progress=False)
    a = train.fit_loss(loss_fn, init_params(), optax.sgd(0.05), train.FullBatch(batch), 6, **kw)
    b = train.fit_loss(loss_fn, init_params(), optax.sgd(0.05), train.FullBatch(batch), 6, fuse_steps=3, **kw)
    np.testing.assert_allclose(a.state.params["w"], b.state.params["w"], rtol=1e-6)
    block = next(train.FullBatch(batch).iter_from(0, fuse=3))
    assert block["x"].shape == (3, 32, D)
    np.testing.assert_array_equal(np.asarray(block["x"][2]), batch["x"])


def test_bad_arguments():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="keep_best"):
        train.fit_loss(loss_fn, init_params(), optax.adam(0.1), Batches(), 5, key=key, keep_best=True)
    for label in ("log_every", "ckpt_every", "eval_every"):
        for value in (0, -250):
            with pytest.raises(ValueError, match=f"{label}={value} is not valid: expected a positive"):
                train.fit_loss(loss_fn, init_params(), optax.adam(0.1), Batches(), 12, key=key, fuse_steps=4,
                               **{label: value})
    with pytest.raises(ValueError, match="fuse_steps=0 is not valid"):
        train.fit_loss(loss_fn, init_params(), optax.adam(0.1), Batches(), 12, key=key, fuse_steps=0)
    short = BatchIterator({"x": np.ones((32, D), np.float32), "y": np.ones(32, np.float32)}, 16, repeat=False)
    with pytest.raises(ValueError, match="ran out at step 2 of 5"):
        train.fit_loss(loss_fn, init_params(), optax.adam(0.1), short, 5, key=key, progress=False)
    with pytest.raises(TypeError, match="TrainState"):
        train.fit(lambda s, b: (s, {}), {"params": init_params()}, Batches(), 3)


def test_one_device_equals_four_devices(tmp_path):
    """The same sharded step on a 1-device mesh and a 4-device mesh gives the same parameters, fused or not,
    and a run resumed from its checkpoint on the 4-device mesh the same bits as the uninterrupted one."""
    script = textwrap.dedent("""
        import json, jax, jax.numpy as jnp, numpy as np, optax
        from jgen import train
        from jgen.data import BatchIterator
        from jgen.sharding import data_mesh, shard_batch
        assert len(jax.devices()) == 4

        def loss_fn(p, batch, rng):
            h = jnp.tanh(batch["x"] @ p["w1"])
            return jnp.mean((h @ p["w2"] - batch["y"]) ** 2), {}

        class Sharded:
            def __init__(self, mesh): self.mesh = mesh
            def iter_from(self, step):
                self.start = step
                while True:
                    rs = np.random.default_rng(step)
                    x = rs.normal(size=(32, 4)).astype(np.float32)
                    yield shard_batch({"x": x, "y": np.sin(x).sum(1, keepdims=True)}, self.mesh)
                    step += 1

        out = {}
        for n in (1, 4):
            mesh = data_mesh(jax.devices()[:n])
            k1, k2 = jax.random.split(jax.random.PRNGKey(0))
            p = {"w1": jax.random.normal(k1, (4, 16)), "w2": jax.random.normal(k2, (16, 1)) * 0.1}
            res = train.fit_loss(loss_fn, p, optax.adam(1e-2), Sharded(mesh), 20, key=jax.random.PRNGKey(0),
                                 mesh=mesh, progress=False)
            out[n] = {k: np.asarray(v).tolist() for k, v in res.state.params.items()}
            out[f"shards{n}"] = len(res.state.params["w1"].sharding.device_set)
        # Fused [k, batch] blocks from a sharded BatchIterator (batch axis split over the 4 devices).
        x = np.random.default_rng(0).normal(size=(320, 4)).astype(np.float32)
        data = {"x": x, "y": np.sin(x).sum(1, keepdims=True)}
        for n, fuse in ((1, 1), (4, 4)):
            mesh = data_mesh(jax.devices()[:n])
            res = train.fit_loss(loss_fn, p, optax.adam(1e-2), BatchIterator(data, 32, mesh=mesh), 20,
                                 key=jax.random.PRNGKey(0), mesh=mesh, fuse_steps=fuse, progress=False)
            out[f"fused{fuse}"] = {k: np.asarray(v).tolist() for k, v in res.state.params.items()}
        # Stopped after 10 steps and resumed from its (packed) checkpoint on the 4-device mesh.
        import tempfile
        from jgen.experiment import Workdir
        wd, mesh = Workdir(tempfile.mkdtemp()), data_mesh(jax.devices())
        for num_steps in (10, 20):
            k1, k2 = jax.random.split(jax.random.PRNGKey(0))
            p = {"w1": jax.random.normal(k1, (4, 16)), "w2": jax.random.normal(k2, (16, 1)) * 0.1}
            batches = Sharded(mesh)
            res = train.fit_loss(loss_fn, p, optax.adam(1e-2), batches, num_steps, key=jax.random.PRNGKey(0),
                                 mesh=mesh, wd=wd, ckpt_every=10, progress=False)
        out["resumed_from"] = batches.start
        out["resumed4"] = {k: np.asarray(v).tolist() for k, v in res.state.params.items()}
        out["resumed_shards"] = len(res.state.params["w1"].sharding.device_set)
        print(json.dumps(out))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["shards1"] == 1 and out["shards4"] == 4
    for k in ("w1", "w2"):
        np.testing.assert_allclose(out["1"][k], out["4"][k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["fused1"][k], out["fused4"][k], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(out["resumed4"][k], out["4"][k])  # resumed = uninterrupted, bit for bit
    assert out["resumed_from"] == 10 and out["resumed_shards"] == 4
