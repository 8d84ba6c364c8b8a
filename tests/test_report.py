"""Tests for jgen.report: sections, text, numbers, metrics and floors, tables, figures, status, offline."""

import base64
import csv
import json
import re
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
    assert '<div class="description"><p>Fits PCA.</p><p>Then PPCA by EM.</p></div>' in text
    assert "12.5 s" in text and "3.0 s" in text and "total 15.5 s" in text
    # metrics, nicely formatted
    assert ">1.2346<" in text and ">12345<" in text and ">1.5e-07<" in text and ">quick<" in text
    # CSV table with escaped cell and formatted number
    assert "&lt;b&gt;ppca&lt;/b&gt; &amp; co" in text and "<b>ppca</b>" not in text
    assert '<td class="num">0.5</td>' in text and '<td class="num">2.0</td>' in text and "<th>nll</th>" in text
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
    (3, "3"), (2.0, "2"), (0.1234567, "0.12346"), (123.456789, "123.46"), (1.5e-7, "1.5e-07"),
    (2.5e7, "25000000"), (514081.723, "514082"), (-9233.4707, "-9233.5"), (0.25, "0.25"),
    (3.2e9 + 0.5, "3.2e+09"), (float("nan"), "nan"), (float("-inf"), "-inf"), (True, "True"), ("quick", "quick"),
])
def test_format_value(value, expected):
    assert report.format_value(value) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0.84, "0.8 s"), (59.94, "59.9 s"), (61, "1 min 01 s"), (3725, "1 h 02 min"), (None, "duration unknown"),
])
def test_format_seconds(seconds, expected):
    assert report.format_seconds(seconds) == expected


# --------------------------------------------------------------------------- descriptions as text


def test_render_text_blocks_inline_code_and_escaping():
    text = ("Fits `jgen.flows.MAF` (a *flow*) with **two** models:\n"
            "* RealNVP on `x_i^2`, with\n  a wrapped line;\n"
            "* MAF <script>.\n\n"
            "1. first\n2. second\n\n"
            "    python -m experiments.suite --workdir=x_1\n\n"
            "Last paragraph\nwrapped.")
    out = report.render_text(text)
    parse(out)
    assert "<code>jgen.flows.MAF</code>" in out
    assert "<code>x_i^2</code>" in out  # code is left exactly as written: no sub/superscripts inside
    assert "<strong>two</strong>" in out and "(a *flow*)" in out
    assert "<ul><li>RealNVP on <code>x_i^2</code>, with a wrapped line;</li><li>MAF &lt;script&gt;.</li></ul>" in out
    assert "<ol><li>first</li><li>second</li></ol>" in out
    assert "<pre><code>python -m experiments.suite --workdir=x_1</code></pre>" in out
    assert out.endswith("<p>Last paragraph wrapped.</p>")
    assert "`" not in out and "<script" not in out
    # a wrapped formula whose next line starts with a minus stays in its paragraph; a worded bullet starts a list
    assert (report.render_text("the density exp(-x^4\n- 1/2 x^2)\n- then a list")
            == "<p>the density exp(-x<sup>4</sup> - 1/2 x<sup>2</sup>)</p><ul><li>then a list</li></ul>")


@pytest.mark.parametrize("text, expected", [
    ("eps ~ N(0, sigma^2)", "ε ~ N(0, σ<sup>2</sup>)"),
    ("keeps sqrt(0.60) x_0, not np.sqrt(x)", "keeps √(0.60) x<sub>0</sub>, not np.sqrt(x)"),
    ("exp(-1/2 sum_{i != j} x_i^2 x_j^2)",
     "exp(-1/2 ∑<sub>i ≠ j</sub> x<sub>i</sub><sup>2</sup> x<sub>j</sub><sup>2</sup>)"),
    ("w = (X^T X)^{-1} X^T y", "w = (X<sup>T</sup> X)<sup>-1</sup> X<sup>T</sup> y"),
    ("p(x_k | x_1..x_{k-1}), 2^25 - 1 and 2^(k-1)",
     "p(x<sub>k</sub> | x<sub>1</sub>..x<sub>k-1</sub>), 2<sup>25</sup> - 1 and 2<sup>k-1</sup>"),
    ("KL(f || f_hat), alpha_bar_T <= 1, 2^k >= T", "KL(f || f\u0302), α\u0304<sub>T</sub> ≤ 1, 2<sup>k</sup> ≥ T"),
    ("$\\sigma^2 \\le \\pi$", '<span class="math">σ<sup>2</sup> ≤ π</span>'),
    # English and snake_case identifiers outside backticks stay as they are
    ("a sum over pixels, the pi-th kl_spiral_h1 of num_chains",
     "a sum over pixels, the π-th kl_spiral_h1 of num_chains"),
])
def test_render_text_math_is_readable(text, expected):
    assert report.render_text(text) == f"<p>{expected}</p>"


