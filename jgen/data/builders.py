"""TFDS builders (no TensorFlow) for jgen's datasets: raw files -> array_record -> random-access source.

Every builder is a `tfds.core.GeneratorBasedBuilder` with only `Tensor`/`ClassLabel` features (TFDS image
features would need TensorFlow to encode PNGs). Images are stored as raw bytes (`encoding="bytes"`), which
makes preparation ~3x faster than TFDS's default int64 lists and decoding a single `np.frombuffer`.
Shuffling at write time is disabled so record `i` is example `i` of the original file (e.g. Olivetti
person order is kept); `jgen.data.BatchIterator` does the shuffling.

Raw files are looked up in `<raw root>/<RAW_SUBDIR>/` and then `<raw root>/`, where the raw root is the
`raw_dir` argument or `$JGEN_DATA_DIR`. When they are missing and downloading is allowed, they are fetched
with `dl_manager.download` from the dataset's public source; otherwise `MissingDataError` says which files to
put where. Builders are registered nowhere (`skip_registration=True`), so their names never clash with the
TFDS catalog; use them through `jgen.data.load` / `jgen.data.data_source`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jgen.data import raw
from jgen.data.errors import DataFormatError, MissingDataError

__all__ = [
    "RawFile", "RawFilesBuilder", "Mnist", "Usps", "Stl10", "Datasaurus", "OlivettiFaces", "FreyFaces",
    "BinaryAlphadigits", "BUILDERS",
]

_Tensor = tfds.features.Tensor
_ClassLabel = tfds.features.ClassLabel


def _image(shape: tuple[int, ...]) -> tfds.features.Tensor:
    return _Tensor(shape=shape, dtype=np.uint8, encoding="bytes")


class _LocalDatasetInfo(tfds.core.DatasetInfo):
    """DatasetInfo of a dataset that exists only locally (never in TFDS's GCS bucket)."""

    def initialize_from_bucket(self) -> None:
        # TFDS calls this for every builder whose data is not prepared yet; it makes a `tmp*tfds` directory
        # before looking the name up in its bucket and never removes it. jgen's datasets are not in the
        # bucket, so there is nothing to fetch.
        return None


@dataclasses.dataclass(frozen=True)
class RawFile:
    """One raw input file: its canonical name, accepted alternative names, and where to download it."""

    name: str
    url: str | None
    alternatives: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alternatives)

    def describe(self) -> str:
        return self.name + (f" (or {' or '.join(self.alternatives)})" if self.alternatives else "")


class RawFilesBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base class: locates (or downloads) the raw files, then the subclass generates examples from them.

    Args:
      raw_dir: root directory holding `<RAW_SUBDIR>/<file>`; defaults to `$JGEN_DATA_DIR`.
      download: whether missing raw files may be downloaded from their public source.
      **kwargs: forwarded to `tfds.core.GeneratorBasedBuilder` (`data_dir` = prepared-data cache, `config`,
        `file_format`).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "First jgen release."}
    RAW_SUBDIR: ClassVar[str]
    RAW_FILES: ClassVar[tuple[RawFile, ...]]
    HOMEPAGE: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""

    def __init__(self, *, raw_dir: str | os.PathLike | None = None, download: bool = True, **kwargs: Any):
        self.raw_root = raw_dir if raw_dir is not None else os.environ.get("JGEN_DATA_DIR") or None
        self.allow_download = download
        super().__init__(**kwargs)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS's own lookup touches `importlib_resources` (a backport it declares only for Python < 3.9) for
        # builders outside its package; the defining file is all it needs (to look for a checksums file).
        return epath.Path(inspect.getfile(cls))

    @classmethod
    def config_name(cls, **builder_kwargs: Any) -> str | None:
        """Maps `jgen.data.load(..., **builder_kwargs)` to a builder config name (None: the default)."""
        if builder_kwargs:
            raise TypeError(f"dataset {cls.name!r} takes no options, got {sorted(builder_kwargs)}")
        return None

    @classmethod
    def raw_directory_hint(cls, raw_root: str | os.PathLike | None) -> str:
        """Where the raw files should go, as shown in error messages."""
        root = str(raw_root) if raw_root else "$JGEN_DATA_DIR"
        return f"{root.rstrip('/')}/{cls.RAW_SUBDIR}"

    def _features(self) -> tfds.features.FeaturesDict:
        raise NotImplementedError

    def _info(self) -> tfds.core.DatasetInfo:
        return _LocalDatasetInfo(
            builder=self, description=(self.__doc__ or "").strip(), features=self._features(),
            homepage=self.HOMEPAGE, citation=self.CITATION, disable_shuffling=True)

    # --- locating raw files -------------------------------------------------------------------------------
    def _search_dirs(self) -> list[Path]:
        if not self.raw_root:
            return []
        root = Path(self.raw_root).expanduser()
        return [root / self.RAW_SUBDIR, root]

    def find_local(self, f: RawFile) -> Path | None:
        """The first existing file among `f`'s accepted names in the search directories."""
        for d in self._search_dirs():
            for n in f.names:
                if (d / n).is_file():
                    return d / n
        return None

    def missing_error(self, reason: str = "downloading is disabled") -> MissingDataError:
        return MissingDataError(self.name, [f.describe() for f in self.RAW_FILES],
                                self.raw_directory_hint(self.raw_root), reason)

    def _raw_paths(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Path]:
        """Canonical file name -> local path, downloading what is missing if allowed."""
        paths = {f.name: self.find_local(f) for f in self.RAW_FILES}
        missing = [f for f in self.RAW_FILES if paths[f.name] is None]
        if not missing:
            return paths
        if not self.allow_download:
            raise self.missing_error()
        urls = {f.name: f.url for f in missing}
        try:
            got = dl_manager.download(urls)
        except Exception as e:
            raise self.missing_error(f"downloading {list(urls.values())} failed ({type(e).__name__}: {e})") from e
        paths.update({k: Path(os.fspath(v)) for k, v in got.items()})
        return paths


