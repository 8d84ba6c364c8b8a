"""Persistent contrastive divergence: it separates data from noise, resumes its chains bit for bit, and stops
(or restarts) on divergence with a message naming the step and the last good checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import ebm, optim, train
from jgen.data import BatchIterator, toy2d
from jgen.ebm import divergence
from jgen.experiment import Workdir

MODEL = ebm.MLPEnergy(hidden=(32, 32))
LANGEVIN = ebm.LangevinConfig(num_steps=10, step_size=0.02, noise_scale=None, clip_value=None, bounds=(-4.0, 4.0))
BOUNDS = (-4.0, 4.0)


def _setup(num_steps, lr=3e-3):
    params = MODEL.init(jax.random.key(0), jnp.zeros((1, 2)))
    tx = optim.make_optimizer(optim.optim_config(learning_rate=lr, b1=0.0, clip_grad_norm=1.0), num_steps)
    state = ebm.create_state(params, tx, jax.random.key(1), ebm.init_buffer(jax.random.key(2), 256, (2,), BOUNDS))
    step = ebm.make_step(MODEL.apply, tx, langevin_config=LANGEVIN, alpha=0.01, init_bounds=BOUNDS,
                         energy_bound=1e3)
    return step, state


def _data():
    return np.asarray(toy2d.sample("mixture4", jax.random.key(3), 512)) - 1.0  # centred on the origin


def _batches():
    return BatchIterator({"x": _data()}, 32, seed=4)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.fixture(scope="module")
def trained():
    step, state = _setup(100)
    init_params = jax.tree.map(np.array, state.params)
    res = train.fit(step, state, _batches(), 100, fuse_steps=10, log_every=50, progress=False)
    return init_params, res


def test_cd_lowers_the_energy_of_data_relative_to_noise(trained):
    init_params, res = trained
    data = jnp.asarray(_data())
    noise = jax.random.uniform(jax.random.key(9), (512, 2), minval=BOUNDS[0], maxval=BOUNDS[1])

    def gap(p):  # mean energy of noise minus that of data: > 0 when the data sit lower
        return float(jnp.mean(MODEL.apply(p, noise)) - jnp.mean(MODEL.apply(p, data)))

    print("energy gap noise - data: init", gap(init_params), "trained", gap(res.state.params))
    assert gap(res.state.params) > 2.0 + abs(gap(init_params))
    assert {"loss", "cd", "reg", "e_real", "e_fake", "energy_magnitude", "grad_norm"} <= set(res.history[-1])
    buffer = np.asarray(res.state.extra["buffer"])
    assert buffer.shape == (256, 2) and buffer.min() >= BOUNDS[0] and buffer.max() <= BOUNDS[1]


def test_a_resumed_run_continues_the_same_chains_bit_exactly(tmp_path):
    # Unfused, one step function for all three runs: `train.fit` jits the same function, compiled once.
    kw = dict(log_every=10, progress=False)
    step, state = _setup(20)
    ref = train.fit(step, state, _batches(), 20, **kw)
    divergence.fit(step, _setup(20)[1], _batches(), 10, wd=Workdir(tmp_path), ckpt_every=10, **kw)
    resumed = divergence.fit(step, _setup(20)[1], _batches(), 20, wd=Workdir(tmp_path), ckpt_every=10, **kw)
    for part in ("params", "opt_state", "extra", "key", "step"):
        assert_trees_equal(getattr(ref.state, part), getattr(resumed.state, part))
    assert [r["step"] for r in resumed.history] == [10, 20]


class Growing:
    """E(x) = c + |x|^2 / 2, and an 'optimizer' that adds 50 to c every step: |E| passes 120 at step 4."""

    @staticmethod
    def energy(params, x):
        return params["c"] + 0.5 * jnp.sum(x ** 2, axis=-1)

    tx = optax.GradientTransformation(lambda p: optax.EmptyState(),
                                      lambda g, s, p=None: (jax.tree.map(lambda x: jnp.full_like(x, 50.0), g), s))


def _growing_fit(wd, restarts, c0=0.0):
    state = ebm.create_state({"c": jnp.float32(c0)}, Growing.tx, jax.random.key(1),
                             ebm.init_buffer(jax.random.key(2), 64, (2,), BOUNDS))
    step = ebm.make_step(Growing.energy, Growing.tx, langevin_config=LANGEVIN, alpha=0.0, init_bounds=BOUNDS,
                         energy_bound=120.0)
    return divergence.fit(step, state, _batches(), 8, wd=wd, energy_bound=120.0, restarts=restarts, log_every=1,
                          ckpt_every=2, progress=False)


def test_divergence_stops_naming_the_step_and_the_last_good_checkpoint(tmp_path):
    with pytest.raises(ebm.DivergenceError, match=r"diverged at step 4 \(the energies left the bound") as e:
        _growing_fit(Workdir(tmp_path), restarts=0)
    assert "last good checkpoint is step 2" in str(e.value) and "restarts=0" in str(e.value)
    with pytest.raises(ebm.DivergenceError, match=r"step 1 \(a metric became NaN/Inf.*no checkpoint"):
        _growing_fit(None, restarts=0, c0=float("nan"))


def test_a_restart_resumes_from_the_last_good_checkpoint_with_a_new_seed(tmp_path):
    wd = Workdir(tmp_path)
    with pytest.raises(ebm.DivergenceError, match=r"train_restart1: EBM training diverged at step 4"):
        _growing_fit(wd, restarts=1)  # c grows again after the restart: it diverges at the same step
    first = [r for r in wd.read_log("train") if r["step"] <= 2]
    again = [r for r in wd.read_log("train_restart1")]
    assert [r["step"] for r in again] == [3] and first[-1]["step"] == 2
    assert again[0]["e_fake"] != wd.read_log("train")[2]["e_fake"]  # other chains: a new seed
