"""Conditional probability tables in the exercise's formats: nested lists of arrays, pickles, ``.npz``.

**Table conventions** (a Python list of arrays, as in the exercise; entry index ``k`` is 0-based):

* *probability of one* (the exercise's format, default): entry ``k`` has shape ``(2,) * k`` and is
  indexed ``[x_1][x_2]...[x_k]``; its value is ``p(x_{k+1} = 1 | x_1..x_k)``. Entry 0 is a scalar,
  shape ``()`` or ``(1,)``, holding ``p(x_1 = 1)``. Values must lie in ``[0, 1]``.
* *full conditional*: entry ``k`` has shape ``(2,) * (k + 1)``, indexed ``[x_1]...[x_k][x_{k+1}]``,
  holding the whole distribution ``p(x_{k+1} | x_1..x_k)`` (sums to one over the last axis). It is
  recognised by entry 0 having shape ``(2,)``.

Pickles are read with the restricted :func:`jgen.data.safe_pickle.load_numpy_pickle` (numpy arrays and plain
containers only, no code execution). See :mod:`jgen.autoregressive.cpt` for the flat heap layout.
"""

from __future__ import annotations

import pathlib
import pickle

import numpy as np

from jgen.autoregressive.cpt import num_pixels

__all__ = ["tables_to_flat", "flat_to_tables", "load_cpts", "save_cpts"]


def _check_probabilities(values: np.ndarray, what: str) -> None:
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError(f"{what} must hold real numbers, got dtype {values.dtype}")
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if np.any(bad):
        idx = np.argwhere(bad)[0]
        raise ValueError(f"{what} must hold probabilities in [0, 1]; found {values[tuple(idx)]!r} at index {tuple(idx)}")


def tables_to_flat(tables, *, atol: float = 1e-5) -> np.ndarray:
    """Validates a list of CPTs (either convention, see the module docstring) and flattens it.

    Args:
      tables: list of ``n`` arrays; entry ``k`` of shape ``(2,) * k`` (probability of one; entry 0
        of shape ``()`` or ``(1,)``) or ``(2,) * (k + 1)`` (full conditionals).
      atol: tolerance for full conditionals summing to one over their last axis.

    Returns:
      ``probs [2^n - 1]`` float32 in heap order: ``p(x_{k+1} = 1 | x_1..x_k)`` at ``2^k - 1 + c``.

    Raises:
      ValueError: naming the offending entry, its shape and the expected shape, or a value outside
        ``[0, 1]``.
    """
    if isinstance(tables, np.ndarray) or not isinstance(tables, (list, tuple)):
        raise ValueError(f"CPTs must be a list of arrays (entry k of shape (2,)*k), got {type(tables).__name__}")
    if len(tables) == 0:
        raise ValueError("CPT list is empty; expected one table per pixel")
    if len(tables) > 30:
        raise ValueError(f"got {len(tables)} CPT entries; at most 30 pixels are supported (int32 heap indices)")
    arrays = []
    for k, t in enumerate(tables):
        try:
            arrays.append(np.asarray(t, dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(f"CPT entry {k} is not a numeric array ({type(t).__name__}): {err}") from None
    full = arrays[0].shape == (2,)
    flat = []
    for k, t in enumerate(arrays):
        ctx = "".join(f"[x{j + 1}]" for j in range(k))
        if full:
            want = (2,) * (k + 1)
            if t.shape != want:
                raise ValueError(
                    f"CPT entry {k} has shape {t.shape}, but the full-conditional convention (entry 0 of shape (2,)) "
                    f"expects (2,)*{k + 1} = {want}, indexed {ctx}[x{k + 1}] giving p(x{k + 1} | x1..x{k})")
            _check_probabilities(t, f"CPT entry {k}")
            sums = t.sum(axis=-1)
            if not np.allclose(sums, 1.0, atol=atol):
                raise ValueError(f"CPT entry {k} (full-conditional convention) must sum to 1 over its last axis "
                                 f"(the value of x{k + 1}); sums range over [{sums.min()}, {sums.max()}]")
            flat.append(t[..., 1].ravel())
        else:
            want = (2,) * k
            if k == 0 and t.shape in ((), (1,)):
                flat.append(t.reshape(1))
                _check_probabilities(t, "CPT entry 0 (p(x1 = 1))")
                continue
            if t.shape != want:
                expected = "() or (1,)" if k == 0 else f"(2,)*{k} = {want}"
                raise ValueError(
                    f"CPT entry {k} has shape {t.shape}, expected {expected}: entry k is indexed {ctx or '(scalar)'} "
                    f"and gives p(x{k + 1} = 1 | x1..x{k}) (probability-of-one convention)")
            _check_probabilities(t, f"CPT entry {k}")
            flat.append(t.ravel())
    return np.concatenate(flat).astype(np.float32)


def flat_to_tables(probs) -> list[np.ndarray]:
    """Inverse of :func:`tables_to_flat`: entry ``k`` of shape ``(2,) * k`` (entry 0 of shape ``()``)."""
    probs = np.asarray(probs)
    n = num_pixels(probs)
    return [probs[2**k - 1: 2 ** (k + 1) - 1].reshape((2,) * k) for k in range(n)]


def load_cpts(path) -> np.ndarray:
    """Loads CPTs from a pickle (exercise format) or ``.npz`` and returns the flat table.

    * ``.pkl`` / ``.pickle``: a pickled list of arrays in either convention (module docstring), read
      with the restricted :func:`jgen.data.safe_pickle.load_numpy_pickle` (numpy arrays and plain
      containers only).
    * ``.npz``: either one key ``probs`` holding the flat table, or keys ``cpt_0, cpt_1, ...``.

    Returns:
      ``probs [2^n - 1]`` float32 (see :func:`tables_to_flat`).
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CPT file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        from jgen.data.safe_pickle import load_numpy_pickle  # importing jgen.data loads the TFDS builders

        return tables_to_flat(load_numpy_pickle(path))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "probs" in z.files:
                probs = z["probs"].astype(np.float32)
                num_pixels(probs)
                _check_probabilities(probs, f"{path}: probs")
                return probs
            num = len([k for k in z.files if k.startswith("cpt_")])
            if num == 0:
                raise ValueError(f"{path}: expected key 'probs' or keys cpt_0, cpt_1, ...; got {z.files}")
            return tables_to_flat([z[f"cpt_{k}"] for k in range(num)])
    raise ValueError(f"unsupported CPT file suffix {suffix!r} for {path}; expected .pkl, .pickle or .npz")


def save_cpts(path, probs) -> pathlib.Path:
    """Writes CPTs as a pickle (list of arrays, probability-of-one convention) or ``.npz`` (``probs``)."""
    path = pathlib.Path(path)
    probs = np.asarray(probs, np.float32)
    num_pixels(probs)
    suffix = path.suffix.lower()
    if suffix in (".pkl", ".pickle"):
        with open(path, "wb") as f:
            pickle.dump(flat_to_tables(probs), f, protocol=4)
    elif suffix == ".npz":
        np.savez(path, probs=probs)
    else:
        raise ValueError(f"unsupported CPT file suffix {suffix!r} for {path}; expected .pkl, .pickle or .npz")
    return path
