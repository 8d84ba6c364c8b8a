"""The contract every experiment keeps: a workdir, its files, and the command line that fills it.

An experiment module `experiments/NAME.py` defines

    def get_config(preset: str) -> ml_collections.ConfigDict   # preset is "quick" or "full"; has `seed`
    def run(config, wd: Workdir) -> dict[str, float]           # flat metrics
    REQUIRES = ("other_experiment",)                           # optional: experiments whose results it reads
    def validate_config(config) -> None                        # optional: raise ConfigError on a bad value

and ends with `if __name__ == "__main__": jgen.experiment.main(get_config, run)`. Then

    python -m experiments.NAME --workdir=DIR --preset=quick|full [--seed=N] [--config.key=value ...]
        [--requires_root=DIR] [--verbose]

writes into DIR: `config.json`, `metrics.json` (flat numbers plus "preset"), `figures/*.png`, `log.jsonl`
(one line per logged step), `checkpoints/` (orbax), `tables/*.csv`, and `run.json` (status, devices, and
`seconds_total` over every run in this workdir with `seconds_last_run` for the latest). Re-running the same
command resumes: `jgen.train` restores its checkpoints, and finished work is skipped.

An experiment reads another's results only through `wd.sibling(name)` (a read-only view of `<root>/<name>`,
where `<root>` is the parent of DIR unless `--requires_root` says otherwise), and lists that name in
`REQUIRES`, from which `experiments.suite` orders its runs.

Configuration checks happen before any work: an unknown `--config.key` (or `overrides` key) is refused with
the closest known keys; every integer whose name says it counts something (see `COUNT_KEY`) must be
positive; every `optim` block is built once; then the module's `validate_config` runs. An error that reaches the command line is printed as one
paragraph (what is wrong, what is expected, what to do) without a traceback, which goes to `error.txt` in the
workdir instead (and to the terminal with `--verbose` or `JGEN_VERBOSE=1`). Library logging (absl, orbax)
stays at warnings unless `--verbose`.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import math
import os
import re
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np

__all__ = [
    "Workdir", "Sibling", "ExperimentError", "ConfigError", "ConfigMismatchError", "MissingSiblingError",
    "WorkdirError", "run_experiment", "main", "flat_metrics", "curve", "plateau", "time_compiled", "apply_overrides",
    "check_counts", "check_optim_blocks", "format_error", "quiet_library_logging", "PRESETS", "COUNT_KEY",
]

PRESETS = ("quick", "full")

# Integer config values whose leaf name matches this count steps, items or repetitions and must be >= 1
# (tuples of them: every entry); `None` stays allowed ("all" / "not set"). Warm-up steps may be 0.
COUNT_KEY = re.compile(r"^(steps|epochs|repeats|batch_size|num_.+|.+_(steps|epochs|every|samples|repeats|batch_size))$")
_ZERO_ALLOWED = re.compile(r"^(.+_)?warmup_steps$")


# Errors ---------------------------------------------------------------------------------------------------
class ExperimentError(Exception):
    """An error the user can fix from the command line; the message says what, what is expected, what to do."""


class ConfigError(ExperimentError, ValueError):
    """An unknown config key or an invalid config value (the message names the key)."""


class ConfigMismatchError(ConfigError):
    """The workdir holds a run made with another configuration."""


class MissingSiblingError(ExperimentError, FileNotFoundError):
    """An experiment this one reads has no finished run where it is looked for."""


class WorkdirError(ExperimentError, OSError):
    """The workdir cannot be used (it is a file, or it cannot be created or written)."""


# Plain values ---------------------------------------------------------------------------------------------
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


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


# Shared helpers of experiments ----------------------------------------------------------------------------
def curve(result: Any, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the metric `key` logged by a fit, ready for `viz.loss_curves`.

    Args:
      result: a `jgen.train.FitResult` (anything with `history` and `eval_history` lists of row dicts
        `{"step", <metric>: value}`).
      key: a training metric (`"loss"`, `"grad_norm"`, an aux entry) or an evaluation metric; the training
        rows are searched first.
    """
    for rows in (result.history, result.eval_history):
        picked = [(int(r["step"]), float(r[key])) for r in rows if key in r]
        if picked:
            return [s for s, _ in picked], [v for _, v in picked]
    known = sorted({k for rows in (result.history, result.eval_history) for r in rows for k in r} - {"step"})
    raise KeyError(f"the fit logged no metric {key!r}; it logged: {', '.join(known) or 'nothing'}")


