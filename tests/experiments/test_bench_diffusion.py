"""bench_diffusion at tiny sizes: both sides run, the ratio keys are consistent, the conv probe's twins agree."""

import pytest

from experiments import bench_diffusion
from jgen import experiment

TINY = {"unet.channels": 4, "unet.channel_mults": (1,), "unet.num_res_blocks": 1, "unet.attention_resolutions": (),
        "unet.num_groups": 2, "unet.dropout": 0.0, "batch_size": 4, "train_steps": 1, "sample_batch": 2,
        "ddpm_steps": 4, "ddim_steps": 2, "repeats": 1, "torch_threads": (1,)}


def test_tiny_bench_writes_the_ratios(tmp_path):
    pytest.importorskip("torch")
    m = experiment.run_experiment(bench_diffusion.get_config, bench_diffusion.run, tmp_path, "quick",
                                  overrides=TINY)
    for name in ("train", "sample", "ddim2", "conv3x3_train", "conv3x3_forward"):
        assert m[f"{name}_speedup_vs_torch"] == pytest.approx(
            m[f"{name}_images_per_s_jgen"] / m[f"{name}_images_per_s_torch"])
    # DDIM with 2 steps does 500x fewer network calls than a 1000-step DDPM chain
    assert m["ddim2_vs_ddpm1000_speedup"] > 20
    assert "quoted per 1000-step chain" in (tmp_path / "note.txt").read_text()


def test_the_conv_probe_twins_compute_the_same_convolution():
    torch = pytest.importorskip("torch")
    import numpy as np

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 6, 5, 3)).astype(np.float32), rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    ours = np.asarray(bench_diffusion.conv3x3(x, w))
    with torch.no_grad():
        theirs = bench_diffusion.torch_conv3x3(w)(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    assert ours.shape == (2, 6, 5, 4)
    np.testing.assert_allclose(ours, theirs.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_ddim_steps_beyond_T_are_refused(tmp_path):
    with pytest.raises(experiment.ConfigError, match="ddim_steps=2000"):
        experiment.run_experiment(bench_diffusion.get_config, bench_diffusion.run, tmp_path, "quick",
                                  overrides={"ddim_steps": 2000, "torch": False})
