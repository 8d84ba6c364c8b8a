"""Tests for jgen.data.letters: the stratified split and the shared 5x5 letters split."""

import numpy as np
import pytest

from jgen.data import letters


def test_split_letters_is_a_stratified_partition():
    labels = np.repeat(np.arange(26), 39)
    train, test = letters.split_letters(labels, 0.2, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=26), np.full(26, 8))  # round(0.2 * 39)
    again, _ = letters.split_letters(labels, 0.2, seed=0)
    other, _ = letters.split_letters(labels, 0.2, seed=1)
    np.testing.assert_array_equal(again, train)
    assert not np.array_equal(other, train)
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        letters.split_letters(labels, 1.0, seed=0)


def test_letter_splits_on_the_real_letters(real_data_dir):
    split = letters.letter_splits()
    assert split["train"].shape == (806, 5, 5) and split["test"].shape == (208, 5, 5)
    assert split["train"].dtype == np.uint8 and set(np.unique(split["train"])) <= {0, 1}
    np.testing.assert_array_equal(np.bincount(split["test_labels"], minlength=26), np.full(26, 8))
    assert np.intersect1d(split["train_idx"], split["test_idx"]).size == 0
    again = letters.letter_splits()
    np.testing.assert_array_equal(again["test"], split["test"])
    again["test"][0] = 1 - again["test"][0]  # callers get their own arrays
    assert not np.array_equal(letters.letter_splits()["test"][0], again["test"][0])
