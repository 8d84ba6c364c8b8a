"""TFDS builders on small fake raw files in the official formats, plus error messages and mocking."""

from __future__ import annotations

import gzip
import os
import pickle
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

import jgen.data as jd
from jgen.data import builders, raw

from .fakes import fake_datasaurus, fake_frey, fake_mnist, fake_olivetti, fake_stl10, fake_usps, write_idx


def _load(name, split, root, cache, **kw):
    return jd.load(name, split, data_dir=root, cache_dir=cache, download=False, **kw)


def test_mnist_fake_files_roundtrip(tmp_path):
    truth = fake_mnist(tmp_path / "raw")
    for split, prefix in (("train", "train"), ("test", "t10k")):
        d = _load("mnist", split, tmp_path / "raw", tmp_path / "cache")
        x, y = truth[prefix]
        assert d["image"].shape == (len(x), 28, 28, 1) and d["image"].dtype == np.uint8
        assert d["label"].dtype == np.int64
        np.testing.assert_array_equal(d["image"][..., 0], x)  # original order kept (no write-time shuffle)
        np.testing.assert_array_equal(d["label"], y)


def test_data_source_random_access(tmp_path):
    truth = fake_mnist(tmp_path / "raw", n_train=20)
    ds = jd.data_source("mnist", "train", data_dir=tmp_path / "raw", cache_dir=tmp_path / "cache", download=False)
    assert len(ds) == 20
    ex = ds[7]
    np.testing.assert_array_equal(ex["image"][..., 0], truth["train"][0][7])
    got = ds.__getitems__([3, 1])
    assert [int(e["label"]) for e in got] == [int(truth["train"][1][3]), int(truth["train"][1][1])]


def test_prepared_cache_is_reused_without_raw_files(tmp_path):
    fake_mnist(tmp_path / "raw")
    a = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    b = _load("mnist", "test", tmp_path / "elsewhere", tmp_path / "cache")  # no raw files needed any more
    np.testing.assert_array_equal(a["image"], b["image"])


def test_a_split_read_twice_is_decoded_once_and_handed_out_as_copies(tmp_path):
    from jgen.data import loading

    fake_mnist(tmp_path / "raw")
    a = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    a["image"][:] = 0  # the caller's own copy
    with mock.patch.object(loading, "_read_all", side_effect=AssertionError("decoded again")):
        b = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    assert b["image"].max() > 0
    # Prepared files that changed (prepared again) are read again.
    shard = next(p for p in (tmp_path / "cache" / "mnist").rglob("*array_record*"))
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 10**9))
    with mock.patch.object(loading, "_read_all", side_effect=RuntimeError("read")):
        with pytest.raises(RuntimeError, match="read"):
            _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    assert not any(str(tmp_path) in k[3] for k in loading._MEMO)  # the stale copy was dropped


def test_a_new_process_reads_the_decoded_copy_until_the_prepared_files_change(tmp_path, monkeypatch):
    from jgen.data import loading

    fake_mnist(tmp_path / "raw")
    a = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    (copy,) = (tmp_path / "cache" / "decoded").glob("mnist-*.npz")
    monkeypatch.setattr(loading, "_MEMO", {})  # as in a new process
    with mock.patch.object(loading, "_read_all", side_effect=AssertionError("decoded again")):
        b = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert a[k].dtype == b[k].dtype
    shard = next(p for p in (tmp_path / "cache" / "mnist").rglob("*array_record*"))
    os.utime(shard, ns=(shard.stat().st_atime_ns, shard.stat().st_mtime_ns + 10**9))  # prepared again
    monkeypatch.setattr(loading, "_MEMO", {})
    with mock.patch.object(loading, "_read_all", side_effect=RuntimeError("read")):
        with pytest.raises(RuntimeError, match="read"):
            _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    copy.write_bytes(copy.read_bytes()[:100])  # a damaged copy is decoded again and replaced
    monkeypatch.setattr(loading, "_MEMO", {})
    c = _load("mnist", "test", tmp_path / "raw", tmp_path / "cache")
    np.testing.assert_array_equal(a["image"], c["image"])
    assert loading._read_decoded(copy, loading._prepared_files(tmp_path / "cache" / "mnist")) is not None


