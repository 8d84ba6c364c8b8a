"""Maximum-likelihood fits: linear-Gaussian regression and a logistic random-graph model.

* `regression`: ``y = x^T w + eps`` in closed form (normal equations) and by gradient ascent;
* `random_graph`: edges ``E_ij ~ Bernoulli(sigmoid(a x_i . x_j + b))``, stacked graph batches, the exact
  log-likelihood, gradient-ascent fits and sampling;
* `graph_io`: graph files (restricted pickles, ``.npz``);
* `fitting`: the finite-data check and the full-batch ascent both fits use.

Graphs are drawn by ``jgen.viz.graph_grid``.
"""

from jgen.mle.graph_io import load_graphs, save_graphs
from jgen.mle.random_graph import (GraphBatch, GraphParams, edge_logits, edge_probabilities, fit_graph_model,
                                   graph_log_likelihood, sample_graphs, stack_graphs, unstack_graphs)
from jgen.mle.regression import (LinearGaussianParams, fit_linear_gaussian_closed_form,
                                 fit_linear_gaussian_gradient, linear_gaussian_log_likelihood)

__all__ = [
    "LinearGaussianParams", "linear_gaussian_log_likelihood", "fit_linear_gaussian_closed_form",
    "fit_linear_gaussian_gradient",
    "GraphParams", "GraphBatch", "stack_graphs", "unstack_graphs", "edge_logits", "edge_probabilities",
    "graph_log_likelihood", "fit_graph_model", "sample_graphs",
    "load_graphs", "save_graphs",
]
