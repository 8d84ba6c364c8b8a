import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.batching import map_batches


def test_map_batches_equals_one_call_and_compiles_once():
    traces = []

    @jax.jit
    def f(x, scale):
        traces.append(x.shape)
        return {"y": x * scale, "s": jnp.sum(x, axis=1)}

    x = np.arange(23 * 3, dtype=np.float32).reshape(23, 3)
    out = map_batches(f, x, 5, 2.0)
    np.testing.assert_array_equal(out["y"], x * 2.0)
    np.testing.assert_array_equal(out["s"], x.sum(1))
    assert traces == [(5, 3)]


def test_map_batches_refuses_empty_input():
    with pytest.raises(ValueError, match="at least one row"):
        map_batches(lambda x: x, np.zeros((0, 2)), 4)
