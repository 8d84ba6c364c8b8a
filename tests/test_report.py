"""Tests for jgen.report: sections, metrics, tables, inline figures, failures, escaping, offline."""

import base64
import csv
import json
from html.parser import HTMLParser

import numpy as np
import pytest

from jgen import report, viz

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "wbr"}


class _Checker(HTMLParser):
    """Collects ids, internal links, img sources and checks that tags nest properly."""

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.hrefs, self.srcs, self.problems = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def parse(html_text: str) -> _Checker:
    checker = _Checker()
    checker.feed(html_text)
    checker.close()
    assert not checker.problems, checker.problems[:5]
    assert not checker.stack, f"unclosed tags {checker.stack}"
    return checker


@pytest.fixture()
def fake_root(tmp_path):
    root = tmp_path / "runs"
    ok = root / "pca_mnist"
    (ok / "tables").mkdir(parents=True)
    (ok / "config.json").write_text(json.dumps({"seed": 0, "preset": "quick", "latent_dims": [2, 5]}))
    (ok / "metrics.json").write_text(json.dumps(
        {"test_nll_bits_per_dim": 1.234567891, "num_params": 12345, "tiny": 1.5e-7, "preset": "quick"}))
    viz.image_grid(np.random.default_rng(0).random((4, 6, 6)), title="samples",
                   path=ok / "figures" / "samples.png")
    with (ok / "tables" / "results.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "nll"])
        writer.writerow(["<b>ppca</b> & co", "0.5000001"])
        writer.writerow(["kde", "2"])
    bad = root / "flows_moons"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"seed": 1}))
    (bad / "error.txt").write_text('Traceback (most recent call last):\n  File "x.py"\n'
                                   "NonFiniteLossError: loss is nan at step 17 <script>alert(1)</script>\n")
    sections = [
        {"name": "pca_mnist", "title": "PCA & PPCA on MNIST <digits>",
         "description": "Fits PCA.\n\nThen PPCA by EM.", "workdir": ok, "status": "ok", "seconds": 12.5},
        {"name": "flows_moons", "title": "RealNVP on two moons", "description": "Coupling flows.",
         "workdir": bad, "status": "failed", "seconds": 3.0},
    ]
    return root, sections


def test_report_renders_sections_metrics_tables_figures_and_failures(fake_root):
    root, sections = fake_root
    out = report.build_report(root, sections, title="weekly <report>")
    assert out == root / "report.html"
    text = out.read_text(encoding="utf-8")
    doc = parse(text)

    # titles, escaped
    assert "PCA &amp; PPCA on MNIST &lt;digits&gt;" in text and "<digits>" not in text
    assert "RealNVP on two moons" in text
    assert "<title>weekly &lt;report&gt;</title>" in text
    # description paragraphs and duration
    assert '<p class="description">Fits PCA.</p><p class="description">Then PPCA by EM.</p>' in text
    assert "12.5 s" in text and "3.0 s" in text and "total 15.5 s" in text
    # metrics, nicely formatted
    assert ">1.2346<" in text and ">12345<" in text and ">1.500e-07<" in text and ">quick<" in text
    # CSV table with escaped cell and formatted number
    assert "&lt;b&gt;ppca&lt;/b&gt; &amp; co" in text and "<b>ppca</b>" not in text
    assert '<td class="num">0.5</td>' in text and "<th>nll</th>" in text
    # figure inlined as a data URI of the exact file bytes, captioned with its file name
    png = (root / "pca_mnist" / "figures" / "samples.png").read_bytes()
    assert doc.srcs == ["data:image/png;base64," + base64.b64encode(png).decode("ascii")]
    assert "<figcaption>samples.png</figcaption>" in text
    # the failure: message shown, escaped, in the error box; the next section still rendered
    failed = text[text.index('id="exp-flows_moons"'):]
    assert 'class="error"' in failed
    assert "NonFiniteLossError: loss is nan at step 17 &lt;script&gt;" in failed
    assert "<script" not in text
    assert text.count('class="badge failed"') == 2 and text.count('class="badge ok"') == 2  # toc + section
    # table of contents links resolve to section anchors
    internal = [h[1:] for h in doc.hrefs if h.startswith("#")]
    assert {"exp-pca_mnist", "exp-flows_moons"} <= set(internal)
    assert set(internal) <= set(doc.ids)
    assert text.index('href="#exp-pca_mnist"') < text.index('id="exp-pca_mnist"')
    # self-contained: no network resources
    assert "http://" not in text and "https://" not in text and "<link" not in text


