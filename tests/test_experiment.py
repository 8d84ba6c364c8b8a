"""The experiment contract: files written, resume checks, metric validation, and the command line."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_collections
import numpy as np
import pytest

from jgen import experiment

ROOT = Path(__file__).resolve().parents[1]


def get_config(preset):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.n = 10 if preset == "full" else 3
    c.model = ml_collections.ConfigDict({"width": 4})
    return c


def run(config, wd):
    wd.log(1, loss=1.5)
    wd.save_table("t", [{"a": 1, "b": np.float32(2.5)}, {"a": 2, "c": "x"}])
    return {"n": config.n, "seed": config.seed, "width": config.model.width, "nan": float("nan"),
            "arr": np.float32(0.5)}


def test_run_experiment_writes_contract_files(tmp_path):
    m = experiment.run_experiment(get_config, run, tmp_path, "quick", seed=7, overrides={"model.width": 9})
    assert m == {"n": 3.0, "seed": 7.0, "width": 9.0, "nan": None, "arr": 0.5, "preset": "quick"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["preset"] == "quick" and cfg["seed"] == 7 and cfg["model"]["width"] == 9
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "ok"
    assert (tmp_path / "tables" / "t.csv").read_text().splitlines() == ["a,b,c", "1,2.5,", "2,,x"]
    assert json.loads((tmp_path / "log.jsonl").read_text()) == {"name": "train", "step": 1, "loss": 1.5}
    # Same flags again: resumes (allowed). Other flags: a clear error.
    experiment.run_experiment(get_config, run, tmp_path, "quick", seed=7, overrides={"model.width": 9})
    with pytest.raises(experiment.ConfigMismatchError, match=r"model.width: 9 -> 4"):
        experiment.run_experiment(get_config, run, tmp_path, "quick", seed=7)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'medium'"):
        experiment.run_experiment(get_config, run, tmp_path / "a", "medium")
    with pytest.raises(ValueError, match="unknown config key 'widht'"):
        experiment.run_experiment(get_config, run, tmp_path / "b", overrides={"widht": 3})
    with pytest.raises(TypeError, match="metric 'x' must be a number"):
        experiment.run_experiment(get_config, lambda c, wd: {"x": "high"}, tmp_path / "c")
    assert "must be a number" in (tmp_path / "c" / "error.txt").read_text()
    assert json.loads((tmp_path / "c" / "run.json").read_text())["status"] == "failed"


def test_workdir_artifacts_and_log_truncation(tmp_path):
    wd = experiment.Workdir(tmp_path)
    assert wd.load_arrays("x") is None
    wd.save_arrays("x", a=np.arange(3))
    np.testing.assert_array_equal(wd.load_arrays("x")["a"], np.arange(3))
    for s in (10, 20, 30):
        wd.log(s, "a", loss=s)
        wd.log(s, "b", loss=s)
    wd.truncate_log("a", 15)
    assert [r["step"] for r in wd.read_log("a")] == [10]
    assert [r["step"] for r in wd.read_log("b")] == [10, 20, 30]


def test_command_line(tmp_path):
    module = tmp_path / "tiny_exp.py"
    module.write_text(textwrap.dedent('''
        """A tiny experiment."""
        import sys
        sys.path.insert(0, %r)
        from tests.test_experiment import get_config, run
        from jgen import experiment
        if __name__ == "__main__":
            experiment.main(get_config, run)
    ''' % str(ROOT)))
    ok = subprocess.run([sys.executable, str(module), f"--workdir={tmp_path / 'w'}", "--preset=full",
                         "--seed=3", "--config.model.width=5"], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr[-2000:]
    m = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert (m["n"], m["seed"], m["width"], m["preset"]) == (10, 3, 5, "full")
    bad = subprocess.run([sys.executable, str(module), f"--workdir={tmp_path / 'x'}", "--preset=huge"],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "preset" in bad.stderr and "quick" in bad.stderr
    missing = subprocess.run([sys.executable, str(module)], capture_output=True, text=True, cwd=ROOT)
    assert missing.returncode != 0 and "workdir" in missing.stderr


def test_log_curve_subsamples_and_replaces_on_rerun(tmp_path):
    wd = experiment.Workdir(tmp_path)
    for _ in range(2):  # a re-run must not duplicate the rows
        wd.log_curve("em", "loglik", np.arange(1000.0), max_rows=100)
    rows = wd.read_log("em")
    assert [r["step"] for r in rows] == list(range(0, 1000, 10))
    assert rows[3]["loglik"] == 30.0
