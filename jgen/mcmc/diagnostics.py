"""Convergence and efficiency diagnostics for MCMC output (NumPy, float64, on the host).

Every function takes samples shaped `[num_chains, num_draws, *event]` (the layout `sample_chain` returns)
and returns one value per event coordinate, shape `event`.

References:
  Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Buerkner, P.-C. (2021). Rank-normalization,
  folding, and localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis 16(2).
  Geyer, C. J. (1992). Practical Markov chain Monte Carlo. Statistical Science 7(4).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

__all__ = ["acceptance_rate", "autocovariance", "autocorrelation", "split_chains", "rank_normalize",
           "effective_sample_size", "rhat", "mcse_mean", "ess_per_second", "ess_per_gradient"]

_ESS_METHODS = ("bulk", "tail", "mean", "identity")
_RHAT_METHODS = ("rank", "split", "identity")


def _as_chains(samples: Any, min_draws: int = 2) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"samples must be shaped [num_chains, num_draws, ...], got shape {x.shape}")
    if x.shape[1] < min_draws:
        raise ValueError(f"need at least {min_draws} draws per chain, got {x.shape[1]} (shape {x.shape})")
    return x


def acceptance_rate(is_accepted: Any, axis: int | None = None) -> np.ndarray:
    """Fraction of accepted proposals (mean of booleans, or of acceptance probabilities) over `axis`."""
    return np.mean(np.asarray(is_accepted, dtype=np.float64), axis=axis)


def autocovariance(samples: Any) -> np.ndarray:
    """Biased autocovariance of each chain along the draw axis, by FFT.

    `acov[c, k] = 1/N sum_{n < N - k} (x[c, n] - mean_c)(x[c, n + k] - mean_c)`; zero-padding to at least `2N`
    avoids the circular wrap-around.

    Args:
      samples: `[num_chains, num_draws, *event]`.

    Returns:
      `[num_chains, num_draws, *event]`, lag along axis 1.
    """
    x = _as_chains(samples)
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n


def autocorrelation(samples: Any) -> np.ndarray:
    """Autocorrelation of each chain along the draw axis (FFT), 1 at lag 0; shape like `samples`.

    A constant chain has zero variance; its autocorrelation is reported as 1 at lag 0 and 0 elsewhere.
    """
    acov = autocovariance(samples)
    var = acov[:, :1]
    safe = np.where(var > 0, var, 1.0)
    rho = acov / safe
    rho = np.where(var > 0, rho, 0.0)
    rho[:, 0] = 1.0
    return rho


def split_chains(samples: Any) -> np.ndarray:
    """Splits each chain into its first and second halves (the middle draw of an odd length is dropped).

    `[M, N, ...] -> [2M, N // 2, ...]`, the M first halves then the M second halves.
    """
    x = _as_chains(samples, min_draws=4)
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)


def rank_normalize(samples: Any) -> np.ndarray:
    """Rank-normalises draws pooled over all chains (Vehtari et al. 2021, eq. 14).

    `z = Phi^-1((r - 3/8) / (S + 1/4))` with `r` the average rank of each draw among the `S` pooled draws
    (ties get their mean rank, which matters for Metropolis chains that repeat rejected states).
    """
    x = _as_chains(samples)
    m, n = x.shape[:2]
    flat = x.reshape(m * n, -1)
    ranks = stats.rankdata(flat, method="average", axis=0)
    z = special.ndtri((ranks - 0.375) / (m * n + 0.25))
    return z.reshape(x.shape)


def _ess_1d(x: np.ndarray) -> float:
    """Multi-chain ESS of `x: [M, N]` (Vehtari et al. 2021, eqs. 10-11, Geyer's initial monotone sequence)."""
    m, n = x.shape
    if not np.all(np.isfinite(x)):
        return float("nan")
    acov = autocovariance(x)
    chain_var = acov[:, 0] * n / (n - 1.0)
    mean_var = chain_var.mean()
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    if var_plus <= 0:
        return float("nan")
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer's initial positive sequence: keep pairs rho[2k] + rho[2k+1] while positive.
    num_pairs = n // 2
    pairs = rho[:2 * num_pairs].reshape(num_pairs, 2).sum(axis=1)
    negative = np.flatnonzero(pairs < 0)
    keep = int(negative[0]) if negative.size else num_pairs
    # As Stan does, the positive even term of the first dropped pair is kept with weight 1.
    extra = max(rho[2 * keep], 0.0) if keep < num_pairs else 0.0
    pairs = pairs[:keep]
    # Initial monotone sequence: pair sums may only decrease.
    pairs = np.minimum.accumulate(pairs)
    tau = -1.0 + 2.0 * pairs.sum() + extra
    tau = max(tau, 1.0 / np.log10(m * n))  # Stan's cap: antithetic chains cannot exceed ~S log10(S)
    return m * n / tau


def _per_coordinate(fn, x: np.ndarray) -> np.ndarray:
    event = x.shape[2:]
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    out = np.array([fn(flat[:, :, i]) for i in range(flat.shape[2])])
    return out.reshape(event)


def effective_sample_size(samples: Any, method: str = "bulk") -> np.ndarray:
    """Multi-chain effective sample size (Vehtari et al. 2021).

    The within-chain autocorrelations are combined with the between-chain variance
    (`rho_k = 1 - (W - mean_c acov_c(k)) / var_plus`), truncated by Geyer's initial monotone sequence.

    Args:
      samples: `[num_chains, num_draws, *event]`.
      method:
        "bulk": split chains, rank-normalised (the default; robust for heavy tails).
        "tail": the smaller ESS of the 5% and 95% quantile indicators (split chains).
        "mean": split chains, no rank normalisation (the ESS for the Monte Carlo error of the mean).
        "identity": as "mean" without splitting chains.

    Returns:
      ESS per coordinate, shape `event` (NaN for non-finite or constant samples).
    """
    if method not in _ESS_METHODS:
        raise ValueError(f"unknown ESS method {method!r}; expected one of {_ESS_METHODS}")
    x = _as_chains(samples, min_draws=4)
    if method == "identity":
        return _per_coordinate(_ess_1d, x)
    x = split_chains(x)
    if method == "mean":
        return _per_coordinate(_ess_1d, x)
    if method == "bulk":
        return _per_coordinate(_ess_1d, rank_normalize(x))

    def tail(v):
        lo, hi = np.quantile(v, [0.05, 0.95])
        return min(_ess_1d((v <= lo).astype(float)), _ess_1d((v <= hi).astype(float)))

    return _per_coordinate(tail, x)


def _rhat_1d(x: np.ndarray) -> float:
    m, n = x.shape
    if not np.all(np.isfinite(x)):
        return float("nan")
    within = np.mean(np.var(x, axis=1, ddof=1))
    between_div_n = np.var(np.mean(x, axis=1), ddof=1)
    if within <= 0:
        return float("nan")
    return float(np.sqrt(((n - 1.0) / n * within + between_div_n) / within))


def rhat(samples: Any, method: str = "rank") -> np.ndarray:
    """Potential scale reduction factor R-hat (Gelman & Rubin 1992; Vehtari et al. 2021).

    `R = sqrt(var_plus / W)` with `var_plus = (N - 1)/N W + B/N`, `W` the mean within-chain variance and
    `B/N` the variance of the chain means.

    Args:
      samples: `[num_chains, num_draws, *event]`, at least 2 chains when `method="identity"`.
      method:
        "rank": the default of Vehtari et al.: the larger of the split R-hat of the rank-normalised draws
          and of the rank-normalised folded draws `|x - median|` (catches differing means and scales).
        "split": classic split R-hat on the raw draws.
        "identity": R-hat on the raw draws without splitting.

    Returns:
      R-hat per coordinate, shape `event`. Values below 1.01 (rank) / 1.05 indicate convergence.
    """
    if method not in _RHAT_METHODS:
        raise ValueError(f"unknown R-hat method {method!r}; expected one of {_RHAT_METHODS}")
    x = _as_chains(samples, min_draws=4)
    if method == "identity":
        if x.shape[0] < 2:
            raise ValueError(f"R-hat without splitting needs at least 2 chains, got {x.shape[0]}")
        return _per_coordinate(_rhat_1d, x)
    x = split_chains(x)
    if method == "split":
        return _per_coordinate(_rhat_1d, x)
    bulk = _per_coordinate(_rhat_1d, rank_normalize(x))
    folded = np.abs(x - np.median(x, axis=(0, 1), keepdims=True))
    tail = _per_coordinate(_rhat_1d, rank_normalize(folded))
    return np.maximum(bulk, tail)


def mcse_mean(samples: Any) -> np.ndarray:
    """Monte Carlo standard error of the mean, `sd / sqrt(ESS_mean)`, per coordinate."""
    x = _as_chains(samples, min_draws=4)
    sd = np.std(x.reshape(-1, *x.shape[2:]), axis=0, ddof=1)
    return sd / np.sqrt(effective_sample_size(x, method="mean"))


def ess_per_second(ess: Any, seconds: float) -> np.ndarray:
    """Effective samples per second of wall time (pass steady-state time, without compilation)."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    return np.asarray(ess, np.float64) / seconds


def ess_per_gradient(ess: Any, num_gradient_evals: float) -> np.ndarray:
    """Effective samples per evaluation of the log-density gradient (all chains, warm-up included)."""
    if not num_gradient_evals > 0:
        raise ValueError(f"num_gradient_evals must be positive, got {num_gradient_evals}")
    return np.asarray(ess, np.float64) / num_gradient_evals