def plateau(values: Sequence[float], fraction: float = 0.2) -> tuple[float, int]:
    """How much a validation curve (lower is better) still improved over its last `fraction` of evaluations.

    Returns `(drop, tail)`: `tail` = the last round(fraction * len(values)) evaluations (at least one), and
    `drop` = min(values before them) - min(all values), >= 0; a drop below the experiment's tolerance says
    the curve has flattened. With no evaluation before the tail, `drop` is inf (nothing to compare).
    """
    v = np.asarray(values, np.float64)
    tail = max(1, int(round(fraction * len(v))))
    return (float(np.min(v[:-tail]) - np.min(v)) if len(v) > tail else float("inf")), tail


def time_compiled(fn: Callable, *args: Any, repeats: int = 3) -> float:
    """Median wall seconds per call of `fn(*args)`, compiled first so compilation is not timed.

    `fn` is compiled with `jax.jit(fn).lower(*args).compile()` (an already compiled `jax.stages.Compiled` is
    used as it is); one untimed call follows, then `repeats` timed calls, each waiting for its results
    (`jax.block_until_ready`). Everything in `args` is a traced argument: close over static values.
    """
    import jax

    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    compiled = fn if isinstance(fn, jax.stages.Compiled) else jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


# Workdirs -------------------------------------------------------------------------------------------------
def torch_peer(enabled: bool) -> tuple[bool, str]:
    """Whether a benchmark's PyTorch twin runs, and the note to report when it does not.

    Args:
      enabled: the benchmark's `config.torch`.

    Returns:
      `(True, "")` when enabled and torch imports, else `(False, reason)` naming how to install it.
    """
    if not enabled:
        return False, "torch side disabled (config.torch=False)"
    try:
        import torch  # noqa: F401
    except ImportError:
        return False, "torch not installed: pip install torch==2.13.0 (CPU build)"
    return True, ""


def batch_mesh(config: Any, batch_keys: Sequence[str]):
    """The data mesh over every device (`jgen.sharding.data_mesh`) for an experiment that shards its batches,
    or None on one device (every number then is the single-device one).

    `batch_keys` name the config's batch sizes (dotted for nested blocks, e.g. "mnist7.batch_size"); one that
    the device count does not divide is a ConfigError naming it.
    """
    import jax

    n = jax.device_count()
    if n == 1:
        return None
    sizes = {}
    for key in batch_keys:
        value = config
        for part in key.split("."):
            value = value[part]
        sizes[key] = value
    bad = [f"config.{k}={v}" for k, v in sizes.items() if v % n]
    if bad:
        raise ConfigError(f"{', '.join(bad)} cannot be split over the {n} devices of the data mesh; choose "
                          f"multiples of {n}, or run with --cpu_devices=1 on a CPU")
    from jgen.sharding import data_mesh

    return data_mesh()


def _prepare_dir(path: Path) -> None:
    """Creates `path` (and parents) or checks that it is a writable directory; raises WorkdirError."""
    if path.exists() and not path.is_dir():
        raise WorkdirError(f"--workdir={path} is not a directory (a file of that name exists). Expected a "
                           "directory (it is created when missing); choose another --workdir. Nothing was "
                           "changed.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"--workdir={path} cannot be created ({e.strerror or e}). Expected a directory jgen "
                           "can create and write; choose a --workdir under a writable folder.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise WorkdirError(f"--workdir={path} is not writable. Expected a directory jgen can write "
                           "config.json, metrics.json and checkpoints into; fix its permissions or choose "
                           "another --workdir. Nothing was changed.")


