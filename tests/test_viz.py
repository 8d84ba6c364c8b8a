"""Tests for jgen.viz: saved PNGs, titles/labels, drawn data against references, bad shapes."""

import struct
import subprocess
import sys
from pathlib import Path

import matplotlib
import matplotlib.backends.backend_agg
import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.quiver import Quiver
from scipy import stats

from jgen import viz

RNG = np.random.default_rng(0)
MVN = stats.multivariate_normal(mean=[0.5, -0.25], cov=[[1.0, 0.3], [0.3, 0.5]])


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the PNG IHDR chunk."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", head[16:24])


def titles(fig) -> list[str]:
    out = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    return [t for t in out if t]


def plot_axes(fig):
    """Axes that hold data (colour bars excluded)."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


# ----------------------------------------------------------------------------- every function saves


def _points(n=200, d=2):
    return RNG.normal(size=(n, d))


CASES = {
    "image_grid": lambda p: viz.image_grid(RNG.integers(0, 256, (12, 8, 8, 1), dtype=np.uint8), nrow=4,
                                           title="T image_grid", path=p),
    "image_grid_rgb": lambda p: viz.image_grid(RNG.random((6, 8, 8, 3)), title="T rgb", path=p),
    "collage": lambda p: viz.collage([RNG.random((5, 6, 6)) for _ in range(3)], ["orig", "d=2", "d=5"],
                                     title="T collage", path=p),
    "density_heatmap": lambda p: viz.density_heatmap(MVN.logpdf, n=20, title="T density", path=p),
    "side_by_side": lambda p: viz.side_by_side([("true", MVN.logpdf), ("est", MVN.logpdf)], n=20,
                                               title="T sbs", path=p),
    "layer_scatter": lambda p: viz.layer_scatter([("prior", _points()), ("layer 1", _points())],
                                                 title="T layers", path=p),
    "subplots_panels": lambda p: viz.subplots_panels([RNG.normal(size=(8, 8)) for _ in range(3)],
                                                     ["t=0", "t=1", "t=2"], title="T noising", path=p),
    "scatter2d": lambda p: viz.scatter2d(_points(), title="T scatter", path=p),
    "scatter3d": lambda p: viz.scatter3d(_points(d=3), c=RNG.integers(0, 3, 200), title="T 3d", path=p),
    "trace_plot": lambda p: viz.trace_plot(RNG.normal(size=(2, 50, 2)), ["a", "b"], title="T trace", path=p),
    "autocorrelation_plot": lambda p: viz.autocorrelation_plot(0.8 ** np.arange(20), title="T acf", path=p),
    "histogram_with_density": lambda p: viz.histogram_with_density(RNG.normal(size=500), stats.norm.pdf,
                                                                   title="T hist", path=p),
    "loss_curves": lambda p: viz.loss_curves({"train": np.linspace(2, 1, 30)}, mark_best=True,
                                             title="T loss", path=p),
    "line_plot": lambda p: viz.line_plot(np.arange(10), {"a": np.arange(10) ** 2}, title="T line", path=p),
    "graph_plot": lambda p: viz.graph_plot(_points(6, 3), np.ones((6, 6)), title="T graph", path=p),
    "graph_grid": lambda p: viz.graph_grid([(_points(5, 2), np.ones((5, 5)))] * 3, ncols=2, title="T graphs",
                                           path=p),
    "bar_chart": lambda p: viz.bar_chart(["a", "b"], [1.0, 2.0], errors=[0.1, 0.2], title="T bars", xlabel="x",
                                         ylabel="y", path=p),
}

IMAGE_ONLY = {"image_grid", "image_grid_rgb", "collage", "subplots_panels"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_saves_png_with_title_and_labels(name, tmp_path):
    path = tmp_path / "nested" / "figures" / f"{name}.png"  # parents do not exist yet
    fig = CASES[name](path)
    assert path.is_file() and path.stat().st_size > 2000
    expected = tuple(int(round(v * viz.SAVE_DPI)) for v in fig.get_size_inches())
    assert png_size(path) == expected
    assert any(t.startswith("T ") for t in titles(fig)), titles(fig)
    axes = plot_axes(fig)
    assert any(ax.get_xlabel() for ax in axes), name
    if name not in IMAGE_ONLY:
        assert any(ax.get_ylabel() for ax in axes), name
    if name == "scatter3d":
        assert axes[0].get_zlabel()


def test_no_path_writes_nothing_and_returns_figure(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fig = viz.scatter2d(_points(), title="no file")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert list(tmp_path.iterdir()) == []


def test_global_state_untouched(tmp_path):
    before = dict(matplotlib.rcParams)
    viz.loss_curves({"a": [3.0, 2.0, 1.0]}, path=tmp_path / "a.png")
    assert dict(matplotlib.rcParams) == before
    code = ("import sys, numpy as np; from jgen import viz; "
            f"viz.scatter2d(np.zeros((3, 2)), path={str(tmp_path / 'b.png')!r}); "
            "assert 'matplotlib.pyplot' not in sys.modules, 'viz imported pyplot'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_draws_into_given_axes_and_closes_pyplot_figure(tmp_path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2)
    pts = _points(50)
    out = viz.scatter2d(pts, ax=ax1, title="right", path=tmp_path / "ax.png")
    assert out is fig
    assert ax1.get_title() == "right" and ax0.get_title() == ""
    np.testing.assert_allclose(ax1.collections[0].get_offsets(), pts)
    assert not plt.fignum_exists(fig.number)


# ----------------------------------------------------------------------------- images


def test_normalize_images_rules():
    u8 = np.array([0, 51, 255], dtype=np.uint8)
    np.testing.assert_allclose(viz.normalize_images(u8), [0.0, 0.2, 1.0])
    binary = np.array([0, 1, 1], dtype=np.uint8)  # binarised letters stay black/white
    np.testing.assert_allclose(viz.normalize_images(binary), [0.0, 1.0, 1.0])
    np.testing.assert_allclose(viz.normalize_images(np.array([0.0, 0.25, 1.0])), [0.0, 0.25, 1.0])
    np.testing.assert_allclose(viz.normalize_images(np.array([-1.0, 0.0, 0.5])), [0.0, 0.5, 0.75])
    np.testing.assert_allclose(viz.normalize_images(np.array([-3.0, 1.0, 5.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(viz.normalize_images(np.array([-2.0, 0.0, 3.0]), vmin=-1, vmax=1),
                               [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="both vmin and vmax"):
        viz.normalize_images(u8, vmin=0)


def test_make_grid_places_tiles_and_separators():
    imgs = np.stack([np.full((3, 2), i / 10) for i in range(5)])  # tile i has constant value i/10
    grid = viz.make_grid(imgs, nrow=2, pad=1, pad_value=1.0)
    assert grid.shape == (3 * 3 + 2, 2 * 2 + 1)
    for i in range(5):
        r, c = divmod(i, 2)
        np.testing.assert_allclose(grid[r * 4: r * 4 + 3, c * 3: c * 3 + 2], i / 10)
    np.testing.assert_allclose(grid[3, :], 1.0)  # horizontal separator
    np.testing.assert_allclose(grid[:, 2], 1.0)  # vertical separator
    np.testing.assert_allclose(grid[8:, 3:], 1.0)  # empty sixth cell


def test_image_grid_shows_normalised_mosaic():
    imgs = RNG.uniform(-1, 1, size=(100, 5, 5))
    fig = viz.image_grid(imgs, title="samples")
    ax = fig.axes[0]
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown, viz.make_grid((imgs + 1) / 2, nrow=10, pad=0))
    assert ax.get_xlabel() == "100 images of 5x5 px, 10x10 grid"
    assert len(ax.lines) == 9 + 9  # thin separators between the 10x10 tiles


def test_image_grid_row_labels_and_collage():
    rows = [RNG.random((4, 6, 6)) for _ in range(3)]
    fig = viz.collage(rows, ["original", "d=2", "d=8"], title="recon")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["original", "d=2", "d=8"]
    np.testing.assert_allclose(ax.get_yticks(), [2.5, 8.5, 14.5])  # centres of the 6-px rows
    np.testing.assert_allclose(ax.images[0].get_array()[6:12, :6], rows[1][0])
    with pytest.raises(ValueError, match="one label per grid row"):
        viz.image_grid(RNG.random((12, 4, 4)), nrow=4, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="same shape"):
        viz.collage([RNG.random((4, 6, 6)), RNG.random((3, 6, 6))], ["a", "b"])
    with pytest.raises(ValueError, match="one label per row"):
        viz.collage(rows, ["a"])


@pytest.mark.parametrize("shape", [(28, 28), (4, 8, 8, 2), (0, 8, 8), (2, 3, 4, 5, 1)])
def test_image_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="images"):
        viz.image_grid(np.zeros(shape))


# ----------------------------------------------------------------------------- densities


def test_density_heatmap_matches_scipy_at_pixel_centres():
    xlim, ylim, n = (-2.0, 3.0), (-1.0, 1.0), 25
    fig = viz.density_heatmap(MVN.logpdf, xlim, ylim, n, title="gauss")
    im = fig.axes[0].images[0]
    xs = -2.0 + (np.arange(n) + 0.5) * 5.0 / n
    ys = -1.0 + (np.arange(n) + 0.5) * 2.0 / n
    gx, gy = np.meshgrid(xs, ys)
    np.testing.assert_allclose(im.get_array(), MVN.pdf(np.dstack([gx, gy])), rtol=1e-5)
    assert tuple(im.get_extent()) == (-2.0, 3.0, -1.0, 1.0)
    logfig = viz.density_heatmap(MVN.logpdf, xlim, ylim, n, log=True)
    np.testing.assert_allclose(logfig.axes[0].images[0].get_array(), MVN.logpdf(np.dstack([gx, gy])),
                               rtol=1e-5)


def test_density_heatmap_values_and_errors():
    values = RNG.random((10, 15))
    fig = viz.density_heatmap(values, (0, 1), (0, 2))
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), values)
    with pytest.raises(ValueError, match=r"\[ny, nx\]"):
        viz.density_heatmap(np.ones(10))
    with pytest.raises(ValueError, match="xlim"):
        viz.density_heatmap(values, xlim=(1, 0))
    with pytest.raises(ValueError, match="log densities"):
        viz.density_heatmap(lambda p: np.zeros(3), n=5)


def test_side_by_side_shares_colour_scale():
    a, b = RNG.random((8, 8)), 3 * RNG.random((8, 8)) + 1
    fig = viz.side_by_side([("true", a), ("estimated", b)], title="cmp")
    ims = [ax.images[0] for ax in plot_axes(fig)]
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    for im in ims:
        np.testing.assert_allclose(im.get_clim(), (lo, hi))
    assert len(fig.axes) == 3  # two panels and one shared colour bar
    assert [ax.get_title() for ax in plot_axes(fig)] == ["true", "estimated"]
    sep = viz.side_by_side([("true", a), ("estimated", b)], shared_scale=False)
    np.testing.assert_allclose(plot_axes(sep)[1].images[0].get_clim(), (b.min(), b.max()))
    with pytest.raises(ValueError, match="empty"):
        viz.side_by_side([])


# ----------------------------------------------------------------------------- panels & scatter


def test_layer_scatter_shares_axes_and_draws_points():
    panels = [("prior", _points()), ("layer 1", 3 * _points() + 5)]
    fig = viz.layer_scatter(panels, title="flow")
    axes = plot_axes(fig)
    assert [ax.get_title() for ax in axes] == ["prior", "layer 1"]
    for ax, (_, pts) in zip(axes, panels):
        np.testing.assert_allclose(ax.collections[0].get_offsets(), pts)
    assert axes[0].get_xlim() == axes[1].get_xlim() and axes[0].get_ylim() == axes[1].get_ylim()
    fixed = viz.layer_scatter(panels, lim=(-4, 4))
    assert plot_axes(fixed)[1].get_xlim() == (-4.0, 4.0)
    with pytest.raises(ValueError, match=r"items\[1\] must have shape \[N, 2\]"):
        viz.layer_scatter([("a", _points()), ("b", _points(d=3))])


def test_subplots_panels_images_and_errors():
    items = [RNG.uniform(-1, 1, (6, 6)), RNG.normal(size=(6, 6, 1)) * 3]
    fig = viz.subplots_panels(items, ["t=0", "t=500"], vmin=-1, vmax=1)
    axes = plot_axes(fig)
    np.testing.assert_allclose(axes[0].images[0].get_array(), (items[0] + 1) / 2)
    np.testing.assert_allclose(axes[1].images[0].get_array(), np.clip((items[1][..., 0] + 1) / 2, 0, 1))
    with pytest.raises(ValueError, match="one title per item"):
        viz.subplots_panels(items, ["only one"])
    with pytest.raises(ValueError, match="kind"):
        viz.subplots_panels(items, kind="video")


def test_scatter2d_labels_and_shape_errors():
    pts = _points(90)
    labels = np.repeat([0, 1, 2], 30)
    fig = viz.scatter2d(pts, c=labels, xlabel="u", ylabel="v", axes_off=True)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    np.testing.assert_allclose(np.concatenate([c.get_offsets() for c in ax.collections]),
                               pts[np.argsort(labels, kind="stable")])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("u", "v")
    with pytest.raises(ValueError, match=r"points must have shape \[N, 2\], got shape \(5, 3\)"):
        viz.scatter2d(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="one label per point"):
        viz.scatter2d(pts, c=labels[:10])


def test_scatter3d_shape_errors():
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        viz.scatter3d(np.zeros((5, 2)))
    pts = _points(40, 3)
    fig = viz.scatter3d(pts)
    drawn = np.column_stack([np.ma.getdata(a) for a in fig.axes[0].collections[0]._offsets3d])
    np.testing.assert_allclose(drawn, pts)
    assert fig.axes[0].get_zlabel() == "$x_3$"


# ----------------------------------------------------------------------------- MCMC diagnostics


def test_trace_plot_lines_equal_chains():
    chains = RNG.normal(size=(3, 40, 2))
    fig = viz.trace_plot(chains, ["mu", "sigma"], burn_in=10, reference=[0.0, 1.0])
    axes = plot_axes(fig)
    assert [ax.get_ylabel() for ax in axes] == ["mu", "sigma"]
    for j, ax in enumerate(axes):
        drawn = [line.get_ydata() for line in ax.lines if line.get_label().startswith("chain")]
        np.testing.assert_allclose(np.stack(drawn), chains[:, :, j])
    one_dim = viz.trace_plot(chains[..., 0])
    assert len(plot_axes(one_dim)) == 1
    many = viz.trace_plot(RNG.normal(size=(1, 5, 12)), max_dims=4)
    assert len(plot_axes(many)) == 4 and "first 4 of 12" in many.get_suptitle()
    with pytest.raises(ValueError, match="num_chains, steps"):
        viz.trace_plot(np.zeros(10))
    with pytest.raises(ValueError, match="one name per dimension"):
        viz.trace_plot(chains, ["only"])


def test_autocorrelation_plot():
    acfs = {"rwmh": 0.9 ** np.arange(30), "mala": 0.5 ** np.arange(30)}
    fig = viz.autocorrelation_plot(acfs, max_lag=10)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rwmh", "mala"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 0.5 ** np.arange(11))
    with pytest.raises(ValueError, match="acf"):
        viz.autocorrelation_plot(np.zeros((2, 3, 4)))


def test_histogram_with_density():
    x = RNG.normal(size=2000)
    fig = viz.histogram_with_density(x, stats.norm.pdf, bins=30)
    ax = fig.axes[0]
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    np.testing.assert_allclose(np.sum(heights * widths), 1.0)  # a normalised histogram
    line = ax.lines[0]
    np.testing.assert_allclose(line.get_ydata(), stats.norm.pdf(line.get_xdata()))
    assert line.get_xdata()[0] == pytest.approx(x.min()) and line.get_xdata()[-1] == pytest.approx(x.max())
    grid = np.linspace(-4, 4, 9)
    fig2 = viz.histogram_with_density(x, (grid, stats.norm.pdf(grid)))
    np.testing.assert_allclose(fig2.axes[0].lines[0].get_xdata(), grid)
    with pytest.raises(ValueError, match=r"1-D \[N\]"):
        viz.histogram_with_density(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="same shape"):
        viz.histogram_with_density(x, (grid, grid[:3]))


# ----------------------------------------------------------------------------- curves


def test_ema_is_normalised_exponential_weighting():
    v = RNG.normal(size=25)
    a = 0.8
    expected = [np.sum(a ** (t - np.arange(t + 1)) * v[: t + 1]) / np.sum(a ** (t - np.arange(t + 1)))
                for t in range(v.size)]
    np.testing.assert_allclose(viz.ema(v, a), expected)
    np.testing.assert_allclose(viz.ema(v, 0.0), v)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        viz.ema(v, 1.0)


def test_loss_curves_smoothing_and_best_marker():
    steps = np.arange(0, 100, 5)
    val = (steps - 60.0) ** 2 / 1000 + 1.0  # minimum at step 60
    train = RNG.random(50)
    fig = viz.loss_curves({"train": train, "val": (steps, val)}, smoothing=0.6, mark_best={"val": True},
                          logy=True)
    ax = fig.axes[0]
    smoothed = [l for l in ax.lines if l.get_label() == "train"][0]
    np.testing.assert_allclose(smoothed.get_ydata(), viz.ema(train, 0.6))
    star = [l for l in ax.lines if l.get_label().startswith("best val")][0]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (60, 1.0)
    assert ax.get_yscale() == "log"
    chosen = viz.loss_curves({"val": (steps, val)}, mark_best={"val": 42})  # nearest logged step: 40
    star = [l for l in chosen.axes[0].lines if l.get_label().startswith("best val")][0]
    assert star.get_xdata()[0] == 40
    with pytest.raises(ValueError, match="not curves"):
        viz.loss_curves({"val": val}, mark_best={"train": True})
    with pytest.raises(ValueError, match="same length"):
        viz.loss_curves({"val": (steps, val[:3])})
    with pytest.raises(ValueError, match="non-empty"):
        viz.loss_curves({})


def test_line_plot():
    t = np.arange(1, 101)
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 100))
    fig = viz.line_plot(t, {"alpha_bar": alpha_bar, "1 - alpha_bar": 1 - alpha_bar}, xlabel="t",
                        ylabel="value")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), alpha_bar)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["alpha_bar", "1 - alpha_bar"]
    with pytest.raises(ValueError, match="has 3 values but x has 100"):
        viz.line_plot(t, {"a": [1, 2, 3]})


# ----------------------------------------------------------------------------- graphs


def test_graph_plot_edges():
    X = RNG.normal(size=(7, 3))
    upper = np.triu(RNG.random((7, 7)) < 0.4, k=1).astype(float)
    E = upper + upper.T
    fig = viz.graph_plot(X, E, node_labels=list("abcdefg"))
    ax = fig.axes[0]
    segments = [c for c in ax.collections if isinstance(c, LineCollection)][0].get_segments()
    assert len(segments) == int(upper.sum())
    i, j = np.argwhere(upper)[0]
    np.testing.assert_allclose(segments[0], X[[i, j], :2])
    assert len(ax.texts) == 7
    directed = viz.graph_plot(X, upper)  # not symmetric -> arrows
    quiver = [c for c in directed.axes[0].collections if isinstance(c, Quiver)][0]
    assert quiver.N == int(upper.sum())
    with pytest.raises(ValueError, match=r"f >= 2"):
        viz.graph_plot(X[:, :1], E)
    with pytest.raises(ValueError, match=r"\[7, 7\]"):
        viz.graph_plot(X, E[:5, :5])


def test_graph_grid_counts_upper_triangle_edges():
    upper = np.triu(np.ones((4, 4)), k=1)
    graphs = [(_points(4, 2), upper), (_points(4, 2), upper.T), (_points(4, 2), upper)]
    fig = viz.graph_grid(graphs, titles=["a", "b", "c"], ncols=2)
    drawn = plot_axes(fig)
    assert [ax.get_title() for ax in drawn[:2]] == ["a (6 edges)", "b (0 edges)"]  # only i < j is read
    assert len(drawn) == 4 and not drawn[3].axison  # the empty fourth cell of the 2x2 grid
    with pytest.raises(ValueError, match="one title per graph"):
        viz.graph_grid([(_points(4, 2), upper)], titles=["a", "b"])


def test_bar_chart_bars_and_errors():
    fig = viz.bar_chart(["m1", "m2", "m3"], [3.0, 1.0, 2.0], horizontal=True, annotate=True,
                        hatches=[None, "//", None])
    ax = fig.axes[0]
    np.testing.assert_allclose([p.get_width() for p in ax.patches], [3.0, 1.0, 2.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["m1", "m2", "m3"]
    assert [p.get_hatch() for p in ax.patches] == [None, "//", None]
    assert [t.get_text().strip() for t in ax.texts] == ["3.000", "1.000", "2.000"]
    with pytest.raises(ValueError, match="one label per value"):
        viz.bar_chart(["a"], [1.0, 2.0])


# ----------------------------------------------------------------------------- saving and the figure defects


def _extent(artist, fig):
    return artist.get_window_extent(fig.canvas.get_renderer())


def test_save_figure_widens_a_figure_too_narrow_for_its_title(tmp_path):
    title = "100 gated PixelCNN samples (7x7, 8 bit), a title longer than the grid is wide"
    fig = viz.image_grid(RNG.integers(0, 256, (100, 7, 7), dtype=np.uint8), nrow=10, title=title,
                         path=tmp_path / "grid.png")
    box = _extent(fig.axes[0].title, fig)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.width
    assert png_size(tmp_path / "grid.png") == tuple(int(round(v * viz.SAVE_DPI)) for v in fig.get_size_inches())


def test_save_figure_lays_out_a_pyplot_figure_and_closes_it(tmp_path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2.0, 1.5))
    ax.set_yticks([0, 1], ["a very long tick label", "b"])
    out = viz.save_figure(fig, tmp_path / "sub" / "f.png")
    assert out == tmp_path / "sub" / "f.png" and out.is_file()
    assert fig.get_layout_engine() is not None  # constrained layout keeps the labels inside the figure
    assert not plt.fignum_exists(fig.number)
    plain = matplotlib.figure.Figure(figsize=(2.0, 1.5))
    matplotlib.backends.backend_agg.FigureCanvasAgg(plain)
    ax = plain.subplots()
    ax.set_yticks([0, 1], ["a very long tick label", "b"])
    viz.save_figure(plain, tmp_path / "plain.png")
    assert _extent(ax.get_yticklabels()[0], plain).x0 >= 0


def test_panel_grid_axes_take_viz_plots(tmp_path):
    fig, axes = viz.panel_grid(2, 3, title="grid")
    assert axes.shape == (2, 3) and fig.get_suptitle() == "grid"
    viz.histogram_with_density(RNG.normal(size=100), ax=axes[1, 2], title="h")
    assert axes[1, 2].get_title() == "h"


def test_many_labels_get_distinct_colours_and_a_class_colour_bar():
    """40 person IDs: one colour per person (not a continuous map on which neighbours look alike)."""
    labels = np.repeat(np.arange(40), 3)
    fig = viz.scatter2d(_points(120), c=labels, clabel="person")
    sc = plot_axes(fig)[0].collections[0]
    colours = sc.cmap(sc.norm(sc.get_array()))
    per_class = {tuple(np.round(colours[labels == k][0], 6)) for k in range(40)}
    assert len(per_class) == 40
    for k in range(40):  # every point of a class has its class colour
        np.testing.assert_allclose(colours[labels == k], colours[labels == k][:1].repeat(3, 0))
    bar = [ax for ax in fig.axes if hasattr(ax, "_colorbar")][0]
    assert bar.get_ylabel() == "person"


def test_scatter3d_colour_bar_leaves_the_z_label_visible():
    fig = viz.scatter3d(_points(60, 3), c=RNG.random(60), zlabel="$z_3$", clabel="value")
    fig.draw_without_rendering()
    ax3d = plot_axes(fig)[0]
    bar = [ax for ax in fig.axes if hasattr(ax, "_colorbar")][0]
    zlabel, bar_box = _extent(ax3d.zaxis.label, fig), bar.get_window_extent(fig.canvas.get_renderer())
    assert zlabel.x1 <= bar_box.x0, (zlabel, bar_box)


def test_density_contours_on_pixel_centres():
    fig = viz.scatter2d(_points(50), title="samples with contours")
    ax = fig.axes[0]
    cs = viz.density_contours(MVN.logpdf, (-3, 3), (-2, 2), 40, ax=ax, levels=4)
    # The contour at level c passes through points where the density is c (to grid resolution).
    level, segments = next((lv, seg) for lv, seg in zip(cs.levels, cs.allsegs) if seg)
    vertices = np.concatenate(segments)
    assert np.all(np.abs(vertices[:, 0]) <= 3) and np.all(np.abs(vertices[:, 1]) <= 2)
    np.testing.assert_allclose(MVN.pdf(vertices), level, rtol=0.05, atol=1e-3)
