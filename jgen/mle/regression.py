"""Linear-Gaussian regression by maximum likelihood, in closed form and by gradient ascent.

The model is ``y = x^T w + eps``, ``eps ~ N(0, sigma^2)``. Setting the gradient of

.. math::
    \\log p(y | X, w, \\sigma^2) = -\\frac{N}{2} \\log(2 \\pi \\sigma^2)
        - \\frac{1}{2 \\sigma^2} \\lVert y - X w \\rVert^2

to zero gives the normal equations ``X^T X w = X^T y`` (least squares) and the biased variance
``sigma^2 = ||y - X w||^2 / N``; gradient ascent on the same objective must reach that point.

References:
  C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), Sec. 3.1.1.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jgen.mle.fitting import ascend, check_finite

__all__ = [
    "LinearGaussianParams",
    "linear_gaussian_log_likelihood",
    "fit_linear_gaussian_closed_form",
    "fit_linear_gaussian_gradient",
]

Array = jax.Array


class LinearGaussianParams(NamedTuple):
    """Parameters of ``y = x^T w + eps``, ``eps ~ N(0, sigma2)``.

    Attributes:
      w: regression weights ``[d]`` (add a column of ones to ``x`` for an intercept).
      sigma2: noise variance, scalar.
    """

    w: Array
    sigma2: Array


def _check_regression_data(x, y) -> tuple[Array, Array]:
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.ndim != 2:
        raise ValueError(f"x must be a design matrix of shape [N, d], got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape [N] = ({x.shape[0]},) to match x {x.shape}, got {y.shape}")
    if x.shape[0] < 1:
        raise ValueError("need at least one observation, got N = 0")
    check_finite("x", x)
    check_finite("y", y)
    return x, y


def linear_gaussian_log_likelihood(params: LinearGaussianParams, x, y) -> Array:
    """Total log-likelihood ``sum_n log N(y_n | x_n^T w, sigma2)`` in nats.

    Args:
      params: :class:`LinearGaussianParams` with ``w [d]`` and scalar ``sigma2 > 0``.
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.

    Returns:
      Scalar log-likelihood (nats, summed over the ``N`` observations).
    """
    x, y = _check_regression_data(x, y)
    resid = y - x @ params.w
    n = y.shape[0]
    return -0.5 * n * jnp.log(2 * jnp.pi * params.sigma2) - 0.5 * jnp.sum(resid**2) / params.sigma2


def fit_linear_gaussian_closed_form(x, y) -> LinearGaussianParams:
    """Closed-form maximum-likelihood estimate of ``(w, sigma2)``.

    ``w`` solves the normal equations ``X^T X w = X^T y`` (computed by least squares, which also
    handles rank-deficient ``X`` by the minimum-norm solution) and ``sigma2 = ||y - X w||^2 / N``
    (the MLE, biased by the factor ``(N - d) / N`` relative to the unbiased estimate).

    Args:
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.

    Returns:
      :class:`LinearGaussianParams` at the maximum of :func:`linear_gaussian_log_likelihood`.

    Raises:
      ValueError: on wrong shapes or NaN/Inf in ``x`` or ``y``.
    """
    x, y = _check_regression_data(x, y)
    w, *_ = jnp.linalg.lstsq(x, y)
    sigma2 = jnp.mean((y - x @ w) ** 2)
    return LinearGaussianParams(w=w, sigma2=sigma2)


def fit_linear_gaussian_gradient(x, y, tx: optax.GradientTransformation, num_steps: int
                                 ) -> tuple[LinearGaussianParams, Array]:
    """Maximum likelihood for ``(w, sigma2)`` by gradient ascent.

    Minimises the negative mean log-likelihood per observation over ``(w, log sigma2)`` (the log keeps
    the variance positive) from ``w = 0``, ``sigma2 = 1``.

    Args:
      x: design matrix ``[N, d]``.
      y: targets ``[N]``.
      tx: the optimizer, ``jgen.optim.make_optimizer(config.optim, num_steps)``.
      num_steps: number of gradient steps.

    Returns:
      ``(params, curve)``: the fitted :class:`LinearGaussianParams` and ``curve [num_steps]``, the
      total log-likelihood (nats) before each step.

    Raises:
      ValueError: on wrong shapes, NaN/Inf in ``x`` or ``y``, or ``num_steps < 1``.
    """
    x, y = _check_regression_data(x, y)
    n = y.shape[0]

    def neg_mean_log_likelihood(theta):
        p = LinearGaussianParams(theta["w"], jnp.exp(theta["log_sigma2"]))
        return -linear_gaussian_log_likelihood(p, x, y) / n

    theta0 = {"w": jnp.zeros(x.shape[1], x.dtype), "log_sigma2": jnp.zeros((), x.dtype)}
    theta, curve = ascend(neg_mean_log_likelihood, theta0, tx, num_steps)
    return LinearGaussianParams(theta["w"], jnp.exp(theta["log_sigma2"])), -curve * n
