"""The experiment contract: files written, resume checks, metric validation, and the command line."""

import json
import os
import subprocess
import sys
import textwrap
import time
import types
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
    c.model = ml_collections.ConfigDict({"width": 4, "num_layers": 2})
    c.train_for = 0
    return c


def run(config, wd):
    if config.get("train_for"):  # a real orbax checkpoint, for the logging check of the command line
        import jax
        import optax

        from jgen import train

        train.fit_loss(lambda p, b, r: ((p - 1.0) ** 2, {}), 0.0, optax.sgd(0.1), train.FullBatch({}),
                       config.train_for, key=jax.random.key(0), wd=wd, ckpt_every=1, progress=False)
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
    # An unknown overrides key names the key, the experiment and the closest known keys; nothing is written.
    with pytest.raises(experiment.ConfigError, match=r"unknown config key 'model.widht'.*test_experiment.*"
                                                    r"Closest known keys: model.width"):
        experiment.run_experiment(get_config, run, tmp_path / "b", overrides={"model.widht": 3})
    with pytest.raises(experiment.ConfigError, match=r"model.width.*types"):
        experiment.run_experiment(get_config, run, tmp_path / "b", overrides={"model.width": "wide"})
    with pytest.raises(experiment.ConfigError,
                       match=r"--config.model.num_layers=0 is not valid.*expected a positive integer"):
        experiment.run_experiment(get_config, run, tmp_path / "b", overrides={"model.num_layers": 0})
    with pytest.raises(experiment.ConfigError, match=r"--config.num_layers=2,-1 is not valid"):
        experiment.check_counts(ml_collections.ConfigDict({"num_layers": (2, -1)}), "x")
    experiment.check_counts(ml_collections.ConfigDict({"optim": {"warmup_steps": 0}, "num_train": None}), "x")
    assert not (tmp_path / "b").exists()
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
    # Errors: one paragraph naming the key, the experiment and the closest keys; no traceback unless asked.
    typo = subprocess.run([sys.executable, str(module), f"--workdir={tmp_path / 'y'}", "--config.model.widht=5"],
                          capture_output=True, text=True, cwd=ROOT)
    assert typo.returncode != 0 and "Traceback" not in typo.stderr
    assert "unknown config key 'model.widht'" in typo.stderr and "Closest known keys: model.width" in typo.stderr
    assert not (tmp_path / "y").exists()
    verbose = subprocess.run([sys.executable, str(module), f"--workdir={tmp_path / 'y'}",
                              "--config.model.num_layers=-1"], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "JGEN_VERBOSE": "1"})
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr and "expected a positive integer" in verbose.stderr


def test_command_line_keeps_library_logging_quiet_unless_verbose(tmp_path):
    module = tmp_path / "tiny_fit.py"
    module.write_text(textwrap.dedent('''
        import sys
        sys.path.insert(0, %r)
        from tests.test_experiment import get_config, run
        from jgen import experiment
        if __name__ == "__main__":
            experiment.main(get_config, run)
    ''' % str(ROOT)))
    runs = {name: subprocess.run([sys.executable, str(module), f"--workdir={tmp_path / name}",
                                  "--config.train_for=2", *flags], capture_output=True, text=True, cwd=ROOT)
            for name, flags in (("quiet", []), ("verbose", ["--verbose"]))}
    assert runs["quiet"].returncode == 0 and runs["verbose"].returncode == 0, runs["quiet"].stderr[-2000:]
    assert (tmp_path / "quiet" / "checkpoints" / "train" / "2").is_dir()  # orbax did write (and could log)
    assert "orbax" in runs["verbose"].stderr.lower()  # what the check below looks for
    assert "orbax" not in runs["quiet"].stderr.lower() and "INFO" not in runs["quiet"].stderr, runs["quiet"].stderr


def test_log_curve_subsamples_and_replaces_on_rerun(tmp_path):
    wd = experiment.Workdir(tmp_path)
    for _ in range(2):  # a re-run must not duplicate the rows
        wd.log_curve("em", "loglik", np.arange(1000.0), max_rows=100)
    rows = wd.read_log("em")
    assert [r["step"] for r in rows] == list(range(0, 1000, 10))
    assert rows[3]["loglik"] == 30.0


def test_a_bad_optim_block_is_refused_before_any_work(tmp_path):
    from jgen import optim

    def with_optim(preset):
        c = get_config(preset)
        c.model.optim = optim.optim_config()
        return c

    with pytest.raises(experiment.ConfigError, match=r"in the block model.optim: .*name='adm' is not valid"):
        experiment.run_experiment(with_optim, run, tmp_path / "w", overrides={"model.optim.name": "adm"})
    assert not (tmp_path / "w").exists()


def test_validate_config_hook_runs_before_any_work(tmp_path):
    def validate(config):
        if config.n > 5:
            raise experiment.ConfigError(f"--config.n={config.n} is too large")

    with pytest.raises(experiment.ConfigError, match="too large"):
        experiment.run_experiment(get_config, run, tmp_path / "w", "full", validate_config=validate)
    assert not (tmp_path / "w").exists()