def test_every_experiment_docstring_renders_without_raw_markup():
    import ast
    import pathlib

    for path in sorted(pathlib.Path(__file__).parent.parent.glob("experiments/*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if not doc:
            continue
        out = report.render_text(doc.partition("\n")[2])
        parse(out)
        prose = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", out, flags=re.S)
        assert "`" not in prose, path.name
        assert not re.search(r"\w\^\w|\b[a-z]_\{", prose), (path.name, re.findall(r".{20}\^.{10}", prose)[:3])


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("column, expected", [
    ([1, 2.0, -3], ["1", "2", "-3"]),
    ([0.1, 0.5, 1, 0.24183], ["0.10000", "0.50000", "1.00000", "0.24183"]),
    ([16.5959, 16.596, 15.78553], ["16.596", "16.596", "15.786"]),
    ([0.5, 0.25, 2], ["0.50", "0.25", "2.00"]),  # trailing zeros every number shares are dropped
    ([7.0602e-4, 0.0122, 0.0312], ["0.000706", "0.012200", "0.031200"]),
    ([1.5e-6, 0.25, 3], ["1.5000e-06", "2.5000e-01", "3.0000e+00"]),  # many decades: scientific
    ([514081.723, 0.5], ["5.1408e+05", "5.0000e-01"]),  # 0.5 would keep no significant digit
    ([514081.723, 27.25], ["5.1408e+05", "2.7250e+01"]),
    ([514081.723, 127.25], ["514082", "127"]),  # the smallest keeps 3 significant digits
    ([float("nan"), 0.25, float("inf")], ["nan", "0.25", "inf"]),
])
def test_column_format_is_one_format_per_column(column, expected):
    fmt = report.column_format(column)
    assert [fmt(v) for v in column] == expected


def test_csv_columns_share_one_format_and_headers_wrap(tmp_path):
    wd = tmp_path / "e"
    (wd / "tables").mkdir(parents=True)
    (wd / "tables" / "t.csv").write_text("variant,kl_estimate,n\nmix05,0.012544,10\nmix1,0.4713,20\nspiral,,30\n")
    text = report.build_report(tmp_path).read_text()
    assert ">0.012544<" in text and ">0.471300<" in text and ">10<" in text
    assert '<td></td>' in text  # an empty cell stays empty
    assert "<th>kl_<wbr>estimate</th>" in text


# --------------------------------------------------------------------------- metrics


def test_metrics_repeated_in_a_table_are_shown_once(tmp_path):
    wd = tmp_path / "kde"
    (wd / "tables").mkdir(parents=True)
    with (wd / "tables" / "errors.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["distribution", "kl", "ise"])
        writer.writerow(["mix05", repr(0.012544123456), "0.0007060"])  # the second rounded to 4 significant
        writer.writerow(["spiral", repr(0.067351), "0.0049"])
    metrics = {"kl_mix05": 0.012544123456, "ise_mix05": 0.00070601, "kl_spiral": 0.067351,
               "ise_spiral": 0.00491,  # 0.0049 has only 2 significant digits: not taken as the same number
               "hardest_index": 2.0,  # integral values match table cells by chance: always shown
               "other": 0.5, "preset": "quick"}
    (wd / "metrics.json").write_text(json.dumps(metrics))
    text = report.build_report(tmp_path).read_text()
    parse(text)
    shown, _, folded = text.partition("3 more metrics (their values are in errors.csv below)")
    assert folded, "the repeated metrics are folded under one summary line"
    metrics_part = shown[shown.index("<h3>Metrics</h3>"):]
    for key in ("ise_spiral", "hardest_index", "other"):
        assert f"<th>{key}</th>" in metrics_part
    for key in ("kl_mix05", "ise_mix05", "kl_spiral"):
        assert f"<th>{key}</th>" not in metrics_part and f"<th>{key}</th>" in folded
    assert "<th>preset</th>" not in text  # the preset is in the section's sub-line


def test_long_metric_lists_are_laid_out_side_by_side(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "metrics.json").write_text(json.dumps({f"m{i}": i + 0.5 for i in range(30)}))
    text = report.build_report(tmp_path).read_text()
    assert text.count('<table class="metrics">') == 3 and 'class="metrics-grid"' in text
    assert all(f"<th>m{i}</th>" in text for i in range(30))


def test_floors_table_with_feature_spaces(tmp_path):
    one = tmp_path / "one_model"
    one.mkdir()
    (one / "metrics.json").write_text(json.dumps({
        "fd_classifier": 3.5, "fd_classifier_floor": 0.7, "precision": 0.61, "precision_floor": 0.75,
        "fd_vgg16": 12.25, "fd_vgg16_floor": 1.5, "num_samples": 1000, "test_bpd": 3.25}))
    several = tmp_path / "several"
    several.mkdir()
    (several / "metrics.json").write_text(json.dumps({
        "fd_classifier_wavenet": 2.5, "fd_classifier_pixelcnn": 1.75, "fd_classifier_floor": 0.5,
        "recall_wavenet": 0.5, "recall_floor": 0.8, "num_samples": 500, "test_bpd_wavenet": 3.5}))
    text = report.build_report(tmp_path).read_text()
    parse(text)
    sec = text[text.index('id="exp-one_model"'):text.index('id="exp-several"')]
    assert "<thead><tr><th>metric</th><th>model</th><th>real-data floor</th></tr></thead>" in sec
    assert ('<tr><td><code>fd_classifier</code></td><td class="num">3.5</td><td class="num">0.7</td></tr>'
            in sec)
    assert ('<tr><td><code>num_samples</code></td><td class="num">1000</td><td class="num">1000</td></tr>'
            in sec)
    feature_line = re.search(r"Feature spaces: (.*?)</p>", sec).group(1)
    # one clause per feature space, naming its metrics
    assert feature_line.startswith("<code>fd_classifier</code>, <code>precision</code>: penultimate features "
                                   "of the in-project classifier of the dataset")
    assert "; <code>fd_vgg16</code>: VGG16 ImageNet features." in feature_line
    table_end = sec.index("Feature spaces")
    assert "<th>test_bpd</th>" in sec[table_end:] and "<th>fd_classifier</th>" not in sec  # not repeated
    sec = text[text.index('id="exp-several"'):]  # sections are sorted by name: one_model, several
    assert "<th>metric</th><th>wavenet</th><th>pixelcnn</th><th>real-data floor</th>" in sec
    assert ('<tr><td><code>recall</code></td><td class="num">0.5</td><td></td><td class="num">0.8</td></tr>'
            in sec)
    assert "<th>test_bpd_wavenet</th>" in sec


# --------------------------------------------------------------------------- status


def _fits_table(wd, converged):
    (wd / "tables").mkdir(parents=True, exist_ok=True)
    with (wd / "tables" / "fits.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "kl", "best_epoch", "converged"])
        for k, c in enumerate(converged):
            writer.writerow([f"d{k}", 0.1 * (k + 1), 10 + k, c])


def test_fits_that_did_not_converge_need_attention(tmp_path):
    _fits_table(tmp_path / "flows", [True, False, True, False])
    _fits_table(tmp_path / "good", [True, True])
    (tmp_path / "counted").mkdir()
    (tmp_path / "counted" / "metrics.json").write_text(json.dumps({"num_failed_fits": 1, "kl": 0.5}))
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "metrics.json").write_text(json.dumps({"num_failed_fits": 0}))
    text = report.build_report(tmp_path).read_text()
    parse(text)
    sections = {name: status for status, name in re.findall(r'<section class="experiment (\w+)" id="exp-(\w+)"', text)}
    assert sections == {"counted": "attention", "flows": "attention", "good": "ok", "zero": "ok"}
    flows = text[text.index('id="exp-flows"'):text.index('id="exp-good"')]
    assert "2 of 4 fits did not converge (highlighted in fits.csv)" in flows
    assert flows.count('<tr class="notconverged">') == 2 and flows.count('class="false"') == 2
    assert '<span class="badge attention">needs attention</span>' in flows
    counted = text[text.index('id="exp-counted"'):text.index('id="exp-flows"')]
    assert "1 fit did not converge" in counted
    toc = text[:text.index("</nav>")]
    assert toc.count('class="badge attention"') == 2 and "2 of 4 fits did not converge" in toc
    assert "4 experiments · 2 ok · 2 need attention · 0 failed" in text


def test_checks_json(tmp_path):
    for name, checks in [("passing", {"kl_below_0.1": {"passed": True, "detail": "KL 0.05 < 0.1"}}),
                         ("failing", {"kl_below_0.1": {"passed": False, "detail": "KL `0.4` > 0.1"},
                                      "finite": True}),
                         ("broken", ["not", "a", "dict"])]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "checks.json").write_text(json.dumps(checks))
    text = report.build_report(tmp_path).read_text()
    parse(text)
    failing = text[text.index('id="exp-failing"'):text.index('id="exp-passing"')]
    assert '<span class="badge attention">needs attention</span>' in failing
    assert "1 of 2 checks failed" in failing
    assert ('<tr class="notconverged"><td>kl_below_0.1</td><td class="num false">FAILED</td>'
            "<td>KL <code>0.4</code> &gt; 0.1</td></tr>") in failing
    passing = text[text.index('id="exp-passing"'):]
    assert '<span class="badge ok">ok</span>' in passing and "KL 0.05 &lt; 0.1" in passing
    broken = text[text.index('id="exp-broken"'):text.index('id="exp-failing"')]
    assert "checks.json is a list; expected" in broken


def test_resumed_run_shows_total_and_last_run(tmp_path):
    for name, info in [("resumed", {"status": "ok", "seconds_total": 310.0, "seconds_last_run": 12.0}),
                       ("once", {"status": "ok", "seconds_total": 8.0, "seconds_last_run": 8.0}),
                       ("old", {"status": "ok", "seconds": 42.0})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
        (tmp_path / name / "run.json").write_text(json.dumps(info))
    # a runner's own timing of the resumed invocation does not replace the accumulated total
    sections = [{"name": "resumed", "seconds": 12.5}, {"name": "once", "seconds": 8.2}, {"name": "old", "seconds": 43}]
    text = report.build_report(tmp_path, sections).read_text()
    assert "5 min 10 s in all (12.0 s in the last run, resumed)" in text
    assert "· 8.0 s ·" in text and "in all (8.0 s" not in text
    assert "· 43.0 s ·" in text
    assert "total 6 min 01 s" in text  # 310 + 8 + 43


# --------------------------------------------------------------------------- figures and wide tables


def test_figures_open_full_size_without_javascript(tmp_path):
    import matplotlib.pyplot as plt

    wd = tmp_path / "e"
    (wd / "figures").mkdir(parents=True)
    plt.imsave(wd / "figures" / "layers.png", np.zeros((20, 2618)))
    plt.imsave(wd / "figures" / "small.png", np.zeros((20, 30)))
    text = report.build_report(tmp_path).read_text()
    doc = parse(text)
    assert len(doc.srcs) == 2 and text.count("data:image/png;base64,") == 2  # each image inlined once
    ids = re.findall(r'<input type="checkbox" class="zoom" id="([^"]+)">', text)
    fors = re.findall(r'<label for="([^"]+)"', text)
    assert len(ids) == 2 and ids == fors and len(set(ids)) == 2
    assert "layers.png · 2618×20 px, click for full size" in text
    assert "<figcaption>small.png</figcaption>" in text
    assert "input.zoom:checked + label img { max-width: none;" in text
    assert "<script" not in text


def test_wide_tables_scroll_with_first_column_pinned(tmp_path):
    wd = tmp_path / "e"
    (wd / "tables").mkdir(parents=True)
    header = ["sampler"] + [f"exact_moment_column_{i}" for i in range(20)]
    row = ["mala"] + [str(0.123456 * (i + 1)) for i in range(20)]
    (wd / "tables" / "wide.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    (wd / "tables" / "narrow.csv").write_text("a,b\n1,2\n")
    text = report.build_report(tmp_path).read_text()
    assert text.count('<table class="data wide">') == 1 and text.count('<table class="data">') == 1
    assert "scroll it sideways" in text
    assert "table.data.wide td:first-child" in text and ".scroll { overflow: auto;" in text
