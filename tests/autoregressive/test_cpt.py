"""Tests for jgen.autoregressive.cpt: conditional-probability-table model of binary vectors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.autoregressive import cpt, cpt_io


def _random_tables(n, seed=0, lo=0.05, hi=0.95):
    """Exercise format: entry k of shape (2,)*k giving p(x_{k+1}=1 | x_1..x_k); entry 0 a scalar."""
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.uniform(lo, hi, size=(2,) * k)) for k in range(n)]


def _all_patterns(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), np.uint8)


def _brute_force_prob(tables, x):
    """p(x) by indexing the nested tables directly, one pixel at a time."""
    p = 1.0
    for k, t in enumerate(tables):
        p1 = float(np.asarray(t)[tuple(x[:k])]) if k else float(np.asarray(t).reshape(()))
        p *= p1 if x[k] else 1.0 - p1
    return p


def test_flat_layout_is_a_heap_over_context_bits():
    x = _all_patterns(4)
    nodes = np.asarray(cpt.context_nodes(x))
    for row, node in zip(x, nodes):
        expect = [0]
        for k in range(3):
            expect.append(2 * expect[-1] + 1 + int(row[k]))
        np.testing.assert_array_equal(node, expect)
        # and equals the C-order offset of the (2,)*k table for context x[:k]
        for k in range(4):
            c = int("".join(map(str, row[:k])) or "0", 2)
            assert node[k] == 2**k - 1 + c


def test_log_prob_matches_brute_force_and_normalises():
    n = 5
    tables = _random_tables(n, seed=1)
    probs = jnp.asarray(cpt_io.tables_to_flat(tables))
    x = _all_patterns(n)
    lp = np.asarray(cpt.log_prob(probs, x))
    ref = np.log([_brute_force_prob(tables, row) for row in x])
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(), 1.0, rtol=1e-5)
    # images [batch, h, w] are flattened row-major
    tables4 = _random_tables(4, seed=2)
    p4 = jnp.asarray(cpt_io.tables_to_flat(tables4))
    imgs = _all_patterns(4).reshape(-1, 2, 2)
    np.testing.assert_allclose(cpt.log_prob(p4, imgs), cpt.log_prob(p4, imgs.reshape(-1, 4)))
    with pytest.raises(ValueError, match="pixels"):
        cpt.log_prob(p4, _all_patterns(5))


def test_fit_counts_equals_brute_force_count():
    rng = np.random.default_rng(3)
    n = 4
    # Correlated data so the counts differ across contexts; some contexts stay unseen.
    x = (rng.uniform(size=(60, n)) < np.array([0.3, 0.6, 0.2, 0.8])).astype(np.uint8)
    x[:, 2] = x[:, 0] | x[:, 2]
    for smoothing in (1.0, 0.5, 0.0):
        probs = cpt.fit_counts(x, smoothing=smoothing)
        tables = cpt_io.flat_to_tables(probs)
        for k in range(n):
            for ctx in itertools.product([0, 1], repeat=k):
                rows = np.all(x[:, :k] == np.array(ctx, dtype=x.dtype), axis=1)
                total, ones = rows.sum(), x[rows, k].sum()
                expect = 0.5 if total + 2 * smoothing == 0 else (ones + smoothing) / (total + 2 * smoothing)
                got = tables[k][ctx] if k else tables[0]
                np.testing.assert_allclose(got, expect, rtol=1e-6, err_msg=f"smoothing={smoothing} k={k} ctx={ctx}")


def test_fit_counts_is_the_maximum_likelihood_estimate():
    """With smoothing = 0 the fitted table maximises the training log-likelihood: perturbations lower it."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, size=(200, 3)).astype(np.uint8)
    probs = cpt.fit_counts(x, smoothing=0.0)
    best = float(cpt.log_prob(jnp.asarray(probs), x).sum())
    for i in range(probs.size):
        for d in (-0.02, 0.02):
            q = probs.copy()
            q[i] = np.clip(q[i] + d, 1e-3, 1 - 1e-3)
            assert float(cpt.log_prob(jnp.asarray(q), x).sum()) <= best + 1e-4


def test_sampled_patterns_match_table_chisquare():
    n = 4
    tables = _random_tables(n, seed=5, lo=0.1, hi=0.9)
    probs = jnp.asarray(cpt_io.tables_to_flat(tables))
    num = 200_000
    s = np.asarray(cpt.sample(probs, jax.random.key(0), num))
    assert s.shape == (num, n) and s.dtype == np.uint8 and set(np.unique(s)) <= {0, 1}
    codes = s @ (2 ** np.arange(n - 1, -1, -1))
    observed = np.bincount(codes, minlength=2**n)
    expected = num * np.exp(np.asarray(cpt.log_prob(probs, _all_patterns(n)), np.float64))
    expected *= num / expected.sum()  # float32 rounding of the table
    result = stats.chisquare(observed, expected)
    assert result.pvalue > 1e-3, result
    # And the per-pixel marginals of the first pixel.
    np.testing.assert_allclose(s[:, 0].mean(), float(tables[0]), atol=4 * np.sqrt(0.25 / num))


def test_deterministic_table_samples_deterministically():
    # p = 0 / 1 entries must be honoured exactly (u in [0, 1)).
    tables = [np.float64(1.0), np.array([0.0, 0.0]), np.array([[1.0, 1.0], [0.0, 1.0]])]
    s = np.asarray(cpt.sample(jnp.asarray(cpt_io.tables_to_flat(tables)), jax.random.key(1), 1000))
    assert np.all(s == np.array([1, 0, 0]))


def test_sample_then_fit_recovers_table():
    tables = _random_tables(3, seed=6)
    probs = jnp.asarray(cpt_io.tables_to_flat(tables))
    s = np.asarray(cpt.sample(probs, jax.random.key(2), 100_000))
    np.testing.assert_allclose(cpt.fit_counts(s), probs, atol=0.02)


def test_fit_counts_refuses_large_tables_and_bad_data():
    with pytest.raises(ValueError, match=r"n = 27 pixels.*GiB.*max_pixels = 26"):
        cpt.fit_counts(np.zeros((2, 27), np.uint8))
    with pytest.raises(ValueError, match="max_pixels = 3"):
        cpt.fit_counts(np.zeros((2, 2, 2), np.uint8), max_pixels=3)
    with pytest.raises(ValueError, match="binary"):
        cpt.fit_counts(np.full((3, 4), 2))
    with pytest.raises(ValueError, match="smoothing"):
        cpt.fit_counts(np.zeros((3, 4)), smoothing=-1.0)
    with pytest.raises(ValueError, match=r"\[batch, n\]"):
        cpt.fit_counts(np.zeros(4))
    with pytest.raises(ValueError, match=r"4\.0 TiB of float32"):
        cpt.fit_counts(np.zeros((1, 40), np.uint8))


def test_fit_counts_25_pixel_images():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2, size=(50, 5, 5)).astype(np.uint8)
    probs = cpt.fit_counts(x)
    assert probs.shape == (2**25 - 1,)
    # Each training image: every context is seen; log-likelihood finite; unseen contexts are 1/2.
    lp = cpt.log_prob(jnp.asarray(probs), x)
    assert np.all(np.isfinite(lp)) and lp.shape == (50,)
    visited = np.zeros(probs.size, bool)
    visited[np.asarray(cpt.context_nodes(x)).ravel()] = True
    assert visited.sum() <= 50 * 25
    assert np.all(probs[~visited] == 0.5)
    assert np.all((probs[visited] > 0) & (probs[visited] < 1))
