"""Plotting for jgen experiments: every figure an experiment saves is drawn here.

Every public function builds a :class:`matplotlib.figure.Figure` with a title and axis labels, returns it,
and, when ``path`` is given, writes a PNG there with :func:`save_figure` (parents created). Keyword names
are the same everywhere: ``title``, ``path``, ``xlabel``, ``ylabel``, ``ax`` (draw into an existing axes;
single-axes plots only), ``cmap``, ``s`` (marker size). Array inputs may be NumPy or JAX arrays.

Modules, one idea each:

* `style`: the house style, new figures, :func:`panel_grid`, :func:`save_figure` (the one way to save);
* `images`: display normalisation, mosaics, labelled image grids, collages;
* `densities`: 2-D densities on pixel-centre grids, heatmaps, side-by-side panels, contours;
* `scatter`: 2-D/3-D scatters coloured by label or value, rows of image or point panels;
* `mcmc`: traces, autocorrelations, histograms against a density;
* `curves`: training curves, generic lines, bar charts of results;
* `graphs`: graphs placed by their node features.
"""

from jgen.viz.curves import bar_chart, ema, line_plot, loss_curves
from jgen.viz.densities import density_contours, density_grid, density_heatmap, side_by_side
from jgen.viz.graphs import graph_grid, graph_plot
from jgen.viz.images import collage, image_grid, make_grid, normalize_images
from jgen.viz.mcmc import autocorrelation_plot, histogram_with_density, trace_plot
from jgen.viz.scatter import layer_scatter, scatter2d, scatter3d, subplots_panels
from jgen.viz.style import PALETTE, SAVE_DPI, panel_grid, save_figure

__all__ = [
    "SAVE_DPI", "PALETTE", "save_figure", "panel_grid",
    "normalize_images", "make_grid", "image_grid", "collage",
    "density_grid", "density_heatmap", "side_by_side", "density_contours",
    "subplots_panels", "layer_scatter", "scatter2d", "scatter3d",
    "trace_plot", "autocorrelation_plot", "histogram_with_density",
    "ema", "loss_curves", "line_plot", "bar_chart",
    "graph_plot", "graph_grid",
]