def test_raw_dir_may_hold_the_files_directly(tmp_path):
    fake_mnist(tmp_path / "raw")
    d = _load("mnist", "test", tmp_path / "raw" / "mnist", tmp_path / "cache")
    assert d["image"].shape[0] == 12


def test_usps(tmp_path):
    truth = fake_usps(tmp_path)
    for split, name in (("train", "zip.train.gz"), ("test", "zip.test.gz")):
        d = _load("usps", split, tmp_path, tmp_path / "cache")
        x, y = truth[name]
        assert d["image"].shape == (len(x), 16, 16, 1) and d["image"].dtype == np.uint8
        np.testing.assert_array_equal(d["image"][..., 0], np.round((x + 1) * 127.5).astype(np.uint8))
        np.testing.assert_array_equal(d["label"], y)
        if split == "train":
            assert d["image"][0, 0, 0, 0] == 0 and d["image"][0, 0, 1, 0] == 255  # -1 -> 0, 1 -> 255


def test_stl10_column_major_layout_is_transposed(tmp_path):
    truth = fake_stl10(tmp_path)
    for split, key in (("train", "train"), ("test", "test"), ("unlabelled", "unlabeled")):
        d = _load("stl10", split, tmp_path, tmp_path / "cache")
        x, y = truth[key]
        assert d["image"].shape == (len(x), 96, 96, 3) and d["image"].dtype == np.uint8
        np.testing.assert_array_equal(d["image"], x)
        np.testing.assert_array_equal(d["label"], -np.ones(len(x)) if y is None else y.astype(np.int64) - 1)


def test_stl10_reader_matches_official_recipe(tmp_path):
    # The STL-10 reference code: reshape(-1, 3, 96, 96) then transpose (0, 3, 2, 1).
    a = np.arange(2 * 3 * 96 * 96, dtype=np.uint32).astype(np.uint8)
    a.tofile(tmp_path / "x.bin")
    np.testing.assert_array_equal(raw.read_stl10_images(tmp_path / "x.bin"),
                                  np.transpose(a.reshape(-1, 3, 96, 96), (0, 3, 2, 1)))


def _fix_mocked_getitems(record_keys, generator, serialized=False):
    # tfds 4.9.10's mock binds `__getitems__` as a plain partial, so the keys land in its `self` argument.
    return [generator[k] for k in record_keys]


def test_stl10_with_tfds_mock_data_at_real_shapes(tmp_path):
    from tensorflow_datasets.testing import mocking

    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = jd.data_source("stl10", "unlabelled", cache_dir=tmp_path, download=False)  # no raw files at all
        assert len(ds) == 5
        assert ds[0]["image"].shape == (96, 96, 3) and ds[0]["image"].dtype == np.uint8
        try:
            ds.__getitems__([0, 1])
            patch = mock.patch.object(mocking, "_getitems", mocking._getitems)  # fixed upstream: no-op
        except TypeError:
            patch = mock.patch.object(mocking, "_getitems", _fix_mocked_getitems)
        with patch:
            d = jd.load("stl10", "train", cache_dir=tmp_path, download=False)
    assert d["image"].shape == (5, 96, 96, 3) and d["image"].dtype == np.uint8
    assert d["label"].shape == (5,) and d["label"].min() >= 0 and d["label"].max() <= 9


def test_datasaurus_configs(tmp_path):
    truth = fake_datasaurus(tmp_path)
    everything = _load("datasaurus", "train", tmp_path, tmp_path / "cache")
    assert everything["xy"].shape == (21, 2) and everything["xy"].dtype == np.float32
    star = _load("datasaurus", "train", tmp_path, tmp_path / "cache", dataset="star")
    np.testing.assert_allclose(star["xy"], truth["star"], rtol=1e-6)
    assert set(star["dataset"]) == {raw.DATASAURUS_NAMES.index("star")}
    with pytest.raises(ValueError, match="no set 'trex'"):
        _load("datasaurus", "train", tmp_path, tmp_path / "cache", dataset="trex")