# ---------------------------------------------------------------------------------------------------------
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"  # public mirror of LeCun's files


class Mnist(RawFilesBuilder, skip_registration=True):
    """MNIST handwritten digits: 60,000 train / 10,000 test 28x28 grey images, labels 0..9."""

    name = "mnist"
    RAW_SUBDIR = "mnist"
    RAW_FILES = tuple(RawFile(f"{n}.gz", f"{_MNIST_URL}{n}.gz", (n,)) for n in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"
    CITATION = "LeCun, Bottou, Bengio & Haffner, Gradient-based learning applied to document recognition, 1998."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((28, 28, 1)), "label": _ClassLabel(num_classes=10)})

    def _split_generators(self, dl_manager):
        p = self._raw_paths(dl_manager)
        return {
            "train": self._generate_examples(p["train-images-idx3-ubyte.gz"], p["train-labels-idx1-ubyte.gz"]),
            "test": self._generate_examples(p["t10k-images-idx3-ubyte.gz"], p["t10k-labels-idx1-ubyte.gz"]),
        }

    def _generate_examples(self, images_path, labels_path) -> Iterator[tuple[int, dict]]:
        x = raw.read_idx(images_path, magic=2051)
        y = raw.read_idx(labels_path, magic=2049)
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataFormatError(images_path, f"expected images of shape (N, 28, 28), got {x.shape}")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataFormatError(labels_path, f"expected {x.shape[0]} labels (one per image), got shape {y.shape}")
        if y.max(initial=0) > 9:
            raise DataFormatError(labels_path, "labels must lie in 0..9")
        for i in range(x.shape[0]):
            yield i, {"image": x[i, :, :, None], "label": int(y[i])}


class Usps(RawFilesBuilder, skip_registration=True):
    """USPS digits (ESL version): 7,291 train / 2,007 test 16x16 images; grey values in [-1, 1] are stored
    as uint8 `round((x + 1) / 2 * 255)`; labels 0..9."""

    name = "usps"
    RAW_SUBDIR = "usps"
    _URL = "https://hastie.su.domains/ElemStatLearn/datasets/"
    RAW_FILES = (RawFile("zip.train.gz", _URL + "zip.train.gz", ("zip.train",)),
                 RawFile("zip.test.gz", _URL + "zip.test.gz", ("zip.test",)))
    HOMEPAGE = "https://hastie.su.domains/ElemStatLearn/data.html"
    CITATION = "Le Cun et al. 1990, via Hastie, Tibshirani & Friedman, The Elements of Statistical Learning."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((16, 16, 1)), "label": _ClassLabel(num_classes=10)})

    def _split_generators(self, dl_manager):
        p = self._raw_paths(dl_manager)
        return {"train": self._generate_examples(p["zip.train.gz"]), "test": self._generate_examples(p["zip.test.gz"])}

    def _generate_examples(self, path):
        x, y = raw.read_usps(path)
        x = raw.usps_to_uint8(x)
        for i in range(x.shape[0]):
            yield i, {"image": x[i, :, :, None], "label": int(y[i])}


