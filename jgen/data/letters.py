"""5x5 binary letters A-Z and the one train/test split the CPT and LSTM letter models are compared on.

The 26 letter classes of Binary Alphadigits (39 glyphs each, 20x16) are reduced to 5x5 binary images by
`jgen.data.preprocess.letters_5x5`; the split holds out ``round(test_fraction * 39)`` glyphs of every letter,
chosen by a fixed permutation per letter, so every model that uses the same arguments sees the same letters.
"""

from __future__ import annotations

import functools

import numpy as np

from jgen.data import preprocess
from jgen.data.loading import load

__all__ = ["LETTERS", "split_letters", "letter_splits"]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def split_letters(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: ``round(test_fraction * count)`` items of each class go to the test set.

    Args:
      labels: ``[N]`` class labels.
      test_fraction: fraction of every class held out, in (0, 1).
      seed: seed of the per-class permutations (NumPy ``default_rng``).

    Returns:
      ``(train_idx, test_idx)``: sorted int64 index arrays into ``labels`` that partition ``0..N-1``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: int(round(test_fraction * idx.size))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


@functools.lru_cache(maxsize=4)
def _letters_cached(threshold: float, **load_kwargs) -> tuple[np.ndarray, np.ndarray]:
    raw = load("binary_alphadigits", **load_kwargs)
    return preprocess.letters_5x5(raw["image"], raw["label"], threshold=threshold)


def letter_splits(*, test_fraction: float = 0.2, split_seed: int = 0, threshold: float = 0.5,
                  **load_kwargs) -> dict[str, np.ndarray]:
    """The 5x5 letters split into train and test (loaded and reduced once per process).

    Args:
      test_fraction: fraction of each letter's 39 glyphs held out.
      split_seed: seed of :func:`split_letters`.
      threshold: ink fraction above which a 5x5 pixel is on (`preprocess.letters_5x5`).
      **load_kwargs: passed to `jgen.data.load` (e.g. ``data_dir``).

    Returns:
      ``{"train", "test"}`` uint8 ``[N, 5, 5]`` in {0, 1}, ``"train_labels"``/``"test_labels"`` int64 (0..25
      for A..Z) and ``"train_idx"``/``"test_idx"`` (indices into the 1,014 letters of ``letters_5x5``).
    """
    letters, labels = _letters_cached(float(threshold), **load_kwargs)
    train_idx, test_idx = split_letters(labels, test_fraction, split_seed)
    return {"train": letters[train_idx], "test": letters[test_idx], "train_labels": labels[train_idx],
            "test_labels": labels[test_idx], "train_idx": train_idx, "test_idx": test_idx}