def test_olivetti(tmp_path):
    imgs = fake_olivetti(tmp_path)
    d = _load("olivetti_faces", "train", tmp_path, tmp_path / "cache")
    assert d["image"].shape == (400, 64, 64, 1)
    np.testing.assert_array_equal(d["image"][..., 0], imgs)
    np.testing.assert_array_equal(d["label"], np.repeat(np.arange(40), 10))


@pytest.mark.parametrize("fmt", ["pkl", "mat"])
def test_frey_pickle_and_mat(tmp_path, fmt):
    x = fake_frey(tmp_path, fmt)
    got = _load("frey_faces", "train", tmp_path, tmp_path / "cache")
    assert set(got) == {"image"}
    np.testing.assert_array_equal(got["image"][..., 0], x)


def test_frey_malicious_pickle_is_refused(tmp_path):
    d = tmp_path / "frey"
    d.mkdir()
    (d / "freyfaces.pkl").write_bytes(pickle.dumps(_Evil(), protocol=0))
    with pytest.raises(jd.DatasetError, match=r"refusing.*system"):
        _load("frey_faces", "train", tmp_path, tmp_path / "cache")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("fmt", ["fea_gnd", "roweis_dat"])
def test_alphadigits_both_mat_layouts(tmp_path, fmt):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (36, 3, 20, 16), dtype=np.uint8)
    d = tmp_path / "binaryalphadigs"
    d.mkdir()
    if fmt == "fea_gnd":
        fea = x.reshape(-1, 20, 16).transpose(0, 2, 1).reshape(-1, 320)  # column-major glyphs
        gnd = np.repeat(np.arange(1, 37), 3)[:, None].astype(np.uint8)
        scipy.io.savemat(d / "binaryalphadigs.mat", {"fea": fea, "gnd": gnd})
    else:
        dat = np.empty((36, 3), dtype=object)
        for c in range(36):
            for j in range(3):
                dat[c, j] = x[c, j]
        scipy.io.savemat(d / "binaryalphadigs.mat", {"dat": dat})
    got = _load("binary_alphadigits", "train", tmp_path, tmp_path / "cache")
    np.testing.assert_array_equal(got["image"][..., 0], x.reshape(-1, 20, 16))
    np.testing.assert_array_equal(got["label"], np.repeat(np.arange(36), 3))


# --- errors ---------------------------------------------------------------------------------------------
def test_unknown_dataset_lists_known_names():
    with pytest.raises(jd.UnknownDatasetError) as e:
        jd.load("cifar10")
    for name in ("mnist", "usps", "stl10", "datasaurus", "olivetti_faces", "frey_faces", "binary_alphadigits"):
        assert name in str(e.value)


def test_unknown_split(tmp_path):
    fake_mnist(tmp_path)
    with pytest.raises(jd.UnknownSplitError, match=r"no split 'validation'.*train"):
        _load("mnist", "validation", tmp_path, tmp_path / "cache")


def test_unexpected_option():
    with pytest.raises(TypeError, match="mnist.*takes no options"):
        jd.load("mnist", colour=True)


def test_missing_files_offline_message(tmp_path):
    with pytest.raises(jd.MissingDataError) as e:
        jd.load("mnist", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=False)
    msg = str(e.value)
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz"):
        assert f in msg
    assert f"{tmp_path}/mnist/" in msg and "JGEN_DATA_DIR" in msg and "'mnist'" in msg
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.suffix != ".lock"]


def test_offline_env_wins_over_download_true(tmp_path, monkeypatch):
    monkeypatch.setenv("JGEN_OFFLINE", "1")
    monkeypatch.setattr(tfds.download.DownloadManager, "download",
                        lambda *a, **k: pytest.fail("a download was attempted"))
    with pytest.raises(jd.MissingDataError, match="olivettifaces.mat"):
        jd.load("olivetti_faces", data_dir=tmp_path, cache_dir=tmp_path / "cache", download=True)


