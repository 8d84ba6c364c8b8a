"""bench_ebm at tiny sizes without PyTorch, and its PyTorch twin computing the same energies when torch is there."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import bench_ebm
from jgen import ebm, experiment

TINY = {"num_chains": 8, "langevin_steps": 3, "train_langevin_steps": 2, "buffer_size": 64, "repeats": 1,
        "train_iters": 1, "channels": (4, 8), "hidden": 8}


def test_bench_runs_without_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_ebm, "torch", None)
    m = experiment.run_experiment(bench_ebm.get_config, bench_ebm.run, tmp_path, "quick", overrides=TINY)
    assert m["torch_available"] == 0 and not [k for k in m if "torch" in k and k != "torch_available"]
    assert m["langevin_steps_per_s_jgen"] > 0 and m["train_iters_per_s_jgen"] > 0
    assert (tmp_path / "tables" / "throughput.csv").read_text().splitlines()[0] == \
        "implementation,langevin_steps_per_s,train_iters_per_s"


def test_the_torch_twin_is_the_same_network():
    torch = pytest.importorskip("torch")
    model = ebm.ConvEnergy(channels=(4, 8), hidden=8)
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    x = np.asarray(jax.random.uniform(jax.random.key(1), (5, 16, 16, 1), minval=-1, maxval=1))
    net = bench_ebm._torch_twin(params, (4, 8), 8)
    with torch.no_grad():
        e = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))[:, 0].numpy()
    np.testing.assert_allclose(e, np.asarray(model.apply(params, x)), atol=1e-5)
