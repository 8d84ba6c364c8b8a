"""Tests for jgen.autoregressive.cpt_io: the exercise's table conventions, pickles and .npz files."""

import os
import pickle

import numpy as np
import pytest

from jgen.autoregressive import cpt, cpt_io


def _random_tables(n, seed=0, lo=0.05, hi=0.95):
    """Exercise format: entry k of shape (2,)*k giving p(x_{k+1}=1 | x_1..x_k); entry 0 a scalar."""
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.uniform(lo, hi, size=(2,) * k)) for k in range(n)]


def test_flat_round_trip_and_both_conventions():
    tables = _random_tables(5)
    probs = cpt_io.tables_to_flat(tables)
    assert probs.shape == (2**5 - 1,) and probs.dtype == np.float32
    assert cpt.num_pixels(probs) == 5
    for t0, t1 in zip(tables, cpt_io.flat_to_tables(probs)):
        np.testing.assert_allclose(t1, t0, rtol=1e-6)
    # Entry 0 may also be shape (1,).
    np.testing.assert_array_equal(cpt_io.tables_to_flat([tables[0].reshape(1)] + tables[1:]), probs)
    # Full conditionals: entry k of shape (2,)*(k+1) with the value of x_{k+1} last.
    full = [np.stack([1 - t, t], axis=-1) for t in tables]
    np.testing.assert_allclose(cpt_io.tables_to_flat(full), probs, rtol=1e-6)


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
        cpt_io.tables_to_flat(tables)


class _Malicious:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_load_cpts_pickle_npz_and_refusal(tmp_path):
    tables = _random_tables(4, seed=8)
    probs = cpt_io.tables_to_flat(tables)
    exercise = tmp_path / "cpts.pkl"
    with open(exercise, "wb") as f:
        pickle.dump([np.asarray(t) for t in tables], f, protocol=2)
    np.testing.assert_array_equal(cpt_io.load_cpts(exercise), probs)
    for name in ("saved.pkl", "saved.npz"):
        np.testing.assert_array_equal(cpt_io.load_cpts(cpt_io.save_cpts(tmp_path / name, probs)), probs)
    bad = tmp_path / "bad.pkl"
    target = tmp_path / "pwned"
    with open(bad, "wb") as f:
        pickle.dump([np.float64(0.5), _Malicious(str(target))], f)
    with pytest.raises(pickle.UnpicklingError):
        cpt_io.load_cpts(bad)
    assert not target.exists()
    wrong = tmp_path / "wrong.pkl"
    with open(wrong, "wb") as f:
        pickle.dump([np.float64(0.5), np.zeros(3)], f)
    with pytest.raises(ValueError, match="entry 1"):
        cpt_io.load_cpts(wrong)