class Sibling:
    """A read-only view of another experiment's workdir (made by `Workdir.sibling`).

    Attributes:
      name: the other experiment's name (`experiments/<name>.py`).
      path: its workdir.
    """

    def __init__(self, name: str, path: Path, reader: str, preset: str):
        self.name, self.path = name, Path(path)
        self._reader, self._preset = reader, preset

    def __repr__(self) -> str:
        return f"Sibling({self.name!r}, {str(self.path)!r})"

    def _status(self) -> str | None:
        """None when the run finished, else why its results cannot be read."""
        if not (self.path / "metrics.json").exists():
            return f"has no finished run in {self.path} (no metrics.json there)"
        info = _read_json(self.path / "run.json") or {}
        if info.get("status", "ok") != "ok":
            return f"did not finish in {self.path} (run.json says {info['status']!r}; see error.txt there)"
        return None

    @property
    def done(self) -> bool:
        """True when the sibling's run finished (its metrics can be read)."""
        return self._status() is None

    def _missing(self) -> MissingSiblingError:
        command = f"python -m experiments.{self.name} --workdir={self.path} --preset={self._preset}"
        return MissingSiblingError(
            f"{self._reader} reads the results of {self.name}, which {self._status()}. Run it first "
            f"(`{command}`, or `python -m experiments.suite --only={self._reader}`, which runs it), or pass "
            f"--requires_root=DIR where DIR/{self.name} holds a finished run.")

    def metrics(self) -> dict[str, Any]:
        """The sibling's `metrics.json`. Raises MissingSiblingError (naming the command) when it has not run."""
        if not self.done:
            raise self._missing()
        return json.loads((self.path / "metrics.json").read_text())

    def config(self) -> dict[str, Any]:
        """The sibling's `config.json` (its preset included)."""
        if not self.done:
            raise self._missing()
        return json.loads((self.path / "config.json").read_text())

    def load_arrays(self, name: str) -> dict[str, np.ndarray] | None:
        """The sibling's artifact `artifacts/<name>.npz`, or None when its finished run saved none."""
        if not self.done:
            raise self._missing()
        p = self.path / "artifacts" / f"{name}.npz"
        if not p.exists():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}


class Workdir:
    """One experiment's output directory and the helpers that write into it.

    Attributes:
      path: the directory (created when missing; a file or an unwritable path raises WorkdirError).
      config: the run's `ml_collections.ConfigDict`.
      preset: "quick" or "full".
      name: the experiment's name (default: the directory's name).
      requires_root: where `sibling(name)` looks for `<name>/` (default: the parent of `path`).
    """

    def __init__(self, path: str | Path, config: Any = None, preset: str = "quick", *, name: str | None = None,
                 requires_root: str | Path | None = None):
        self.path = Path(path)
        self.config = config
        self.preset = preset
        self.name = name or self.path.name
        self.requires_root = Path(requires_root) if requires_root is not None else self.path.absolute().parent
        _prepare_dir(self.path)

    # Other experiments' results -----------------------------------------------------------------------
    def sibling(self, name: str) -> Sibling:
        """A read-only view of experiment `name`'s workdir, `<requires_root>/<name>` (list it in REQUIRES)."""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"sibling name {name!r} must be an experiment module name, not a path")
        return Sibling(name, self.requires_root / name, reader=self.name, preset=self.preset)

    # Figures and tables -------------------------------------------------------------------------------
    def figure_path(self, name: str) -> Path:
        """Path of `figures/<name>.png` (parent created)."""
        p = self.path / "figures" / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def save_figure(self, fig, name: str) -> Path:
        """Saves a matplotlib figure as `figures/<name>.png` with `jgen.viz.save_figure` (and closes it)."""
        from jgen import viz

        return viz.save_figure(fig, self.figure_path(name))

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

    def metrics_table(self, name: str, rows: Sequence[Mapping[str, Any]], key: str,
                      columns: Sequence[str] | None = None) -> dict[str, float]:
        """Writes `tables/<name>.csv` and returns the same numbers as flat metrics `<column>_<row[key]>`.

        Args:
          name: the table's name.
          rows: one dict per row; `row[key]` names the row (e.g. the variant).
          key: the column that names rows.
          columns: the columns that become metrics (default: every numeric column but `key`).

        Returns:
          `{f"{column}_{row[key]}": value}`, to merge into the experiment's metrics.
        """
        self.save_table(name, rows)
        out = {}
        for r in rows:
            for col in (columns if columns is not None else [c for c in r if c != key]):
                v = _to_jsonable(r[col])
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{col}_{r[key]}"] = float(v)
        return out

    def write_checks(self, checks: Mapping[str, tuple[bool, str]]) -> Path:
        """Writes `checks.json`: `{name: (passed, detail)}`, the claims the run checked about itself.

        The report marks the section as needing attention when a check failed. The file is replaced on every
        run, so a resumed run never shows stale checks.
        """
        out = {str(k): {"passed": bool(passed), "detail": str(detail)} for k, (passed, detail) in checks.items()}
        p = self.path / "checks.json"
        _write_json(p, out)
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


