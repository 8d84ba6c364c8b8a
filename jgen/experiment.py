"""The contract every experiment keeps: a workdir, its files, and the command line that fills it.

An experiment module `experiments/NAME.py` defines

    def get_config(preset: str) -> ml_collections.ConfigDict   # preset is "quick" or "full"; has `seed`
    def run(config, wd: Workdir) -> dict[str, float]           # flat metrics

and ends with `if __name__ == "__main__": jgen.experiment.main(get_config, run)`. Then

    python -m experiments.NAME --workdir=DIR --preset=quick|full [--seed=N] [--config.key=value ...]

writes into DIR: `config.json`, `metrics.json` (flat numbers plus "preset"), `figures/*.png`, `log.jsonl`
(one line per logged step), `checkpoints/` (orbax), `tables/*.csv`, and `run.json` (status, seconds, devices).
Re-running the same command resumes: `jgen.train.fit` restores its checkpoints, and finished work is skipped.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["Workdir", "ConfigMismatchError", "run_experiment", "main", "flat_metrics"]

PRESETS = ("quick", "full")


class ConfigMismatchError(ValueError):
    """The workdir holds a run made with another configuration."""


def _to_jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_jsonable(v) for v in x]
    if isinstance(x, (np.generic, np.ndarray)) or type(x).__module__.startswith("jax"):
        x = np.asarray(x)
        return x.item() if x.ndim == 0 else x.tolist()
    return x


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def flat_metrics(metrics: Mapping[str, Any]) -> dict[str, float | None]:
    """Validates and converts metrics to a flat `{name: float}` dict (non-finite numbers become null)."""
    out: dict[str, float | None] = {}
    for k, v in metrics.items():
        v = _to_jsonable(v)
        if isinstance(v, bool):
            v = float(v)
        if not isinstance(v, (int, float)):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__}: {v!r:.80}")
        out[str(k)] = _finite_or_none(float(v))
    return out


class Workdir:
    """One experiment's output directory and the helpers that write into it.

    Attributes:
      path: the directory.
      config: the run's `ml_collections.ConfigDict`.
      preset: "quick" or "full".
    """

    def __init__(self, path: str | Path, config: Any = None, preset: str = "quick"):
        self.path = Path(path)
        self.config = config
        self.preset = preset
        self.path.mkdir(parents=True, exist_ok=True)

    # Figures and tables -------------------------------------------------------------------------------
    def figure_path(self, name: str) -> Path:
        """Path of `figures/<name>.png` (parent created)."""
        p = self.path / "figures" / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def save_figure(self, fig, name: str) -> Path:
        """Saves a matplotlib figure as `figures/<name>.png` and closes it."""
        import matplotlib.pyplot as plt

        p = self.figure_path(name)
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return p

    def save_table(self, name: str, rows: Sequence[Mapping[str, Any]]) -> Path:
        """Writes `tables/<name>.csv` from a list of row dicts (columns: union of keys, in first-seen order)."""
        p = self.path / "tables" / f"{name}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        columns: list[str] = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in rows:
                w.writerow({k: _to_jsonable(v) for k, v in r.items()})
        return p

    # Logs ---------------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    def log(self, step: int, name: str = "train", **scalars: Any) -> None:
        """Appends one line `{"name", "step", **scalars}` to `log.jsonl`."""
        row = {"name": name, "step": int(step)}
        row.update({k: _to_jsonable(v) for k, v in scalars.items()})
        with open(self.log_path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def read_log(self, name: str | None = None) -> list[dict]:
        """The logged rows (of one `name` when given), in file order."""
        if not self.log_path.exists():
            return []
        rows = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [r for r in rows if name is None or r.get("name") == name]

    def log_curve(self, name: str, key: str, values, max_rows: int = 100) -> None:
        """Logs a curve computed in one go (e.g. inside a `lax.scan`) as about `max_rows` evenly spaced rows.

        Rows of `name` from an earlier run are replaced, so re-running does not duplicate them.
        """
        values = np.asarray(values)
        self.truncate_log(name, -1)
        for step in range(0, len(values), max(1, len(values) // max_rows)):
            self.log(step, name, **{key: values[step]})

    def truncate_log(self, name: str, after_step: int) -> None:
        """Drops rows of `name` logged after `after_step` (they are recomputed when a run resumes)."""
        if not self.log_path.exists():
            return
        keep = [r for r in self.read_log() if r.get("name") != name or r["step"] <= after_step]
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    # Checkpoints and artifacts ------------------------------------------------------------------------
    def checkpoint_dir(self, name: str = "train") -> Path:
        """`checkpoints/<name>`, the orbax directory of one training run."""
        return (self.path / "checkpoints" / name).absolute()

    def save_arrays(self, name: str, **arrays: Any) -> Path:
        """Saves arrays to `artifacts/<name>.npz` (results a resumed run reuses instead of recomputing)."""
        p = self.path / "artifacts" / f"{name}.npz"
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp.npz")
        np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
        tmp.replace(p)
        return p

    def load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays saved under `name`, or None when there are none yet."""
        p = self.path / "artifacts" / f"{name}.npz"
        if not p.exists():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}


