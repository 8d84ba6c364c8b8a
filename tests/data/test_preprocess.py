"""Preprocessing functions against numpy references and autodiff."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.data import preprocess as pp


def _area_reference(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Loop reference: each output pixel integrates the input over its cell, pixel overlaps computed exactly."""
    H, W = img.shape[:2]
    out = np.zeros((h, w, img.shape[2]))
    for i in range(h):
        y0, y1 = i * H / h, (i + 1) * H / h
        for j in range(w):
            x0, x1 = j * W / w, (j + 1) * W / w
            acc = 0.0
            for r in range(H):
                wy = max(0.0, min(y1, r + 1) - max(y0, r))
                for c in range(W):
                    wx = max(0.0, min(x1, c + 1) - max(x0, c))
                    acc = acc + wy * wx * img[r, c].astype(np.float64)
            out[i, j] = acc / ((y1 - y0) * (x1 - x0))
    return out


@pytest.mark.parametrize("size", [7, 14])
def test_area_resize_mnist_factors_equal_block_means(size):
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    k = 28 // size
    ref = x.reshape(3, size, k, size, k, 1).astype(np.float64).mean(axis=(2, 4))
    got = pp.area_resize(x, size)
    assert got.shape == (3, size, size, 1) and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("hw, out", [((20, 16), (5, 5)), ((7, 5), (3, 2)), ((6, 6), (4, 9))])
def test_area_resize_non_integer_factors_match_loop_reference(hw, out):
    x = np.random.default_rng(1).normal(size=(*hw, 2))
    got = np.asarray(pp.area_resize(x.astype(np.float32), out))
    np.testing.assert_allclose(got, _area_reference(x, *out), rtol=1e-5, atol=1e-5)


def test_area_resize_preserves_mean_and_is_jittable():
    x = jax.random.uniform(jax.random.key(0), (2, 20, 16, 3))
    y = jax.jit(pp.area_resize, static_argnums=1)(x, (5, 4))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)


def test_area_resize_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[..., H, W, C\]"):
        pp.area_resize(np.zeros((28, 28)), 7)


def test_dequantize_range_and_distribution():
    x = np.random.default_rng(0).integers(0, 256, (20000,), dtype=np.uint8)
    y = np.asarray(pp.dequantize(jax.random.key(0), x))
    assert y.dtype == np.float32 and y.min() >= 0.0 and y.max() < 1.0
    np.testing.assert_array_equal(np.floor(y * 256).astype(np.uint8), x)  # same bin as the integer level
    frac = y * 256 - x
    assert abs(frac.mean() - 0.5) < 0.01 and abs(frac.var() - 1 / 12) < 0.005


def test_logit_transform_log_det_matches_jacobian():
    def check(x):
        y, log_det = pp.logit_transform(x, alpha=0.05)
        jac = jax.vmap(jax.jacfwd(lambda v: pp.logit_transform(v.reshape(1, 2, 2, 1), 0.05)[0].ravel()))(
            x.reshape(3, 4))
        return y, log_det, jnp.linalg.slogdet(jac)[1], pp.inverse_logit_transform(y, 0.05)

    with jax.enable_x64(True):
        x = jax.random.uniform(jax.random.key(0), (3, 2, 2, 1), dtype=jnp.float64)
        y, log_det, ref, back = jax.jit(check)(x)
        np.testing.assert_allclose(log_det, ref, rtol=1e-10)
        np.testing.assert_allclose(back, x, atol=1e-12)
        s = 0.05 + 0.9 * np.asarray(x)
        np.testing.assert_allclose(y, np.log(s / (1 - s)), atol=1e-12)


def test_logit_transform_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        pp.logit_transform(jnp.zeros((1, 2)), alpha=0.5)


def test_binarize():
    x = jnp.array([[0.0, 0.2, 0.5, 0.51, 1.0]])
    np.testing.assert_array_equal(pp.binarize_static(x), [[0, 0, 0, 1, 1]])
    p = jnp.full((200000,), 0.3)
    b = pp.binarize_dynamic(jax.random.key(0), p)
    assert set(np.unique(np.asarray(b))) == {0.0, 1.0} and abs(float(b.mean()) - 0.3) < 0.005
    assert not np.array_equal(b, pp.binarize_dynamic(jax.random.key(1), p))  # resampled per key


def test_unit_and_pm1():
    x = np.array([0, 51, 255], np.uint8)
    np.testing.assert_allclose(pp.to_unit(x), [0.0, 0.2, 1.0], atol=1e-7)
    np.testing.assert_allclose(pp.to_pm1(x), [-1.0, -0.6, 1.0], atol=1e-6)


def test_letters_5x5_on_synthetic_glyphs():
    # A glyph inked exactly on rows 0-3 (= output row 0) and columns 0-6 (= 2.19 output columns).
    g = np.zeros((20, 16), np.uint8)
    g[:4, :7] = 1
    images = np.stack([g, g, 1 - g])[..., None]
    labels = np.array([3, 10, 35])  # a digit (dropped), 'A', 'Z'
    letters, letter_labels = pp.letters_5x5(images, labels)
    np.testing.assert_array_equal(letter_labels, [0, 25])
    expect = np.zeros((5, 5), np.uint8)
    expect[0, :2] = 1  # cells 0,1 fully inked, cell 2 has 0.6/3.2 ink < 0.5
    np.testing.assert_array_equal(letters[0], expect)
    np.testing.assert_array_equal(letters[1], 1 - expect)
    with pytest.raises(ValueError, match="20, 16"):
        pp.letters_5x5(np.zeros((2, 28, 28)), np.zeros(2))