# Configuration --------------------------------------------------------------------------------------------
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


def _is_block(x: Any) -> bool:
    return isinstance(x, (Mapping, ml_collections.ConfigDict))


def _flat_keys(config: Mapping, prefix: str = "") -> list[str]:
    """Every dotted key of a config, blocks included (`optim`, `optim.learning_rate`, ...)."""
    out = []
    for k, v in config.items():
        out.append(prefix + k)
        if _is_block(v):
            out += _flat_keys(v, f"{prefix}{k}.")
    return out


def _unknown_key(config: Mapping, key: str) -> bool:
    node: Any = config
    for part in key.split("."):
        if not _is_block(node) or part not in node:
            return True
        node = node[part]
    return False


def check_keys(config: Any, keys: Sequence[str], experiment: str, source: str = "--config.") -> None:
    """Raises ConfigError for the first of `keys` (dotted) that `config` lacks, naming the closest keys.

    Args:
      source: how the user wrote the key, for the message: "--config." on the command line, "" for
        `run_experiment(overrides=...)`.
    """
    for key in keys:
        if not _unknown_key(config, key):
            continue
        known = _flat_keys(config)
        leaves = {k.rsplit(".", 1)[-1]: k for k in known}
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        close += [leaves[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaves), n=3)
                  if leaves[m] not in close]
        written = f"--config.{key}" if source else f"overrides key {key!r}"
        raise ConfigError(
            f"unknown config key {key!r} ({written}): experiment {experiment} has no such key. Closest known "
            f"keys: {', '.join(close[:3]) or 'none'}. Expected one of: {', '.join(known)}. Fix the spelling "
            "(nested keys are dotted, e.g. optim.learning_rate).")


def apply_overrides(config: Any, overrides: Mapping[str, Any], experiment: str) -> None:
    """Sets `{"dotted.key": value}` on `config` in place (`update_from_flattened_dict`), refusing unknown keys
    and values of another type with a ConfigError naming the key."""
    check_keys(config, list(overrides), experiment, source="")
    try:
        config.update_from_flattened_dict(dict(overrides))
    except (TypeError, KeyError) as e:
        message = e.args[0] if e.args else str(e)
        raise ConfigError(f"experiment {experiment}: cannot apply the config overrides {dict(overrides)!r}: "
                          f"{message}. Pass values of the keys' own types.") from None


