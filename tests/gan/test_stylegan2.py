"""StyleGAN2 generator: the modulated conv against a direct per-sample computation, the FIR resampling against
numpy's upfirdn, num_ws, style mixing, shapes and the documented parameter tree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgen.gan import stylegan2 as sg

TINY = dict(img_channels=3, z_dim=8, w_dim=8, mapping_layers=2, channel_base=64, channel_max=8)


def test_num_ws_per_resolution():
    assert [sg.num_ws(r) for r in (4, 8, 16, 32, 64, 256, 1024)] == [2, 4, 6, 8, 10, 14, 18]
    with pytest.raises(ValueError, match="power of two"):
        sg.num_ws(48)


def _upfirdn_up2_numpy(x, pad):
    """The official upfirdn2d(up=2) written out: zero insertion (x at even places), pad, convolve with f x f."""
    b, h, w, c = x.shape
    z = np.zeros((b, 2 * h, 2 * w, c))
    z[:, ::2, ::2] = x
    z = np.pad(z, ((0, 0), pad, pad, (0, 0)))
    f = np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64.0 * 4.0
    out = np.zeros((b, z.shape[1] - 3, z.shape[2] - 3, c))
    for i in range(4):
        for j in range(4):
            out += f[3 - i, 3 - j] * z[:, i:i + out.shape[1], j:j + out.shape[2]]
    return out


def _conv_valid_numpy(x, k):
    """Cross-correlation, VALID: out[b, y, x, o] = sum_{i, j, c} x[b, y+i, x+j, c] k[i, j, c, o]."""
    kh, kw = k.shape[:2]
    out = np.zeros((x.shape[0], x.shape[1] - kh + 1, x.shape[2] - kw + 1, k.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("byxc,co->byxo", x[:, i:i + out.shape[1], j:j + out.shape[2]], k[i, j])
    return out


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_a_direct_per_sample_computation(up, demodulate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 5, 4))
    weight = rng.normal(size=(3, 3, 4, 6))
    styles = rng.normal(size=(3, 4)) + 1.0
    got = np.asarray(sg.modulated_conv(jnp.asarray(x, jnp.float32), jnp.asarray(weight, jnp.float32),
                                       jnp.asarray(styles, jnp.float32), demodulate=demodulate, up=up))
    for b in range(3):
        wb = weight * styles[b][None, None, :, None]  # modulate: w'_ijk = s_i w_ijk
        if demodulate:
            wb = wb / np.sqrt(np.sum(wb ** 2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        if up:  # official up layer: upfirdn2d(up=2, pad (3, 2)), then a true convolution (flipped kernel)
            ref = _conv_valid_numpy(_upfirdn_up2_numpy(x[b:b + 1], (3, 2)), wb[::-1, ::-1])
        else:
            ref = _conv_valid_numpy(np.pad(x[b:b + 1], ((0, 0), (1, 1), (1, 1), (0, 0))), wb)
        assert ref.shape == (1, 10 if up else 5, 10 if up else 5, 6)
        np.testing.assert_allclose(got[b:b + 1], ref, rtol=1e-4, atol=1e-4)


def test_image_skip_upsampling_is_upfirdn_with_padding_2_1():
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 3))
    np.testing.assert_allclose(np.asarray(sg.upsample_fir(jnp.asarray(x, jnp.float32))),
                               _upfirdn_up2_numpy(x, (2, 1)), rtol=1e-5, atol=1e-5)
    # A constant image stays constant away from the border (gain 4 compensates the zero insertion).
    up = np.asarray(sg.upsample_fir(jnp.ones((1, 6, 6, 1))))
    np.testing.assert_allclose(up[0, 2:-2, 2:-2, 0], 1.0, rtol=1e-6)
    down = np.asarray(sg.downsample_fir(jnp.ones((1, 8, 8, 1))))
    assert down.shape == (1, 4, 4, 1)
    np.testing.assert_allclose(down[0, 1:-1, 1:-1, 0], 1.0, rtol=1e-6)


def test_style_mix_keeps_the_layers_it_says():
    ws1, ws2 = jnp.zeros((2, 6, 3)), jnp.ones((2, 6, 3))
    mixed = np.asarray(sg.style_mix(ws1, ws2, 2))
    np.testing.assert_array_equal(mixed[:, :2], 0.0)
    np.testing.assert_array_equal(mixed[:, 2:], 1.0)
    np.testing.assert_array_equal(np.asarray(sg.style_mix(ws1, ws2, 0)), 1.0)
    with pytest.raises(ValueError, match="cutoff"):
        sg.style_mix(ws1, ws2, 7)


def test_parameter_tree_and_shapes_per_resolution():
    for r in (8, 16, 32, 64):
        c = sg.stylegan2_config(resolution=r, **TINY)
        tree = sg.param_shapes(c)
        assert sorted(tree) == ["mapping_network", "synthesis_network"]
        assert sorted(tree["synthesis_network"]) == sorted(f"b{2 ** k}" for k in range(2, r.bit_length()))
        assert tree["mapping_network"]["fc0"]["weight"].shape == (8, 8)
        top = tree["synthesis_network"][f"b{r}"]
        ch = sg.channels_at(c, r)
        assert top["conv0"]["weight"].shape == (3, 3, sg.channels_at(c, r // 2), ch)
        assert top["conv1"]["noise_const"].shape == (r, r)
        assert top["conv1"]["affine"]["weight"].shape == (8, ch)
        assert top["torgb"]["weight"].shape == (1, 1, ch, 3)
        assert tree["synthesis_network"]["b4"]["const"].shape == (4, 4, sg.channels_at(c, 4))
        assert "conv0" not in tree["synthesis_network"]["b4"]
        g = sg.Generator(c)
        ws = jnp.zeros((2, sg.num_ws(r), 8))
        out = jax.eval_shape(lambda p, ws: g.apply({"params": p}, ws, method=g.synthesis), tree, ws)
        assert out.shape == (2, r, r, 3)


@pytest.fixture(scope="module")
def g16():
    c = sg.stylegan2_config(resolution=16, **TINY)
    g = sg.Generator(c)
    params = sg.init_params(c, jax.random.PRNGKey(0))
    assert jax.tree.structure(params) == jax.tree.structure(sg.param_shapes(c))
    affine_bias = params["synthesis_network"]["b8"]["conv1"]["affine"]["bias"]
    np.testing.assert_array_equal(affine_bias, 1.0)
    assert abs(float(params["mapping_network"]["fc1"]["weight"].std()) - 1 / c.mapping_lr_mul) < 0.5 / c.mapping_lr_mul
    # noise_strength starts at 0: give it weight so that the noise modes differ.
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: x + 0.5 if p[-1].key == "noise_strength" else x, params)
    return c, g, params


def test_synthesis_is_deterministic_in_const_mode_and_uses_every_ws(g16):
    c, g, params = g16
    z = jax.random.normal(jax.random.PRNGKey(1), (2, c.z_dim))

    @jax.jit
    def run(z, k1, k2):  # one compilation for every mode
        w = g.apply({"params": params}, z, method=g.mapping)
        ws = sg.broadcast_ws(w, sg.num_ws(16))

        def synth(ws, mode, key):
            return g.apply({"params": params}, ws, noise_mode=mode, key=key, method=g.synthesis)

        grads = jax.grad(lambda ws: jnp.sum(synth(ws, "const", None) ** 2))(ws)
        return (synth(ws, "const", k1), synth(ws, "const", k2), synth(ws, "random", k1), synth(ws, "none", k1),
                g.apply({"params": params}, z), grads)

    a, b, rand, none, full, grads = map(np.asarray, run(z, jax.random.PRNGKey(2), jax.random.PRNGKey(3)))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2, 16, 16, 3) and np.all(np.isfinite(a))
    assert not np.allclose(rand, a) and not np.allclose(none, a)
    np.testing.assert_allclose(full, a, rtol=1e-5, atol=1e-5)
    # Every style vector changes the image (the last one only through the final toRGB).
    assert np.all(np.abs(grads).sum(-1) > 0)
    with pytest.raises(ValueError, match="num_ws"):
        jax.eval_shape(lambda: g.apply({"params": params}, z[:, :8], method=g.synthesis))
    with pytest.raises(ValueError, match="key"):
        jax.eval_shape(lambda: g.apply({"params": params}, z, noise_mode="random"))


def test_truncation_moves_w_towards_the_average(g16):
    c, g, params = g16
    z = jax.random.normal(jax.random.PRNGKey(4), (3, c.z_dim))
    w_avg = jnp.ones(c.w_dim)
    w, wt = jax.jit(lambda z: (g.apply({"params": params}, z, method=g.mapping),
                               g.apply({"params": params}, z, truncation_psi=0.5, w_avg=w_avg, method=g.mapping)))(z)
    np.testing.assert_allclose(wt, 0.5 * w + 0.5 * w_avg, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="w_avg"):
        g.apply({"params": params}, z, truncation_psi=0.5, method=g.mapping)


def test_minibatch_std_groups_samples_by_index_modulo_and_discriminator_shapes():
    x = np.random.default_rng(2).normal(size=(8, 2, 2, 3)).astype(np.float32)
    out = np.asarray(sg.minibatch_std(jnp.asarray(x), group_size=4))
    assert out.shape == (8, 2, 2, 4)
    np.testing.assert_array_equal(out[..., :3], x)
    for j in range(2):  # group j = samples j, j + 2, j + 4, j + 6
        members = x[j::2]
        expect = np.sqrt(members.var(0) + 1e-8).mean()
        np.testing.assert_allclose(out[j::2, :, :, 3], expect, rtol=1e-5)
    d = sg.Discriminator(16, 64, 8)
    tree = sg.discriminator_shapes(d, 1)
    assert tree["b16_fromrgb"]["weight"].shape == (1, 1, 1, 4) and "bias" not in tree["b16_skip"]
    assert tree["b4_conv"]["weight"].shape == (3, 3, 9, 8) and tree["b4_out"]["weight"].shape == (8, 1)
    logits = jax.eval_shape(lambda p: d.apply({"params": p}, jnp.zeros((4, 16, 16, 1))), tree)
    assert logits.shape == (4,)
