"""In-project CNN classifiers whose penultimate layer is the feature space of jgen's sample metrics.

No Inception network can be had offline, and ImageNet features are the wrong ruler for 28x28 digits anyway
(Heusel et al. recommend a network of the data's own domain). Each dataset gets a small CNN trained here:

    clf = classifier.get_classifier("mnist")      # trains once (seconds), then loads from the cache
    feats = clf.features(images)                   # [n, F] penultimate (ReLU) activations
    probs = clf.probs(images)                      # [n, C] softmax

Datasets: "mnist" (28x28), "mnist7" (MNIST 7x7 8-bit, `jgen.data.mnist7`), "usps" (16x16) and
"olivetti_faces" (64x64, 40 identities; 8 images per person train, 2 test). Images are on the dataset's
0..255 scale, uint8 or float, [n, H, W] or [n, H, W, 1].

A trained classifier is cached under `$JGEN_CACHE_DIR` (default `~/.cache/jgen`) in
`classifiers/<dataset>-<key>/`, where the key hashes the config (architecture, optimizer, epochs, seed), the
code version and a fingerprint of the prepared dataset files (sha256 of their bytes), so changing any of them
trains a new one. The same folder caches the training set's reference features (`reference`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jgen import optim, train
from jgen.data import mnist7
from jgen.data.iterator import BatchIterator
from jgen.data.loading import builder, load

__all__ = [
    "DATASETS", "CNN", "Classifier", "classifier_config", "default_cache_dir", "dataset_splits",
    "data_fingerprint", "get_classifier", "reference",
]

DATASETS = ("mnist", "mnist7", "usps", "olivetti_faces")
_CODE_VERSION = 1  # bump when training or the architecture changes in ways the config does not show
_EVAL_BATCH = 1000


def default_cache_dir() -> Path:
    """`$JGEN_CACHE_DIR`, else `~/.cache/jgen`: where trained classifiers and reference features live."""
    return Path(os.environ.get("JGEN_CACHE_DIR") or Path.home() / ".cache" / "jgen").expanduser()


def classifier_config(dataset: str) -> ml_collections.ConfigDict:
    """The classifier config of `dataset` (one of `DATASETS`); every field enters the cache key.

    Fields: channels (one 3x3 conv + ReLU + 2x2 max-pool per entry), features (penultimate width),
    epochs, batch_size, max_shift (random translation of up to this many pixels while training), seed,
    and the `optim` block (`jgen.optim.optim_config`).
    """
    _check_dataset(dataset)
    c = ml_collections.ConfigDict()
    c.dataset = dataset
    c.channels, c.features, c.epochs, c.batch_size, c.max_shift, c.seed = {
        "mnist": ((16, 32), 128, 4, 128, 1, 0),
        "mnist7": ((32, 64), 128, 4, 128, 0, 0),
        "usps": ((32, 64), 128, 12, 128, 1, 0),
        "olivetti_faces": ((8, 16, 32), 128, 60, 32, 3, 0),
    }[dataset]
    c.optim = optim.optim_config(name="adamw", learning_rate=3e-3, schedule="cosine", warmup_steps=100,
                                 weight_decay=1e-4)
    return c


def _check_dataset(dataset: str) -> None:
    if dataset not in DATASETS:
        raise ValueError(f"no in-project classifier for dataset {dataset!r}; choose one of {DATASETS}")


class CNN(nn.Module):
    """conv3x3 + ReLU + max-pool per entry of `channels`, a dense ReLU layer of `features` units (the
    feature space of the metrics), and a linear layer to `num_classes` logits. Input [n, H, W, 1] in [0, 1]."""

    channels: tuple[int, ...]
    features: int
    num_classes: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for ch in self.channels:
            x = nn.relu(nn.Conv(ch, (3, 3), padding="SAME")(x))
            if x.shape[1] >= 2:
                x = max_pool_2x2(x)
        h = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
        return h, nn.Dense(self.num_classes)(h)


def _windows(x: jax.Array) -> jax.Array:
    """[n, H, W, C] -> [n, H // 2, W // 2, C, 4]: the 2x2 windows in row-major order (an odd last row or
    column is dropped, as by VALID pooling)."""
    n, h, w, c = x.shape
    x = x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """`nn.max_pool(x, (2, 2), strides=(2, 2))` of [n, H, W, C], with the same values and the same gradient
    (all of it to the first maximum of each window), as a reshape instead of a reduce_window.

    Why: on XLA:CPU the gradient of reduce_window (select_and_scatter) cost more than the convolutions;
    this one trains the classifiers 2-3x faster with bit-identical parameters.
    """
    return jnp.max(_windows(x), axis=-1)


def _max_pool_fwd(x):
    win = _windows(x)
    return jnp.max(win, axis=-1), (jnp.argmax(win, axis=-1), x.shape)


def _max_pool_bwd(res, g):
    first, (n, h, w, c) = res
    gw = jnp.where(jnp.arange(4) == first[..., None], g[..., None], 0).astype(g.dtype)
    gx = gw.reshape(n, h // 2, w // 2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, h // 2 * 2, w // 2 * 2, c)
    return (jnp.pad(gx, ((0, 0), (0, h % 2), (0, w % 2), (0, 0))),)


max_pool_2x2.defvjp(_max_pool_fwd, _max_pool_bwd)


# --- data ------------------------------------------------------------------------------------------------
def dataset_splits(dataset: str) -> dict[str, np.ndarray]:
    """`{"train_x", "train_y", "test_x", "test_y"}`: images uint8 [N, H, W, 1], labels int32 [N].

    mnist7's train split is `jgen.data.mnist7.mnist7_splits()["train"]` (the 5,000 validation images are left
    out, as for the likelihood models); Olivetti keeps images 0-7 of each person for training, 8-9 for test.
    """
    _check_dataset(dataset)
    if dataset == "mnist7":
        tr, te = load("mnist", "train"), load("mnist", "test")
        splits = mnist7.mnist7_splits()
        n = len(splits["train"])
        return {"train_x": splits["train"][..., None], "train_y": tr["label"][:n].astype(np.int32),
                "test_x": splits["test"][..., None], "test_y": te["label"].astype(np.int32)}
    if dataset == "olivetti_faces":
        d = load(dataset, "train")
        test = np.arange(len(d["label"])) % 10 >= 8
        return {"train_x": d["image"][~test], "train_y": d["label"][~test].astype(np.int32),
                "test_x": d["image"][test], "test_y": d["label"][test].astype(np.int32)}
    tr, te = load(dataset, "train"), load(dataset, "test")
    return {"train_x": tr["image"], "train_y": tr["label"].astype(np.int32),
            "test_x": te["image"], "test_y": te["label"].astype(np.int32)}


def data_fingerprint(dataset: str) -> str:
    """sha256 over the prepared array_record files the classifier's data come from (plus the derivation)."""
    _check_dataset(dataset)
    source = "mnist" if dataset == "mnist7" else dataset
    b = builder(source)
    h = hashlib.sha256(f"{source}/{b.version}/{dataset}".encode())
    files = sorted(Path(os.fspath(b.data_dir)).glob("*.array_record-*"))
    if not files:
        raise FileNotFoundError(f"no prepared array_record files for {source!r} in {b.data_dir}")
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


