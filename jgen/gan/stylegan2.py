"""StyleGAN2 generator in Flax: mapping network, modulated convolutions, noise inputs, toRGB skips.

    config = stylegan2_config(resolution=64, z_dim=128, w_dim=128, channel_base=2048, channel_max=128)
    G = Generator(config)
    params = init_params(config, key)          # = G.init(key, z)["params"] in distribution, compiles fast
    w = G.apply({"params": params}, z, method=G.mapping)                    # [B, w_dim]
    ws = broadcast_ws(w, num_ws(config.resolution))                         # [B, num_ws, w_dim]
    images = G.apply({"params": params}, ws, method=G.synthesis)            # [B, H, W, C], about [-1, 1]
    images = G.apply({"params": params}, z, truncation_psi=0.7, w_avg=w_avg)  # mapping + synthesis

The official StyleGAN2 semantics (Karras et al. 2020, the `networks.py` of NVlabs/stylegan2-ada-pytorch with
the "skip" generator), written for this project in NHWC layout:

* Mapping: z is normalised to unit second moment (pixel norm, eps 1e-8), then `mapping_layers` dense layers
  with leaky ReLU (slope 0.2, gain sqrt 2) and a learning-rate multiplier `mapping_lr_mul` (0.01).
* Equalized learning rate: every weight is stored as N(0, 1) / lr_mul and scaled at run time by
  lr_mul / sqrt(fan_in); biases are stored as bias_init / lr_mul and scaled by lr_mul. The stored numbers are
  therefore exactly the official checkpoint's (up to a transpose), and a converter copies them.
* Synthesis: a learned constant [4, 4, C_4]; per resolution r = 4, 8, ..., R a block `b{r}` with `conv0`
  (3x3, upsampling x2; absent at r = 4), `conv1` (3x3) and `torgb` (1x1). Every layer takes its own style
  s = affine(w) (dense, bias_init 1). Modulated/demodulated conv: w'_{ijk} = s_i w_{ijk},
  w''_{ijk} = w'_{ijk} / sqrt(sum_{ik} w'^2_{ijk} + 1e-8) (demodulation; toRGB does not demodulate and
  scales its style by 1 / sqrt(fan_in) instead). It is computed in the equivalent unfused-weight form
  (scale the input channels by s, convolve with the shared weight, scale the output channels by the
  demodulation coefficients), which costs one ordinary convolution. Then noise (per-pixel, one scalar
  `noise_strength` per layer, initialised 0), bias, leaky ReLU (0.2) with gain sqrt 2.
* Upsampling (`conv0` and the image skip) is the official FIR filter [1, 3, 3, 1] (separable, normalised,
  gain 4) on the zero-inserted image: `conv0` = FIR upsampling with padding (3, 2) then a VALID 3x3
  convolution with the spatially flipped kernel (the official `flip_weight=False` of up layers, so converted
  kernels need no flip); the skip image is FIR-upsampled with padding (2, 1) and the new toRGB output added.
* ws: block b4 uses ws[0] (conv1), ws[1] (torgb); block b{r} with k = log2(r) - 2 >= 1 uses ws[2k - 1]
  (conv0), ws[2k] (conv1), ws[2k + 1] (torgb): num_ws = 2 log2(R) - 2 (18 at 1024). Layers 0..c-1 of a
  style mix come from the first latent (`style_mix`).
* Noise modes: "const" uses the per-layer `noise_const` arrays stored in the params (drawn once at init, never
  trained: the forward pass stops their gradient), so the image is a deterministic function of ws (what
  inversion needs); "random" draws fresh N(0, 1) noise from `key`; "none" adds none.
* Not implemented: conv_clamp / fp16 (only relevant under float16), class conditioning, truncation_cutoff.

Parameter tree (`Generator(config).init(...)["params"]`), with C_r = min(channel_base // r, channel_max),
D = w_dim, Z = z_dim, K = img_channels, L = mapping_layers:

    mapping_network/
      fc{i}/weight            [Z if i == 0 else D, D]   (official mapping.fc{i}.weight [out, in], transposed)
      fc{i}/bias              [D]                       i = 0..L-1
    synthesis_network/
      b4/const                [4, 4, C_4]               (official [C, 4, 4], moved to HWC)
      b4/conv1/...            layer(C_4 -> C_4, r=4)
      b4/torgb/...            torgb(C_4)
      b{r}/conv0/...          layer(C_{r/2} -> C_r, r), upsampling      r = 8 .. R
      b{r}/conv1/...          layer(C_r -> C_r, r)
      b{r}/torgb/...          torgb(C_r)
    layer(I -> O, r):
      affine/weight [D, I], affine/bias [I]   (style dense layer, bias_init 1, lr_mul 1)
      weight [3, 3, I, O]                      (official [O, I, 3, 3] -> transpose(2, 3, 1, 0))
      bias [O], noise_strength [] (scalar), noise_const [r, r]
    torgb(I):
      affine/weight [D, I], affine/bias [I], weight [1, 1, I, K], bias [K]

`param_shapes(config)` returns this tree as `jax.ShapeDtypeStruct`s without allocating it. The tracked average
latent w_avg [D] is not a parameter: training keeps it in `TrainState.extra["w_avg"]` (update
`w_avg <- lerp(mean_batch w, w_avg, w_avg_beta)`), and `jgen.gan.pretrained` ships it beside the params.
The in-project generator is named "olivetti64" (`jgen.gan.pretrained.load("olivetti64")`): the quick
preset's small generator trained 10,000 steps by `experiments/stylegan_train.py`; its json records the
command and the numbers.

References:
  Karras et al., Analyzing and Improving the Image Quality of StyleGAN, CVPR 2020 (StyleGAN2).
  Karras et al., A Style-Based Generator Architecture for Generative Adversarial Networks, CVPR 2019.
  Karras et al., Training Generative Adversarial Networks with Limited Data, NeurIPS 2020 (the code layout).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen.train import num_params

__all__ = [
    "NOISE_MODES", "FIR_FILTER", "stylegan2_config", "check_config", "num_ws", "channels_at", "block_resolutions",
    "FullyConnected", "SynthesisLayer", "ToRGB", "SynthesisBlock", "MappingNetwork", "SynthesisNetwork",
    "Generator", "modulated_conv", "upsample_fir", "downsample_fir", "broadcast_ws", "style_mix", "truncate",
    "update_w_avg", "param_shapes", "init_params", "EqualConv", "minibatch_std", "Discriminator",
    "discriminator_shapes", "init_discriminator", "num_params", "lrelu",
]

NOISE_MODES = ("const", "random", "none")
FIR_FILTER = (1.0, 3.0, 3.0, 1.0)
_SQRT2 = math.sqrt(2.0)


def stylegan2_config(*, resolution: int = 64, img_channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                     mapping_layers: int = 8, channel_base: int = 32768, channel_max: int = 512,
                     mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> ml_collections.ConfigDict:
    """The generator's architecture block. The defaults are the official config-f at `resolution`
    (resolution=1024 is the published FFHQ generator); in-project configs shrink the numbers.

    Args:
      resolution: output side R, a power of two >= 4.
      img_channels: K, image channels (3 RGB, 1 grey).
      z_dim, w_dim: dimensions of the input latent z and of the intermediate latent w.
      mapping_layers: dense layers of the mapping network (8).
      channel_base, channel_max: block r has C_r = min(channel_base // r, channel_max) channels.
      mapping_lr_mul: learning-rate multiplier of the mapping network (0.01).
      w_avg_beta: decay of the tracked average w (0.995), used by training.
    """
    c = ml_collections.ConfigDict()
    c.resolution, c.img_channels, c.z_dim, c.w_dim = int(resolution), int(img_channels), int(z_dim), int(w_dim)
    c.mapping_layers, c.channel_base, c.channel_max = int(mapping_layers), int(channel_base), int(channel_max)
    c.mapping_lr_mul, c.w_avg_beta = float(mapping_lr_mul), float(w_avg_beta)
    check_config(c)
    return c


def check_config(c: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the bad field of a `stylegan2_config`."""
    r = int(c.resolution)
    if r < 4 or r & (r - 1):
        raise ValueError(f"resolution={r} is not valid: expected a power of two >= 4 (e.g. 64, 256, 1024)")
    for field in ("img_channels", "z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max"):
        if int(c[field]) < 1:
            raise ValueError(f"{field}={c[field]} is not valid: expected a positive whole number")
    if c.channel_base // r < 1:
        raise ValueError(f"channel_base={c.channel_base} gives no channels at resolution {r}: expected "
                         f"channel_base >= resolution")
    if not c.mapping_lr_mul > 0:
        raise ValueError(f"mapping_lr_mul={c.mapping_lr_mul} must be positive")
    if not 0.0 <= c.w_avg_beta < 1.0:
        raise ValueError(f"w_avg_beta={c.w_avg_beta} must lie in [0, 1)")


def num_ws(resolution: int) -> int:
    """Number of style vectors of a generator of side `resolution`: 2 log2(resolution) - 2 (18 at 1024)."""
    r = int(resolution)
    if r < 4 or r & (r - 1):
        raise ValueError(f"resolution={resolution} is not valid: expected a power of two >= 4")
    return 2 * int(round(math.log2(r))) - 2


def block_resolutions(resolution: int) -> list[int]:
    """[4, 8, ..., resolution]."""
    return [2 ** k for k in range(2, int(round(math.log2(resolution))) + 1)]


def channels_at(config: ml_collections.ConfigDict, r: int) -> int:
    """C_r = min(channel_base // r, channel_max)."""
    return int(min(config.channel_base // r, config.channel_max))


def lrelu(x: jax.Array) -> jax.Array:
    """Leaky ReLU (slope 0.2) with gain sqrt 2, the activation of every StyleGAN2 layer."""
    return jax.nn.leaky_relu(x, 0.2) * _SQRT2


def _fir_1d(x: jax.Array, axis: int, pad: tuple[int, int], up: bool, down: bool) -> jax.Array:
    """The [1, 3, 3, 1] / 8 filter along `axis` (gain 2 when `up`), as upfirdn2d: zero insertion, pad, filter,
    subsample. Written with pads and slices, not a depthwise convolution: XLA on CPU compiles the second
    derivatives of grouped, dilated convolutions (R1 through D) very slowly."""
    f = np.asarray(FIR_FILTER) / np.sum(FIR_FILTER) * (2.0 if up else 1.0)
    if up:
        x = jnp.stack([x, jnp.zeros_like(x)], axis + 1)
        shape = list(x.shape)
        x = x.reshape(shape[:axis] + [shape[axis] * 2] + shape[axis + 2:])
    widths = [(0, 0)] * x.ndim
    widths[axis] = pad
    x = jnp.pad(x, widths)
    n = x.shape[axis] - len(f) + 1
    y = sum(float(f[j]) * jax.lax.slice_in_dim(x, j, j + n, axis=axis) for j in range(len(f)))
    return jax.lax.slice_in_dim(y, 0, n, 2, axis=axis) if down else y


def upsample_fir(x: jax.Array, pad: tuple[int, int] = (2, 1)) -> jax.Array:
    """The official `upfirdn2d` with up=2: zero insertion, padding `pad` of the zero-inserted image, the FIR
    filter [1, 3, 3, 1] (outer product, normalised, gain 4). `x` [B, H, W, C] -> [B, 2H + p0 + p1 - 3, ...];
    the default (2, 1) gives [B, 2H, 2W, C] (the image skip, `upsample2d`)."""
    return _fir_1d(_fir_1d(x, 1, pad, True, False), 2, pad, True, False)


def downsample_fir(x: jax.Array, pad: tuple[int, int] = (1, 1)) -> jax.Array:
    """FIR [1, 3, 3, 1] low-pass with padding `pad`, then every second pixel: [B, H, W, C] -> [B, H/2, W/2, C]
    with the default (1, 1) (the official `downsample2d`)."""
    return _fir_1d(_fir_1d(x, 1, pad, False, True), 2, pad, False, True)


def _fir_lowpass(x: jax.Array, pad: int) -> jax.Array:
    """The FIR filter with padding `pad` each side, no subsampling ([B, H, W, C] -> [B, H + 2 pad - 3, ...])."""
    return _fir_1d(_fir_1d(x, 1, (pad, pad), False, False), 2, (pad, pad), False, False)


def modulated_conv(x: jax.Array, weight: jax.Array, styles: jax.Array, *, demodulate: bool = True,
                   up: bool = False, eps: float = 1e-8) -> jax.Array:
    """StyleGAN2's modulated convolution in the unfused-weight form (one shared-weight convolution).

    Equivalent to convolving sample b with w''_b[kh, kw, i, o] = d_bo s_bi w[kh, kw, i, o], where
    d_bo = (sum_{kh, kw, i} (s_bi w[kh, kw, i, o])^2 + eps)^-1/2 when `demodulate` (else 1): the input channels
    are scaled by s, convolved with w, and the outputs scaled by d.

    Args:
      x: [B, H, W, I] activations.
      weight: [k, k, I, O] stored kernel (no equalized-lr gain: demodulation makes it scale-free; toRGB folds
        its gain into `styles`).
      styles: [B, I].
      demodulate: divide each output channel by the norm of its modulated kernel.
      up: FIR-upsample x2 first (padding (3, 2)) and convolve VALID with the flipped kernel (official up layer);
        else a same-size convolution (zero padding k // 2).

    Returns:
      [B, H', W', O] with H' = 2H when `up`, else H.
    """
    k = weight.shape[0]
    x = x * styles[:, None, None, :].astype(x.dtype)
    if up:
        x = upsample_fir(x, (k // 2 + 2, k // 2 + 1))
        kernel, padding = weight[::-1, ::-1], "VALID"
    else:
        kernel, padding = weight, ((k // 2, k // 2),) * 2
    y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (1, 1), padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if demodulate:
        # sum_{kh, kw, i} s_i^2 w^2 = (s^2) @ (sum_{kh, kw} w^2): [B, I] @ [I, O].
        d = jax.lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), (0, 1)) + eps)
        y = y * d[:, None, None, :].astype(y.dtype)
    return y


class FullyConnected(nn.Module):
    """Dense layer with equalized learning rate: y = act(x @ (W lr_mul / sqrt(in)) + b lr_mul).

    Params: weight [in, features] ~ N(0, 1) / lr_mul, bias [features] = bias_init / lr_mul.
    """

    features: int
    lr_mul: float = 1.0
    bias_init: float = 0.0
    activation: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        weight = self.param("weight", lambda k, s: jax.random.normal(k, s) / self.lr_mul, (fan_in, self.features))
        bias = self.param("bias", lambda k, s: jnp.full(s, self.bias_init / self.lr_mul), (self.features,))
        y = x @ (weight * (self.lr_mul / math.sqrt(fan_in))) + bias * self.lr_mul
        return lrelu(y) if self.activation else y


def _layer_resolutions(resolution: int) -> list[int]:
    """Output side of every noise-taking layer, in order: 4, then 8, 8, 16, 16, ... (conv0, conv1 per block)."""
    return [4] + [r for r in block_resolutions(resolution)[1:] for _ in range(2)]


def _random_noise(key: jax.Array, batch: int, resolution: int) -> list[jax.Array]:
    """Fresh N(0, 1) noise [B, r, r, 1] for every layer, from one draw (one compiled threefry call)."""
    sides = _layer_resolutions(resolution)
    flat = jax.random.normal(key, (batch, sum(r * r for r in sides)))
    out, start = [], 0
    for r in sides:
        out.append(flat[:, start:start + r * r].reshape(batch, r, r, 1))
        start += r * r
    return out


class SynthesisLayer(nn.Module):
    """One modulated 3x3 conv layer: style affine, (up x2,) modulated conv, noise, bias, leaky ReLU.

    Params: affine/{weight [w_dim, I], bias [I]}, weight [3, 3, I, O], bias [O], noise_strength [],
    noise_const [r, r] (r = this layer's output side).
    """

    out_channels: int
    resolution: int
    up: bool = False
    kernel_size: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "const", noise: jax.Array | None = None):
        """x [B, H, W, I], w [B, w_dim] -> [B, r, r, O]; `noise` [B, r, r, 1] is used in "random" mode."""
        in_channels = x.shape[-1]
        styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w)
        k = self.kernel_size
        weight = self.param("weight", nn.initializers.normal(1.0), (k, k, in_channels, self.out_channels))
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        strength = self.param("noise_strength", nn.initializers.zeros, ())
        const = self.param("noise_const", nn.initializers.normal(1.0), (self.resolution, self.resolution))
        y = modulated_conv(x, weight, styles, demodulate=True, up=self.up)
        if noise_mode == "const":
            noise = jax.lax.stop_gradient(const)[None, :, :, None]
        if noise_mode != "none":
            y = y + noise.astype(y.dtype) * strength
        return lrelu(y + bias)


class ToRGB(nn.Module):
    """1x1 modulated conv without demodulation (style scaled by 1 / sqrt(I)), plus bias; linear.

    Params: affine/{weight [w_dim, I], bias [I]}, weight [1, 1, I, K], bias [K].
    """

    out_channels: int

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        in_channels = x.shape[-1]
        styles = FullyConnected(in_channels, bias_init=1.0, name="affine")(w) / math.sqrt(in_channels)
        weight = self.param("weight", nn.initializers.normal(1.0), (1, 1, in_channels, self.out_channels))
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        return modulated_conv(x, weight, styles, demodulate=False) + bias


class SynthesisBlock(nn.Module):
    """Block `b{r}`: (const | conv0 up) -> conv1 -> torgb, adding to the FIR-upsampled skip image.

    `ws` [B, 2 or 3, w_dim]: (conv1, torgb) at r = 4, (conv0, conv1, torgb) above.
    """

    channels: int
    resolution: int
    img_channels: int

    @nn.compact
    def __call__(self, x, img, ws, noise_mode: str = "const", noises=(None, None)):
        if x is None:
            const = self.param("const", nn.initializers.normal(1.0), (4, 4, self.channels))
            x = jnp.broadcast_to(const, (ws.shape[0], 4, 4, self.channels))
            rest = ws
        else:
            x = SynthesisLayer(self.channels, self.resolution, up=True, name="conv0")(
                x, ws[:, 0], noise_mode, noises[0])
            rest = ws[:, 1:]
        x = SynthesisLayer(self.channels, self.resolution, name="conv1")(x, rest[:, 0], noise_mode, noises[-1])
        y = ToRGB(self.img_channels, name="torgb")(x, rest[:, 1])
        img = y if img is None else upsample_fir(img) + y
        return x, img


class MappingNetwork(nn.Module):
    """z [B, z_dim] -> w [B, w_dim]: pixel norm, then `layers` equalized-lr dense layers with leaky ReLU."""

    w_dim: int
    layers: int = 8
    lr_mul: float = 0.01

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z * jax.lax.rsqrt(jnp.mean(jnp.square(z), -1, keepdims=True) + 1e-8)
        for i in range(self.layers):
            x = FullyConnected(self.w_dim, lr_mul=self.lr_mul, activation=True, name=f"fc{i}")(x)
        return x


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, R, R, K]; blocks b4 .. bR (see the module docstring)."""

    config: Any

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "const", key: jax.Array | None = None) -> jax.Array:
        c = self.config
        n = num_ws(c.resolution)
        if ws.ndim != 3 or ws.shape[1:] != (n, c.w_dim):
            raise ValueError(f"ws must be [batch, num_ws={n}, w_dim={c.w_dim}], got shape {tuple(ws.shape)}; "
                             "broadcast a single w with broadcast_ws(w, num_ws)")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode={noise_mode!r} is not valid: expected one of {NOISE_MODES}")
        if noise_mode == "random":
            if key is None:
                raise ValueError('noise_mode="random" needs a PRNG key (synthesis(ws, noise_mode="random", key=key))')
            noises = _random_noise(key, ws.shape[0], c.resolution)
        else:
            noises = [None] * len(_layer_resolutions(c.resolution))
        x = img = None
        for i, r in enumerate(block_resolutions(c.resolution)):
            block_ws = ws[:, 0:2] if r == 4 else ws[:, 2 * i - 1:2 * i + 2]
            block_noise = noises[0:1] if r == 4 else noises[2 * i - 1:2 * i + 1]
            x, img = SynthesisBlock(channels_at(c, r), r, c.img_channels, name=f"b{r}")(
                x, img, block_ws, noise_mode, block_noise)
        return img


class EqualConv(nn.Module):
    """Conv with equalized learning rate (weight N(0, 1) scaled by 1 / sqrt(k k I)), optional FIR downsampling
    x2 first (the official `conv2d_resample` with down=2), optional bias and leaky ReLU (gain sqrt 2 * gain).

    Params: weight [k, k, I, O], bias [O] (when `use_bias`).
    """

    features: int
    kernel_size: int = 3
    down: bool = False
    use_bias: bool = True
    activation: bool = True
    gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, c = self.kernel_size, x.shape[-1]
        weight = self.param("weight", nn.initializers.normal(1.0), (k, k, c, self.features))
        w = weight * (1.0 / math.sqrt(k * k * c))
        if self.down:
            # Low-pass first (upfirdn2d's padding for down=2), then a strided VALID conv.
            p = (k - 1) // 2 + 1
            x = _fir_lowpass(x, p)
            y = jax.lax.conv_general_dilated(x, w, (2, 2), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        else:
            y = jax.lax.conv_general_dilated(x, w, (1, 1), ((k // 2, k // 2),) * 2,
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return (lrelu(y) if self.activation else y) * self.gain


def minibatch_std(x: jax.Array, group_size: int = 4, num_channels: int = 1) -> jax.Array:
    """Appends the minibatch standard deviation: [B, H, W, C] -> [B, H, W, C + num_channels].

    As the official layer: sample i belongs to group i mod (B / G); per group, the std over its G members of
    every feature, averaged over pixels and the channels of each of `num_channels` slices.
    """
    b, h, w, c = x.shape
    g = min(group_size, b)
    if b % g:
        raise ValueError(f"minibatch_std: batch {b} is not a multiple of the group size {g}")
    y = x.reshape(g, b // g, h, w, num_channels, c // num_channels)
    y = jnp.sqrt(jnp.mean(jnp.square(y - y.mean(0)), 0) + 1e-8)  # [B/G, H, W, F, c]
    y = y.mean((1, 2, 4))  # [B/G, F]
    y = jnp.tile(y, (g, 1))[:, None, None, :]
    return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, num_channels))], -1)


class Discriminator(nn.Module):
    """The StyleGAN2 residual discriminator: images [B, R, R, K] -> logits [B].

    Blocks b{r} for r = R, R/2, ..., 8: (fromrgb 1x1 at r = R), conv0 3x3 C_r -> C_r, conv1 3x3 down C_r ->
    C_{r/2}, skip 1x1 down without bias, output (skip + conv) * sqrt(1/2) (the gains of the official
    resnet D); then b4: minibatch std (group `mbstd_group`, 1 channel), conv 3x3, fc (16 C_4 -> C_4), out
    (C_4 -> 1). All layers have equalized learning rate and leaky ReLU with gain sqrt 2 (but skip and out).
    C_r = min(channel_base // r, channel_max).
    """

    resolution: int
    channel_base: int
    channel_max: int
    mbstd_group: int = 4

    @nn.compact
    def __call__(self, img: jax.Array) -> jax.Array:
        ch = lambda r: int(min(self.channel_base // r, self.channel_max))  # noqa: E731
        half = math.sqrt(0.5)
        x = None
        for r in reversed(block_resolutions(self.resolution)[1:]):
            if x is None:
                x = EqualConv(ch(r), 1, name=f"b{r}_fromrgb")(img)
            y = EqualConv(ch(r // 2), 1, down=True, use_bias=False, activation=False, gain=half, name=f"b{r}_skip")(x)
            x = EqualConv(ch(r), 3, name=f"b{r}_conv0")(x)
            x = EqualConv(ch(r // 2), 3, down=True, gain=half, name=f"b{r}_conv1")(x)
            x = x + y
        if x is None:
            x = EqualConv(ch(4), 1, name="b4_fromrgb")(img)
        x = minibatch_std(x, self.mbstd_group)
        x = EqualConv(ch(4), 3, name="b4_conv")(x)
        x = FullyConnected(ch(4), activation=True, name="b4_fc")(x.reshape(x.shape[0], -1))
        return FullyConnected(1, name="b4_out")(x)[:, 0]


def discriminator_shapes(d: Discriminator, img_channels: int) -> Any:
    """A discriminator's parameter tree as `jax.ShapeDtypeStruct`s."""
    x = jnp.zeros((1, d.resolution, d.resolution, img_channels))
    return jax.eval_shape(lambda k: d.init(k, x)["params"], jax.random.PRNGKey(0))


def init_discriminator(d: Discriminator, img_channels: int, key: jax.Array) -> Any:
    """Fresh discriminator params (weights N(0, 1), biases 0; one random draw, see `init_params`)."""
    return _init_from_shapes(discriminator_shapes(d, img_channels), key, lambda path: 1.0, affine_bias=0.0)


def truncate(w: jax.Array, w_avg: jax.Array, psi: float) -> jax.Array:
    """The truncation trick: w_avg + psi (w - w_avg) (psi = 1: unchanged, 0: the average face)."""
    return w_avg + psi * (w - w_avg)


class Generator(nn.Module):
    """The StyleGAN2 generator of a `stylegan2_config` (parameter tree in the module docstring)."""

    config: Any

    def setup(self):
        c = self.config
        check_config(c)
        self.mapping_network = MappingNetwork(c.w_dim, c.mapping_layers, c.mapping_lr_mul)
        self.synthesis_network = SynthesisNetwork(c)

    def mapping(self, z: jax.Array, *, truncation_psi: float = 1.0, w_avg: jax.Array | None = None) -> jax.Array:
        """z [B, z_dim] -> w [B, w_dim], truncated towards `w_avg` when `truncation_psi` != 1."""
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"z must be [batch, z_dim={self.config.z_dim}], got shape {tuple(z.shape)}")
        w = self.mapping_network(z)
        if truncation_psi != 1.0:
            if w_avg is None:
                raise ValueError("truncation_psi != 1 needs w_avg (the tracked average w; "
                                 "jgen.gan.pretrained.load returns it)")
            w = truncate(w, w_avg, truncation_psi)
        return w

    def synthesis(self, ws: jax.Array, *, noise_mode: str = "const", key: jax.Array | None = None) -> jax.Array:
        """ws [B, num_ws, w_dim] -> images [B, R, R, K], roughly in [-1, 1] (not clipped)."""
        return self.synthesis_network(ws, noise_mode, key)

    def __call__(self, z: jax.Array, *, truncation_psi: float = 1.0, w_avg: jax.Array | None = None,
                 noise_mode: str = "const", key: jax.Array | None = None) -> jax.Array:
        """z [B, z_dim] -> images [B, R, R, K]: mapping, the same w for every layer, synthesis."""
        w = self.mapping(z, truncation_psi=truncation_psi, w_avg=w_avg)
        return self.synthesis(broadcast_ws(w, num_ws(self.config.resolution)), noise_mode=noise_mode, key=key)


def broadcast_ws(w: jax.Array, n: int) -> jax.Array:
    """w [B, w_dim] -> ws [B, n, w_dim] (one w for every layer; the "w" space of inversion)."""
    return jnp.broadcast_to(w[:, None, :], (w.shape[0], n, w.shape[-1]))


def style_mix(ws1: jax.Array, ws2: jax.Array, cutoff: int) -> jax.Array:
    """Style mixing: layers 0..cutoff-1 from `ws1`, layers cutoff..num_ws-1 from `ws2` ([B, num_ws, w_dim] each).

    Layer index i is the synthesis layer order of the module docstring (ws[0] drives b4.conv1; low indices
    are coarse: pose and shape, high ones fine: colour and texture).
    """
    if ws1.shape != ws2.shape:
        raise ValueError(f"style_mix needs ws of equal shapes, got {tuple(ws1.shape)} and {tuple(ws2.shape)}")
    n = ws1.shape[-2]
    if not 0 <= int(cutoff) <= n:
        raise ValueError(f"cutoff={cutoff} must lie in 0..num_ws={n}")
    take_first = (jnp.arange(n) < cutoff)[:, None]
    return jnp.where(take_first, ws1, ws2)


def update_w_avg(w_avg: jax.Array, w: jax.Array, beta: float) -> jax.Array:
    """Tracked average latent: lerp(mean over the batch of w [B, w_dim], w_avg, beta) = beta w_avg + (1-beta) mean."""
    return jnp.mean(w, 0) + beta * (w_avg - jnp.mean(w, 0))


def param_shapes(config: ml_collections.ConfigDict) -> Any:
    """The generator's parameter tree as `jax.ShapeDtypeStruct`s (no memory, no compilation)."""
    g = Generator(config)
    return jax.eval_shape(lambda k: g.init(k, jnp.zeros((1, config.z_dim)))["params"], jax.random.PRNGKey(0))


def init_params(config: ml_collections.ConfigDict, key: jax.Array) -> Any:
    """Fresh generator params with the distributions of `Generator(config).init` (one random draw).

    `Generator.init` draws every leaf separately, and XLA on CPU compiles each of those threefry calls anew
    (tens of seconds for a small generator); this draws one N(0, 1) vector and deals it out: weights, const
    and noise_const N(0, 1) (mapping weights / lr_mul), biases bias_init / lr_mul (1 for the style affines),
    noise_strength 0.
    """
    return _init_from_shapes(param_shapes(config), key, lambda path: config.mapping_lr_mul
                             if path[0] == "mapping_network" else 1.0)


def _init_from_shapes(shapes: Any, key: jax.Array, lr_mul_of, affine_bias: float = 1.0) -> Any:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    sizes = [int(np.prod(s.shape, dtype=np.int64)) for _, s in leaves]
    noise = np.asarray(jax.random.normal(key, (sum(sizes),), jnp.float32))
    out, start = [], 0
    for (path, s), n in zip(leaves, sizes):
        names = tuple(getattr(p, "key", str(p)) for p in path)
        lr_mul = lr_mul_of(names)
        if names[-1] == "bias":
            value = np.full(s.shape, (affine_bias if names[-2] == "affine" else 0.0) / lr_mul, np.float32)
        elif names[-1] == "noise_strength":
            value = np.zeros(s.shape, np.float32)
        else:
            value = noise[start:start + n].reshape(s.shape) / (lr_mul if names[-1] == "weight" else 1.0)
        start += n
        out.append(jnp.asarray(value, s.dtype))
    return jax.tree_util.tree_unflatten(treedef, out)


