"""Self-contained HTML report over experiment workdirs.

``build_report(root)`` writes ``root/report.html``: a table of contents, then one
section per experiment workdir ``root/<name>/`` with its title, description, status
and duration, metrics, CSV tables, figures (inlined as base64 PNG) and config. The
page needs no network and no JavaScript: CSS is inline, images are data URIs and
the config sits in a native ``<details>`` element, so it opens offline as one file.

A workdir (see ``jgen.experiment.Workdir``) may hold:
  config.json, metrics.json (flat {name: number} plus "preset"), figures/*.png,
  tables/*.csv, run.json ({"status": ..., "seconds": ...}, written by
  ``jgen.experiment``) and error.txt (written by the runner when the experiment
  failed; shown in red, the report carries on).

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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_report", "discover_sections", "format_value", "format_seconds"]

MAX_TABLE_ROWS = 200  # longer CSVs are cut, with a note saying how many rows were left out

_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg-alt:#f6f8fa; --ok:#1a7f37; --bad:#b3261e; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; line-height: 1.5; font-size: 15px; }
h1 { font-size: 1.8em; margin: 0 0 4px; }
h2 { font-size: 1.35em; margin: 0 0 6px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h2 a { color: inherit; text-decoration: none; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
h4 { font-size: 0.95em; margin: 12px 0 4px; font-family: ui-monospace, Menlo, Consolas, monospace; }
.meta, .sub { color: var(--muted); font-size: 0.9em; margin: 0 0 10px; }
code, pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.88em; }
pre { background: var(--bg-alt); padding: 10px 12px; overflow-x: auto; border-radius: 6px; }
nav.toc { margin: 18px 0 28px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.9em; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace; }
tr:nth-child(even) td { background: #fbfcfd; }
.scroll { overflow-x: auto; max-width: 100%; }
section.experiment { margin: 0 0 40px; padding-top: 8px; }
.badge { display: inline-block; font-size: 0.72em; font-weight: 700; padding: 1px 8px; border-radius: 10px;
         vertical-align: middle; color: #fff; letter-spacing: 0.03em; text-transform: uppercase; }
.badge.ok { background: var(--ok); }
.badge.failed { background: var(--bad); }
.badge.unknown { background: var(--muted); }
.error { border: 1px solid var(--bad); border-left: 6px solid var(--bad); background: #fdeceb;
         color: var(--bad); padding: 8px 14px; border-radius: 6px; margin: 10px 0; }
.error pre { background: #fff6f5; color: #7d1a14; max-height: 420px; overflow: auto; }
.note { color: var(--muted); font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
figcaption { color: var(--muted); font-size: 0.85em; text-align: center;
             font-family: ui-monospace, Menlo, Consolas, monospace; }
details summary { cursor: pointer; color: var(--muted); margin: 8px 0; }
a.top { font-size: 0.85em; color: var(--muted); }
"""


# --------------------------------------------------------------------------- formatting


