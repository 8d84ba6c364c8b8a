"""`load` / `data_source`: prepare a jgen dataset with TFDS (array_record, no TensorFlow) and read it.

Prepared data lives in a cache directory (`cache_dir`, else `$JGEN_TFDS_DIR`, else `~/.cache/jgen/tfds`)
as `<cache>/<name>/<config>/<version>/*.array_record-*`; preparing happens once, under a file lock so
concurrent processes do not race. The cache is keyed by name, config and version only: after changing the
raw files, delete `<cache>/<name>` to prepare again. Raw files come from `data_dir` / `$JGEN_DATA_DIR` (see
`jgen.data.builders`). With `download=False` or `JGEN_OFFLINE=1`, missing raw files raise
`MissingDataError` at once; nothing touches the network.

Reading MNIST's 60,000 training examples into memory takes ~2 s on one CPU core (TFDS decodes one record
at a time in Python; `load` asks for large chunks with `__getitems__`), 5-7 s on a loaded 2-core machine.
So `load` keeps what it decoded, keyed by its arguments and checked against the prepared files (path, size
and modification time of each): within one process in memory (up to `_MEMO_BYTES` in all, handing out
copies: an experiment that reads MNIST in five places decodes it once), and across processes as one `.npz`
per split under `<cache>/decoded/` (splits up to `_DECODED_BYTES`; a copy whose prepared files changed is
decoded again and replaced, so it cannot go stale; deleting that folder is always safe).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tensorflow_datasets as tfds

from jgen.data.builders import BUILDERS, RawFilesBuilder
from jgen.data.errors import DatasetError, UnknownDatasetError, UnknownSplitError

__all__ = ["load", "data_source", "builder", "known_datasets", "default_cache_dir", "is_offline"]

_log = logging.getLogger("jgen.data")
_READ_CHUNK = 8192
_MEMO_BYTES = 512 * 2**20  # larger splits (STL-10's 2.9 GB training images) are read each time
_DECODED_BYTES = 1024 * 2**20  # STL-10's training images (2.9 GB) are decoded each time
_MEMO: dict[tuple, tuple[tuple, dict[str, np.ndarray]]] = {}  # load arguments -> (prepared files, arrays)


def known_datasets() -> list[str]:
    """Names accepted by `load` / `data_source`."""
    return sorted(BUILDERS)


def default_cache_dir() -> Path:
    """`$JGEN_TFDS_DIR`, else `~/.cache/jgen/tfds`: where prepared (array_record) data is kept."""
    return Path(os.environ.get("JGEN_TFDS_DIR") or Path.home() / ".cache" / "jgen" / "tfds").expanduser()


def is_offline() -> bool:
    """True when the environment variable `JGEN_OFFLINE` is set to 1/true/yes."""
    return os.environ.get("JGEN_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Keeps TFDS's INFO logs ("Load dataset info from ...", on every open) out of experiment output."""
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        absl_logger.setLevel(level)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Also silences TFDS progress bars and its stdout banners during preparation (restored after)."""
    from tensorflow_datasets.core.utils import tqdm_utils

    was_active = tqdm_utils._active  # pylint: disable=protected-access
    tqdm_utils.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet_logs():
            yield
    finally:
        tqdm_utils.display_progress_bar(was_active)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_prepared(b: RawFilesBuilder) -> bool:
    # Same test as `b.is_prepared()` without its warning about a missing variant folder.
    return (Path(os.fspath(b.data_path)) / "dataset_info.json").exists()


def _builder_cls(name: str) -> type[RawFilesBuilder]:
    try:
        return BUILDERS[name]
    except (KeyError, TypeError):
        raise UnknownDatasetError(str(name), known_datasets()) from None


def builder(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True,
            cache_dir: str | os.PathLike | None = None, **builder_kwargs: Any) -> RawFilesBuilder:
    """Returns the prepared TFDS builder of dataset `name`, preparing it first if needed.

    Args:
      name: one of `known_datasets()`.
      data_dir: root of the raw files (`<data_dir>/<subdir>/<file>`); default `$JGEN_DATA_DIR`.
      download: allow downloading missing raw files (also disabled by `JGEN_OFFLINE=1`).
      cache_dir: where prepared array_record data is kept; default `default_cache_dir()`.
      **builder_kwargs: dataset options, e.g. `dataset="dino"` for datasaurus.

    Raises:
      UnknownDatasetError, MissingDataError, DataFormatError, DatasetError (any other preparation failure,
      with the original exception chained).
    """
    cls = _builder_cls(name)
    config = cls.config_name(**builder_kwargs)
    cache = _cache_root(cache_dir)
    kwargs = dict(data_dir=os.fspath(cache), config=config, file_format="array_record",
                  raw_dir=data_dir, download=download and not is_offline())

    def make() -> RawFilesBuilder:
        try:
            with _quiet_logs():
                return cls(**kwargs)
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f"cannot open the TFDS builder of {name!r} in {cache}: {type(e).__name__}: {e}") from e

    b = make()
    if _is_prepared(b):
        return b
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(_file_lock(cache / f".{name}.lock"))
        except OSError as e:
            raise DatasetError(f"cannot use the cache directory {cache} ({e}); set JGEN_TFDS_DIR or pass "
                               "cache_dir= to a writable directory") from e
        b = make()  # another process may have prepared it while we waited for the lock
        if _is_prepared(b):
            return b
        t0 = time.perf_counter()
        try:
            with _quiet():
                b.download_and_prepare(
                    file_format="array_record",
                    download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f"preparing dataset {name!r} into {cache} failed: {type(e).__name__}: {e}") from e
        _log.info("jgen.data: prepared %s in %.1f s into %s", name, time.perf_counter() - t0, b.data_dir)
    return b


def data_source(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None,
                download: bool = True, cache_dir: str | os.PathLike | None = None, **builder_kwargs: Any):
    """Random-access TFDS data source (array_record) of one split: `len(ds)`, `ds[i]`, `ds.__getitems__(idx)`.

    Each example is a dict of numpy arrays, e.g. `{"image": uint8[28, 28, 1], "label": int64}` for MNIST.
    `split` may be a TFDS split expression: `"train+unlabelled"` (splits concatenated, STL-10's 105,000
    training images), `"train[:1000]"` (a slice). Other arguments as in `builder`.
    """
    b = builder(name, data_dir=data_dir, download=download, cache_dir=cache_dir, **builder_kwargs)
    splits = list(b.info.splits.keys())
    # TFDS split expressions: "train+unlabelled" (concatenated), "train[:1000]" (sliced); each part must exist.
    if splits and any(part.split("[", 1)[0].strip() not in splits for part in str(split).split("+")):
        raise UnknownSplitError(name, split, splits)
    try:
        with _quiet_logs():
            return b.as_data_source(split)
    except Exception as e:
        raise DatasetError(f"cannot open split {split!r} of {name!r} in {b.data_dir}: {type(e).__name__}: {e}") from e


def load(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None, download: bool = True,
         cache_dir: str | os.PathLike | None = None, **builder_kwargs: Any) -> dict[str, np.ndarray]:
    """Loads a whole split into memory as a dict of stacked numpy arrays.

    Shapes (N examples): mnist `image` uint8[N, 28, 28, 1], `label` int64[N]; usps uint8[N, 16, 16, 1];
    stl10 uint8[N, 96, 96, 3]; datasaurus `xy` float32[N, 2], `dataset` int64[N];
    olivetti_faces uint8[400, 64, 64, 1] + person `label`; frey_faces uint8[1965, 28, 20, 1];
    binary_alphadigits uint8[1404, 20, 16, 1] in {0, 1} + `label` 0..35.

    Example:
      >>> train = jgen.data.load("mnist", "train")          # doctest: +SKIP
      >>> dino = jgen.data.load("datasaurus", dataset="dino")["xy"]  # doctest: +SKIP
    """
    ds = data_source(name, split, data_dir=data_dir, download=download, cache_dir=cache_dir, **builder_kwargs)
    raw = data_dir if data_dir is not None else os.environ.get("JGEN_DATA_DIR")
    key = (name, str(split), str(raw), str(_cache_root(cache_dir).resolve()),
           tuple(sorted((k, repr(v)) for k, v in builder_kwargs.items())))
    files = _prepared_files(_cache_root(cache_dir) / name)
    kept = _MEMO.pop(key, None)  # an entry of files prepared since is dropped here, not left holding memory
    if kept is not None and kept[0] == files:
        _MEMO[key] = kept
        return {k: v.copy() for k, v in kept[1].items()}
    decoded = _cache_root(cache_dir) / "decoded" / f"{name}-{hashlib.sha256(repr(key).encode()).hexdigest()[:16]}.npz"
    out = _read_decoded(decoded, files)
    if out is None:
        out = _read_all(ds, name, split, cache_dir)
        _write_decoded(decoded, files, out)
    size = sum(v.nbytes for v in out.values())
    if size <= _MEMO_BYTES - sum(v.nbytes for _, d in _MEMO.values() for v in d.values()):
        _MEMO[key] = (files, {k: v.copy() for k, v in out.items()})
    return out


def _prepared_files(folder: Path) -> tuple:
    """(path, size, mtime) of every prepared file under `folder`: what `load`'s in-process memo checks."""
    return tuple(sorted((str(p), st.st_size, st.st_mtime_ns) for p in folder.rglob("*") if p.is_file()
                        for st in [p.stat()]))


