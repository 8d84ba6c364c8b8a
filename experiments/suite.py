"""Runs every registered experiment and writes one self-contained HTML report.

    python -m experiments.suite --preset=quick --workdir=runs/quick [--only=dino_ddpm,kde_2d]

Each experiment writes into `<workdir>/<name>/`; a failure in one is reported (in the log and in the report)
and the rest still run. Experiments run after those they read (their module-level `REQUIRES`), and `--only`
adds the required experiments that have no finished run under `<workdir>` yet. Re-running resumes each
experiment from its checkpoints. The report is `<workdir>/report.html`, with figures inlined, so it opens
offline. Library logging stays at warnings unless `--verbose`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Mapping, Sequence

from absl import app, flags

from jgen import experiment, report

# The experiments of the suite, in the report's order; each one's REQUIRES decides what runs before it.
REGISTRY = (
    "dino_ddpm",
    "mcmc_quartic",
    "kde_2d",
    "ppca_faces",
    "mle_models",
    "cpt_letters",
    "flows_toy2d",
    "flows_mnist7",
    "lstm_letters",
    "ar_mnist7",
    "vae_mnist",
    "ddpm_mnist",
    "compare_ddpm_vae",
    "likelihood_table",
    "ebm_usps",
    "vae_stl10",
    "stylegan_train",
    "stylegan_inversion",
)


def describe(module) -> tuple[str, str]:
    """(title, description) from a module docstring's first line and the rest."""
    doc = inspect.getdoc(module) or module.__name__
    title, _, rest = doc.partition("\n")
    return title.strip().rstrip("."), rest.strip()


def requirements(module) -> tuple[str, ...]:
    """The experiments whose results `module` reads (its module-level `REQUIRES`, default none)."""
    requires = getattr(module, "REQUIRES", ())
    if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
        raise TypeError(f"{module.__name__}.REQUIRES must be a tuple of experiment names, got {requires!r}")
    return tuple(requires)


def run_order(names: Sequence[str], requires: Mapping[str, Sequence[str]]) -> list[str]:
    """`names` sorted so that every experiment comes after those it requires (a stable topological sort).

    Raises:
      ValueError: a requirement is not a registered experiment, or the requirements form a cycle.
    """
    for name in names:
        unknown = [r for r in requires.get(name, ()) if r not in REGISTRY]
        if unknown:
            raise ValueError(f"experiments.{name}.REQUIRES names {unknown}, which are not registered "
                             f"experiments; expected names from: {', '.join(REGISTRY)}")
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise ValueError(f"the experiments' REQUIRES form a cycle: {' -> '.join(cycle)}; remove one of them")
        visiting.append(name)
        for r in requires.get(name, ()):
            if r in names:
                visit(r)
        visiting.pop()
        order.append(name)

    for name in names:
        visit(name)
    return order


def _finished(workdir: Path) -> bool:
    info = {}
    if (workdir / "run.json").exists():
        info = json.loads((workdir / "run.json").read_text())
    return (workdir / "metrics.json").exists() and info.get("status", "ok") == "ok"


def run_suite(root: str | Path, preset: str = "quick", only: Sequence[str] | None = None,
              seed: int | None = None, verbose: bool = False) -> tuple[Path, list[dict]]:
    """Runs the registered experiments (or `only` those, with what they require) into `root/<name>` and
    builds `root/report.html`.

    Returns:
      (path of report.html, the report's sections with their status).
    """
    names = list(only) if only else list(REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown experiments {unknown}; registered: {', '.join(REGISTRY)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    modules, requires, import_errors = {}, {}, {}
    pending = list(names)
    while pending:  # import the named experiments and, with --only, the ones they require
        name = pending.pop(0)
        if name in modules or name in import_errors:
            continue
        try:
            modules[name] = importlib.import_module(f"experiments.{name}")
            requires[name] = requirements(modules[name])
        except Exception as e:  # reported as that experiment's failure below
            import_errors[name] = e
            continue
        for r in requires[name]:
            if r not in names and r in REGISTRY and not _finished(root / r):
                print(f"[suite] {name} requires {r}, which has no finished run in {root / r}: running it first",
                      flush=True)
                names.append(r)
                pending.append(r)
    sections = []
    for name in run_order(names, requires):
        start = time.time()
        section = {"name": name, "title": name, "description": "", "workdir": root / name}
        print(f"[suite] {name} ...", flush=True)
        try:
            if name in import_errors:
                raise import_errors[name]
            module = modules[name]
            section["title"], section["description"] = describe(module)
            experiment.run_experiment(module.get_config, module.run, root / name, preset, seed=seed,
                                      validate_config=getattr(module, "validate_config", None), name=name)
            section["status"] = "ok"
        except Exception as e:  # one failing experiment must not stop the others
            section["status"] = "failed"
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / "error.txt").write_text("".join(traceback.format_exception(e)))
            if verbose:
                traceback.print_exception(e, file=sys.stderr)
            print(f"[suite] {name} FAILED: {experiment.format_error(e, name, root / name)}", file=sys.stderr,
                  flush=True)
        section["seconds_last_run"] = time.time() - start
        # The report shows the experiment's own training time: all its runs in this workdir, resumes included.
        info = json.loads((root / name / "run.json").read_text()) if (root / name / "run.json").exists() else {}
        section["seconds"] = info.get("seconds_total", section["seconds_last_run"])
        print(f"[suite] {name} {section['status']} in {section['seconds_last_run']:.0f} s", flush=True)
        sections.append(section)
    sections.sort(key=lambda s: REGISTRY.index(s["name"]))
    path = report.build_report(root, sections, title=f"jgen experiment suite ({preset} preset)")
    summary = {s["name"]: {"status": s["status"], "seconds": round(s["seconds"], 1),
                           "seconds_last_run": round(s["seconds_last_run"], 1)} for s in sections}
    (root / "suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    return path, sections


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    experiment.quiet_library_logging(FLAGS.verbose)
    from jgen.sharding import split_cpu

    split_cpu(FLAGS.cpu_devices)  # as each experiment's own command line does
    only = [n for n in FLAGS.only.split(",") if n] if FLAGS.only else None
    path, sections = run_suite(FLAGS.workdir, FLAGS.preset, only, FLAGS.seed, verbose=FLAGS.verbose)
    failed = [s["name"] for s in sections if s["status"] != "ok"]
    print(f"[suite] report: {path}" + (f"; failed: {', '.join(failed)}" if failed else "; all experiments ok"))
    if failed:
        sys.exit(1)


FLAGS = flags.FLAGS
if __name__ == "__main__":
    flags.DEFINE_string("workdir", None, "Root directory: one sub-directory per experiment, plus report.html.")
    flags.DEFINE_enum("preset", "quick", list(experiment.PRESETS), "quick (CPU, minutes) or full (the exercises' settings).")
    flags.DEFINE_string("only", "", "Comma-separated experiment names to run (default: all registered).")
    flags.DEFINE_integer("seed", None, "Seed for every experiment (default: each config's own).")
    flags.DEFINE_bool("verbose", False, "Print tracebacks of failed experiments and library INFO logs.")
    flags.DEFINE_integer("cpu_devices", 0, "XLA devices the host CPU is split into (0: one per core), as in each "
                         "experiment's --cpu_devices.", lower_bound=0)
    flags.mark_flag_as_required("workdir")
    app.run(main)