# --- the classifier --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Classifier:
    """A trained classifier: `features(images)` [n, F], `probs(images)` [n, C], `logits(images)`.

    Attributes:
      config: its config (`classifier_config`). params: Flax params. num_classes: C.
      image_shape: (H, W, 1). test_accuracy: on the dataset's test split. train_seconds: training time.
      path: its cache folder.
    """

    config: ml_collections.ConfigDict
    params: Any
    num_classes: int
    image_shape: tuple[int, int, int]
    test_accuracy: float
    train_seconds: float
    path: Path

    @property
    def module(self) -> CNN:
        return CNN(tuple(self.config.channels), self.config.features, self.num_classes)

    def features_and_logits(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features [n, F] and logits [n, C] in one pass."""
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[..., None]
        if x.shape[1:] != self.image_shape:
            raise ValueError(f"the {self.config.dataset} classifier takes images [n, {self.image_shape[0]}, "
                             f"{self.image_shape[1]}(, 1)] on the 0..255 scale, got shape {np.shape(images)}")
        feats, logits = [], []
        for s in range(0, len(x), _EVAL_BATCH):  # fixed batch (the last one padded): one compilation
            chunk = x[s:s + _EVAL_BATCH].astype(np.float32)
            keep = len(chunk)
            chunk = np.concatenate([chunk, np.zeros((_EVAL_BATCH - keep, *chunk.shape[1:]), np.float32)])
            h, z = _apply(self.module, self.params, chunk)
            feats.append(np.asarray(h)[:keep])
            logits.append(np.asarray(z)[:keep])
        return np.concatenate(feats), np.concatenate(logits)

    def features(self, images: Any) -> np.ndarray:
        """Penultimate-layer activations [n, F] (float32) of images on the 0..255 scale."""
        return self.features_and_logits(images)[0]

    def logits(self, images: Any) -> np.ndarray:
        return self.features_and_logits(images)[1]

    def probs(self, images: Any) -> np.ndarray:
        """Class probabilities [n, C]."""
        return np.asarray(jax.nn.softmax(self.logits(images), axis=-1))

    def describe(self) -> str:
        """One line naming the feature space, e.g. for a report."""
        return (f"penultimate layer ({self.config.features}-d) of jgen's {self.config.dataset} CNN classifier "
                f"(test accuracy {100 * self.test_accuracy:.2f}%)")


_JITS: dict = {}


def _apply(module: CNN, params: Any, x: np.ndarray):
    # One jitted function per architecture; params and images are arguments, never closed-over constants.
    if module not in _JITS:
        _JITS[module] = jax.jit(lambda p, x: module.apply({"params": p}, x / 255.0))
    return _JITS[module](params, x)


def _cache_key(config: ml_collections.ConfigDict, fingerprint: str) -> str:
    blob = json.dumps({"config": config.to_dict(), "data": fingerprint, "code": _CODE_VERSION},
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _shift(x: jax.Array, rng: jax.Array, max_shift: int) -> jax.Array:
    """Random translation of each image by up to `max_shift` pixels (zero padding)."""
    if max_shift == 0:
        return x
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
    offs = jax.random.randint(rng, (n, 2), 0, 2 * max_shift + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
    return jax.vmap(crop)(padded, offs)


def _train(config: ml_collections.ConfigDict, splits: dict[str, np.ndarray]) -> tuple[Any, float]:
    num_classes = int(max(splits["train_y"].max(), splits["test_y"].max())) + 1
    model = CNN(tuple(config.channels), config.features, num_classes)
    x0 = jnp.zeros((1, *splits["train_x"].shape[1:]), jnp.float32)
    params = model.init(jax.random.key(config.seed), x0)["params"]
    batches = BatchIterator({"x": splits["train_x"], "y": splits["train_y"]}, config.batch_size,
                            seed=config.seed)
    num_steps = config.epochs * batches.steps_per_epoch
    tx = optim.make_optimizer(config.optim, num_steps)

    def loss_fn(p, batch, rng):
        x = _shift(batch["x"].astype(jnp.float32), rng, config.max_shift)
        _, logits = model.apply({"params": p}, x / 255.0)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
        return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}

    # No fuse_steps: on XLA:CPU, convolutions inside a lax.scan ran 5x slower per step than one step per call.
    result = train.fit_loss(loss_fn, params, tx, batches, num_steps, key=jax.random.key(config.seed + 1),
                            log_every=num_steps, ckpt_every=num_steps, progress=False)
    return jax.device_get(result.params), num_classes


def get_classifier(dataset: str, *, config: ml_collections.ConfigDict | None = None,
                   cache_dir: str | os.PathLike | None = None) -> Classifier:
    """The trained classifier of `dataset`, from the cache or trained now (and cached).

    Args:
      dataset: one of `DATASETS`.
      config: a `classifier_config(dataset)`, possibly modified (default: unmodified).
      cache_dir: root of the cache (default `default_cache_dir()`).
    """
    _check_dataset(dataset)
    config = classifier_config(dataset) if config is None else config
    if config.dataset != dataset:
        raise ValueError(f"config is for dataset {config.dataset!r}, not {dataset!r}")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / "classifiers" / f"{dataset}-{_cache_key(config, data_fingerprint(dataset))}"
    if not (path / "meta.json").is_file():
        splits = dataset_splits(dataset)
        start = time.perf_counter()
        params, num_classes = _train(config, splits)
        seconds = time.perf_counter() - start
        clf = Classifier(config, params, num_classes, tuple(splits["train_x"].shape[1:]), 0.0, seconds, path)
        accuracy = float(np.mean(clf.logits(splits["test_x"]).argmax(-1) == splits["test_y"]))
        meta = {"config": config.to_dict(), "num_classes": num_classes, "image_shape": list(clf.image_shape),
                "test_accuracy": accuracy, "train_seconds": seconds, "num_train": len(splits["train_y"])}
        _write_atomically(path, {"params.msgpack": flax.serialization.msgpack_serialize(params),
                                 "meta.json": json.dumps(meta, indent=1, default=list).encode()})
    meta = json.loads((path / "meta.json").read_text())
    params = flax.serialization.msgpack_restore((path / "params.msgpack").read_bytes())
    return Classifier(config, params, meta["num_classes"], tuple(meta["image_shape"]), meta["test_accuracy"],
                      meta["train_seconds"], path)


def _write_atomically(path: Path, files: dict[str, bytes]) -> None:
    """Writes the files into a temporary sibling folder, then renames it to `path` (a concurrent process
    that got there first wins; its result is equal)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    try:
        os.replace(tmp, path)
    except OSError:  # `path` exists already (another process)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def reference(clf: Classifier) -> dict[str, np.ndarray]:
    """Cached reference statistics of the classifier's dataset, in its feature space.

    Returns `train_features` [N, F], `train_mean` [F], `train_cov` [F, F] (float64), `test_features`
    [M, F], `test_probs` [M, C], `test_labels` [M]. Computed once and stored next to the classifier.
    """
    path = clf.path / "reference.npz"
    if not path.is_file():
        splits = dataset_splits(clf.config.dataset)
        train_f = clf.features(splits["train_x"])
        test_f, test_logits = clf.features_and_logits(splits["test_x"])
        arrays = {"train_features": train_f, "train_mean": train_f.astype(np.float64).mean(0),
                  "train_cov": np.cov(train_f.astype(np.float64), rowvar=False), "test_features": test_f,
                  "test_probs": np.asarray(jax.nn.softmax(test_logits, -1)), "test_labels": splits["test_y"]}
        tmp = path.with_name(f".reference-{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
