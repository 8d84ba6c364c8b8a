"""Maximum likelihood: linear-Gaussian regression in closed form and by gradient ascent, and a logistic graph model.

Part 1 (regression). Data y = x^T w + eps, eps ~ N(0, sigma^2), with two standard-normal features and an
intercept column. The MLE is w = (X^T X)^{-1} X^T y (normal equations) and sigma^2 = ||y - X w||^2 / N (biased
by (N - d) / N); gradient ascent (the `reg_optim` optimizer on the mean log-likelihood over (w, log sigma^2)) must reach the
same point. Part 2 (random graphs). Nodes carry features x_i ~ U[-1, 1]^3 and each pair i < j is an edge with
probability sigmoid(a x_i . x_j + b). 200 graphs of 30 nodes drawn from (a, b) = (6, -6) (or a graph file given
by `graphs_path`, read with the restricted pickle loader or as .npz) are fitted by gradient ascent on the exact
log-likelihood, vectorised over pairs and graphs; standard errors come from the observed Fisher information
(the Hessian of the log-likelihood). Five graphs generated from the fitted model are rendered.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen import experiment, mle, optim, viz


def get_config(preset: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    # Regression.
    c.reg_num_points = 200
    c.reg_w_true = (2.0, -1.0, 0.5)  # two features, then the intercept
    c.reg_sigma_true = 0.5
    c.reg_steps = 2000
    c.reg_optim = optim.optim_config(name="adam", learning_rate=0.05, schedule="cosine", final_lr_fraction=1e-3)
    # Graph model.
    c.graphs_path = ""  # empty: synthetic graphs from (graph_a_true, graph_b_true)
    c.graph_num_graphs = 200
    c.graph_num_nodes = 30
    c.graph_num_features = 3
    c.graph_a_true = 6.0
    c.graph_b_true = -6.0
    c.graph_steps = 1000 if preset == "full" else 400
    c.graph_optim = optim.optim_config(name="adam", learning_rate=0.5, schedule="cosine", final_lr_fraction=1e-3)
    c.num_generated = 5
    c.generated_num_nodes = 15
    return c


def _regression(config, key, wd) -> dict[str, float]:
    w_true = np.asarray(config.reg_w_true, np.float32)
    n, d = config.reg_num_points, w_true.size
    k_x, k_eps = jax.random.split(key)
    feats = jax.random.normal(k_x, (n, d - 1))
    x = jnp.concatenate([feats, jnp.ones((n, 1))], axis=1)
    y = x @ w_true + config.reg_sigma_true * jax.random.normal(k_eps, (n,))

    closed = mle.fit_linear_gaussian_closed_form(x, y)
    gd, curve = mle.fit_linear_gaussian_gradient(x, y, optim.make_optimizer(config.reg_optim, config.reg_steps),
                                                 config.reg_steps)
    ll_closed = float(mle.linear_gaussian_log_likelihood(closed, x, y))
    ll_true = float(mle.linear_gaussian_log_likelihood(
        mle.LinearGaussianParams(jnp.asarray(w_true), jnp.float32(config.reg_sigma_true**2)), x, y))
    curve = np.asarray(curve)
    wd.log_curve("regression_gd", "log_likelihood", curve)

    steps = np.arange(len(curve))
    viz.line_plot(steps, {"gradient ascent": curve, "closed-form maximum": np.full_like(curve, ll_closed)},
                  title="linear-Gaussian regression: log-likelihood", xlabel="optimizer step",
                  ylabel="log-likelihood (nats)", path=wd.figure_path("regression_loglik"))
    pred = np.asarray(x @ closed.w)
    viz.scatter2d(np.stack([pred, np.asarray(y)], 1), title="regression fit: y vs x^T w_hat",
                  xlabel=r"$x^T \hat w$", ylabel="y", s=8, path=wd.figure_path("regression_fit"))
    rows = [{"parameter": f"w[{i}]", "true": float(w_true[i]), "closed_form": float(closed.w[i]),
             "gradient_ascent": float(gd.w[i])} for i in range(d)]
    rows.append({"parameter": "sigma^2", "true": config.reg_sigma_true**2, "closed_form": float(closed.sigma2),
                 "gradient_ascent": float(gd.sigma2)})
    wd.save_table("regression", rows)
    resid = np.asarray(y - x @ closed.w)
    sigma2_unbiased = float(resid @ resid / (n - d))
    # Standard errors of w_hat: sqrt(diag(sigma^2 (X^T X)^-1)) with the unbiased variance.
    x64 = np.asarray(x, np.float64)
    w_se = np.sqrt(sigma2_unbiased * np.diag(np.linalg.inv(x64.T @ x64)))
    return {
        "reg_w_err": float(jnp.linalg.norm(closed.w - w_true)),
        "reg_w_gd_vs_closed_max_abs": float(jnp.max(jnp.abs(gd.w - closed.w))),
        "reg_sigma2_hat": float(closed.sigma2),
        "reg_sigma2_gd": float(gd.sigma2),
        "reg_sigma2_unbiased": sigma2_unbiased,
        "reg_w_max_abs_z": float(np.max(np.abs(np.asarray(closed.w) - w_true) / w_se)),
        "reg_sigma2_true": config.reg_sigma_true**2,
        "reg_loglik_closed": ll_closed,
        "reg_loglik_gd": float(curve[-1]),
        "reg_loglik_true_params": ll_true,
    }


def _graphs(config, key, wd) -> dict[str, float]:
    k_data, k_gen = jax.random.split(key)
    true = None
    if config.graphs_path:
        batch = mle.stack_graphs(mle.load_graphs(config.graphs_path))
    else:
        true = mle.GraphParams(jnp.float32(config.graph_a_true), jnp.float32(config.graph_b_true))
        batch = mle.sample_graphs(true, k_data, config.graph_num_graphs, num_nodes=config.graph_num_nodes,
                                  num_features=config.graph_num_features)
    params, curve = mle.fit_graph_model(batch, optim.make_optimizer(config.graph_optim, config.graph_steps),
                                        config.graph_steps)
    curve = np.asarray(curve)
    wd.log_curve("graph_gd", "log_likelihood", curve)

    # Observed Fisher information -> asymptotic standard errors of (a, b).
    def ll(theta):
        return mle.graph_log_likelihood(mle.GraphParams(theta[0], theta[1]), batch)

    theta = jnp.stack([params.a, params.b])
    cov = np.linalg.inv(-np.asarray(jax.hessian(ll)(theta), np.float64))
    se = np.sqrt(np.diag(cov))
    grad_norm = float(jnp.linalg.norm(jax.grad(ll)(theta)))

    viz.loss_curves({"log-likelihood": curve}, title="logistic graph model: gradient ascent",
                    xlabel="optimizer step", ylabel="log-likelihood (nats)", path=wd.figure_path("graph_loglik"))
    generated = mle.sample_graphs(params, k_gen, config.num_generated, num_nodes=config.generated_num_nodes,
                                  num_features=batch.features.shape[-1])
    viz.graph_grid(mle.unstack_graphs(generated), titles=[f"sample {i + 1}" for i in range(config.num_generated)],
                   title=f"graphs from the fitted model (a={float(params.a):.2f}, b={float(params.b):.2f})",
                   path=wd.figure_path("generated_graphs"))
    viz.graph_grid(mle.unstack_graphs(batch)[:5], titles=[f"data {i + 1}" for i in range(5)],
                   title="training graphs", path=wd.figure_path("data_graphs"))

    num_pairs = int(batch.num_pairs)
    mask = np.asarray(batch.node_mask)
    upper = np.triu(np.asarray(batch.adjacency), k=1) * mask[:, :, None] * mask[:, None, :]
    metrics = {
        "graph_a_hat": float(params.a),
        "graph_b_hat": float(params.b),
        "graph_a_se": float(se[0]),
        "graph_b_se": float(se[1]),
        "graph_loglik_hat": float(curve[-1]),
        "graph_loglik_per_pair": float(curve[-1]) / num_pairs,
        "graph_grad_norm_at_hat": grad_norm,
        "graph_num_graphs": batch.features.shape[0],
        "graph_num_pairs": num_pairs,
        "graph_edge_density": float(upper.sum() / num_pairs),
    }
    if true is not None:
        metrics.update(graph_a_true=float(true.a), graph_b_true=float(true.b),
                       graph_a_err=abs(float(params.a - true.a)), graph_b_err=abs(float(params.b - true.b)),
                       graph_loglik_true_params=float(mle.graph_log_likelihood(true, batch)))
    wd.save_table("graph_fit", [{"parameter": name, "estimate": metrics[f"graph_{name}_hat"],
                                 "std_error": metrics[f"graph_{name}_se"],
                                 "true": metrics.get(f"graph_{name}_true", float("nan"))} for name in ("a", "b")])
    return metrics


def run(config: ml_collections.ConfigDict, wd: experiment.Workdir) -> dict[str, float]:
    k_reg, k_graph = jax.random.split(jax.random.key(config.seed))
    metrics = _regression(config, k_reg, wd)
    metrics.update(_graphs(config, k_graph, wd))
    return metrics


if __name__ == "__main__":
    experiment.main(get_config, run)
