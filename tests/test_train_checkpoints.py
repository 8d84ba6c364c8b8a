"""Checkpoints are never poisoned or lost: non-finite states are not saved, unreadable ones are set aside.

A NaN gradient under a finite loss at a checkpoint step leaves no checkpoint from that state; a truncated or
half-written newest checkpoint (a kill mid-save) makes the run resume from the newest readable one; when
none reads back the error says how to start over.
"""

import logging
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import train
from jgen.checkpoints import CheckpointDir, UnreadableCheckpointError
from jgen.experiment import Workdir

# A failed orbax read can leave TensorStore futures that complete after orbax closed their event loop; Python
# then reports "Event loop is closed" from that thread. It is harmless: the restore has already failed over.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

D = 3
KW = dict(key=jax.random.PRNGKey(0), log_every=10, ckpt_every=10, progress=False)


def loss_fn(params, batch, rng):
    pred = batch["x"] @ params["w"] + params["b"]
    # d sqrt(u)/du is infinite at u = 0: where `trap` is 1 the term's value stays 0 but its gradient is NaN.
    trap = jnp.sqrt(jnp.square(params["b"] - params["b"]) + 1.0 - batch["trap"])
    return jnp.mean((pred - batch["y"]) ** 2) + 0.0 * trap, {}


class Batches:
    """Batch s depends only on s; `nan_grad_at` gives a finite loss with a NaN gradient at that step index."""

    def __init__(self, nan_grad_at=None):
        self.nan_grad_at = nan_grad_at

    def iter_from(self, step):
        while True:
            x = np.random.default_rng(step).normal(size=(16, D)).astype(np.float32)
            yield {"x": x, "y": x @ np.float32([1.5, -2.0, 0.5]), "trap": np.float32(step == self.nan_grad_at)}
            step += 1


def init_params():
    return {"w": jnp.zeros(D), "b": jnp.zeros(())}


def fit(wd, num_steps, batches=None, step=None, **kw):
    """fit_loss, or `fit` with a custom `step`, on the toy regression."""
    kw = dict(KW, **kw)
    tx = optax.adam(0.05)
    if step is None:
        return train.fit_loss(loss_fn, init_params(), tx, batches or Batches(), num_steps, wd=wd, **kw)
    state = train.create_train_state(init_params(), tx, kw.pop("key"))
    return train.fit(step, state, batches or Batches(), num_steps, wd=wd, **kw)