def check_counts(config: Any, experiment: str, prefix: str = "") -> None:
    """Refuses a count that is not a positive integer (leaf names matching `COUNT_KEY`; 0 allowed for
    warm-up steps), naming the user's key. Floats, strings and None are left to the experiment."""
    for k, v in config.items():
        key = prefix + k
        if _is_block(v):
            check_counts(v, experiment, key + ".")
            continue
        if not COUNT_KEY.match(k):
            continue
        values = v if isinstance(v, (list, tuple)) else (v,)
        low = 0 if _ZERO_ALLOWED.match(k) else 1
        for x in values:
            if isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x < low:
                expected = "a non-negative integer" if low == 0 else "a positive integer"
                shown = v if isinstance(v, (int, np.integer)) else ",".join(map(str, values))
                raise ConfigError(
                    f"--config.{key}={shown} is not valid for {experiment}: expected {expected} ({k} counts "
                    f"steps, items or repeats). Set --config.{key} to {low + 1 if low == 0 else 1} or more.")


def check_optim_blocks(config: Any, experiment: str, prefix: str = "") -> None:
    """Builds every `optim` block once (`jgen.optim.make_optimizer`), so a bad optimizer setting is refused
    before any work rather than when its model starts training."""
    for k, v in config.items():
        if not _is_block(v):
            continue
        if k == "optim":
            from jgen import optim

            try:
                optim.make_optimizer(v, 1)
            except ValueError as e:
                where = "" if not prefix else f"in the block {prefix}optim: "
                raise ConfigError(f"{experiment}: {where}{e}") from None
        else:
            check_optim_blocks(v, experiment, f"{prefix}{k}.")


# Running --------------------------------------------------------------------------------------------------
def _module_of(fn: Callable):
    return sys.modules.get(getattr(fn, "__module__", ""), None)


def experiment_name(fn: Callable) -> str:
    """`NAME` of the module `experiments/NAME.py` that defines `fn` (also when it runs as `__main__`)."""
    module = getattr(fn, "__module__", "") or ""
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec is not None else Path(sys.argv[0]).stem
    return module.rsplit(".", 1)[-1]


def run_experiment(get_config: Callable[[str], Any], run: Callable[[Any, Workdir], Mapping[str, Any]],
                   workdir: str | Path, preset: str = "quick", *, seed: int | None = None,
                   overrides: Mapping[str, Any] | None = None, config: Any = None,
                   requires_root: str | Path | None = None, validate_config: Callable[[Any], None] | None = None,
                   name: str | None = None) -> dict:
    """Runs one experiment into `workdir` and returns its metrics (as written to metrics.json).

    Everything is checked before anything is written: the preset, the override keys, counts
    (`check_counts`), every `optim` block (`check_optim_blocks`), the experiment's own `validate_config`, the
    workdir, and an earlier run's config.

    Args:
      get_config, run: the experiment module's functions.
      workdir: output directory; an existing run there is resumed when its config matches.
      preset: "quick" or "full".
      seed: overrides `config.seed` when given.
      overrides: `{"dotted.key": value}` applied to the config.
      config: a ready config (used by the command line after absl parsed `--config.*`); else built here.
      requires_root: where the experiment's siblings live (default: the parent of `workdir`).
      validate_config: extra check `validate_config(config)`; default: the module's own, if it has one.
      name: the experiment's name for messages (default: its module's name).

    Raises:
      ConfigError (unknown preset or key, invalid value), ConfigMismatchError (the workdir holds a run with
      another config), WorkdirError, and whatever the run raises (also written to `error.txt`).
    """
    name = name or experiment_name(run)
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; expected one of {PRESETS} (--preset=quick runs in "
                          "minutes on a CPU, --preset=full uses the exercise's settings)")
    if config is None:
        config = get_config(preset)
        apply_overrides(config, overrides or {}, name)
    if seed is not None:
        config.seed = int(seed)
    check_counts(config, name)
    check_optim_blocks(config, name)
    validate = validate_config or getattr(_module_of(run), "validate_config", None)
    if validate is not None:
        validate(config)
    if hasattr(config, "lock"):
        config.lock()  # a typo inside run() (config.trian_steps = ...) fails instead of adding a key
    wd = Workdir(workdir, config, preset, name=name, requires_root=requires_root)
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

    before = _read_json(wd.path / "run.json") or {}
    seconds_before = float(before.get("seconds_total", before.get("seconds", 0.0)) or 0.0)
    info = {"status": "running", "preset": preset, "jax": jax.__version__,
            "devices": [str(d) for d in jax.devices()], "runs": int(before.get("runs", 1 if before else 0)) + 1,
            "seconds_total": seconds_before}

    def finish(status: str, **extra: Any) -> None:
        elapsed = time.time() - start
        # `seconds` (= seconds_total) is what readers of older run.json files look for.
        info.update(status=status, seconds_last_run=elapsed, seconds_total=seconds_before + elapsed,
                    seconds=seconds_before + elapsed, **extra)
        _write_json(wd.path / "run.json", info)

    _write_json(wd.path / "run.json", info)
    (wd.path / "error.txt").unlink(missing_ok=True)
    start = time.time()
    try:
        metrics = flat_metrics(run(config, wd) or {})
    except BaseException as e:
        finish("failed", error=f"{type(e).__name__}: {e}")
        (wd.path / "error.txt").write_text("".join(traceback.format_exception(e)))
        raise
    metrics["preset"] = preset
    _write_json(wd.path / "metrics.json", metrics)
    finish("ok")
    return metrics


