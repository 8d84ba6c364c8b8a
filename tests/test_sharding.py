"""jgen.sharding.split_cpu presents the CPU as N devices only before JAX's backend starts, and
shard_if_divisible splits evaluation chunks over the data mesh only when they divide evenly."""

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
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"before": 3, "devices": 3, "after": 3, "even": 3, "odd_is_untouched": True, "no_mesh": True}


def test_split_cpu_refuses_a_negative_count():
    with pytest.raises(ValueError, match="num_devices=-1"):
        sharding.split_cpu(-1)
