"""A restricted unpickler for pickles that hold only numpy arrays (and lists/tuples/dicts of them).

`pickle.load` runs arbitrary code named by the pickle (any importable callable). The unpickler here
resolves only the handful of globals that numpy array pickles need and refuses every other one *before*
importing anything, so a malicious file fails with `pickle.UnpicklingError` naming the refused global.
Used by the Frey-faces builder and reusable by any loader of legacy `.pkl` data.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
from typing import Any

import numpy as np

__all__ = ["load_numpy_pickle", "loads_numpy_pickle", "ALLOWED_GLOBALS"]

try:  # numpy >= 2 keeps the implementation in numpy._core; numpy.core is a deprecated alias.
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

try:
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.numeric import _frombuffer
import codecs

_RECONSTRUCT = _multiarray._reconstruct
_SCALAR = _multiarray.scalar

# (module, name) -> object. Both numpy 1 and numpy 2 module paths, and Python 2's `__builtin__`.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED_GLOBALS[(_mod, "_reconstruct")] = _RECONSTRUCT
    ALLOWED_GLOBALS[(_mod, "scalar")] = _SCALAR
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):  # protocol-5 (out-of-band buffer) arrays
    ALLOWED_GLOBALS[(_mod, "_frombuffer")] = _frombuffer
ALLOWED_GLOBALS[("_codecs", "encode")] = codecs.encode  # how protocol 2 spells Python-3 bytes
ALLOWED_GLOBALS[("numpy", "ndarray")] = np.ndarray
ALLOWED_GLOBALS[("numpy", "dtype")] = np.dtype
for _mod in ("builtins", "__builtin__"):
    for _name in ("list", "tuple", "dict"):
        ALLOWED_GLOBALS[(_mod, _name)] = getattr(builtins, _name)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays, dtypes, lists, tuples and dicts "
                "are allowed by jgen.data.safe_pickle") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refusing persistent id {pid!r}: not allowed by jgen.data.safe_pickle")


def loads_numpy_pickle(data: bytes) -> Any:
    """Like `load_numpy_pickle` for bytes in memory."""
    # latin1 decodes Python-2 str payloads of numpy arrays byte for byte.
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_numpy_pickle(path: str | os.PathLike) -> Any:
    """Loads a pickle that may contain only numpy arrays, numpy dtypes, lists, tuples and dicts.

    Python-2 pickles (protocol 0-2, as in many legacy dataset files) are read with `encoding="latin1"`.

    Args:
      path: the pickle file.

    Returns:
      The unpickled object.

    Raises:
      pickle.UnpicklingError: the pickle names any other global (e.g. `posix.system`); the message names it.
    """
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f, encoding="latin1").load()