def steps_on_disk(wd):
    return sorted(int(p.name) for p in wd.checkpoint_dir("train").iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def reference():
    """30 uninterrupted steps."""
    return fit(None, 30)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A workdir whose run stopped after 20 steps: checkpoints 10 and 20."""
    path = tmp_path_factory.mktemp("saved")
    fit(Workdir(path), 20)
    return path


def copy_of(saved, tmp_path):
    shutil.copytree(saved, tmp_path / "wd")
    return Workdir(tmp_path / "wd")


def truncate_files(directory):
    for f in directory.rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def assert_same_params(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def loss_only(state, batch):
    """The default step, reporting only the loss (no grad_norm that would give the NaN gradient away)."""
    state, metrics = train.make_train_step(loss_fn, optax.adam(0.05))(state, batch)
    return state, {"loss": metrics["loss"]}


@pytest.mark.parametrize("step, message", [
    (None, r"grad_norm became nan at step 10;"),  # fit_loss logs grad_norm: the loop stops on it
    (loss_only, r"params, opt_state became NaN/Inf by step 10 .*no checkpoint was written"),  # the save check
])
def test_nan_gradient_at_a_checkpoint_step_writes_no_checkpoint(tmp_path, step, message):
    """Step index 9 (the one that makes state 10, a checkpoint) has a finite loss and a NaN gradient."""
    wd = Workdir(tmp_path)
    error = train.NonFiniteLossError if step is None else train.NonFiniteStateError
    with pytest.raises(error, match=message + r".*last good checkpoint \(step 5\)"):
        fit(wd, 20, Batches(nan_grad_at=9), step, ckpt_every=5)
    assert steps_on_disk(wd) == [5]
    with CheckpointDir(wd.checkpoint_dir("train")) as ckpts:
        restored = ckpts.restore(train.create_train_state(init_params(), optax.adam(0.05), KW["key"]))
    assert restored[0] == 5 and all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored[1]))
    # Resuming (here with clean data) continues from the good checkpoint.
    res = fit(wd, 20, step=step)
    assert int(res.state.step) == 20 and np.isfinite(np.asarray(res.state.params["w"])).all()


def test_unreadable_newest_checkpoint_falls_back_to_the_newest_readable(saved, tmp_path, reference, caplog):
    wd = copy_of(saved, tmp_path)
    truncate_files(wd.checkpoint_dir("train") / "20")
    with caplog.at_level(logging.WARNING):
        res = fit(wd, 30)
    assert "checkpoint 20 could not be used" in caplog.text and "resuming from checkpoint 10" in caplog.text
    assert_same_params(res.state.params, reference.state.params)
    assert [r["step"] for r in res.history] == [10, 20, 30]
    assert (wd.checkpoint_dir("train") / "20.broken").is_dir() and steps_on_disk(wd) == [20, 30]


def test_kill_mid_save_resumes_from_the_last_complete_checkpoint(saved, tmp_path, reference, caplog):
    """A kill while step 30 was written leaves orbax's temporary directory; it is never restored."""
    wd = copy_of(saved, tmp_path)
    ckpt = wd.checkpoint_dir("train")
    shutil.copytree(ckpt / "20", ckpt / "30.orbax-checkpoint-tmp-1700000000")
    truncate_files(ckpt / "30.orbax-checkpoint-tmp-1700000000")
    with caplog.at_level(logging.WARNING):
        res = fit(wd, 40)
    assert "could not be used" not in caplog.text  # nothing was broken: step 20 was the newest checkpoint
    ref40 = fit(None, 40)
    assert_same_params(res.state.params, ref40.state.params)
    assert steps_on_disk(wd) == [30, 40]


def test_half_written_and_non_finite_checkpoints_are_set_aside(saved, tmp_path, reference, caplog):
    """A step directory with only part of its files, and a NaN state saved by an older jgen."""
    wd = copy_of(saved, tmp_path)
    ckpt = wd.checkpoint_dir("train")
    with CheckpointDir(ckpt, max_to_keep=5) as ckpts:
        state = ckpts.restore(train.create_train_state(init_params(), optax.adam(0.05), KW["key"]))[1]
        ckpts.save(27, state.replace(params=jax.tree.map(lambda x: x * np.nan, state.params)))
    shutil.copytree(ckpt / "20", ckpt / "25", ignore=shutil.ignore_patterns("d"))  # array data missing
    assert steps_on_disk(wd) == [10, 20, 25, 27]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        res = fit(wd, 30)
    assert "checkpoint 27 could not be used (params hold NaN/Inf)" in caplog.text
    assert "checkpoint 25 could not be used" in caplog.text and "resuming from checkpoint 20" in caplog.text
    assert_same_params(res.state.params, reference.state.params)


def test_no_readable_checkpoint_says_how_to_start_over(saved, tmp_path):
    wd = copy_of(saved, tmp_path)
    for step in (10, 20):
        truncate_files(wd.checkpoint_dir("train") / str(step))
    with pytest.raises(UnreadableCheckpointError) as info:
        fit(wd, 30)
    msg = str(info.value)
    assert "checkpoint 20: " in msg and "checkpoint 10: " in msg and "--workdir" in msg and "delete" in msg
    assert "\n" not in msg and len(msg) < 1000 and info.value.__cause__ is not None
    assert steps_on_disk(wd) == [10, 20]  # left in place: re-running must not silently start over


def test_packed_checkpoints_round_trip_read_leaf_by_leaf_ones_and_refuse_another_layout(tmp_path):
    state = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.float32(7.0), "n": jnp.int32(3), "k": jax.random.PRNGKey(1)}
    with CheckpointDir(tmp_path / "packed") as ckpts:
        ckpts.save(1, state)
        assert set(ckpts._mgr.item_metadata(1)) == {"jgen_packed_v1"}  # one array per dtype, not one per leaf
        step, back = ckpts.restore(jax.tree.map(jnp.zeros_like, state))
        assert step == 1 and jax.tree.map(lambda x: x.dtype, back) == jax.tree.map(lambda x: x.dtype, state)
        assert_same_params(back, state)
        swapped = {"w": jnp.zeros((3, 2)), "b": state["b"], "n": state["n"], "k": state["k"]}  # same sizes
        with pytest.raises(UnreadableCheckpointError, match="another structure"):
            ckpts.restore(swapped)
    old = tmp_path / "leaf_by_leaf"  # as jgen wrote them before packing
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(old, options=ocp.CheckpointManagerOptions(create=True)) as mgr:
        mgr.save(5, args=ocp.args.StandardSave(state))
        mgr.wait_until_finished()
    with CheckpointDir(old) as ckpts:
        step, back = ckpts.restore(jax.tree.map(jnp.zeros_like, state))
    assert step == 5
    assert_same_params(back, state)