def test_message_without_data_dir_names_the_env_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("JGEN_DATA_DIR", raising=False)
    with pytest.raises(jd.MissingDataError, match=r"\$JGEN_DATA_DIR/binaryalphadigs/"):
        jd.load("binary_alphadigits", cache_dir=tmp_path, download=False)


def test_download_path_uses_official_urls(tmp_path, monkeypatch):
    """With downloads allowed, missing files are fetched through dl_manager.download (network faked)."""
    monkeypatch.setenv("JGEN_OFFLINE", "0")
    src = tmp_path / "pretend_internet"
    fake_usps(src)
    seen = []

    def fake_download(self, urls):
        seen.extend(urls.values())
        return {k: src / "usps" / Path(u).name for k, u in urls.items()}

    monkeypatch.setattr(tfds.download.DownloadManager, "download", fake_download)
    d = jd.load("usps", "test", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache", download=True)
    assert d["image"].shape == (5, 16, 16, 1)
    assert sorted(seen) == ["https://hastie.su.domains/ElemStatLearn/datasets/zip.test.gz",
                            "https://hastie.su.domains/ElemStatLearn/datasets/zip.train.gz"]


def test_failed_download_is_a_missing_data_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JGEN_OFFLINE", "0")

    def no_network(self, urls):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", no_network)
    with pytest.raises(jd.MissingDataError, match=r"(?s)downloading.*failed.*no route to host.*olivettifaces.mat"):
        jd.load("olivetti_faces", data_dir=tmp_path, cache_dir=tmp_path / "cache")


def test_bad_idx_magic_names_the_file(tmp_path):
    fake_mnist(tmp_path)
    bad = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    write_idx(bad, np.zeros((3, 28, 28), np.uint8), magic=2049)
    with pytest.raises(jd.DataFormatError, match=r"train-images-idx3-ubyte.gz: bad IDX magic number 2049"):
        _load("mnist", "train", tmp_path, tmp_path / "cache")
    assert not (tmp_path / "cache" / "mnist" / "1.0.0").exists()  # nothing half-prepared is left behind


def test_truncated_idx_names_the_file(tmp_path):
    fake_mnist(tmp_path)
    p = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(p, "rb") as f:
        b = f.read()
    with gzip.open(p, "wb") as f:
        f.write(b[:-100])
    with pytest.raises(jd.DataFormatError, match="t10k-images-idx3-ubyte.gz: IDX header says shape"):
        _load("mnist", "test", tmp_path, tmp_path / "cache")


def test_usps_wrong_row_length_names_the_file(tmp_path):
    d = tmp_path / "usps"
    d.mkdir()
    for n in ("zip.train.gz", "zip.test.gz"):
        with gzip.open(d / n, "wt") as f:
            f.write("1 " + " ".join(["0.5"] * 100) + "\n")
    with pytest.raises(jd.DataFormatError, match=r"zip.train.gz: rows have 101 values; expected 257"):
        _load("usps", "train", tmp_path, tmp_path / "cache")


def test_stl10_wrong_size_names_the_file(tmp_path):
    fake_stl10(tmp_path)
    p = tmp_path / "stl10" / "stl10_binary" / "test_X.bin"
    p.write_bytes(p.read_bytes()[:-7])
    with pytest.raises(jd.DataFormatError, match=r"test_X.bin: size .* not a positive multiple of 27648"):
        _load("stl10", "test", tmp_path, tmp_path / "cache")


def _fake_alphadigits_with_nan(root):
    fea = np.zeros((36 * 2, 320))
    fea[3, 40] = np.nan
    (root / "binaryalphadigs").mkdir()
    scipy.io.savemat(root / "binaryalphadigs" / "binaryalphadigs.mat",
                     {"fea": fea, "gnd": np.repeat(np.arange(1, 37), 2)[:, None]})


# dataset -> (writes raw files with one NaN, split, the message: file, row (1-based) and what was expected)
NON_FINITE = {
    "usps": (lambda r: fake_usps(r, poison=("zip.train.gz", 2, 16)), "train",
             r"zip.train.gz: row 3, value 18 is nan; expected finite numbers: a digit label 0..9, then 256 grey"),
    "datasaurus": (lambda r: fake_datasaurus(r, poison=("star", 3, 1)), "train",
                   r"DatasaurusDozen.tsv: line 12: x, y = [0-9.]+, nan; expected finite numbers"),
    "olivetti_faces": (lambda r: fake_olivetti(r, poison=(None, 5, 100)), "train",
                       r"olivettifaces.mat: column of 'faces' \(image\) 6, value 101 is nan; expected grey values"),
    "frey_faces": (lambda r: fake_frey(r, "pkl", poison=(None, 4, 7)), "train",
                   r"freyfaces.pkl: row \(image\) 5, value 8 is nan; expected grey values 0..255"),
    "frey_faces_mat": (lambda r: fake_frey(r, "mat", poison=(None, 4, 7)), "train",
                       r"frey_rawface.mat: column of 'ff' \(image\) 5, value 8 is nan; expected grey values"),
    "binary_alphadigits": (_fake_alphadigits_with_nan, "train",
                           r"binaryalphadigs.mat: glyph 4 \(class 2\) holds the value nan; expected glyph values"),
}


@pytest.mark.parametrize("case", sorted(NON_FINITE))
def test_non_finite_raw_values_are_refused_naming_file_and_row(tmp_path, case):
    write, split, match = NON_FINITE[case]
    write(tmp_path)
    name = case.removesuffix("_mat")
    with pytest.raises(jd.DataFormatError, match=match):
        _load(name, split, tmp_path, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob(f"{name}/*/*.array_record*"))  # nothing half-prepared is kept


def test_datasaurus_without_the_requested_set_names_the_sets_it_has(tmp_path):
    fake_datasaurus(tmp_path, names=("star", "away"))
    with pytest.raises(jd.DataFormatError, match=r"DatasaurusDozen.tsv: has no rows of dataset 'dino'; it holds "
                                                 r"\['away', 'star'\]"):
        _load("datasaurus", "train", tmp_path, tmp_path / "cache", dataset="dino")


def test_preparing_leaves_nothing_in_the_temp_directory(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setenv("JGEN_TFDS_DIR", str(tmp_path / "cache"))
    fake_usps(tmp_path / "raw")
    assert tempfile.gettempdir() == str(tmp)
    jd.load("usps", "test", data_dir=tmp_path / "raw", download=False)  # prepares
    jd.load("usps", "train", data_dir=tmp_path / "raw", download=False)  # reads the prepared data
    assert sorted(p.name for p in tmp.iterdir()) == []


def test_unexpected_errors_are_wrapped(tmp_path, monkeypatch):
    fake_mnist(tmp_path)

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(raw, "read_idx", boom)
    with pytest.raises(jd.DatasetError, match=r"preparing dataset 'mnist' .* failed: RuntimeError: disk on fire"):
        _load("mnist", "train", tmp_path, tmp_path / "cache")


def test_builders_are_not_registered_in_the_tfds_catalog():
    for name in builders.BUILDERS:
        assert name not in tfds.core.registered._DATASET_REGISTRY or (
            tfds.core.registered._DATASET_REGISTRY[name] is not builders.BUILDERS[name])


def test_concurrent_preparation_is_serialised(tmp_path):
    import concurrent.futures

    truth = fake_usps(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: _load("usps", "test", tmp_path, tmp_path / "cache"), range(3)))
    for d in results:
        np.testing.assert_array_equal(d["label"], truth["zip.test.gz"][1])


def test_frey_reader_sniffs_mat_content_regardless_of_name(tmp_path):
    x = np.random.default_rng(1).integers(0, 256, (4, 28, 20), dtype=np.uint8)
    scipy.io.savemat(tmp_path / "frey.mat", {"ff": x.reshape(4, 560).T})
    (tmp_path / "frey.mat").rename(tmp_path / "cs.nyu.edu_roweis_frey_rawface_abc123")  # a download name
    np.testing.assert_array_equal(raw.read_frey(tmp_path / "cs.nyu.edu_roweis_frey_rawface_abc123"), x)
