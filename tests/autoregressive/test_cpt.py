"""Tests for jgen.autoregressive.cpt: conditional-probability-table model of binary vectors."""

import itertools
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jgen.autoregressive import cpt


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


def test_flat_round_trip_and_both_conventions():
    tables = _random_tables(5)
    probs = cpt.tables_to_flat(tables)
    assert probs.shape == (2**5 - 1,) and probs.dtype == np.float32
    assert cpt.num_pixels(probs) == 5
    for t0, t1 in zip(tables, cpt.flat_to_tables(probs)):
        np.testing.assert_allclose(t1, t0, rtol=1e-6)
    # Entry 0 may also be shape (1,).
    np.testing.assert_array_equal(cpt.tables_to_flat([tables[0].reshape(1)] + tables[1:]), probs)
    # Full conditionals: entry k of shape (2,)*(k+1) with the value of x_{k+1} last.
    full = [np.stack([1 - t, t], axis=-1) for t in tables]
    np.testing.assert_allclose(cpt.tables_to_flat(full), probs, rtol=1e-6)


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


@pytest.mark.parametrize(
    "tables, match",
    [
        ([], "empty"),
        (np.zeros(3), "list of arrays"),
        ([np.float64(0.5), np.zeros(3)], r"entry 1 has shape \(3,\), expected \(2,\)\*1"),
        ([np.float64(0.5), np.zeros(2), np.zeros((2, 2, 2))], r"entry 2 has shape \(2, 2, 2\)"),
        ([np.zeros((2, 2))], r"entry 0 has shape \(2, 2\), expected \(\) or \(1,\)"),
        ([np.float64(1.5)], r"\[0, 1\]"),
        ([np.float64(0.5), np.array([0.2, np.nan])], r"\[0, 1\]"),
        ([np.float64(0.5), np.array([0.2, -0.1])], r"\[0, 1\]"),
        ([np.array([0.3, 0.7]), np.array([[0.5, 0.6], [0.5, 0.5]])], "sum to 1"),
        ([np.array([0.3, 0.7]), np.zeros(2)], r"full-conditional convention"),
        ([np.float64(0.5), "ab"], "entry 1"),
    ],
)
def test_validation_errors(tables, match):
    with pytest.raises(ValueError, match=match):
        cpt.tables_to_flat(tables)


def test_log_prob_matches_brute_force_and_normalises():
    n = 5
    tables = _random_tables(n, seed=1)
    probs = jnp.asarray(cpt.tables_to_flat(tables))
    x = _all_patterns(n)
    lp = np.asarray(cpt.log_prob(probs, x))
    ref = np.log([_brute_force_prob(tables, row) for row in x])
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(), 1.0, rtol=1e-5)
    # images [batch, h, w] are flattened row-major
    tables4 = _random_tables(4, seed=2)
    p4 = jnp.asarray(cpt.tables_to_flat(tables4))
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
    for alpha in (1.0, 0.5, 0.0):
        probs = cpt.fit_counts(x, alpha=alpha)
        tables = cpt.flat_to_tables(probs)
        for k in range(n):
            for ctx in itertools.product([0, 1], repeat=k):
                rows = np.all(x[:, :k] == np.array(ctx, dtype=x.dtype), axis=1)
                total, ones = rows.sum(), x[rows, k].sum()
                expect = 0.5 if total + 2 * alpha == 0 else (ones + alpha) / (total + 2 * alpha)
                got = tables[k][ctx] if k else tables[0]
                np.testing.assert_allclose(got, expect, rtol=1e-6, err_msg=f"alpha={alpha} k={k} ctx={ctx}")


def test_fit_counts_is_the_maximum_likelihood_estimate():
    """With alpha = 0 the fitted table maximises the training log-likelihood: perturbations lower it."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, size=(200, 3)).astype(np.uint8)
    probs = cpt.fit_counts(x, alpha=0.0)
    best = float(cpt.log_prob(jnp.asarray(probs), x).sum())
    for i in range(probs.size):
        for d in (-0.02, 0.02):
            q = probs.copy()
            q[i] = np.clip(q[i] + d, 1e-3, 1 - 1e-3)
            assert float(cpt.log_prob(jnp.asarray(q), x).sum()) <= best + 1e-4


def test_sampled_patterns_match_table_chisquare():
    n = 4
    tables = _random_tables(n, seed=5, lo=0.1, hi=0.9)
    probs = jnp.asarray(cpt.tables_to_flat(tables))
    num = 200_000
    s = np.asarray(cpt.sample(jax.random.key(0), probs, num))
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
    s = np.asarray(cpt.sample(jax.random.key(1), jnp.asarray(cpt.tables_to_flat(tables)), 1000))
    assert np.all(s == np.array([1, 0, 0]))


def test_sample_then_fit_recovers_table():
    tables = _random_tables(3, seed=6)
    probs = jnp.asarray(cpt.tables_to_flat(tables))
    s = np.asarray(cpt.sample(jax.random.key(2), probs, 100_000))
    np.testing.assert_allclose(cpt.fit_counts(s), probs, atol=0.02)


def test_fit_counts_refuses_large_tables_and_bad_data():
    with pytest.raises(ValueError, match=r"n = 27 pixels.*GiB.*max_pixels = 26"):
        cpt.fit_counts(np.zeros((2, 27), np.uint8))
    with pytest.raises(ValueError, match="max_pixels = 3"):
        cpt.fit_counts(np.zeros((2, 2, 2), np.uint8), max_pixels=3)
    with pytest.raises(ValueError, match="binary"):
        cpt.fit_counts(np.full((3, 4), 2))
    with pytest.raises(ValueError, match="alpha"):
        cpt.fit_counts(np.zeros((3, 4)), alpha=-1.0)
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


class _Malicious:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_load_cpts_pickle_npz_and_refusal(tmp_path):
    tables = _random_tables(4, seed=8)
    probs = cpt.tables_to_flat(tables)
    exercise = tmp_path / "cpts.pkl"
    with open(exercise, "wb") as f:
        pickle.dump([np.asarray(t) for t in tables], f, protocol=2)
    np.testing.assert_array_equal(cpt.load_cpts(exercise), probs)
    for name in ("saved.pkl", "saved.npz"):
        np.testing.assert_array_equal(cpt.load_cpts(cpt.save_cpts(tmp_path / name, probs)), probs)
    bad = tmp_path / "bad.pkl"
    target = tmp_path / "pwned"
    with open(bad, "wb") as f:
        pickle.dump([np.float64(0.5), _Malicious(str(target))], f)
    with pytest.raises(pickle.UnpicklingError):
        cpt.load_cpts(bad)
    assert not target.exists()
    wrong = tmp_path / "wrong.pkl"
    with open(wrong, "wb") as f:
        pickle.dump([np.float64(0.5), np.zeros(3)], f)
    with pytest.raises(ValueError, match="entry 1"):
        cpt.load_cpts(wrong)
