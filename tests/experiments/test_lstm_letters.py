"""lstm_letters on a small budget: held-out NLL below uniform and at or below the CPT on the same letters."""

import pytest

from experiments import lstm_letters
from jgen import experiment

SMALL = {"hidden_size": 32, "num_steps": 400, "eval_every": 100, "num_samples": 16}


@pytest.fixture(scope="module")
def run(letters_suite):
    root, cpt = letters_suite
    wd = root / "lstm_letters"
    return wd, cpt, experiment.run_experiment(lstm_letters.get_config, lstm_letters.run, wd, "quick",
                                              overrides=SMALL)


def test_lstm_beats_uniform_and_the_cpt_on_the_same_test_letters(run):
    wd, cpt, m = run
    assert m["same_split_as_cpt"] == 1.0
    assert m["cpt_test_nll_nats"] == pytest.approx(cpt["test_nll_nats"])
    assert m["test_nll_nats"] < m["uniform_nll_nats"]
    # The exercise's claim: sharing statistics across contexts generalises better than a free table.
    assert m["test_nll_nats"] <= m["cpt_test_nll_nats"]
    assert m["lstm_minus_cpt_test_nll_nats"] == pytest.approx(m["test_nll_nats"] - m["cpt_test_nll_nats"])
    assert m["num_fit"] + m["num_val"] + m["num_test"] == cpt["num_train"] + cpt["num_test"]
    rows = (wd / "tables" / "test_nll.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[2].startswith("CPT (cpt_letters)")
    assert {"loss.png", "samples.png"} <= {p.name for p in (wd / "figures").iterdir()}
