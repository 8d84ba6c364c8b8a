"""`jgen.train.fit` with a custom step: a toy two-player game resumes bit for bit, and compiles once per run."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import train
from jgen.data import BatchIterator
from jgen.experiment import Workdir

REG_EVERY, GAMMA, EMA_DECAY = 3, 1.0, 0.9
TX_G = optax.adam(0.05)
TX_D = optax.sgd(0.1, momentum=0.5)


def generator(g, z):
    return z @ g["w"] + g["b"]


def critic(d, x):
    return x @ d["w"] + d["c"]


def init_state():
    """Player G (params, adam, EMA) in the state proper; player D (params, SGD state) in `extra`."""
    g = {"w": jnp.eye(2), "b": jnp.zeros(2)}
    d = {"w": jnp.array([0.1, -0.1]), "c": jnp.zeros(())}
    return train.create_train_state(g, TX_G, jax.random.PRNGKey(0), ema=True,
                                    extra={"d": d, "d_opt": TX_D.init(d)})


def two_player_step(state, batch, traces=None):
    """D step (logistic loss, plus a lazy R1 penalty every REG_EVERY steps), then G step against the new D."""
    if traces is not None:
        traces.append(1)
    z = jax.random.normal(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step), batch["x"].shape)
    d, d_opt = state.extra["d"], state.extra["d_opt"]

    def d_loss(d):
        fake = generator(state.params, z)
        loss = jnp.mean(jax.nn.softplus(-critic(d, batch["x"])) + jax.nn.softplus(critic(d, fake)))
        r1 = jnp.mean(jnp.sum(jax.grad(lambda x: critic(d, x).sum())(batch["x"]) ** 2, -1))
        return loss + jnp.where(state.step % REG_EVERY == 0, REG_EVERY * 0.5 * GAMMA * r1, 0.0), loss

    (_, loss_d), grads = jax.value_and_grad(d_loss, has_aux=True)(d)
    updates, d_opt = TX_D.update(grads, d_opt, d)
    d = optax.apply_updates(d, updates)

    loss_g, grads = jax.value_and_grad(lambda g: jnp.mean(jax.nn.softplus(-critic(d, generator(g, z)))))(
        state.params)
    updates, g_opt = TX_G.update(grads, state.opt_state, state.params)
    g = optax.apply_updates(state.params, updates)
    ema = optax.incremental_update(g, state.ema_params, 1.0 - EMA_DECAY)
    return state.replace(step=state.step + 1, params=g, opt_state=g_opt, ema_params=ema,
                         extra={"d": d, "d_opt": d_opt}), {"loss_d": loss_d, "loss_g": loss_g}


def batches():
    x = np.random.default_rng(0).normal(size=(96, 2)).astype(np.float32) * 0.5 + np.float32(2.0)
    return BatchIterator({"x": x}, 16, seed=1)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.fixture(scope="module")
def uninterrupted():
    traces = []
    res = train.fit(lambda s, b: two_player_step(s, b, traces), init_state(), batches(), 24, fuse_steps=4,
                    log_every=8, progress=False)
    return res, traces


def test_two_player_game_trains_each_player_and_compiles_once(uninterrupted):
    res, traces = uninterrupted
    assert len(traces) == 1  # one trace of the step for the whole run (the scan body of every block)
    assert int(res.state.step) == 24 and [r["step"] for r in res.history] == [8, 16, 24]
    assert {"loss_d", "loss_g"} == set(res.history[0]) - {"step"}
    init = init_state()
    assert not np.allclose(res.state.params["b"], init.params["b"])
    assert not np.allclose(res.state.extra["d"]["w"], init.extra["d"]["w"])
    # The EMA follows G only, and lags it.
    assert jax.tree.structure(res.state.ema_params) == jax.tree.structure(res.state.params)
    assert not np.allclose(res.state.ema_params["b"], res.state.params["b"])
    assert_trees_equal(res.params, res.state.ema_params)


def test_two_player_game_resumed_from_a_checkpoint_is_bit_identical(uninterrupted, tmp_path):
    ref, _ = uninterrupted
    wd = Workdir(tmp_path)
    kw = dict(wd=wd, fuse_steps=4, log_every=8, ckpt_every=8, progress=False)
    half = train.fit(two_player_step, init_state(), batches(), 12, **kw)
    assert int(half.state.step) == 12
    traces = []
    resumed = train.fit(lambda s, b: two_player_step(s, b, traces), init_state(), batches(), 24, **kw)
    assert len(traces) == 1
    for part in ("params", "opt_state", "ema_params", "extra", "key", "step"):
        assert_trees_equal(getattr(ref.state, part), getattr(resumed.state, part))
    assert [r["step"] for r in resumed.history] == [8, 12, 16, 24]


def test_a_step_that_does_not_count_is_refused():
    def frozen(state, batch):
        return state, {"loss": jnp.zeros(())}

    with pytest.raises(ValueError, match=r"state\.step \+ 1"):
        train.fit(frozen, init_state(), batches(), 4, log_every=2, progress=False)
