"""The optimizer builder: schedules hit their end points, the chain matches hand-built optax, bad keys name themselves."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgen import optim


def _run(tx, steps=5):
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    state = tx.init(params)
    for i in range(steps):
        grads = {"w": params["w"] * (i + 1.0)}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return np.asarray(params["w"])


@pytest.mark.parametrize("schedule,end", [("constant", 1.0), ("cosine", 0.1), ("linear", 0.1), ("exponential", 0.1)])
def test_schedule_end_points_and_warmup(schedule, end):
    cfg = optim.optim_config(learning_rate=2.0, schedule=schedule, warmup_steps=10, final_lr_fraction=0.1,
                             decay_rate=0.1)
    lr = optim.make_schedule(cfg, 110)
    assert float(lr(0)) == 0.0
    assert float(lr(5)) == pytest.approx(1.0)
    assert float(lr(10)) == pytest.approx(2.0)
    assert float(lr(110)) == pytest.approx(2.0 * end, rel=1e-5)


def test_matches_hand_built_chain():
    cfg = optim.optim_config(learning_rate=1e-2, schedule="cosine", final_lr_fraction=0.05, clip_grad_norm=1.0)
    ours = _run(optim.make_optimizer(cfg, 5))
    ref = _run(optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(1e-2, 5, 0.05))))
    np.testing.assert_array_equal(ours, ref)
    cfg = optim.optim_config(name="adamw", learning_rate=1e-2, weight_decay=0.3)
    np.testing.assert_array_equal(_run(optim.make_optimizer(cfg, 5)), _run(optax.adamw(1e-2, weight_decay=0.3)))


def test_ema_decay_and_errors():
    assert optim.ema_decay(optim.optim_config()) is None
    assert optim.ema_decay(optim.optim_config(ema_decay=0.99)) == 0.99
    with pytest.raises(ValueError, match=r"config.optim.name='adan'.*one of adam"):
        optim.make_optimizer(optim.optim_config(name="adan"), 10)
    with pytest.raises(ValueError, match=r"config.optim.weight_decay"):
        optim.make_optimizer(optim.optim_config(weight_decay=0.1), 10)
    with pytest.raises(ValueError, match=r"config.optim.learning_rate"):
        optim.make_optimizer(optim.optim_config(learning_rate=-1.0), 10)