# The command line -----------------------------------------------------------------------------------------
def _expected_error(e: BaseException) -> bool:
    """True for errors a user causes and can fix (bad input, data or config), False for probable bugs."""
    import pickle

    # Modules that were never imported cannot have raised their errors (and importing jgen.data is slow).
    known = tuple(getattr(sys.modules[m], cls) for m, cls in (("jgen.data.errors", "DatasetError"),
                                                              ("jgen.train", "NonFiniteLossError"))
                  if m in sys.modules)
    return isinstance(e, (ExperimentError, pickle.UnpicklingError, ValueError, FileNotFoundError,
                          PermissionError) + known)


def format_error(e: BaseException, experiment: str, workdir: str | Path | None = None) -> str:
    """One paragraph for the terminal: the error's own message (it says what and what to do), its type, and
    where the traceback went."""
    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    message = "\n".join(line for line in message.strip().splitlines() if line.strip()) or type(e).__name__
    trace = "re-run with --verbose (or JGEN_VERBOSE=1) to print the traceback"
    if workdir is not None and (Path(workdir) / "error.txt").exists():
        trace = f"the traceback is in {Path(workdir) / 'error.txt'}; --verbose (or JGEN_VERBOSE=1) prints it"
    if _expected_error(e):
        return f"{experiment}: {message}\n({type(e).__name__}; {trace}.)"
    return (f"{experiment} failed with an unexpected {type(e).__name__}: {message}\n(This is probably a bug "
            f"in jgen or in experiments/{experiment}.py, not in your flags; {trace}.)")


def quiet_library_logging(verbose: bool = False) -> None:
    """Library logging (absl, which orbax and TFDS log through) at WARNING, or INFO when `verbose`."""
    from absl import logging as absl_logging

    level = absl_logging.INFO if verbose else absl_logging.WARNING
    absl_logging.set_verbosity(level)
    logging.getLogger("absl").setLevel(logging.INFO if verbose else logging.WARNING)


def _prescan(argv: Sequence[str], flag: str, default: str) -> str:
    for i, a in enumerate(argv):
        if a.startswith(f"--{flag}="):
            return a.split("=", 1)[1]
        if a == f"--{flag}" and i + 1 < len(argv):
            return argv[i + 1]
    return default