def test_discovered_sections_match_workdirs(fake_root):
    root, _ = fake_root
    (root / "not_an_experiment").mkdir()  # empty folders are skipped
    found = report.discover_sections(root)
    assert [s["name"] for s in found] == ["flows_moons", "pca_mnist"]
    assert [s["status"] for s in found] == ["failed", "ok"]
    text = report.build_report(root).read_text()
    parse(text)
    assert "not_an_experiment" not in text
    assert "2 experiments · 1 ok · 1 failed · generated" in text  # no durations known: no total


def test_failed_status_without_error_file_and_broken_files(tmp_path):
    wd = tmp_path / "broken"
    wd.mkdir()
    (wd / "metrics.json").write_text("{not json")
    (wd / "run.json").write_text(json.dumps({"status": "failed", "seconds": 125.0}))
    sections = [{"name": "broken", "status": "failed"},
                {"name": "missing_dir", "status": "failed", "error": "runner killed: timeout"}]
    text = report.build_report(tmp_path, sections).read_text()
    parse(text)
    assert "could not read metrics.json" in text
    assert "2 min 05 s" in text  # from run.json
    assert "no error.txt was written" in text
    assert "runner killed: timeout" in text
    assert "does not exist" in text


def test_discovery_reads_run_json(tmp_path):
    for name, info in [("done", {"status": "ok", "seconds": 42.0}), ("interrupted", {"status": "running"})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "run.json").write_text(json.dumps(info))
    found = {s["name"]: s for s in report.discover_sections(tmp_path)}
    assert found["interrupted"]["status"] == "running"
    text = report.build_report(tmp_path).read_text()
    parse(text)
    assert '<span class="badge unknown">running</span>' in text
    assert "42.0 s" in text and "1 ok · 0 failed · 1 other" in text


def test_duplicate_names_get_unique_anchors(tmp_path):
    sections = [{"name": "a b", "workdir": tmp_path / "x"}, {"name": "a-b", "workdir": tmp_path / "y"}]
    doc = parse(report.build_report(tmp_path, sections).read_text())
    assert "exp-a-b" in doc.ids and "exp-a-b-2" in doc.ids


def test_long_tables_are_cut(tmp_path):
    wd = tmp_path / "e"
    (wd / "tables").mkdir(parents=True)
    rows = "\n".join(["i"] + [str(i) for i in range(report.MAX_TABLE_ROWS + 7)])
    (wd / "tables" / "big.csv").write_text(rows)
    text = report.build_report(tmp_path).read_text()
    assert "7 more rows in big.csv" in text
    assert f">{report.MAX_TABLE_ROWS - 1}<" in text and f">{report.MAX_TABLE_ROWS}<" not in text


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        report.build_report(tmp_path / "nope")
    with pytest.raises(ValueError, match="'name'"):
        report.build_report(tmp_path, [{"title": "no name"}])
    with pytest.raises(ValueError, match="list of dicts"):
        report.build_report(tmp_path, "pca_mnist")


@pytest.mark.parametrize("value, expected", [
    (3, "3"), (2.0, "2"), (0.1234567, "0.1235"), (123.456789, "123.4568"), (1.5e-7, "1.500e-07"),
    (2.5e7, "25000000"), (12345678.9, "1.235e+07"), (float("nan"), "nan"), (float("-inf"), "-inf"),
    (True, "True"), ("quick", "quick"),
])
def test_format_value(value, expected):
    assert report.format_value(value) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0.84, "0.8 s"), (59.94, "59.9 s"), (61, "1 min 01 s"), (3725, "1 h 02 min"), (None, "duration unknown"),
])
def test_format_seconds(seconds, expected):
    assert report.format_seconds(seconds) == expected
