"""Face datasets as the experiments use them: Olivetti and Frey, with train/test splits by image or by person.

    data = olivetti()                                   # {"image": uint8 [400, 64, 64, 1], "label", "index"}
    parts = split(data, test_fraction=0.2, seed=0)      # {"train": {...}, "test": {...}}, same keys
    parts = olivetti_splits(by="person", size=32)       # held-out people, faces area-resized to 32 x 32

Olivetti: 400 upright grey faces of 64 x 64, 10 per person for 40 people; "label" is the person 0..39. Frey:
1,965 grey frames of 28 x 20 of one face (no label). Every image keeps "index", its position in the raw file.

Splits. By image (`by="image"`, what `ppca_faces` uses): a seeded permutation of the images, the first
round(test_fraction N) are held out. By person (`by="person"`, Olivetti only): a seeded permutation of the people,
every image of the first round(test_fraction P) is held out, so the test faces belong to people never seen in
training. `seed` may be a `numpy.random.Generator`, which is then advanced (an experiment can go on drawing from
it). Parts keep the order of the permutation (by image) or of the file (by person).
"""

from __future__ import annotations

import numpy as np

from jgen.data import preprocess
from jgen.data.loading import load

__all__ = ["OLIVETTI_SIZE", "olivetti", "frey", "split", "olivetti_splits", "frey_splits"]

OLIVETTI_SIZE = 64
_BY = ("image", "person")


def olivetti(size: int | None = None, **load_kwargs) -> dict[str, np.ndarray]:
    """All 400 Olivetti faces.

    Args:
      size: output side s; None or 64 keeps the raw 64 x 64, other sizes are area-averaged
        (`preprocess.area_resize`) and rounded back to 8 bits.
      **load_kwargs: for `jgen.data.load` (`data_dir`, `cache_dir`, `download`).

    Returns:
      {"image": uint8 [400, s, s, 1], "label": int64 [400] person 0..39, "index": int64 [400]}.
    """
    data = load("olivetti_faces", **load_kwargs)
    image = data["image"]
    if size is not None and int(size) != OLIVETTI_SIZE:
        if int(size) < 1:
            raise ValueError(f"size must be a positive number of pixels, got {size}")
        image = np.clip(np.round(np.asarray(preprocess.area_resize(image, int(size)))), 0, 255).astype(np.uint8)
    return {"image": image, "label": data["label"], "index": np.arange(len(image), dtype=np.int64)}


def frey(**load_kwargs) -> dict[str, np.ndarray]:
    """All 1,965 Frey faces: {"image": uint8 [1965, 28, 20, 1], "index": int64 [1965] frame number}."""
    image = load("frey_faces", **load_kwargs)["image"]
    return {"image": image, "index": np.arange(len(image), dtype=np.int64)}


def split(data: dict[str, np.ndarray], *, test_fraction: float = 0.2, seed: int | np.random.Generator = 0,
          by: str = "image") -> dict[str, dict[str, np.ndarray]]:
    """Splits a dict of per-image arrays (from `olivetti` / `frey`) into {"train", "test"} (see the module doc).

    Args:
      data: arrays of equal length N; `by="person"` needs "label".
      test_fraction: in [0, 1): share of the images (by image) or of the people (by person) held out.
      seed: int, or a `numpy.random.Generator` to draw from (advanced in place).
      by: "image" or "person".

    Returns:
      {"train": {key: array}, "test": {key: array}}, the keys of `data`.
    """
    if by not in _BY:
        raise ValueError(f"by must be one of {_BY}, got {by!r}")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must lie in [0, 1), got {test_fraction}")
    n = len(data["image"])
    rng = np.random.default_rng(seed)  # returns a Generator unchanged
    if by == "image":
        perm = rng.permutation(n)
        n_test = int(round(test_fraction * n))
        test, train = perm[:n_test], perm[n_test:]
    else:
        if "label" not in data:
            raise ValueError("by='person' needs a 'label' (person) array; Frey faces are all one person: "
                             "split them by='image'")
        people = np.unique(data["label"])
        held = rng.permutation(people)[: int(round(test_fraction * len(people)))]
        is_test = np.isin(data["label"], held)
        test, train = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    return {"train": {k: v[train] for k, v in data.items()},
            "test": {k: v[test] for k, v in data.items()}}


def olivetti_splits(*, by: str = "image", test_fraction: float = 0.2, seed: int | np.random.Generator = 0,
                    size: int | None = None, **load_kwargs) -> dict[str, dict[str, np.ndarray]]:
    """`split(olivetti(size), ...)`: e.g. by="person" for faces of people never seen in training."""
    return split(olivetti(size, **load_kwargs), test_fraction=test_fraction, seed=seed, by=by)


def frey_splits(*, test_fraction: float = 0.2, seed: int | np.random.Generator = 0,
                **load_kwargs) -> dict[str, dict[str, np.ndarray]]:
    """`split(frey(), ...)` by image (one person)."""
    return split(frey(**load_kwargs), test_fraction=test_fraction, seed=seed, by="image")