class Stl10(RawFilesBuilder, skip_registration=True):
    """STL-10: 96x96 colour images, 5,000 train / 8,000 test labelled (10 classes) + 100,000 unlabelled.

    Reads the official binary release (`stl10_binary/*.bin`, or the `stl10_binary.tar.gz` archive, which is
    extracted). Images are stored column-major as 3x96x96 and are transposed to [96, 96, 3]; labels 1..10
    become 0..9; unlabelled examples have label -1.
    """

    name = "stl10"
    RAW_SUBDIR = "stl10"
    URL = "https://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
    ARCHIVE = "stl10_binary.tar.gz"
    RAW_FILES = tuple(RawFile(n, None) for n in (
        "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin"))
    CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
    HOMEPAGE = "https://cs.stanford.edu/~acoates/stl10/"
    CITATION = "Coates, Lee & Ng, An Analysis of Single Layer Networks in Unsupervised Feature Learning, AISTATS 2011."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((96, 96, 3)), "label": _ClassLabel(names=self.CLASSES)})

    def _search_dirs(self):
        return [d2 for d in super()._search_dirs() for d2 in (d, d / "stl10_binary")]

    def missing_error(self, reason="downloading is disabled"):
        return MissingDataError(self.name, [f.name for f in self.RAW_FILES] + [
            f"(or the archive {self.ARCHIVE} holding stl10_binary/<those files>)"],
            self.raw_directory_hint(self.raw_root), reason)

    def _raw_paths(self, dl_manager):
        paths = {f.name: self.find_local(f) for f in self.RAW_FILES}
        if all(paths.values()):
            return paths
        archive = next((d / self.ARCHIVE for d in super()._search_dirs() if (d / self.ARCHIVE).is_file()), None)
        if archive is None and not self.allow_download:
            raise self.missing_error()
        try:
            root = dl_manager.extract(archive) if archive else dl_manager.download_and_extract(self.URL)
        except Exception as e:
            what = f"extracting {archive}" if archive else f"downloading {self.URL}"
            raise self.missing_error(f"{what} failed ({type(e).__name__}: {e})") from e
        root = Path(os.fspath(root))
        out = {}
        for f in self.RAW_FILES:
            cands = [root / "stl10_binary" / f.name, root / f.name]
            hit = next((c for c in cands if c.is_file()), None)
            if hit is None:
                raise DataFormatError(archive or self.URL, f"archive has no stl10_binary/{f.name}")
            out[f.name] = hit
        return out

    def _split_generators(self, dl_manager):
        p = self._raw_paths(dl_manager)
        return {
            "train": self._generate_examples(p["train_X.bin"], p["train_y.bin"]),
            "test": self._generate_examples(p["test_X.bin"], p["test_y.bin"]),
            "unlabelled": self._generate_examples(p["unlabeled_X.bin"], None),
        }

    def _generate_examples(self, images_path, labels_path):
        x = raw.read_stl10_images(images_path)
        y = raw.read_stl10_labels(labels_path, x.shape[0]) if labels_path else None
        for i in range(x.shape[0]):
            yield i, {"image": np.ascontiguousarray(x[i]), "label": -1 if y is None else int(y[i])}


@dataclasses.dataclass
class DatasaurusConfig(tfds.core.BuilderConfig):
    """`dataset`: one of the 13 Datasaurus Dozen names, or None for all 1,846 rows."""

    dataset: str | None = None


class Datasaurus(RawFilesBuilder, skip_registration=True):
    """Datasaurus Dozen: 13 point sets of 142 points with equal summary statistics (x ~ 54.3, y ~ 47.8).

    Config "all" (default) holds the 1,846 rows; the configs named after a set ("dino", "star", ...) hold its
    142 points. Select with `jgen.data.load("datasaurus", dataset="dino")`. Feature `dataset` is the index of
    the set's name in `jgen.data.raw.DATASAURUS_NAMES`.
    """

    name = "datasaurus"
    RAW_SUBDIR = "datasaurus"
    RAW_FILES = (RawFile("DatasaurusDozen.tsv",
                         "https://raw.githubusercontent.com/probml/probml-data/main/data/DatasaurusDozen.tsv"),)
    BUILDER_CONFIGS = [DatasaurusConfig(name="all", description="All 13 sets.")] + [
        DatasaurusConfig(name=n, description=f"The '{n}' set.", dataset=n) for n in raw.DATASAURUS_NAMES]
    DEFAULT_CONFIG_NAME = "all"
    HOMEPAGE = "https://www.autodesk.com/research/publications/same-stats-different-graphs"
    CITATION = "Matejka & Fitzmaurice, Same Stats, Different Graphs, CHI 2017."

    @classmethod
    def config_name(cls, dataset: str | None = None, **rest):
        if rest:
            raise TypeError(f"dataset 'datasaurus' takes only dataset=..., got {sorted(rest)}")
        if dataset is None or dataset == "all":
            return "all"
        if dataset not in raw.DATASAURUS_NAMES:
            raise ValueError(f"datasaurus has no set {dataset!r}; choose one of {list(raw.DATASAURUS_NAMES)} or 'all'")
        return dataset

    def _features(self):
        return tfds.features.FeaturesDict({
            "xy": _Tensor(shape=(2,), dtype=np.float32), "dataset": _ClassLabel(names=raw.DATASAURUS_NAMES)})

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self._raw_paths(dl_manager)["DatasaurusDozen.tsv"])}

    def _generate_examples(self, path):
        names, xy = raw.read_datasaurus(path)
        wanted = self.builder_config.dataset
        keep = np.arange(len(names)) if wanted is None else np.flatnonzero(names == wanted)
        if len(keep) == 0:
            held = [n for n in raw.DATASAURUS_NAMES if n in set(names)]
            raise DataFormatError(path, f"has no rows of dataset {wanted!r}; it holds {held or 'no rows at all'}. "
                                        f"Load one of those, or replace the file with the full Datasaurus Dozen "
                                        f"(all {len(raw.DATASAURUS_NAMES)} sets)")
        for j, i in enumerate(keep):
            yield j, {"xy": xy[i].astype(np.float32), "dataset": str(names[i])}


