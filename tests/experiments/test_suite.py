"""The suite runs every registered experiment, survives a failing one, and reports each in report.html."""

import importlib
import sys
import types

import ml_collections
import pytest

from experiments import suite


def fake_module(name, fail=False):
    mod = types.ModuleType(f"experiments.{name}")
    mod.__doc__ = f"Exercise {name}.\n\nWhat {name} shows."

    def get_config(preset):
        return ml_collections.ConfigDict({"seed": 0})

    def run(config, wd):
        if fail:
            raise RuntimeError(f"{name} broke on purpose")
        return {f"{name}_metric": 1.25}

    mod.get_config, mod.run = get_config, run
    return mod


def test_registered_modules_exist_and_keep_the_contract():
    for name in suite.REGISTRY:
        spec = importlib.util.find_spec(f"experiments.{name}")
        assert spec is not None, f"experiments/{name}.py is registered but missing"
        src = open(spec.origin).read()
        assert "def get_config(" in src and "def run(" in src and "experiment.main(" in src, name


def test_report_has_every_registered_experiment(tmp_path, monkeypatch):
    for i, name in enumerate(suite.REGISTRY):
        monkeypatch.setitem(sys.modules, f"experiments.{name}", fake_module(name, fail=(i == 1)))
    path, sections = suite.run_suite(tmp_path, "quick")
    html = path.read_text()
    statuses = {s["name"]: s["status"] for s in sections}
    assert statuses[suite.REGISTRY[1]] == "failed"
    assert sum(s == "ok" for s in statuses.values()) == len(suite.REGISTRY) - 1
    for name in suite.REGISTRY:
        assert f"Exercise {name}" in html
        assert (tmp_path / name / "metrics.json").exists() or name == suite.REGISTRY[1]
    assert "broke on purpose" in html
    assert "http://" not in html and "https://" not in html
    with pytest.raises(ValueError, match="unknown experiments"):
        suite.run_suite(tmp_path, "quick", only=["nope"])
