"""Self-contained HTML report over experiment workdirs.

``build_report(root)`` writes ``root/report.html``: a table of contents, then one
section per experiment workdir ``root/<name>/`` with its title, description, status
and duration, checks, metrics, CSV tables, figures (inlined as base64 PNG) and config.
The page needs no network and no JavaScript: CSS is inline, images are data URIs, a
figure opens full size on click (a CSS-only checkbox toggle) and the config sits in a
native ``<details>`` element, so it opens offline as one file.

A workdir (see ``jgen.experiment.Workdir``) may hold:
  config.json, metrics.json (flat {name: number} plus "preset"), figures/*.png,
  tables/*.csv, run.json ({"status": ..., "seconds_total": ..., "seconds_last_run":
  ...}; older runs write "seconds"), error.txt (written by the runner when the
  experiment failed; shown in red, the report carries on) and checks.json.

What the report reads from them:
  * Descriptions (module docstrings) are a small Markdown subset (`render_text`):
    paragraphs, ``*``/``-``/``1.`` lists, indented or fenced code, backtick code,
    ``**bold**``, and plain-text math made readable (``x_i^2``, ``sum_{i != j}``,
    ``sigma``, ``f_hat``, ``$...$``).
  * checks.json: ``{name: {"passed": bool, "detail": str}}`` (a bare bool is accepted
    too). Any experiment can declare checks this way; a failed check marks its
    section "needs attention" instead of "ok".
  * Fits: a CSV table with a boolean column ``converged`` highlights its rows that
    did not converge, and a metric ``num_failed_fits`` > 0 (or such rows) marks the
    section "needs attention: N of M fits did not converge".
  * Floors (sample-quality metrics): a metric ``<m>`` (one model) or ``<m>_<model>``
    (several models) beside ``<m>_floor`` (the same metric between real test and
    real train data at the same sample count) renders in a table
    metric | model(s) | real-data floor, with ``num_samples`` (or
    ``num_samples_<model>``, ``num_samples_floor``) as a row, and one line naming each
    metric's feature space (`FEATURE_SPACES`).
  * A metric whose value already appears in a CSV table of the section is not
    repeated in the metrics table (it is listed, folded, under it).

CLI: ``python -m jgen.report ROOT [--title TITLE]``.
"""

from __future__ import annotations

import argparse
import base64
import csv
import datetime
import html
import json
import math
import os
import re
import struct
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_report", "discover_sections", "format_value", "format_seconds", "column_format",
           "render_text", "FEATURE_SPACES"]

MAX_TABLE_ROWS = 200  # longer CSVs are cut, with a note saying how many rows were left out
METRICS_PER_COLUMN = 14  # longer metric lists are laid out in side-by-side tables
WIDE_FIGURE_PX = 1000  # figures wider than the text column get a "click for full size" hint
WIDE_TABLE_PX = 1140  # the text column: a table estimated wider gets a smaller font and its first column pinned,
_WIDE_FONT = 0.8 / 0.9  # and a note to scroll it sideways when it is still wider in that font

# Feature space of each sample-quality metric, for the one-line note under the floors table. Looked up by
# the metric's name with any "_<model>" suffix removed: first an exact key, then a key that ends the name
# (so `precision_vgg16` is in VGG16 space), then a key that starts it.
_CLASSIFIER = "penultimate features of the in-project classifier of the dataset (`jgen.metrics.classifier`)"
FEATURE_SPACES = {
    "vgg16": "VGG16 ImageNet features",
    "fd_vgg16": "VGG16 ImageNet features",
    "classifier": _CLASSIFIER,
    "fd_classifier": _CLASSIFIER,
    "kid_classifier": _CLASSIFIER,
    "kid": _CLASSIFIER,
    "precision": _CLASSIFIER,
    "recall": _CLASSIFIER,
    "density": _CLASSIFIER,
    "coverage": _CLASSIFIER,
    "class_coverage": "labels predicted by the in-project classifier of the dataset",
    "inception_score": "labels predicted by the in-project classifier of the dataset",
    "classes_present": "labels predicted by the in-project classifier of the dataset",
    "memorisation": "pixels (nearest training image, ratio test)",
    "lpips_alex": "LPIPS v0.1, AlexNet ImageNet features with linear heads",
    "lpips_vgg16": "LPIPS v0.1, VGG16 ImageNet features with linear heads",
    "mmd2": "data space (Gaussian kernel on the samples themselves)",
    "pixels": "pixels",
}

_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg-alt:#f6f8fa; --ok:#1a7f37; --bad:#b3261e;
        --warn:#9a4a00; --warn-bg:#fff4e5; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       max-width: 1200px; margin: 0 auto; padding: 24px 28px 64px; line-height: 1.5; font-size: 15px; }