class OlivettiFaces(RawFilesBuilder, skip_registration=True):
    """Olivetti (AT&T/ORL) faces: 400 upright 64x64 grey images, 10 per person; label = person id 0..39."""

    name = "olivetti_faces"
    RAW_SUBDIR = "olivetti"
    RAW_FILES = (RawFile("olivettifaces.mat", "https://ndownloader.figshare.com/files/5976027"),)
    HOMEPAGE = "https://cam-orl.co.uk/facedatabase.html"
    CITATION = "Samaria & Harter, Parameterisation of a stochastic model for human face identification, 1994."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((64, 64, 1)), "label": _ClassLabel(num_classes=40)})

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self._raw_paths(dl_manager)["olivettifaces.mat"])}

    def _generate_examples(self, path):
        x = raw.read_olivetti(path)
        for i in range(x.shape[0]):
            yield i, {"image": x[i, :, :, None], "label": i // 10}


class FreyFaces(RawFilesBuilder, skip_registration=True):
    """Frey faces: 1,965 grey 28x20 frames of one face (Kingma & Welling's VAE data set).

    Reads `freyfaces.pkl` (the pickled copy used for VAE experiments, loaded with the restricted unpickler
    `jgen.data.safe_pickle`) or Roweis's `frey_rawface.mat` (variable `ff`, which is what gets downloaded).
    """

    name = "frey_faces"
    RAW_SUBDIR = "frey"
    RAW_FILES = (RawFile("frey_rawface.mat", "https://cs.nyu.edu/~roweis/data/frey_rawface.mat", ("freyfaces.pkl",)),)
    HOMEPAGE = "https://cs.nyu.edu/~roweis/data.html"
    CITATION = "B. J. Frey, Frey faces (S. Roweis's data page); Kingma & Welling, Auto-Encoding Variational Bayes, 2014."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((28, 20, 1))})

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self._raw_paths(dl_manager)["frey_rawface.mat"])}

    def _generate_examples(self, path):
        x = raw.read_frey(path)
        for i in range(x.shape[0]):
            yield i, {"image": x[i, :, :, None]}


class BinaryAlphadigits(RawFilesBuilder, skip_registration=True):
    """Binary Alphadigits: 1,404 binary 20x16 glyphs, 39 of each of 36 classes (digits 0-9, letters A-Z)."""

    name = "binary_alphadigits"
    RAW_SUBDIR = "binaryalphadigs"
    RAW_FILES = (RawFile("binaryalphadigs.mat", "https://cs.nyu.edu/~roweis/data/binaryalphadigs.mat"),)
    CLASSES = tuple("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    HOMEPAGE = "https://cs.nyu.edu/~roweis/data.html"
    CITATION = "S. Roweis, Binary Alphadigits (data page)."

    def _features(self):
        return tfds.features.FeaturesDict({"image": _image((20, 16, 1)), "label": _ClassLabel(names=self.CLASSES)})

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(self._raw_paths(dl_manager)["binaryalphadigs.mat"])}

    def _generate_examples(self, path):
        x, y = raw.read_alphadigits(path)
        for i in range(x.shape[0]):
            yield i, {"image": x[i, :, :, None], "label": int(y[i])}


BUILDERS: dict[str, type[RawFilesBuilder]] = {b.name: b for b in (
    Mnist, Usps, Stl10, Datasaurus, OlivettiFaces, FreyFaces, BinaryAlphadigits)}
