"""stylegan_train on a tiny generator: in a few steps on the Olivetti training people the discriminator learns
to tell real faces from generated ones (mean logit on reals above fakes), every figure and metric is
written, and the exported generator loads back with the quality it was recorded with. (A few dozen steps do
not make faces: the untrained generator's grey images can even score a lower FD, which the run's
`trained_beats_untrained` check reports.)"""

import json
import os

import numpy as np
import pytest

from experiments import stylegan_train as st
from jgen import experiment
from jgen.metrics import classifier
from tests.experiments.helpers import tiny_classifier

pytestmark = pytest.mark.skipif(not os.environ.get("JGEN_DATA_DIR"), reason="needs JGEN_DATA_DIR (olivetti)")

TINY = {"model.z_dim": 8, "model.w_dim": 8, "model.mapping_layers": 1, "model.channel_base": 64,
        "model.channel_max": 4, "gan.batch_size": 4, "train_steps": 12, "log_every": 4, "ckpt_every": 12,
        "num_quality_samples": 20, "num_grid": 20}  # one batch shape: generate compiles once


@pytest.fixture(scope="module", autouse=True)
def olivetti_classifier():
    """A three-epoch narrow Olivetti classifier in place of the default one."""
    clf = tiny_classifier("olivetti_faces", epochs=3)
    patch = pytest.MonkeyPatch()
    patch.setattr(classifier, "get_classifier", lambda dataset, **kw: {"olivetti_faces": clf}[dataset])
    yield clf
    patch.undo()


def test_tiny_run_separates_real_from_fake_and_exports_the_generator(tmp_path):
    export = tmp_path / "export"
    m = experiment.run_experiment(st.get_config, st.run, tmp_path / "run", "quick",
                                  overrides={**TINY, "export_dir": str(export), "export_name": "tiny"})
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "d_real" in r]
    assert len(rows) == 3 and np.mean([r["d_real"] - r["d_fake"] for r in rows[1:]]) > 0, rows
    assert m["fd_classifier_floor"] < min(m["fd_classifier"], m["fd_classifier_init"])
    assert m["num_params_g"] > 0 and m["num_params_d"] > 0 and np.isfinite(m["final_loss_d"])
    checks = json.loads((tmp_path / "run" / "checks.json").read_text())
    assert set(checks) == {"trained_beats_untrained"}
    figures = {p.stem for p in (tmp_path / "run" / "figures").iterdir()}
    assert {"losses", "samples_psi1", "samples_psi07", "real_faces", "style_mixing"} <= figures

    from jgen.gan import pretrained

    g = pretrained.load("tiny", folder=export)
    assert g.config.z_dim == 8 and g.meta["train_steps"] == 12 and np.isfinite(g.meta["quality"]["fd_classifier"])
    assert g.meta["quality"]["fd_classifier"] == pytest.approx(m["fd_classifier"])
