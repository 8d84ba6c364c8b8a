"""The shipped generator loads, has the documented tree, and reproduces its recorded classifier FD.

The recorded FD was measured on exactly these samples (the latents of `quality_latents`, const noise, psi 1)
with the same metric seed, so no sampling noise separates the two numbers: only float round-off in G and in
the classifier (a classifier retrained on another machine from the same seed and data). 5% covers that; a
wrong tree, wrong weights or a changed generator move the FD by far more (the untrained one is many times
higher)."""

import jax
import numpy as np
import pytest

from jgen.gan import pretrained, stylegan2 as sg, training


def test_unknown_name_lists_what_is_shipped():
    with pytest.raises(FileNotFoundError, match="available"):
        pretrained.load("no_such_generator")


def test_save_then_load_round_trips_params_w_avg_and_record(tmp_path):
    c = sg.stylegan2_config(resolution=8, img_channels=1, z_dim=4, w_dim=4, mapping_layers=1, channel_base=32,
                            channel_max=4)
    params = sg.init_params(c, jax.random.PRNGKey(0))
    pretrained.save(tmp_path, "tiny", c, params, np.arange(4.0), quality={"num_samples": 20, "sample_seed": 3})
    assert pretrained.available(tmp_path) == ["tiny"]
    g = pretrained.load("tiny", tmp_path)
    assert g.config == c and g.meta["quality"]["sample_seed"] == 3
    np.testing.assert_array_equal(g.w_avg, np.arange(4.0))
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(g.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert pretrained.quality_latents(g.meta).shape == (20, 4)


@pytest.mark.skipif(pretrained.DEFAULT not in pretrained.available(), reason="no shipped generator")
def test_shipped_generator_reproduces_its_recorded_fd():
    g = pretrained.load()
    meta, q = g.meta, g.meta["quality"]
    assert g.w_avg.shape == (g.config.w_dim,)
    assert sg.num_params(g.params) == sg.num_params(sg.param_shapes(g.config))
    assert meta["split"]["by"] == "person" and meta["dataset"] == "olivetti_faces"
    got = training.sample_metrics(g.config, g.params, meta["dataset"], num_samples=q["num_samples"],
                                  seed=q["sample_seed"], keys=("fd_classifier",))
    np.testing.assert_allclose(got["fd_classifier"], q["fd_classifier"], rtol=0.05)
    np.testing.assert_allclose(got["fd_classifier_floor"], q["fd_classifier_floor"], rtol=0.05)