def wants_verbose(argv: Sequence[str]) -> bool:
    """`--verbose` (or `--verbose=true`) on the command line, or JGEN_VERBOSE=1 in the environment."""
    env = os.environ.get("JGEN_VERBOSE", "").strip().lower() in ("1", "true", "yes", "on")
    flag = None
    for a in argv:
        if a in ("--verbose", "--verbose=true", "--verbose=1"):
            flag = True
        elif a in ("--noverbose", "--verbose=false", "--verbose=0"):
            flag = False
    return env if flag is None else flag


def _config_override_keys(argv: Sequence[str]) -> list[str]:
    """The `KEY` of every `--config.KEY[=value]` (or `--noconfig.KEY`), as ml_collections' config_flags reads them."""
    return [a.split("=", 1)[0].split(".", 1)[1] for a in argv if re.match(r"^-{1,2}(no)?config\.", a)]


def _fail(e: BaseException, experiment: str, workdir: str | Path | None, verbose: bool) -> None:
    if verbose:
        traceback.print_exception(e, file=sys.stderr)
    print(format_error(e, experiment, workdir), file=sys.stderr, flush=True)
    sys.exit(1)


def main(get_config: Callable[[str], Any], run: Callable[[Any, Workdir], Mapping[str, Any]],
         argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: absl flags + an ml_collections config chosen by `--preset`."""
    from absl import app, flags
    from ml_collections import config_flags

    argv = list(sys.argv if argv is None else argv)
    name = experiment_name(run)
    verbose = wants_verbose(argv)
    quiet_library_logging(verbose)
    preset = _prescan(argv, "preset", "quick")
    try:
        # An invalid preset still gets a config to define the flags with; absl's enum check then names the error.
        config = get_config(preset if preset in PRESETS else "quick")
        # config_flags reads the overrides from argv while the flag is defined: check the keys first.
        check_keys(config, _config_override_keys(argv), name)
        config_flags.DEFINE_config_dict("config", config, "Experiment configuration; override with "
                                        "--config.key=value (nested keys dotted).", sys_argv=argv)
    except Exception as e:  # noqa: BLE001 - printed as one paragraph, like every error of a run
        _fail(e, name, None, verbose)

    flags.DEFINE_string("workdir", None, "Directory for config.json, metrics.json, figures/, log.jsonl, checkpoints/.")
    flags.DEFINE_enum("preset", "quick", list(PRESETS), "quick: minutes on a laptop CPU; full: the exercise's settings.")
    flags.DEFINE_integer("seed", None, "Random seed (overrides config.seed).")
    flags.DEFINE_string("requires_root", None, "Directory holding the workdirs of the experiments this one reads "
                        "(REQUIRES); default: the parent of --workdir.")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() for a multi-host job.")
    flags.DEFINE_integer("cpu_devices", 0, "XLA devices the host CPU is split into for experiments that shard "
                         "their batches over a data mesh (0: one per core; 1: a single device).", lower_bound=0)
    flags.DEFINE_bool("verbose", False, "Print tracebacks and library INFO logs (also JGEN_VERBOSE=1).")
    flags.mark_flag_as_required("workdir")

    def _main(_argv):
        if len(_argv) > 1:
            raise app.UsageError(f"unexpected arguments: {_argv[1:]}")
        FLAGS = flags.FLAGS
        quiet_library_logging(verbose)  # absl's own flag parsing resets the verbosity
        try:
            from jgen.sharding import maybe_initialize_distributed, split_cpu

            split_cpu(FLAGS.cpu_devices)  # before anything starts JAX's backend
            maybe_initialize_distributed(FLAGS.distributed)
            metrics = run_experiment(get_config, run, FLAGS.workdir, FLAGS.preset, seed=FLAGS.seed,
                                     config=FLAGS.config, requires_root=FLAGS.requires_root, name=name)
        except Exception as e:  # noqa: BLE001 - one paragraph on the terminal, the traceback in error.txt
            _fail(e, name, FLAGS.workdir, verbose)
        print(json.dumps(metrics, indent=2))

    app.run(_main, argv=argv)