h1 { font-size: 1.8em; margin: 0 0 4px; }
h2 { font-size: 1.35em; margin: 0 0 6px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h2 a { color: inherit; text-decoration: none; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
h4 { font-size: 0.95em; margin: 12px 0 4px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.meta, .sub { color: var(--muted); font-size: 0.9em; margin: 0 0 10px; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.88em; }
code { background: var(--bg-alt); padding: 0 3px; border-radius: 3px; }
pre { background: var(--bg-alt); padding: 10px 12px; overflow-x: auto; border-radius: 6px; }
pre code { background: none; padding: 0; }
.description { max-width: 900px; }
.description ul, .description ol { padding-left: 24px; }
.description li { margin: 2px 0; }
.math { font-family: "Cambria Math", "STIX Two Math", "Latin Modern Math", Georgia, serif; font-style: italic; }
sub, sup { font-size: 0.75em; line-height: 0; }
nav.toc { margin: 18px 0 28px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.9em; }
th, td { border: 1px solid var(--line); padding: 3px 9px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
         font-family: ui-monospace, Menlo, Consolas, monospace; }
tr:nth-child(even) td { background: #fbfcfd; }
.scroll { overflow: auto; max-width: 100%; max-height: 80vh; margin: 6px 0 10px; }
.scroll table { margin: 0; }
table.data thead th { position: sticky; top: 0; z-index: 2; }
table.data.wide { font-size: 0.8em; }  /* 0.8 / 0.9 of a normal table: _WIDE_FONT */
table.data.wide td:first-child, table.data.wide th:first-child { position: sticky; left: 0; z-index: 1;
         background: #fff; box-shadow: 1px 0 0 var(--line); }
table.data.wide thead th:first-child { z-index: 3; background: var(--bg-alt); }
tr.notconverged td, table.data.wide tr.notconverged td:first-child { background: #fdeceb; }
td.false { color: var(--bad); font-weight: 700; }
.tables { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
.table-block { max-width: 100%; min-width: 0; }
.metrics-grid { display: flex; flex-wrap: wrap; gap: 0 18px; align-items: flex-start; }
section.experiment { margin: 0 0 40px; padding-top: 8px; }
.badge { display: inline-block; font-size: 0.72em; font-weight: 700; padding: 1px 8px; border-radius: 10px;
         vertical-align: middle; color: #fff; letter-spacing: 0.03em; text-transform: uppercase; }
.badge.ok { background: var(--ok); }
.badge.failed { background: var(--bad); }
.badge.attention { background: var(--warn); }
.badge.unknown { background: var(--muted); }
.reason { color: var(--warn); font-size: 0.85em; }
.error { border: 1px solid var(--bad); border-left: 6px solid var(--bad); background: #fdeceb;
         color: var(--bad); padding: 8px 14px; border-radius: 6px; margin: 10px 0; }
.error pre { background: #fff6f5; color: #7d1a14; max-height: 420px; overflow: auto; }
.attention-box { border: 1px solid var(--warn); border-left: 6px solid var(--warn); background: var(--warn-bg);
         color: var(--warn); padding: 8px 14px; border-radius: 6px; margin: 10px 0; }
.attention-box ul { margin: 4px 0; padding-left: 22px; }
.note { color: var(--muted); font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff;
             display: block; }
figcaption { color: var(--muted); font-size: 0.85em; text-align: center;
             font-family: ui-monospace, Menlo, Consolas, monospace; }
input.zoom { display: none; }
input.zoom + label { cursor: zoom-in; display: block; }
input.zoom:checked + label { position: fixed; inset: 0; z-index: 100; margin: 0; padding: 20px; overflow: auto;
         background: rgba(20, 22, 25, 0.92); cursor: zoom-out; }
input.zoom:checked + label img { max-width: none; margin: 0 auto; }
details summary { cursor: pointer; color: var(--muted); margin: 8px 0; }
a.top { font-size: 0.85em; color: var(--muted); }
"""


# --------------------------------------------------------------------------- number formatting

_SIG_SMALLEST = 5  # significant digits the smallest non-zero magnitude of a column keeps
_SIG_LARGEST = 6  # ... and at most this many for the largest, unless the smallest needs them
_MAX_DECIMALS = 7
_SCI_ABOVE = 1e9


def column_format(values: Sequence[float], strip_zeros: bool = False) -> Callable[[float], str]:
    """One number format for a column of numbers: a function float -> text.

    Integral columns print as integers. Otherwise every number gets the same number of
    decimals: enough for the smallest non-zero magnitude to keep 5 significant digits,
    but no more than the largest needs for 6, and at most 7; trailing zeros that every
    number of the column shares are dropped. When that would leave the smallest number
    fewer than 3 significant digits (a range over many decades), or a number reaches
    1e9, the whole column is in scientific notation with 4 decimals.

    Args:
      values: the column's numbers (non-finite ones are ignored for the choice and
        print as nan / inf / -inf).
      strip_zeros: drop trailing zeros number by number (for a single metric, where
        there is no column to align).
    """
    finite = [float(v) for v in values if math.isfinite(v)]

    def special(v: float) -> str | None:
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return None

    if all(v.is_integer() and abs(v) < 1e15 for v in finite):
        return lambda v: special(float(v)) or str(int(v))
    mags = [abs(v) for v in finite if v != 0]
    hi, lo = max(mags), min(mags)
    e_hi, e_lo = math.floor(math.log10(hi)), math.floor(math.log10(lo))
    decimals = max(0, min(_SIG_SMALLEST - 1 - e_lo, _SIG_LARGEST - 1 - e_hi))
    if hi >= _SCI_ABOVE or decimals > _MAX_DECIMALS or e_lo + 1 + decimals < 3:
        pattern = "{:.4e}"
    else:
        while decimals > 0 and all(f"{v:.{decimals}f}".endswith("0") for v in finite):
            decimals -= 1
        pattern = f"{{:.{decimals}f}}"

    def fmt(v: float) -> str:
        v = float(v)
        text = special(v) or pattern.format(v)
        if strip_zeros and "." in text:
            mantissa, e, exponent = text.partition("e")
            text = mantissa.rstrip("0").rstrip(".") + e + exponent
        return text

    return fmt


def format_value(value: Any) -> str:
    """Formats one metric value for display (plain text, not yet escaped).

    Numbers follow `column_format` of a one-number column with trailing zeros dropped
    (integers without decimals, about 5 significant digits, scientific notation for
    tiny or huge magnitudes); booleans, strings and None print as themselves.
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return column_format([value], strip_zeros=True)(value)
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    return str(value)


def _parse_number(text: str) -> float | None:
    stripped = text.strip()
    if not stripped or stripped.lower() in ("true", "false"):
        return None
    try:
        return float(stripped)
    except ValueError:
        return None


def format_seconds(seconds: float | None) -> str:
    """Duration for humans: '0.8 s', '42.1 s', '3 min 05 s', '1 h 02 min'."""
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return "duration unknown"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _duration(sec: Mapping) -> str:
    """Total time, with the last run's part when the run was resumed."""
    total, last = sec["seconds"], sec.get("seconds_last_run")
    text = format_seconds(total)
    if isinstance(total, (int, float)) and isinstance(last, (int, float)) and total - last > 0.05:
        text += f" in all ({format_seconds(last)} in the last run, resumed)"
    return text


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(name: str, used: set[str]) -> str:
    base = "exp-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "section")
    anchor, k = base, 2
    while anchor in used:
        anchor, k = f"{base}-{k}", k + 1
    used.add(anchor)
    return anchor


# --------------------------------------------------------------------------- text (a small Markdown subset)

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eps": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ",
    "Omega": "Ω",
}
_LATEX = {**_GREEK, "sum": "∑", "prod": "∏", "int": "∫", "infty": "∞", "le": "≤", "leq": "≤", "ge": "≥",
          "geq": "≥", "neq": "≠", "ne": "≠", "approx": "≈", "sim": "∼", "cdot": "·", "times": "×",
          "pm": "±", "to": "→", "rightarrow": "→", "propto": "∝", "partial": "∂", "nabla": "∇",
          "sqrt": "√", "log": "log", "exp": "exp", "mid": "|", "in": "∈", "ell": "ℓ", "quad": " "}
_ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303"}
_LETTER = r"[A-Za-zα-ωΑ-Ω][\u0302\u0303\u0304]?"
_GREEK_RE = re.compile(r"(?<![A-Za-z0-9\\])(" + "|".join(sorted(_GREEK, key=len, reverse=True)) + r")(?![A-Za-z0-9])")
_LATEX_RE = re.compile(r"\\([A-Za-z]+)")
_ACCENT_RE = re.compile(r"(?<![A-Za-z0-9_])(" + _LETTER + r")_(hat|bar|tilde)(?![A-Za-z0-9])")
_BIG_OP_RE = re.compile(r"(?<![A-Za-z0-9_])(sum|prod)_")
_SQRT_RE = re.compile(r"(?<![A-Za-z0-9_.])sqrt(?=\()")
_SUB_RE = re.compile(r"(?<![A-Za-z0-9_])(" + _LETTER + r"|[∑∏])_(?:\{([^{}]*)\}|([A-Za-z0-9])(?![A-Za-z0-9_]))")
_SUP_RE = re.compile(r"\^(?:\{([^{}]*)\}|\(([^()]*)\)|(-?[A-Za-z0-9]+))")
_OPERATORS = (("!=", "≠"), ("&lt;=", "≤"), ("&gt;=", "≥"), ("-&gt;", "→"), ("+-", "±"))
_INLINE_RE = re.compile(r"(`+)(.+?)\1|\$([^$\n]+?)\$")
_LIST_RE = re.compile(r"^(\s*)([*-]|\d+[.)])\s+(.*)$")


def _readable_math(escaped: str) -> str:
    """Plain-text math in already-escaped text -> HTML: greek names, x_i, x^2, sum_{i != j}, f_hat."""
    s = _LATEX_RE.sub(lambda m: _LATEX.get(m.group(1), m.group(0)), escaped)
    s = _GREEK_RE.sub(lambda m: _GREEK[m.group(1)], s)
    for ascii_op, symbol in _OPERATORS:
        s = s.replace(ascii_op, symbol)
    s = _ACCENT_RE.sub(lambda m: m.group(1) + _ACCENTS[m.group(2)], s)
    s = _BIG_OP_RE.sub(lambda m: {"sum": "∑", "prod": "∏"}[m.group(1)] + "_", s)
    s = _SQRT_RE.sub("√", s)
    s = _SUB_RE.sub(lambda m: f"{m.group(1)}<sub>{m.group(2) if m.group(2) is not None else m.group(3)}</sub>", s)
    return _SUP_RE.sub(lambda m: "<sup>" + next(g for g in m.groups() if g is not None) + "</sup>", s)


def _inline(text: str) -> str:
    """One paragraph's text -> HTML: `code`, $math$, **bold**, readable plain-text math, the rest escaped."""
    out, pos = [], 0
    for m in _INLINE_RE.finditer(text):
        out.append(_plain(text[pos:m.start()]))
        if m.group(2) is not None:
            out.append(f"<code>{html.escape(m.group(2).strip(), quote=False)}</code>")
        else:
            out.append(f'<span class="math">{_readable_math(html.escape(m.group(3), quote=False))}</span>')
        pos = m.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


def _plain(text: str) -> str:
    s = html.escape(text, quote=False)
    s = re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"<strong>\1</strong>", s)
    return _readable_math(s)


def render_text(text: str) -> str:
    """A docstring-style text -> HTML, with a small Markdown subset and no external resources.

    Blocks: paragraphs (separated by blank lines; wrapped lines are joined), lists
    (items starting ``* ``, ``- `` or ``1. ``; indented lines continue an item),
    code blocks (indented by 4 spaces after a blank line, or fenced by ```).
    Inline: ``code`` in backticks, ``**bold**``, ``$...$`` as math, and plain-text math
    made readable: ``sigma`` -> σ, ``x_i`` / ``x_{k-1}`` as subscripts, ``x^2`` /
    ``2^(k-1)`` / ``x^{-1}`` as superscripts, ``sum_i`` -> ∑ᵢ, ``f_hat`` -> f̂, ``sqrt(`` -> √(, ``!=``,
    ``<=``, ``>=``, ``->``. Text inside backticks is left exactly as written.
    """
    lines = textwrap.dedent(text or "").expandtabs(4).splitlines()
    out, i, n = [], 0, len(lines)

    def blank(k: int) -> bool:
        return k >= n or not lines[k].strip()

    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("```"):
            j = i + 1
            while j < n and not lines[j].lstrip().startswith("```"):
                j += 1
            code = textwrap.dedent("\n".join(lines[i + 1:j]))
            out.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
            i = j + 1
        elif _LIST_RE.match(line):
            ordered = _LIST_RE.match(line).group(2)[0].isdigit()
            items: list[list[str]] = []
            while i < n:
                m = _LIST_RE.match(lines[i])
                if m and m.group(2)[0].isdigit() == ordered:
                    items.append([m.group(3)])
                elif not blank(i) and not m:
                    items[-1].append(lines[i].strip())  # continuation (indented or lazy)
                elif blank(i) and i + 1 < n and _LIST_RE.match(lines[i + 1]) and \
                        _LIST_RE.match(lines[i + 1]).group(2)[0].isdigit() == ordered:
                    pass  # a blank line between items of one list
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(' '.join(it))}</li>" for it in items) + f"</{tag}>")
        elif line.startswith("    "):
            j = i
            while j < n and (blank(j) or lines[j].startswith("    ")):
                j += 1
            while j > i and blank(j - 1):
                j -= 1
            code = textwrap.dedent("\n".join(lines[i:j]))
            out.append(f"<pre><code>{html.escape(code, quote=False)}</code></pre>")
            i = j
        else:
            para = []
            while i < n and not blank(i) and not lines[i].lstrip().startswith("```"):
                m = _LIST_RE.match(lines[i])
                # A bullet interrupts a paragraph, and a number when it starts a list ("1."), unless the item reads
                # like a wrapped formula ("- 1/2 sum x^2", "2. 5 = ...").
                if para and m and (not m.group(2)[0].isdigit() or m.group(2)[:-1] == "1") and \
                        re.match(r"[A-Za-z`(\[\"'*]", m.group(3)):
                    break
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "".join(out)


# --------------------------------------------------------------------------- reading workdirs


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(parsed JSON or None, problem description or None); a missing file is not a problem."""
    if not path.is_file():
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return None, f"could not read {path.name}: {e}"


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        return [row for row in csv.reader(f)]


def _looks_like_workdir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).exists() for name in ("config.json", "metrics.json", "error.txt", "figures", "tables"))


def discover_sections(root: str | os.PathLike) -> list[dict]:
    """One section dict per experiment workdir directly under ``root`` (sorted by name).

    A workdir is a sub-directory holding any of config.json, metrics.json, error.txt,
    figures/ or tables/. Status is "failed" when error.txt exists, else the status in
    run.json, else "ok"; seconds come from run.json when present.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"report root {str(root)!r} is not a directory; expected a folder of experiment workdirs.")
    sections = []
    for sub in sorted(p for p in root.iterdir() if _looks_like_workdir(p)):
        info = _run_info(sub)
        sections.append({"name": sub.name, "title": sub.name, "description": "", "workdir": sub,
                         "status": info["status"], "seconds": info["seconds"],
                         "seconds_last_run": info["seconds_last_run"]})
    return sections


def _run_info(wd: Path) -> dict:
    """status ("failed" when error.txt exists, else run.json's status, else "ok"), seconds (run.json's
    seconds_total, else its seconds) and seconds_last_run (None when not recorded)."""
    info, _ = _read_json(wd / "run.json")
    info = info if isinstance(info, Mapping) else {}

    def number(key: str) -> float | None:
        v = info.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    total = number("seconds_total")
    return {"status": "failed" if (wd / "error.txt").exists() else str(info.get("status") or "ok"),
            "seconds": total if total is not None else number("seconds"),
            "seconds_total": total, "seconds_last_run": number("seconds_last_run")}


def _read_checks(wd: Path) -> tuple[list[tuple[str, bool, str]], str | None]:
    """checks.json -> ([(name, passed, detail)], problem or None)."""
    data, problem = _read_json(wd / "checks.json")
    if problem or data is None:
        return [], problem
    expected = 'expected {"name": {"passed": true/false, "detail": "..."}}'
    if not isinstance(data, Mapping):
        return [], f"checks.json is a {type(data).__name__}; {expected}."
    checks = []
    for name, entry in data.items():
        if isinstance(entry, bool):
            checks.append((str(name), entry, ""))
        elif isinstance(entry, Mapping) and isinstance(entry.get("passed"), bool):
            checks.append((str(name), entry["passed"], str(entry.get("detail", ""))))
        else:
            return checks, f"checks.json entry {name!r} has no boolean 'passed'; {expected}."
    return checks, None


class _Table:
    """A CSV table read once: header, rows, numeric columns and which rows did not converge."""

    def __init__(self, path: Path):
        self.path, self.name, self.problem = path, path.name, None
        try:
            rows = _read_csv(path)
        except (OSError, csv.Error) as e:
            rows, self.problem = [], f"could not read {path.name}: {e}"
        self.header, self.rows = (rows[0], rows[1:]) if rows else ([], [])
        lowered = [h.strip().lower() for h in self.header]
        self.converged_col = lowered.index("converged") if "converged" in lowered else None
        self.not_converged = set()
        if self.converged_col is not None:
            for k, row in enumerate(self.rows):
                cell = row[self.converged_col].strip().lower() if self.converged_col < len(row) else ""
                if cell in ("false", "0", "0.0", "no"):
                    self.not_converged.add(k)

    def numbers(self) -> list[tuple[float, str]]:
        """(value, cell text) of every numeric cell, to find metrics the table already shows."""
        out = []
        for row in self.rows:
            for cell in row:
                v = _parse_number(cell)
                if v is not None and math.isfinite(v):
                    out.append((v, cell.strip()))
        return out


def _shown_in(value: float, numbers: list[tuple[float, str]]) -> bool:
    """Whether a table cell holds `value`, exactly or rounded to the cell's own digits (3 or more significant)."""
    for v, text in numbers:
        if abs(v - value) <= 1e-9 * max(1.0, abs(value)):
            return True
        mantissa = text.lower().partition("e")[0]
        digits = len(mantissa.lstrip("+-").replace(".", "").lstrip("0"))
        if "." in mantissa and digits >= 3:
            decimals = len(mantissa.partition(".")[2]) - int(text.lower().partition("e")[2] or 0)
            if abs(v - value) <= 0.5 * 10.0 ** -decimals * (1 + 1e-9):
                return True
    return False


# --------------------------------------------------------------------------- status


def _attention(metrics: Any, tables: list[_Table], checks: list[tuple[str, bool, str]]) -> list[str]:
    """Why a run that finished still needs a look: fits that did not converge, failed checks (HTML list items)."""
    reasons = []
    not_converged = sum(len(t.not_converged) for t in tables)
    fits = sum(len(t.rows) for t in tables if t.converged_col is not None)
    failed_fits = metrics.get("num_failed_fits") if isinstance(metrics, Mapping) else None
    failed_fits = int(failed_fits) if isinstance(failed_fits, (int, float)) and math.isfinite(failed_fits) \
        else not_converged
    if failed_fits > 0:
        where = [t.name for t in tables if t.not_converged]
        reasons.append(f"{failed_fits}{f' of {fits}' if fits >= failed_fits else ''} fit"
                       f"{'s' if failed_fits != 1 else ''} did not converge"
                       + (f" (highlighted in {', '.join(_esc(w) for w in where)})" if where else ""))
    failed_checks = [(name, detail) for name, passed, detail in checks if not passed]
    if failed_checks:
        reasons.append(f"{len(failed_checks)} of {len(checks)} check{'s' if len(checks) != 1 else ''} failed")
    return reasons


# --------------------------------------------------------------------------- rendering


def _metric_row(key: str, value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    cls = ' class="num"' if numeric else ""
    return f"<tr><th>{_esc(key)}</th><td{cls}>{_esc(format_value(value))}</td></tr>"


def _render_metric_list(items: list[tuple[str, Any]]) -> str:
    """Metrics as one table, or side-by-side tables of at most METRICS_PER_COLUMN rows when there are many."""
    columns = min(3, math.ceil(len(items) / METRICS_PER_COLUMN))
    per = math.ceil(len(items) / columns)
    tables = ['<table class="metrics"><tbody>' + "".join(_metric_row(k, v) for k, v in items[c * per:(c + 1) * per])
              + "</tbody></table>" for c in range(columns)]
    return tables[0] if columns == 1 else '<div class="metrics-grid">' + "".join(tables) + "</div>"


def _feature_space(base: str) -> str | None:
    if base in FEATURE_SPACES:
        return FEATURE_SPACES[base]
    for key in sorted(FEATURE_SPACES, key=len, reverse=True):
        if base.endswith("_" + key):
            return FEATURE_SPACES[key]
    for key in sorted(FEATURE_SPACES, key=len, reverse=True):
        if base.startswith(key + "_"):
            return FEATURE_SPACES[key]
    return None


def _floor_groups(metrics: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """{base metric: {model ("" for a single model): value}} for every `<m>_floor`, and the keys used."""
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    bases = [k[:-len("_floor")] for k in numeric if k.endswith("_floor") and k != "num_samples_floor"]
    groups: dict[str, dict[str, Any]] = {b: {} for b in bases}
    used = {b + "_floor" for b in bases}
    for key, value in numeric.items():
        if key.endswith("_floor") or key.startswith("num_samples"):
            continue
        match = max((b for b in bases if key == b or key.startswith(b + "_")), key=len, default=None)
        if match is not None:
            groups[match][key[len(match) + 1:]] = value
            used.add(key)
    return groups, used


def _render_floors(metrics: Mapping[str, Any], groups: dict[str, dict[str, Any]]) -> tuple[str, set[str]]:
    """The sample-quality table (metric | model(s) | real-data floor) and the feature-space line."""
    models: list[str] = []
    for per_model in groups.values():
        models += [m for m in per_model if m not in models]
    used = set()
    out = ['<div class="scroll"><table class="data floors"><thead><tr><th>metric</th>']
    out += [f"<th>{_esc(m or 'model')}</th>" for m in models]
    out.append("<th>real-data floor</th></tr></thead><tbody>")
    for base, per_model in groups.items():
        out.append(f"<tr><td><code>{_esc(base)}</code></td>")
        out += [f'<td class="num">{_esc(format_value(per_model[m]))}</td>' if m in per_model else "<td></td>"
                for m in models]
        out.append(f'<td class="num">{_esc(format_value(metrics[base + "_floor"]))}</td></tr>')
    counts = [metrics.get(f"num_samples_{m}" if m else "num_samples", metrics.get("num_samples")) for m in models]
    floor_count = metrics.get("num_samples_floor", metrics.get("num_samples"))
    if any(c is not None for c in counts + [floor_count]):
        used |= {k for k in metrics if k.startswith("num_samples")}
        cells = [f'<td class="num">{_esc(format_value(c))}</td>' if c is not None else "<td></td>"
                 for c in counts + [floor_count]]
        out.append("<tr><td><code>num_samples</code></td>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    spaces: dict[str, list[str]] = {}
    for base in groups:
        spaces.setdefault(_feature_space(base) or "feature space not stated", []).append(base)
    line = "; ".join(", ".join(f"<code>{_esc(b)}</code>" for b in bases) + f": {_inline(space)}"
                     for space, bases in spaces.items())
    out.append(f'<p class="sub">Feature spaces: {line}. The floor is the same metric between real test and '
               "real training data at the same sample count.</p>")
    return "".join(out), used


def _render_metrics(metrics: Any, tables: list[_Table]) -> str:
    if not isinstance(metrics, Mapping):
        return f'<p class="note">metrics.json is not a JSON object ({_esc(type(metrics).__name__)}).</p>'
    items = {k: v for k, v in metrics.items() if k != "preset"}  # the preset is in the section's sub-line
    if not items:
        return '<p class="note">No metrics recorded.</p>'
    out = []
    groups, used = _floor_groups(items)
    if groups:
        floors_html, counts_used = _render_floors(items, groups)
        out.append(floors_html)
        used |= counts_used
    shown, repeated = [], {}
    numbers = [(t.name, t.numbers()) for t in tables]
    for key, value in items.items():
        if key in used:
            continue
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            table = next((name for name, nums in numbers if _shown_in(value, nums)), None)
            if table is not None:
                repeated.setdefault(table, []).append((key, value))
                continue
        shown.append((key, value))
    if shown:
        out.append(_render_metric_list(shown))
    for table, keys in repeated.items():
        out.append(f"<details><summary>{len(keys)} more metric{'s' if len(keys) != 1 else ''} "
                   f"(their values are in {_esc(table)} below)</summary>{_render_metric_list(keys)}</details>")
    return "".join(out)


def _estimated_width(header: list[str], cells: list[list[str]]) -> float:
    """Rough rendered width in CSS px of a table at the normal font: about 8 px per monospace digit, 7.5 px per
    header letter (headers wrap after underscores, so their longest part counts), plus padding."""
    width = 0.0
    for c, name in enumerate(header):
        longest_cell = max([len(row[c]) for row in cells if c < len(row)] + [0])
        longest_word = max([len(part) + 1 for part in name.split("_")] + [0])
        width += max(8.1 * longest_cell, 7.5 * longest_word) + 19
    return width


def _render_csv(table: _Table) -> str:
    if table.problem:
        return f'<p class="note">{_esc(table.problem)}</p>'
    if not table.header:
        return f'<p class="note">{_esc(table.name)} is empty.</p>'
    shown = table.rows[:MAX_TABLE_ROWS]
    ncols = max([len(table.header)] + [len(r) for r in shown])
    header = table.header + [""] * (ncols - len(table.header))
    formats: list[Callable[[float], str] | None] = []
    for c in range(ncols):
        cells = [row[c] for row in shown if c < len(row) and row[c].strip()]
        values = [_parse_number(x) for x in cells]
        numeric = bool(cells) and all(v is not None for v in values)
        formats.append(column_format(values) if numeric else None)
    display = [[(formats[c](_parse_number(cell)) if formats[c] and cell.strip() else cell)
                for c, cell in enumerate(row)] for row in shown]
    width = _estimated_width(header, display)
    wide = width > WIDE_TABLE_PX  # drawn in a smaller font, its first column pinned
    out = []
    if width * _WIDE_FONT > WIDE_TABLE_PX:
        out.append('<p class="note">A wide table: scroll it sideways; its first column stays in place.</p>')
    out.append(f'<div class="scroll"><table class="data{" wide" if wide else ""}"><thead><tr>')
    # Let long snake_case headers wrap after their underscores instead of widening the column.
    out += [f"<th>{_esc(h).replace('_', '_<wbr>')}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for k, (row, texts) in enumerate(zip(shown, display)):
        out.append('<tr class="notconverged">' if k in table.not_converged else "<tr>")
        for c, (cell, text) in enumerate(zip(row, texts)):
            classes = (["num"] if formats[c] and cell.strip() else []) + \
                      (["false"] if c == table.converged_col and k in table.not_converged else [])
            cls = f' class="{" ".join(classes)}"' if classes else ""
            out.append(f"<td{cls}>{_esc(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if len(table.rows) > len(shown):
        out.append(f'<p class="note">… {len(table.rows) - len(shown)} more rows in {_esc(table.name)}</p>')
    return "".join(out)


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    return None


def _render_figure(path: Path, zoom_id: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        return f'<p class="note">could not read {_esc(path.name)}: {_esc(e)}</p>'
    size = _png_size(data)
    caption = _esc(path.name)
    if size and size[0] > WIDE_FIGURE_PX:
        caption += f" · {size[0]}×{size[1]} px, click for full size"
    # A hidden checkbox toggled by its label: checked, the label covers the window and shows the image at its
    # own size (scrollable), with no JavaScript and without a second copy of the image.
    return (f'<figure><input type="checkbox" class="zoom" id="{_esc(zoom_id)}">'
            f'<label for="{_esc(zoom_id)}" title="click to enlarge; click again to close">'
            f'<img src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}" alt="{_esc(path.stem)}">'
            f"</label><figcaption>{caption}</figcaption></figure>")


def _render_checks(checks: list[tuple[str, bool, str]]) -> str:
    rows = []
    for name, passed, detail in checks:
        row_cls, cell_cls, text = ("", "num", "passed") if passed else (' class="notconverged"', "num false", "FAILED")
        rows.append(f'<tr{row_cls}><td>{_esc(name)}</td><td class="{cell_cls}">{text}</td>'
                    f"<td>{_inline(detail)}</td></tr>")
    return ('<div class="scroll"><table class="data checks"><thead><tr><th>check</th><th>result</th>'
            f"<th>detail</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _normalise_section(section: Mapping, root: Path, index: int) -> dict:
    if not isinstance(section, Mapping):
        raise ValueError(f"sections[{index}] must be a dict with at least 'name', got {type(section).__name__}.")
    if not section.get("name"):
        raise ValueError(f"sections[{index}] has no 'name'; expected the experiment module name.")
    name = str(section["name"])
    wd = Path(section.get("workdir") or root / name)
    info = _run_info(wd)
    # run.json's accumulated time wins over the caller's: a runner times only the invocation it saw, which
    # after a resume is the resumed part.
    seconds = info["seconds_total"]
    if seconds is None:
        seconds = section.get("seconds") if section.get("seconds") is not None else info["seconds"]
    last = section.get("seconds_last_run", info["seconds_last_run"])
    return {"name": name, "title": str(section.get("title") or name),
            "description": str(section.get("description") or ""), "workdir": wd,
            "status": str(section.get("status") or info["status"]), "seconds": seconds, "seconds_last_run": last,
            "error": section.get("error")}


def _render_section(sec: dict, anchor: str) -> tuple[str, str, str, str]:
    """Returns (section HTML, badge class "ok"/"attention"/"failed"/"unknown", status label, reason HTML)."""
    wd: Path = sec["workdir"]
    error_text = sec["error"]
    error_file = wd / "error.txt"
    if error_file.is_file():
        try:
            error_text = error_file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            error_text = f"(could not read error.txt: {e})"
    config, config_problem = _read_json(wd / "config.json")
    metrics, metrics_problem = _read_json(wd / "metrics.json")
    checks, checks_problem = _read_checks(wd)
    tables = [_Table(p) for p in sorted((wd / "tables").glob("*.csv"))] if (wd / "tables").is_dir() else []
    reasons = _attention(metrics, tables, checks)

    failed = sec["status"] == "failed" or bool(error_text)
    if failed:
        status, label = "failed", "failed"
    elif sec["status"] == "ok":
        status, label = ("attention", "needs attention") if reasons else ("ok", "ok")
    else:  # e.g. "running": interrupted, or still in progress
        status, label = "unknown", sec["status"]
    preset = metrics.get("preset") if isinstance(metrics, Mapping) else None
    if preset is None and isinstance(config, Mapping):
        preset = config.get("preset")

    title = _inline(sec["title"])
    out = [f'<section class="experiment {status}" id="{_esc(anchor)}">',
           f'<h2><a href="#{_esc(anchor)}">{title}</a> <span class="badge {status}">{_esc(label)}</span></h2>']
    sub = [f"module <code>{_esc(sec['name'])}</code>", _esc(_duration(sec))]
    if preset is not None:
        sub.append(f"preset <code>{_esc(preset)}</code>")
    sub.append(f"workdir <code>{_esc(wd)}</code>")
    out.append('<p class="sub">' + " · ".join(sub) + "</p>")
    if sec["description"]:
        out.append(f'<div class="description">{render_text(sec["description"])}</div>')

    if failed:
        message = error_text.strip() if error_text else f"status {sec['status']!r}; no error.txt was written."
        out.append('<div class="error"><strong>Experiment failed.</strong>'
                   f"<pre>{_esc(message)}</pre></div>")
    if reasons and not failed:
        out.append('<div class="attention-box"><strong>Needs attention.</strong><ul>'
                   + "".join(f"<li>{r}</li>" for r in reasons) + "</ul></div>")
    if not wd.is_dir():
        out.append(f'<p class="note">Workdir {_esc(wd)} does not exist.</p>')

    if checks or checks_problem:
        out.append("<h3>Checks</h3>")
        if checks_problem:
            out.append(f'<p class="note">{_esc(checks_problem)}</p>')
        if checks:
            out.append(_render_checks(checks))

    out.append("<h3>Metrics</h3>")
    if metrics_problem:
        out.append(f'<p class="note">{_esc(metrics_problem)}</p>')
    elif metrics is None:
        out.append('<p class="note">No metrics.json.</p>')
    else:
        out.append(_render_metrics(metrics, tables))

    if tables:
        out.append('<h3>Tables</h3><div class="tables">')
        out += [f'<div class="table-block"><h4>{_esc(t.name)}</h4>{_render_csv(t)}</div>' for t in tables]
        out.append("</div>")

    figures = sorted((wd / "figures").glob("*.png")) if (wd / "figures").is_dir() else []
    if figures:
        out.append('<h3>Figures</h3><p class="sub">Click a figure to see it at full size; click again to close.'
                   '</p><div class="figures">')
        out += [_render_figure(f, f"zoom-{anchor}-{k}") for k, f in enumerate(figures)]
        out.append("</div>")

    if config_problem:
        out.append(f'<p class="note">{_esc(config_problem)}</p>')
    elif config is not None:
        out.append("<details><summary>Config</summary>"
                   f"<pre>{_esc(json.dumps(config, indent=2, sort_keys=True, default=str))}</pre></details>")
    out.append('<p><a class="top" href="#top">↑ contents</a></p></section>')
    return "\n".join(out), status, label, "; ".join(reasons)


def _render_toc(rows: list[tuple[dict, str, str, str, str]]) -> str:
    out = ['<nav class="toc"><h2>Contents</h2><table><thead><tr><th>#</th><th>Experiment</th>'
           "<th>Module</th><th>Status</th><th>Duration</th></tr></thead><tbody>"]
    for i, (sec, anchor, status, label, reason) in enumerate(rows, 1):
        why = f' <span class="reason">{reason}</span>' if reason and status == "attention" else ""
        out.append(f'<tr><td class="num">{i}</td><td><a href="#{_esc(anchor)}">{_inline(sec["title"])}</a></td>'
                   f"<td><code>{_esc(sec['name'])}</code></td>"
                   f'<td><span class="badge {status}">{_esc(label)}</span>{why}</td>'
                   f'<td class="num">{_esc(format_seconds(sec["seconds"]))}</td></tr>')
    out.append("</tbody></table></nav>")
    return "".join(out)


def build_report(root: str | os.PathLike, sections: Sequence[Mapping] | None = None,
                 title: str = "jgen report") -> Path:
    """Writes a self-contained ``root/report.html`` over experiment workdirs.

    Args:
      root: folder holding one workdir per experiment (``root/<name>/``).
      sections: dicts with keys "name" (module name, required), "title", "description"
        (Markdown subset, see `render_text`), "workdir" (default ``root/<name>``),
        "status" ("ok"/"failed"; default from error.txt and run.json), "seconds" (used
        when run.json records no "seconds_total") and optionally "error" (a message to
        show when no error.txt exists). ``None`` discovers the workdirs under ``root``
        with :func:`discover_sections`.
      title: page title.

    Returns:
      Path of the written report.html.

    A failed experiment (error.txt present or status "failed") is rendered with its
    error message in red; a finished one with failed checks or fits that did not
    converge is marked "needs attention"; unreadable files are noted in place. The
    report never needs network access or JavaScript.
    """
    root = Path(root)
    if sections is None:
        sections = discover_sections(root)
    elif isinstance(sections, (str, bytes)) or not isinstance(sections, Sequence):
        raise ValueError(f"sections must be a list of dicts or None, got {type(sections).__name__}.")
    secs = [_normalise_section(s, root, i) for i, s in enumerate(sections)]

    used: set[str] = set()
    rendered, toc_rows = [], []
    for sec in secs:
        anchor = _anchor(sec["name"], used)
        body, status, label, reason = _render_section(sec, anchor)
        toc_rows.append((sec, anchor, status, label, reason))
        rendered.append(body)

    counts = {s: sum(1 for row in toc_rows if row[2] == s) for s in ("ok", "attention", "failed", "unknown")}
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    known = [s["seconds"] for s in secs if isinstance(s["seconds"], (int, float)) and math.isfinite(s["seconds"])]
    summary = " · ".join([f"{len(secs)} experiments", f"{counts['ok']} ok"]
                         + ([f"{counts['attention']} need attention"] if counts["attention"] else [])
                         + [f"{counts['failed']} failed"]
                         + ([f"{counts['unknown']} other"] if counts["unknown"] else [])
                         + ([f"total {_esc(format_seconds(sum(known)))}"] if known else [])
                         + [f"generated {_esc(generated)}", f"root <code>{_esc(root)}</code>"])
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>",
        '<body><header id="top">',
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">{summary}</p></header>',
        _render_toc(toc_rows) if secs else '<p class="note">No experiments found.</p>',
        *rendered,
        "</body></html>",
        "",
    ])
    root.mkdir(parents=True, exist_ok=True)
    out = root / "report.html"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees a half-written report
    return out


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build report.html over experiment workdirs.")
    parser.add_argument("root", help="folder holding one workdir per experiment")
    parser.add_argument("--title", default="jgen report")
    args = parser.parse_args(argv)
    print(build_report(args.root, title=args.title))


if __name__ == "__main__":
    _main()