def _read_decoded(path: Path, files: tuple) -> dict[str, np.ndarray] | None:
    """The arrays of a decoded copy written from exactly these prepared files, else None."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(bytes(z["__files__"]).decode()) != json.loads(json.dumps(files)):
                return None
            return {k: z[k] for k in z.files if k != "__files__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # none yet, or a damaged one
        return None


def _write_decoded(path: Path, files: tuple, arrays: dict[str, np.ndarray]) -> None:
    if (sum(v.nbytes for v in arrays.values()) > _DECODED_BYTES or "__files__" in arrays
            or any(v.dtype == object for v in arrays.values())):
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, __files__=np.frombuffer(json.dumps(files).encode(), np.uint8), **arrays)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old copy or the new one
    except OSError as e:  # a read-only or full cache: decoding again next time is the only cost
        _log.warning(f"could not keep a decoded copy in {path.parent} ({e}); it will be decoded again")


def _read_all(ds, name: str, split: str, cache_dir) -> dict[str, np.ndarray]:
    n = len(ds)
    if n == 0:
        raise DatasetError(f"split {split!r} of {name!r} is empty")
    out: dict[str, np.ndarray] = {}
    try:
        for start in range(0, n, _READ_CHUNK):
            exs = ds.__getitems__(list(range(start, min(n, start + _READ_CHUNK))))
            if not out:
                for k, v in exs[0].items():
                    v = np.asarray(v)
                    out[k] = np.empty((n, *v.shape), v.dtype)
            for k, arr in out.items():
                arr[start:start + len(exs)] = np.stack([e[k] for e in exs])
    except Exception as e:
        raise DatasetError(f"reading split {split!r} of {name!r} failed ({type(e).__name__}: {e}); the prepared "
                           f"files may be damaged: delete {_cache_root(cache_dir) / name} to prepare them again") from e
    return out


def _cache_root(cache_dir) -> Path:
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
