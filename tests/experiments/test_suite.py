"""The suite runs every registered experiment, survives a failing one, and reports each in report.html."""

import ast
import importlib
import json
import sys
import types

import ml_collections
import pytest

from experiments import suite


def fake_module(name, fail=False, requires=(), ran=None):
    mod = types.ModuleType(f"experiments.{name}")
    mod.__doc__ = f"Exercise {name}.\n\nWhat {name} shows."
    mod.REQUIRES = tuple(requires)

    def get_config(preset):
        return ml_collections.ConfigDict({"seed": 0})

    def run(config, wd):
        if ran is not None:
            ran.append(name)
        if fail:
            raise RuntimeError(f"{name} broke on purpose")
        # A dependent reads what it requires through the one sibling method.
        return {f"{name}_metric": 1.25 + sum(wd.sibling(r).metrics()[f"{r}_metric"] for r in requires)}

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


def test_registered_requirements_are_registered_and_run_first():
    requires = {}
    for name in suite.REGISTRY:  # read from the source: importing every experiment takes seconds
        tree = ast.parse(open(importlib.util.find_spec(f"experiments.{name}").origin).read())
        requires[name] = next((ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                               and [getattr(t, "id", None) for t in node.targets] == ["REQUIRES"]), ())
    order = suite.run_order(list(suite.REGISTRY), requires)
    for name, reqs in requires.items():
        assert all(order.index(r) < order.index(name) for r in reqs), (name, reqs)
    assert set(requires["likelihood_table"]) == {"flows_mnist7", "ar_mnist7", "vae_mnist", "ddpm_mnist"}
    assert set(requires["compare_ddpm_vae"]) == {"ddpm_mnist", "vae_mnist"}


def test_run_order_is_a_stable_topological_sort_and_refuses_cycles_and_unknown_names():
    names = list(suite.REGISTRY[:4])
    a, b, c, d = names
    assert suite.run_order(names, {a: (c,), b: ()}) == [c, a, b, d]
    with pytest.raises(ValueError, match=f"cycle: {a} -> {b} -> {a}"):
        suite.run_order(names, {a: (b,), b: (a,)})
    with pytest.raises(ValueError, match="not_an_experiment.*not registered"):
        suite.run_order(names, {a: ("not_an_experiment",)})


def test_only_runs_missing_requirements_first_and_reuses_finished_ones(tmp_path, monkeypatch, capsys):
    base, top = suite.REGISTRY[0], suite.REGISTRY[-1]
    ran = []
    monkeypatch.setitem(sys.modules, f"experiments.{base}", fake_module(base, ran=ran))
    monkeypatch.setitem(sys.modules, f"experiments.{top}", fake_module(top, requires=(base,), ran=ran))
    _, sections = suite.run_suite(tmp_path, "quick", only=[top])
    assert ran == [base, top] and [s["status"] for s in sections] == ["ok", "ok"]
    assert f"{top} requires {base}" in capsys.readouterr().out
    assert json.loads((tmp_path / top / "metrics.json").read_text())[f"{top}_metric"] == 2.5
    _, sections = suite.run_suite(tmp_path, "quick", only=[top])  # base finished: not run again
    assert ran == [base, top, top] and [s["name"] for s in sections] == [top]
    assert json.loads((tmp_path / top / "run.json").read_text())["runs"] == 2
