"""Writers of small raw files in the datasets' official formats (for builder tests).

`poison=(where, row, column)` (0-based) writes NaN at that place, to test that the builders refuse it.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    a = np.asarray(array, np.uint8)
    magic = magic if magic is not None else 0x0800 | a.ndim
    data = struct.pack(">I", magic) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes()
    with gzip.open(path, "wb") as f:
        f.write(data)


def fake_mnist(root: Path, n_train: int = 30, n_test: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    d = root / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", x)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", y)
        out[prefix] = (x, y)
    return out


def fake_usps(root: Path, n_train: int = 9, n_test: int = 5, seed: int = 0, poison=None) -> dict:
    """poison=(file name, row, pixel)."""
    rng = np.random.default_rng(seed)
    d = root / "usps"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, n in (("zip.train.gz", n_train), ("zip.test.gz", n_test)):
        x = np.round(rng.uniform(-1, 1, (n, 256)), 4)
        x[0, :2] = [-1.0, 1.0]
        y = rng.integers(0, 10, n)
        if poison is not None and poison[0] == name:
            x[poison[1], poison[2]] = np.nan
        rows = "\n".join(" ".join([f"{float(l):.4f}"] + [f"{v:.4f}" for v in r]) for l, r in zip(y, x))
        with gzip.open(d / name, "wt") as f:
            f.write(rows + "\n")
        out[name] = (x.reshape(n, 16, 16), y)
    return out


def fake_stl10(root: Path, counts=(5, 4, 3), seed: int = 0) -> dict:
    """Writes *_X.bin in the official layout: each image column-major 3x96x96 (i.e. [c, w, h] row-major)."""
    rng = np.random.default_rng(seed)
    d = root / "stl10" / "stl10_binary"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in zip(("train", "test", "unlabeled"), counts):
        x = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)  # upright [h, w, c]
        x.transpose(0, 3, 2, 1).tofile(d / f"{split}_X.bin")
        y = None
        if split != "unlabeled":
            y = rng.integers(1, 11, n).astype(np.uint8)
            y.tofile(d / f"{split}_y.bin")
        out[split] = (x, y)
    return out


def fake_datasaurus(root: Path, names=("dino", "star", "circle"), n_per: int = 7, seed: int = 0,
                    poison=None) -> dict:
    """poison=(set name, row within the set, 0 for x or 1 for y)."""
    rng = np.random.default_rng(seed)
    d = root / "datasaurus"
    d.mkdir(parents=True, exist_ok=True)
    rows, out = ["dataset\tx\ty"], {}
    for name in names:
        xy = np.round(rng.uniform(0, 100, (n_per, 2)), 4)
        if poison is not None and poison[0] == name:
            xy[poison[1], poison[2]] = np.nan
        out[name] = xy
        rows += [f"{name}\t{a}\t{b}" for a, b in xy]
    (d / "DatasaurusDozen.tsv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    return out


def fake_olivetti(root: Path, seed: int = 0, poison=None) -> np.ndarray:
    """poison=(None, image, pixel of the column-major image); the file then holds float64 faces."""
    import scipy.io

    rng = np.random.default_rng(seed)
    d = root / "olivetti"
    d.mkdir(parents=True, exist_ok=True)
    imgs = rng.integers(0, 243, (400, 64, 64), dtype=np.uint8)
    faces = imgs.transpose(0, 2, 1).reshape(400, 4096).T  # the .mat layout: one column-major image per column
    if poison is not None:
        faces = faces.astype(np.float64)
        faces[poison[2], poison[1]] = np.nan
    scipy.io.savemat(d / "olivettifaces.mat", {"faces": faces})
    return imgs


def fake_frey(root: Path, fmt: str = "pkl", n: int = 11, seed: int = 0, poison=None) -> np.ndarray:
    """`freyfaces.pkl` (a list holding uint8 [N, 560]) or Roweis's `frey_rawface.mat` (ff [560, N]).

    poison=(None, image, pixel); the file then holds float64 pixels.
    """
    import scipy.io

    x = np.random.default_rng(seed).integers(0, 256, (n, 28, 20), dtype=np.uint8)
    d = root / "frey"
    d.mkdir(parents=True, exist_ok=True)
    rows = x.reshape(n, 560)
    if poison is not None:
        rows = rows.astype(np.float64)
        rows[poison[1], poison[2]] = np.nan
    if fmt == "pkl":
        (d / "freyfaces.pkl").write_bytes(pickle.dumps([rows], protocol=0))
    else:  # Roweis's layout: MATLAB reshape(ff(:, i), 20, 28)' gives the image
        scipy.io.savemat(d / "frey_rawface.mat", {"ff": rows.T})
    return x