def _config_diff(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    diffs = []
    for k in keys:
        a, b = old.get(k, "<missing>"), new.get(k, "<missing>")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            diffs += _config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            diffs.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return diffs


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def run_experiment(get_config: Callable[[str], Any], run: Callable[[Any, Workdir], Mapping[str, Any]],
                   workdir: str | Path, preset: str = "quick", *, seed: int | None = None,
                   overrides: Mapping[str, Any] | None = None, config: Any = None) -> dict:
    """Runs one experiment into `workdir` and returns its metrics (as written to metrics.json).

    Args:
      get_config, run: the experiment module's functions.
      workdir: output directory; an existing run there is resumed when its config matches.
      preset: "quick" or "full".
      seed: overrides `config.seed` when given.
      overrides: `{"dotted.key": value}` applied to the config.
      config: a ready config (used by the command line after absl parsed `--config.*`); else built here.

    Raises:
      ValueError: unknown preset. ConfigMismatchError: the workdir holds a run with another config.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {PRESETS}")
    if config is None:
        config = get_config(preset)
        for key, value in (overrides or {}).items():
            node = config
            *parents, leaf = key.split(".")
            for p in parents:
                node = node[p]
            if leaf not in node:
                raise ValueError(f"unknown config key {key!r}; known keys: {sorted(config.keys())}")
            node[leaf] = value
    if seed is not None:
        config.seed = int(seed)
    wd = Workdir(workdir, config, preset)
    config_dict = {"preset": preset, **_to_jsonable(config.to_dict())}
    config_path = wd.path / "config.json"
    if config_path.exists():
        old = json.loads(config_path.read_text())
        diffs = _config_diff(old, config_dict)
        if diffs:
            raise ConfigMismatchError(
                f"workdir {wd.path} holds a run with another config ({'; '.join(diffs[:5])}); "
                "re-run with the same flags to resume, or choose a new --workdir")
    _write_json(config_path, config_dict)
    import jax

    info = {"status": "running", "preset": preset, "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()]}
    _write_json(wd.path / "run.json", info)
    (wd.path / "error.txt").unlink(missing_ok=True)
    start = time.time()
    try:
        metrics = flat_metrics(run(config, wd) or {})
    except BaseException as e:
        info.update(status="failed", seconds=time.time() - start, error=f"{type(e).__name__}: {e}")
        _write_json(wd.path / "run.json", info)
        (wd.path / "error.txt").write_text("".join(traceback.format_exception(e)))
        raise
    metrics["preset"] = preset
    _write_json(wd.path / "metrics.json", metrics)
    info.update(status="ok", seconds=time.time() - start)
    _write_json(wd.path / "run.json", info)
    return metrics


def _prescan(argv: Sequence[str], flag: str, default: str) -> str:
    for i, a in enumerate(argv):
        if a.startswith(f"--{flag}="):
            return a.split("=", 1)[1]
        if a == f"--{flag}" and i + 1 < len(argv):
            return argv[i + 1]
    return default


def main(get_config: Callable[[str], Any], run: Callable[[Any, Workdir], Mapping[str, Any]],
         argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: absl flags + an ml_collections config chosen by `--preset`."""
    from absl import app, flags
    from ml_collections import config_flags

    argv = list(sys.argv if argv is None else argv)
    preset = _prescan(argv, "preset", "quick")
    # An invalid preset still gets a config to define the flags with; absl's enum check then names the error.
    config = get_config(preset if preset in PRESETS else "quick")

    flags.DEFINE_string("workdir", None, "Directory for config.json, metrics.json, figures/, log.jsonl, checkpoints/.")
    flags.DEFINE_enum("preset", "quick", list(PRESETS), "quick: minutes on a laptop CPU; full: the exercise's settings.")
    flags.DEFINE_integer("seed", None, "Random seed (overrides config.seed).")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() for a multi-host job.")
    config_flags.DEFINE_config_dict("config", config, "Experiment configuration; override with --config.key=value.")
    flags.mark_flag_as_required("workdir")

    def _main(_argv):
        if len(_argv) > 1:
            raise app.UsageError(f"unexpected arguments: {_argv[1:]}")
        from jgen.sharding import maybe_initialize_distributed

        maybe_initialize_distributed(flags.FLAGS.distributed)
        metrics = run_experiment(get_config, run, flags.FLAGS.workdir, flags.FLAGS.preset,
                                 seed=flags.FLAGS.seed, config=flags.FLAGS.config)
        print(json.dumps(metrics, indent=2))

    app.run(_main, argv=argv)
