"""Fixtures shared by experiment tests: runs that more than one test module reads."""

import os

import pytest

CPT_LETTERS_SMALL = {"throughput_batch": 1000, "throughput_repeats": 1, "smoothing_sweep": (0.1, 1.0, 3.0)}


@pytest.fixture(scope="session")
def letters_suite(tmp_path_factory):
    """A suite directory holding one small cpt_letters run, and its metrics: `(root, metrics)`.

    The CPT test checks its claims on it, and lstm_letters, run into the same directory, compares against it.
    """
    if not os.environ.get("JGEN_DATA_DIR"):
        pytest.skip("needs JGEN_DATA_DIR (binaryalphadigs)")
    from experiments import cpt_letters
    from jgen import experiment

    root = tmp_path_factory.mktemp("letters_suite")
    metrics = experiment.run_experiment(cpt_letters.get_config, cpt_letters.run, root / "cpt_letters", "quick",
                                        overrides=CPT_LETTERS_SMALL)
    return root, metrics
