"""Readers of the datasets' original file formats, in numpy only.

Each reader checks the format (magic numbers, shapes, row lengths, value ranges, and that every stored number is
finite) and raises `DataFormatError` naming the file, and the row where it applies, when it does not match, so a
truncated, damaged or wrong file never surfaces as a reshape error deep inside TFDS or as a NaN loss. The builders
in `jgen.data.builders` turn these arrays into TFDS examples.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from jgen.data.errors import DataFormatError
from jgen.data.safe_pickle import load_numpy_pickle

__all__ = [
    "read_idx", "read_usps", "usps_to_uint8", "read_stl10_images", "read_stl10_labels", "read_datasaurus",
    "read_mat", "read_olivetti", "read_frey", "read_alphadigits", "DATASAURUS_NAMES", "STL10_SIZE",
]

PathLike = str | os.PathLike

DATASAURUS_NAMES = ("dino", "away", "h_lines", "v_lines", "x_shape", "star", "high_lines", "dots", "circle",
                    "bullseye", "slant_up", "slant_down", "wide_lines")
STL10_SIZE = 96


def _require_finite(path: Path, values: np.ndarray, row: str, expected: str) -> None:
    """Raises `DataFormatError` naming the first row of `values` [N, ...] holding NaN or +-inf.

    `row` names a row in the file's own terms (e.g. "row", "column of 'faces'"); rows and positions are
    counted from 1, as a text editor or MATLAB would show them.
    """
    flat = np.asarray(values).reshape(len(values), -1)
    bad = ~np.isfinite(flat)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.any(axis=1))
    i = int(rows[0])
    j = int(np.flatnonzero(bad[i])[0])
    more = f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""
    raise DataFormatError(path, f"{row} {i + 1}, value {j + 1} is {flat[i, j]}{more}; expected {expected}. "
                                "The file is damaged or not the original: replace it")


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: PathLike, magic: int | None = None) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (MNIST format), gzipped or not.

    The header is the big-endian magic `0x0000 08 ndim` (2049 for label vectors, 2051 for image stacks)
    followed by `ndim` big-endian uint32 sizes, then the raw bytes.

    Args:
      path: `*-idx{1,3}-ubyte[.gz]` file.
      magic: expected magic number (2049 or 2051), or None to accept any unsigned-byte IDX file.

    Returns:
      uint8 array of the shape stored in the header.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as f:
            b = f.read()
    except (OSError, EOFError) as e:
        raise DataFormatError(path, f"cannot read IDX data ({e})") from e
    if len(b) < 4:
        raise DataFormatError(path, "file too short for an IDX header")
    file_magic = struct.unpack(">I", b[:4])[0]
    zero, code, ndim = struct.unpack(">HBB", b[:4])
    if zero != 0 or code != 0x08 or ndim == 0 or (magic is not None and file_magic != magic):
        want = magic if magic is not None else "0x000008NN (unsigned-byte IDX)"
        raise DataFormatError(path, f"bad IDX magic number {file_magic} (expected {want})")
    header = 4 + 4 * ndim
    if len(b) < header:
        raise DataFormatError(path, "file too short for its IDX header")
    shape = struct.unpack(">" + "I" * ndim, b[4:header])
    if len(b) - header != int(np.prod(shape)):
        raise DataFormatError(path, f"IDX header says shape {shape} ({int(np.prod(shape))} bytes) but the "
                                    f"file holds {len(b) - header} data bytes")
    return np.frombuffer(b, np.uint8, offset=header).reshape(shape)


def read_usps(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads an ESL USPS file (`zip.train.gz` / `zip.test.gz`).

    Each row is a digit label followed by 256 grey values in [-1, 1] (a 16x16 image, row-major).

    Returns:
      (images float64[N, 16, 16] in [-1, 1], labels int64[N] in 0..9)
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as f:
            a = np.loadtxt(f, ndmin=2)
    except (OSError, EOFError, ValueError) as e:
        raise DataFormatError(path, f"cannot parse as USPS text rows of 257 numbers ({e})") from e
    if a.shape[1] != 257:
        raise DataFormatError(path, f"rows have {a.shape[1]} values; expected 257 (label + 16x16 pixels)")
    _require_finite(path, a, "row", "finite numbers: a digit label 0..9, then 256 grey values in [-1, 1]")
    labels = a[:, 0]
    if not np.all((labels == np.round(labels)) & (labels >= 0) & (labels <= 9)):
        raise DataFormatError(path, "first column must hold digit labels 0..9")
    x = a[:, 1:]
    if x.min() < -1 - 1e-6 or x.max() > 1 + 1e-6:
        raise DataFormatError(path, f"pixel values must lie in [-1, 1], got [{x.min()}, {x.max()}]")
    return x.reshape(-1, 16, 16), labels.astype(np.int64)


def usps_to_uint8(x: np.ndarray) -> np.ndarray:
    """Maps USPS grey values in [-1, 1] to uint8 0..255 by `round((x + 1) / 2 * 255)`."""
    return np.clip(np.round((np.asarray(x) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def read_stl10_images(path: PathLike, mmap: bool = True) -> np.ndarray:
    """Reads an STL-10 `*_X.bin` file: uint8, each image stored column-major as 3x96x96.

    Returns:
      uint8[N, 96, 96, 3] upright images (a view of a memory map when `mmap`, so the 2.7 GB unlabelled
      file is never read at once).
    """
    path = Path(path)
    size = path.stat().st_size
    per = 3 * STL10_SIZE * STL10_SIZE
    if size == 0 or size % per:
        raise DataFormatError(path, f"size {size} bytes is not a positive multiple of {per} (3x96x96 images)")
    a = np.memmap(path, np.uint8, mode="r") if mmap else np.fromfile(path, np.uint8)
    # Column-major 3x96x96 == row-major [channel, width, height]; reorder to [height, width, channel].
    return a.reshape(-1, 3, STL10_SIZE, STL10_SIZE).transpose(0, 3, 2, 1)


def read_stl10_labels(path: PathLike, num_images: int | None = None) -> np.ndarray:
    """Reads an STL-10 `*_y.bin` file (uint8 labels 1..10) and returns int64 labels 0..9."""
    path = Path(path)
    y = np.fromfile(path, np.uint8)
    if y.size == 0 or y.min() < 1 or y.max() > 10:
        raise DataFormatError(path, "labels must be bytes in 1..10")
    if num_images is not None and y.size != num_images:
        raise DataFormatError(path, f"holds {y.size} labels but the image file holds {num_images} images")
    return y.astype(np.int64) - 1


def read_datasaurus(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads `DatasaurusDozen.tsv` (header `dataset x y`, tab separated, LF or CRLF line ends).

    Returns:
      (names str[N], xy float64[N, 2])
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataFormatError(path, f"cannot read as text ({e})") from e
    if not lines or [h.strip() for h in lines[0].split("\t")] != ["dataset", "x", "y"]:
        raise DataFormatError(path, "expected a tab-separated header 'dataset<TAB>x<TAB>y'")
    names, xy = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        try:
            if len(parts) != 3:
                raise ValueError(f"{len(parts)} fields")
            xy.append((float(parts[1]), float(parts[2])))
        except ValueError as e:
            raise DataFormatError(path, f"line {i}: expected 'name<TAB>x<TAB>y' ({e})") from e
        if not np.all(np.isfinite(xy[-1])):
            raise DataFormatError(path, f"line {i}: x, y = {parts[1]}, {parts[2]}; expected finite numbers. "
                                        "The file is damaged or not the original: replace it")
        names.append(parts[0])
    unknown = sorted(set(names) - set(DATASAURUS_NAMES))
    if unknown:
        raise DataFormatError(path, f"unknown dataset names {unknown}; expected {list(DATASAURUS_NAMES)}")
    return np.asarray(names), np.asarray(xy, np.float64).reshape(-1, 2)


def read_mat(path: PathLike) -> dict:
    """Reads a MATLAB (v4/v5) file with `scipy.io.loadmat`, naming the file on failure."""
    import scipy.io

    path = Path(path)
    try:
        return scipy.io.loadmat(path)
    except Exception as e:  # scipy raises ValueError/TypeError/MatReadError for non-MAT input
        raise DataFormatError(path, f"cannot read as a MATLAB .mat file ({type(e).__name__}: {e})") from e


def read_olivetti(path: PathLike) -> np.ndarray:
    """Reads Roweis's `olivettifaces.mat` (variable `faces`, 4096x400, one column-major image per column).

    Returns:
      uint8[400, 64, 64] upright faces, 10 consecutive images per person for 40 people.
    """
    m = read_mat(path)
    faces = m.get("faces")
    if faces is None or faces.shape != (4096, 400):
        got = None if faces is None else faces.shape
        raise DataFormatError(path, f"expected variable 'faces' of shape (4096, 400), got {got}")
    faces = np.asarray(faces)
    if faces.dtype != np.uint8:
        _require_finite(path, faces.T, "column of 'faces' (image)", "grey values 0..255")
        if faces.min() < 0 or faces.max() > 255:
            raise DataFormatError(path, "'faces' values must lie in 0..255")
        faces = np.round(faces).astype(np.uint8)
    return faces.T.reshape(400, 64, 64).transpose(0, 2, 1)


def read_frey(path: PathLike) -> np.ndarray:
    """Reads the Frey faces: `freyfaces.pkl` (Kingma & Welling's pickle) or Roweis's `frey_rawface.mat`.

    The pickle holds a one-element list with a uint8 (1965, 560) array and is loaded with the restricted
    unpickler `jgen.data.safe_pickle`; the .mat file holds `ff`, uint8 (560, 1965), one image per column.
    Both give row-major 28x20 images (MATLAB `reshape(ff(:, i), 20, 28)'`).

    Returns:
      uint8[1965, 28, 20]
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(6)
    # Decide by content, not name: downloaded files get names derived from their URL.
    is_mat = head.startswith(b"MATLAB") or path.suffix == ".mat"
    if is_mat:
        ff = read_mat(path).get("ff")
        if ff is None or ff.ndim != 2 or ff.shape[0] != 560:
            raise DataFormatError(path, "expected variable 'ff' of shape (560, N)")
        a = np.asarray(ff).T
    else:
        try:
            obj = load_numpy_pickle(path)
        except pickle.UnpicklingError as e:  # refused global: keep the security error type, name the file
            raise pickle.UnpicklingError(f"{path}: {e}") from e
        except Exception as e:
            raise DataFormatError(path, f"cannot unpickle ({type(e).__name__}: {e})") from e
        a = obj[0] if isinstance(obj, (list, tuple)) and len(obj) >= 1 else obj
        if not isinstance(a, np.ndarray):
            raise DataFormatError(path, f"expected a numpy array (or a list holding one), got {type(obj).__name__}")
    if a.ndim != 2 or a.shape[1] != 560:
        raise DataFormatError(path, f"expected images of 560 = 28x20 pixels per row, got shape {a.shape}")
    if a.dtype != np.uint8:
        _require_finite(path, a, "column of 'ff' (image)" if is_mat else "row (image)", "grey values 0..255 (or 0..1)")
        if a.min() < -1e-6 or a.max() > 255 + 1e-6:
            raise DataFormatError(path, f"grey values must lie in 0..255 (or 0..1), got [{a.min()}, {a.max()}]")
        if a.max() <= 1.0 + 1e-6:  # some copies store pixels / 255
            a = a * 255.0
        a = np.clip(np.round(a), 0, 255).astype(np.uint8)
    return a.reshape(-1, 28, 20)


def read_alphadigits(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Reads `binaryalphadigs.mat`: Roweis's original (`dat`, a 36x39 cell of 20x16 arrays) or the
    re-packaged "fea/gnd" version (`fea` uint8 (1404, 320) column-major glyphs, `gnd` classes 1..36).

    Returns:
      (images uint8[1404, 20, 16] in {0, 1}, labels int64[1404] in 0..35: 0-9 digits, 10-35 letters A-Z)
    """
    m = read_mat(path)
    if "dat" in m:
        dat = m["dat"]
        images, labels = [], []
        for c in range(dat.shape[0]):
            for j in range(dat.shape[1]):
                g = np.asarray(dat[c, j])
                if g.shape != (20, 16):
                    raise DataFormatError(path, f"dat[{c}, {j}] has shape {g.shape}; expected (20, 16)")
                images.append(g)
                labels.append(c)
        x, y = np.stack(images), np.asarray(labels, np.int64)
    elif "fea" in m and "gnd" in m:
        fea, gnd = np.asarray(m["fea"]), np.asarray(m["gnd"]).ravel()
        if fea.ndim != 2 or fea.shape[1] != 320 or gnd.shape[0] != fea.shape[0]:
            raise DataFormatError(path, f"expected 'fea' (N, 320) and 'gnd' (N,), got {fea.shape}, {gnd.shape}")
        x = fea.reshape(-1, 16, 20).transpose(0, 2, 1)  # MATLAB column-major 20x16 glyphs
        y = gnd.astype(np.int64) - 1
    else:
        raise DataFormatError(path, f"expected variable 'dat' or 'fea'/'gnd', found {sorted(k for k in m if not k.startswith('__'))}")
    binary = ((x == 0) | (x == 1)).reshape(len(x), -1).all(axis=1)
    if not binary.all():
        i = int(np.flatnonzero(~binary)[0])
        bad = x[i][(x[i] != 0) & (x[i] != 1)].ravel()[0]
        raise DataFormatError(path, f"glyph {i + 1} (class {y[i] + 1}) holds the value {bad}; expected glyph "
                                    "values 0 or 1")
    if y.min() < 0 or y.max() > 35:
        raise DataFormatError(path, "class labels must lie in 1..36")
    return x.astype(np.uint8), y