def format_value(value: Any) -> str:
    """Formats a metric or table value for display (plain text, not yet escaped).

    Integers (and integral floats below 1e15) print without decimals; other floats keep
    four decimals in [1e-3, 1e6) (trailing zeros dropped) and four significant digits in
    scientific notation outside it; booleans, strings and None print as themselves.
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if 1e-3 <= abs(value) < 1e6:
            return f"{value:.4f}".rstrip("0").rstrip(".")
        return f"{value:.4g}" if abs(value) >= 1e6 else f"{value:.3e}"
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value)
    return str(value)


def _format_cell(text: str) -> tuple[str, bool]:
    """CSV cell -> (display text, is numeric)."""
    stripped = text.strip()
    if not stripped:
        return "", False
    try:
        number = int(stripped)
    except ValueError:
        try:
            number = float(stripped)
        except ValueError:
            return text, False
    return format_value(number), True


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


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(name: str, used: set[str]) -> str:
    base = "exp-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "section")
    anchor, k = base, 2
    while anchor in used:
        anchor, k = f"{base}-{k}", k + 1
    used.add(anchor)
    return anchor


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
        status, seconds = _run_info(sub)
        sections.append({"name": sub.name, "title": sub.name, "description": "", "workdir": sub,
                         "status": status, "seconds": seconds})
    return sections


def _run_info(wd: Path) -> tuple[str, float | None]:
    """(status, seconds) of a workdir: "failed" when error.txt exists, else run.json's status, else "ok";
    seconds from run.json when recorded."""
    info, _ = _read_json(wd / "run.json")
    info = info if isinstance(info, Mapping) else {}
    status = "failed" if (wd / "error.txt").exists() else str(info.get("status") or "ok")
    seconds = info.get("seconds")
    return status, float(seconds) if isinstance(seconds, (int, float)) else None


# --------------------------------------------------------------------------- rendering


def _render_metrics(metrics: Any) -> str:
    if not isinstance(metrics, Mapping):
        return f'<p class="note">metrics.json is not a JSON object ({_esc(type(metrics).__name__)}).</p>'
    if not metrics:
        return '<p class="note">No metrics recorded.</p>'
    rows = []
    for key, value in metrics.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        cls = ' class="num"' if numeric else ""
        rows.append(f"<tr><th>{_esc(key)}</th><td{cls}>{_esc(format_value(value))}</td></tr>")
    return '<table class="metrics"><tbody>' + "".join(rows) + "</tbody></table>"


def _render_csv(path: Path) -> str:
    try:
        rows = _read_csv(path)
    except (OSError, csv.Error) as e:
        return f'<p class="note">could not read {_esc(path.name)}: {_esc(e)}</p>'
    if not rows:
        return f'<p class="note">{_esc(path.name)} is empty.</p>'
    header, body = rows[0], rows[1:]
    shown = body[:MAX_TABLE_ROWS]
    out = ['<div class="scroll"><table class="data"><thead><tr>']
    out += [f"<th>{_esc(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in shown:
        out.append("<tr>")
        for cell in row:
            text, numeric = _format_cell(cell)
            out.append(f'<td class="num">{_esc(text)}</td>' if numeric else f"<td>{_esc(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    if len(body) > len(shown):
        out.append(f'<p class="note">… {len(body) - len(shown)} more rows in {_esc(path.name)}</p>')
    return "".join(out)


def _render_figure(path: Path) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as e:
        return f'<p class="note">could not read {_esc(path.name)}: {_esc(e)}</p>'
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_esc(path.stem)}">'
            f"<figcaption>{_esc(path.name)}</figcaption></figure>")


def _render_description(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    return "".join(f'<p class="description">{_esc(" ".join(p.split()))}</p>' for p in paragraphs)


def _normalise_section(section: Mapping, root: Path, index: int) -> dict:
    if not isinstance(section, Mapping):
        raise ValueError(f"sections[{index}] must be a dict with at least 'name', got {type(section).__name__}.")
    if not section.get("name"):
        raise ValueError(f"sections[{index}] has no 'name'; expected the experiment module name.")
    name = str(section["name"])
    wd = Path(section.get("workdir") or root / name)
    status, seconds = section.get("status"), section.get("seconds")
    if status is None or seconds is None:
        found_status, found_seconds = _run_info(wd)
        status = status or found_status
        seconds = found_seconds if seconds is None else seconds
    return {"name": name, "title": str(section.get("title") or name),
            "description": str(section.get("description") or ""), "workdir": wd,
            "status": str(status), "seconds": seconds, "error": section.get("error")}


def _render_section(sec: dict, anchor: str) -> tuple[str, str, str]:
    """Returns (section HTML, badge class "ok"/"failed"/"unknown", status label)."""
    wd: Path = sec["workdir"]
    error_text = sec["error"]
    error_file = wd / "error.txt"
    if error_file.is_file():
        try:
            error_text = error_file.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            error_text = f"(could not read error.txt: {e})"
    failed = sec["status"] == "failed" or bool(error_text)
    # Anything else (e.g. "running": interrupted, or still in progress) gets a neutral badge.
    status = "failed" if failed else ("ok" if sec["status"] == "ok" else "unknown")
    label = "failed" if failed else sec["status"]
    config, config_problem = _read_json(wd / "config.json")
    metrics, metrics_problem = _read_json(wd / "metrics.json")
    preset = metrics.get("preset") if isinstance(metrics, Mapping) else None
    if preset is None and isinstance(config, Mapping):
        preset = config.get("preset")

    out = [f'<section class="experiment {status}" id="{_esc(anchor)}">',
           f'<h2><a href="#{_esc(anchor)}">{_esc(sec["title"])}</a> <span class="badge {status}">{_esc(label)}</span></h2>']
    sub = [f"module <code>{_esc(sec['name'])}</code>", _esc(format_seconds(sec["seconds"]))]
    if preset is not None:
        sub.append(f"preset <code>{_esc(preset)}</code>")
    sub.append(f"workdir <code>{_esc(wd)}</code>")
    out.append('<p class="sub">' + " · ".join(sub) + "</p>")
    out.append(_render_description(sec["description"]))

    if failed:
        message = error_text.strip() if error_text else f"status {sec['status']!r}; no error.txt was written."
        out.append('<div class="error"><strong>Experiment failed.</strong>'
                   f"<pre>{_esc(message)}</pre></div>")
    if not wd.is_dir():
        out.append(f'<p class="note">Workdir {_esc(wd)} does not exist.</p>')

    out.append("<h3>Metrics</h3>")
    if metrics_problem:
        out.append(f'<p class="note">{_esc(metrics_problem)}</p>')
    elif metrics is None:
        out.append('<p class="note">No metrics.json.</p>')
    else:
        out.append(_render_metrics(metrics))

    tables = sorted((wd / "tables").glob("*.csv")) if (wd / "tables").is_dir() else []
    if tables:
        out.append("<h3>Tables</h3>")
        for t in tables:
            out.append(f"<h4>{_esc(t.name)}</h4>{_render_csv(t)}")

    figures = sorted((wd / "figures").glob("*.png")) if (wd / "figures").is_dir() else []
    if figures:
        out.append('<h3>Figures</h3><div class="figures">')
        out += [_render_figure(f) for f in figures]
        out.append("</div>")

    if config_problem:
        out.append(f'<p class="note">{_esc(config_problem)}</p>')
    elif config is not None:
        out.append("<details><summary>Config</summary>"
                   f"<pre>{_esc(json.dumps(config, indent=2, sort_keys=True, default=str))}</pre></details>")
    out.append('<p><a class="top" href="#top">↑ contents</a></p></section>')
    return "\n".join(out), status, label


def _render_toc(rows: list[tuple[dict, str, str, str]]) -> str:
    out = ['<nav class="toc"><h2>Contents</h2><table><thead><tr><th>#</th><th>Experiment</th>'
           "<th>Module</th><th>Status</th><th>Duration</th></tr></thead><tbody>"]
    for i, (sec, anchor, status, label) in enumerate(rows, 1):
        out.append(f'<tr><td class="num">{i}</td><td><a href="#{_esc(anchor)}">{_esc(sec["title"])}</a></td>'
                   f"<td><code>{_esc(sec['name'])}</code></td>"
                   f'<td><span class="badge {status}">{_esc(label)}</span></td>'
                   f'<td class="num">{_esc(format_seconds(sec["seconds"]))}</td></tr>')
    out.append("</tbody></table></nav>")
    return "".join(out)


def build_report(root: str | os.PathLike, sections: Sequence[Mapping] | None = None,
                 title: str = "jgen report") -> Path:
    """Writes a self-contained ``root/report.html`` over experiment workdirs.

    Args:
      root: folder holding one workdir per experiment (``root/<name>/``).
      sections: dicts with keys "name" (module name, required), "title", "description",
        "workdir" (default ``root/<name>``), "status" ("ok"/"failed"; default from the
        presence of error.txt), "seconds" (default from run.json) and optionally "error"
        (a message to show when no error.txt exists). ``None`` discovers the workdirs
        under ``root`` with :func:`discover_sections`.
      title: page title.

    Returns:
      Path of the written report.html.

    A failed experiment (error.txt present or status != "ok") is rendered with its error
    message in red; unreadable files are noted in place. The report never needs network
    access or JavaScript.
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
        body, status, label = _render_section(sec, anchor)
        toc_rows.append((sec, anchor, status, label))
        rendered.append(body)

    n_failed = sum(1 for _, _, s, _ in toc_rows if s == "failed")
    n_ok = sum(1 for _, _, s, _ in toc_rows if s == "ok")
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    known = [s["seconds"] for s in secs if isinstance(s["seconds"], (int, float)) and math.isfinite(s["seconds"])]
    summary = " · ".join([f"{len(secs)} experiments", f"{n_ok} ok", f"{n_failed} failed"]
                         + ([f"{len(secs) - n_ok - n_failed} other"] if len(secs) > n_ok + n_failed else [])
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
