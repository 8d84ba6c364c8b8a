"""The shipped generator loads, has the documented tree, and reproduces its recorded classifier FD.

The recorded FD was measured on exactly these samples (the latents of `quality_latents`, const noise, psi 1)
with the same metric seed, so no sampling noise separates the two numbers: only float round-off in G and in
the classifier (a classifier retrained on another machine from the same seed and data). 5% covers that; a
wrong tree, wrong weights or a changed generator move the FD by far more (the untrained one is many times
higher)."""

import numpy as np
import pytest

from jgen.gan import pretrained, stylegan2 as sg, training


def test_unknown_name_lists_what_is_shipped():
    with pytest.raises(FileNotFoundError, match="available"):
        pretrained.load("no_such_generator")


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
