"""jgen.sharding.split_cpu presents the CPU as N devices only before JAX's backend starts, and
shard_if_divisible splits evaluation chunks over the data mesh only when they divide evenly, and
experiment.batch_mesh refuses a batch size the device count does not divide."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jgen import sharding


def test_split_cpu_before_and_after_the_backend_starts():
    script = textwrap.dedent("""
        import json
        import numpy as np
        from jgen import sharding
        out = {"before": sharding.split_cpu(3)}
        import jax
        out["devices"] = jax.device_count()
        out["after"] = sharding.split_cpu(5)  # the backend is running: nothing changes
        mesh = sharding.data_mesh()
        out["even"] = len(sharding.shard_if_divisible(np.zeros((6, 2), np.float32), mesh).sharding.device_set)
        odd = sharding.shard_if_divisible(np.zeros((5, 2), np.float32), mesh)
        out["odd_is_untouched"] = isinstance(odd, np.ndarray)
        out["no_mesh"] = isinstance(sharding.shard_if_divisible(np.zeros((6, 2)), None), np.ndarray)
        from jgen import experiment
        config = {"batch_size": 6, "inner": {"batch_size": 4}}
        out["batch_mesh"] = experiment.batch_mesh(config, ("batch_size",)).devices.size
        try:
            experiment.batch_mesh(config, ("batch_size", "inner.batch_size"))
        except experiment.ConfigError as e:
            out["refused"] = str(e)
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    refused = out.pop("refused")
    assert out == {"before": 3, "devices": 3, "after": 3, "even": 3, "odd_is_untouched": True, "no_mesh": True,
                   "batch_mesh": 3}
    assert "config.inner.batch_size=4 cannot be split over the 3 devices" in refused
    assert "config.batch_size=6" not in refused


def test_batch_mesh_is_none_on_one_device():
    import jax

    from jgen import experiment

    if jax.device_count() == 1:
        assert experiment.batch_mesh({"batch_size": 3}, ("batch_size",)) is None


def test_split_cpu_refuses_a_negative_count():
    with pytest.raises(ValueError, match="num_devices=-1"):
        sharding.split_cpu(-1)