def test_workdir_that_is_a_file_or_under_a_file_is_refused_untouched(tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    for bad in (f, f / "sub"):
        with pytest.raises(experiment.WorkdirError, match="--workdir=.*results.txt"):
            experiment.run_experiment(get_config, run, bad)
    assert f.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_unwritable_workdir_is_refused(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        with pytest.raises(experiment.WorkdirError, match="not writable"):
            experiment.run_experiment(get_config, run, d)
        assert list(d.iterdir()) == []
    finally:
        d.chmod(0o755)


def test_run_json_adds_the_time_of_each_resume(tmp_path):
    def slow(config, wd):
        time.sleep(0.05)
        return {}

    experiment.run_experiment(get_config, slow, tmp_path)
    first = json.loads((tmp_path / "run.json").read_text())
    experiment.run_experiment(get_config, slow, tmp_path)
    second = json.loads((tmp_path / "run.json").read_text())
    assert first["runs"] == 1 and second["runs"] == 2
    assert first["seconds_total"] == first["seconds_last_run"] >= 0.05
    assert second["seconds_total"] == pytest.approx(first["seconds_total"] + second["seconds_last_run"])
    assert second["seconds"] == second["seconds_total"]


def test_sibling_reads_a_finished_run_and_names_the_command_otherwise(tmp_path):
    other = experiment.Workdir(tmp_path / "suite" / "other")
    wd = experiment.Workdir(tmp_path / "suite" / "reader", name="reader", preset="full")
    sib = wd.sibling("other")
    assert sib.path == (tmp_path / "suite" / "other").absolute() and not sib.done
    with pytest.raises(experiment.MissingSiblingError,
                       match=r"reader reads the results of other.*python -m experiments.other "
                             r"--workdir=.*other --preset=full"):
        sib.metrics()
    other.save_arrays("split", idx=np.arange(4))
    (other.path / "metrics.json").write_text('{"nll": 1.5, "preset": "full"}')
    (other.path / "config.json").write_text('{"preset": "full", "seed": 0}')
    assert sib.done and sib.metrics()["nll"] == 1.5 and sib.config()["seed"] == 0
    np.testing.assert_array_equal(sib.load_arrays("split")["idx"], np.arange(4))
    assert sib.load_arrays("absent") is None
    (other.path / "run.json").write_text('{"status": "failed"}')
    with pytest.raises(experiment.MissingSiblingError, match="did not finish"):
        sib.metrics()
    # Elsewhere when asked: --requires_root.
    moved = experiment.Workdir(tmp_path / "w", requires_root=tmp_path / "suite").sibling("other")
    assert moved.path == tmp_path / "suite" / "other"
    with pytest.raises(ValueError, match="not a path"):
        wd.sibling("../other")


def test_metrics_table_writes_the_numbers_it_returns(tmp_path):
    wd = experiment.Workdir(tmp_path)
    rows = [{"variant": "a", "loss": np.float32(0.5), "mmd": 2, "note": "x"}, {"variant": "b", "loss": 0.25}]
    assert wd.metrics_table("v", rows, key="variant") == {"loss_a": 0.5, "mmd_a": 2.0, "loss_b": 0.25}
    assert (tmp_path / "tables" / "v.csv").read_text().splitlines() == [
        "variant,loss,mmd,note", "a,0.5,2,x", "b,0.25,,"]
    assert wd.metrics_table("v", rows, key="variant", columns=["loss"]) == {"loss_a": 0.5, "loss_b": 0.25}


def test_curve_reads_training_then_evaluation_rows():
    result = types.SimpleNamespace(history=[{"step": 10, "loss": 2.0}, {"step": 20, "loss": 1.0}],
                                   eval_history=[{"step": 20, "val": 1.5}])
    assert experiment.curve(result, "loss") == ([10, 20], [2.0, 1.0])
    assert experiment.curve(result, "val") == ([20], [1.5])
    with pytest.raises(KeyError, match="logged: loss, val"):
        experiment.curve(result, "vall")


def test_time_compiled_times_calls_not_compilation():
    import jax
    import jax.numpy as jnp

    traces = []

    def f(x):
        traces.append(1)
        return jnp.sin(x) @ x.T

    x = jnp.ones((64, 64))
    seconds = experiment.time_compiled(f, x, repeats=3)
    assert 0 < seconds < 1.0 and len(traces) == 1
    compiled = jax.jit(f).lower(x).compile()
    assert experiment.time_compiled(compiled, x, repeats=1) > 0 and len(traces) == 1  # used as it is


@pytest.mark.parametrize("value", [0, -8])
def test_flows_toy2d_batch_size_is_refused_before_any_work(tmp_path, value):
    from experiments import flows_toy2d

    with pytest.raises(experiment.ConfigError, match=rf"--config.batch_size={value} is not valid for flows_toy2d: "
                                                     r"expected a positive integer"):
        experiment.run_experiment(flows_toy2d.get_config, flows_toy2d.run, tmp_path / "w",
                                  overrides={"batch_size": value})
    assert not (tmp_path / "w").exists()


def test_write_checks_replaces_the_file_and_the_report_reads_it(tmp_path):
    from jgen import report

    wd = experiment.Workdir(tmp_path / "exp")
    wd.write_checks({"converged": (False, "best epoch = last epoch"), "finite": (True, "all finite")})
    wd.write_checks({"converged": (True, "best epoch 40 of 50")})
    data = json.loads((tmp_path / "exp" / "checks.json").read_text())
    assert data == {"converged": {"passed": True, "detail": "best epoch 40 of 50"}}
    checks, problem = report._read_checks(tmp_path / "exp")
    assert problem is None and [(n, p) for n, p, _ in checks] == [("converged", True)]


@pytest.mark.parametrize("values, drop, tail", [([3.0, 2.5, 2.4, 2.39, 2.389], 0.001, 1),
                                                 ([3.0, 2.0, 2.1, 2.2, 2.3], 0.0, 1),
                                                 ([4, 3, 2, 1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 0.2, 2),
                                                 ([2.0], float("inf"), 1)])
def test_plateau_is_the_improvement_over_the_last_evaluations(values, drop, tail):
    assert experiment.plateau(values) == (pytest.approx(drop), tail)
