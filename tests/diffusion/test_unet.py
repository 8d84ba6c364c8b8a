"""The DDPM U-Net: shapes at 28x28, 32x32 and 8x8, time conditioning, and its parameter count in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.diffusion import unet

TINY = dict(channels=4, channel_mults=(1, 2, 2), num_res_blocks=1, attention_resolutions=(14,), dropout=0.1,
            num_groups=2)


def _shapes(model, image_shape):
    """The parameter tree's and the output's shapes, traced without compiling."""
    x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
    t = jax.ShapeDtypeStruct((2,), jnp.int32)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x, t)
    return params, jax.eval_shape(model.apply, params, x, t).shape


@pytest.mark.parametrize("image_shape,cfg", [
    ((28, 28, 1), TINY),
    ((32, 32, 3), {**TINY, "channel_mults": (1, 2, 2, 2), "attention_resolutions": (8,)}),
    ((8, 8, 1), dict(channels=8, channel_mults=(1, 2), num_res_blocks=2, attention_resolutions=(8, 4),
                     dropout=0.0, num_groups=4))])
def test_output_shape_and_param_count(image_shape, cfg):
    model = unet.UNet(**cfg)
    params, out_shape = _shapes(model, image_shape)
    assert out_shape == (2, *image_shape)
    expected = _closed_form_count(cfg["channels"], cfg["channel_mults"], cfg["num_res_blocks"],
                                  cfg["attention_resolutions"], image_shape[0], image_shape[-1])
    assert sum(np.prod(p.shape) for p in jax.tree.leaves(params["params"])) == expected
    if image_shape == (8, 8, 1):
        assert unet.num_params(model, image_shape) == expected


def test_sizes_that_do_not_halve_are_refused():
    with pytest.raises(ValueError, match=r"image size 7x7 is not divisible by 2\^1 = 2.*pad the images"):
        _shapes(unet.UNet(**{**TINY, "channel_mults": (1, 2)}), (7, 7, 1))


def _conv(i, o):
    return 9 * i * o + o


def _dense(i, o):
    return i * o + o


def _closed_form_count(ch, mults, nrb, attn, size, c_in):
    """Every convolution, Dense and GroupNorm of the architecture described in `unet.UNet`, counted by hand."""
    conv, dense = _conv, _dense

    def res(i, o):  # GN, conv, time Dense, GN, conv, and a 1x1 skip when the width changes
        return 2 * i + conv(i, o) + dense(4 * ch, o) + 2 * o + conv(o, o) + (dense(i, o) if i != o else 0)

    def att(c):  # GN, q, k, v, output projection
        return 2 * c + 4 * dense(c, c)

    n = dense(ch, 4 * ch) + dense(4 * ch, 4 * ch) + conv(c_in, ch)
    widths, w = [ch], ch
    for level, m in enumerate(mults):
        for _ in range(nrb):
            n += res(w, ch * m) + (att(ch * m) if size in attn else 0)
            w = ch * m
            widths.append(w)
        if level < len(mults) - 1:
            n += conv(w, w)
            widths.append(w)
            size //= 2
    n += 2 * res(w, w) + att(w)
    for level, m in reversed(list(enumerate(mults))):
        for _ in range(nrb + 1):
            n += res(w + widths.pop(), ch * m) + (att(ch * m) if size in attn else 0)
            w = ch * m
        if level > 0:
            n += conv(w, w)
            size *= 2
    return n + 2 * w + conv(w, c_in)


def test_output_depends_on_t():
    model = unet.UNet(**{**TINY, "channel_mults": (1, 2), "attention_resolutions": (4,)})
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 8, 8, 1)), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(1), x, jnp.ones(2, jnp.int32))
    # Random parameters drawn in numpy: `model.init` compiles a threefry hash per parameter (tens of seconds
    # of CPU), and its zero-initialised output layers would make every output 0 anyway.
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: jnp.asarray(0.3 * rng.standard_normal(s.shape), s.dtype), shapes)
    x = jnp.concatenate([x[:1], x[:1]])
    out = np.asarray(jax.jit(model.apply)(params, x, jnp.array([1, 10], jnp.int32)))
    assert out.shape == (2, 8, 8, 1) and np.all(np.isfinite(out))
    assert np.abs(out[0] - out[1]).mean() > 1e-3 * np.abs(out).mean()
    np.testing.assert_allclose(unet.timestep_embedding(jnp.array([0]), 8)[0], [0, 0, 0, 0, 1, 1, 1, 1])
