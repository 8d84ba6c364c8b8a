"""Runs every registered experiment and writes one self-contained HTML report.

    python -m experiments.suite --preset=quick --workdir=runs/quick [--only=dino_ddpm,kde_2d]

Each experiment writes into `<workdir>/<name>/`; a failure in one is reported (in the log and in the report)
and the rest still run. Re-running resumes each experiment from its checkpoints. The report is
`<workdir>/report.html`, with figures inlined, so it opens offline.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Sequence

from absl import app, flags

from jgen import experiment, report

# In run order: likelihood_table reads the metrics of flows_mnist7 and ar_mnist7, lstm_letters those of cpt_letters.
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
    "likelihood_table",
)


def describe(module) -> tuple[str, str]:
    """(title, description) from a module docstring's first line and the rest."""
    doc = inspect.getdoc(module) or module.__name__
    title, _, rest = doc.partition("\n")
    return title.strip().rstrip("."), rest.strip()


def run_suite(root: str | Path, preset: str = "quick", only: Sequence[str] | None = None,
              seed: int | None = None) -> tuple[Path, list[dict]]:
    """Runs the registered experiments (or `only` those) into `root/<name>` and builds `root/report.html`.

    Returns:
      (path of report.html, the report's sections with their status).
    """
    names = list(only) if only else list(REGISTRY)
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        raise ValueError(f"unknown experiments {unknown}; registered: {', '.join(REGISTRY)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sections = []
    for name in names:
        start = time.time()
        section = {"name": name, "title": name, "description": "", "workdir": root / name}
        print(f"[suite] {name} ...", flush=True)
        try:
            module = importlib.import_module(f"experiments.{name}")
            section["title"], section["description"] = describe(module)
            experiment.run_experiment(module.get_config, module.run, root / name, preset, seed=seed)
            section["status"] = "ok"
        except Exception as e:  # one failing experiment must not stop the others
            section["status"] = "failed"
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / "error.txt").write_text("".join(traceback.format_exception(e)))
            print(f"[suite] {name} FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        section["seconds"] = time.time() - start
        print(f"[suite] {name} {section['status']} in {section['seconds']:.0f} s", flush=True)
        sections.append(section)
    path = report.build_report(root, sections, title=f"jgen experiment suite ({preset} preset)")
    summary = {s["name"]: {"status": s["status"], "seconds": round(s["seconds"], 1)} for s in sections}
    (root / "suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    return path, sections


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    only = [n for n in FLAGS.only.split(",") if n] if FLAGS.only else None
    path, sections = run_suite(FLAGS.workdir, FLAGS.preset, only, FLAGS.seed)
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
    flags.mark_flag_as_required("workdir")
    app.run(main)
