"""MNIST at 7x7, 8-bit: the one dataset and split every likelihood in jgen's MNIST-7x7 table is measured on.

Digits are area-averaged from 28x28 to 7x7 (4x4 means) and rounded back to 8 bits, so the data stay discrete
with 256 levels; bits/dim are on that 256-level scale. The split: the last 5,000 MNIST training images are a
validation set that is never trained on, the first 55,000 are the training set, and the 10,000 MNIST test
images are the test set.
"""

from __future__ import annotations

import functools

import numpy as np

from jgen.data import preprocess
from jgen.data.loading import load

__all__ = ["IMAGE_SIZE", "NUM_VAL", "load_mnist7", "mnist7_splits"]

IMAGE_SIZE = 7
NUM_VAL = 5000


@functools.lru_cache(maxsize=4)
def _load_mnist7_cached(split: str, **load_kwargs) -> np.ndarray:
    images = load("mnist", split, **load_kwargs)["image"]
    small = np.asarray(preprocess.area_resize(images, IMAGE_SIZE))[..., 0]
    return np.clip(np.round(small), 0, 255).astype(np.uint8)


def load_mnist7(split: str, **load_kwargs) -> np.ndarray:
    """MNIST `split` ("train"/"test") as uint8 [N, 7, 7]: 4x4 area means rounded to 0..255.

    Resized once per process (several experiments of a suite run share it); each call returns a copy.
    """
    return _load_mnist7_cached(split, **load_kwargs).copy()


def mnist7_splits(num_train: int | None = None, **load_kwargs) -> dict[str, np.ndarray]:
    """{"train", "val", "test"} uint8 [N, 7, 7].

    train: the first `num_train` of the first 55,000 training images (all when None); val: the last 5,000
    training images; test: the 10,000 test images.
    """
    full = load_mnist7("train", **load_kwargs)
    train_x, val_x = full[:-NUM_VAL], full[-NUM_VAL:]
    if num_train is not None:
        if not 0 < num_train <= len(train_x):
            raise ValueError(f"num_train must be in 1..{len(train_x)}, got {num_train}")
        train_x = train_x[:num_train]
    return {"train": train_x, "val": val_x, "test": load_mnist7("test", **load_kwargs)}
