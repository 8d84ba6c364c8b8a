"""Pretrained StyleGAN2 weights from the public PyTorch checkpoints into jgen's parameter tree, without PyTorch.

    config, params, w_avg = load_checkpoint("stylegan2-ffhq-1024x1024.pkl")   # NVlabs .pkl or rosinality .pt
    G = Generator(config)
    images = G.apply({"params": params}, z, truncation_psi=0.7, w_avg=w_avg)

Two layouts are read (tensors through `jgen.gan.torch_reader`: an allow-listed unpickler, nothing from the
file is imported or executed):

* NVlabs `.pkl` (stylegan2-ada-pytorch / stylegan3 `network-snapshot-*.pkl`, and the official StyleGAN2
  generators those repositories publish in that format): a pickled dict with "G", "D", "G_ema", modules
  pickled by `torch_utils.persistence`. The converter takes `G_ema`'s `state_dict()` names
  (`mapping.fc{i}.weight` [out, in], `mapping.w_avg`, `synthesis.b{r}.const` [C, 4, 4],
  `synthesis.b{r}.conv{0,1}.{weight [O, I, 3, 3], bias, noise_strength [], noise_const [r, r],
  affine.weight [I, w_dim], affine.bias}`, `synthesis.b{r}.torgb.{weight [K, I, 1, 1], bias, affine.*}`,
  `*.resample_filter`).
* rosinality `.pt` (stylegan2-pytorch `train.py` checkpoints, or `convert_weight.py` output): a `torch.save`
  dict whose "g_ema" state dict has `style.{1..L}.{weight, bias}`, `input.input` [1, C, 4, 4], `conv1.*`,
  `to_rgb1.*`, `convs.{j}.{conv.weight [1, O, I, 3, 3], conv.modulation.{weight, bias}, noise.weight [1],
  activate.bias, conv.blur.kernel}`, `to_rgbs.{k}.{conv.weight [1, 3, I, 1, 1], bias [1, 3, 1, 1], ...}` and
  `noises.noise_{j}` [1, 1, r, r]; `latent_avg` [w_dim] when present (convert_weight.py writes it).

Conventions (both layouts store what jgen stores, see `jgen.gan.stylegan2`): weights unscaled (equalized
learning rate applies lr_mul / sqrt(fan_in) at run time), biases divided by lr_mul, the style affine biases
including their +1 init; so the converter only transposes ([out, in] -> [in, out], OIHW -> HWIO,
CHW -> HWC) and drops singleton axes. The up-sampling conv kernels need no flip: both PyTorch layouts apply
them as a transposed convolution, which jgen computes as FIR upsampling then a VALID convolution with the
flipped kernel (tests/gan/test_convert.py checks converted generators against a PyTorch forward pass written
from the public formulas). The FIR buffers (`resample_filter`, `blur.kernel`, `upsample.kernel`) are checked
to be the [1, 3, 3, 1] filter jgen hard-wires.

Known differences, below float32 rounding: rosinality scales conv kernels by 1 / sqrt(fan_in) before
demodulating, so its epsilon 1e-8 acts on a sum fan_in times smaller (relative change ~1e-8). rosinality's
files do not record the mapping lr multiplier (0.01 assumed; `mapping_lr_mul=` overrides). stylegan2-ada
trains with `conv_clamp` 256 and float16 top blocks by default: jgen computes in float32 without clamping
(a warning says so). Not supported, with a clear error: class-conditional generators (`mapping.embed`), the
"resnet"/"orig" synthesis architectures, StyleGAN3 generators (`synthesis.input`), and the TensorFlow `.pkl`
of the original StyleGAN2 release (convert it with stylegan2-ada-pytorch's `legacy.py` first).

Where a user puts real weights: `user_weights_path()` (the file `$JGEN_STYLEGAN2_WEIGHTS`, else the one
`.pkl`/`.pt` in `$JGEN_CACHE_DIR/stylegan2/`, default `~/.cache/jgen/stylegan2/`).
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgen.gan import stylegan2
from jgen.gan import torch_reader

__all__ = [
    "load_checkpoint", "from_nvlabs_pkl", "from_rosinality_pt", "nvlabs_state_to_jgen", "rosinality_state_to_jgen",
    "rosinality_to_nvlabs_names", "infer_config", "official_key", "nvlabs_state_shapes", "user_weights_path",
    "WEIGHTS_ENV", "CheckpointError",
]

WEIGHTS_ENV = "JGEN_STYLEGAN2_WEIGHTS"
_FIR = np.outer(stylegan2.FIR_FILTER, stylegan2.FIR_FILTER) / np.sum(np.outer(stylegan2.FIR_FILTER,
                                                                              stylegan2.FIR_FILTER))


class CheckpointError(ValueError):
    """A checkpoint that is readable but not a StyleGAN2 generator jgen can represent (the message says why)."""


def user_weights_path() -> Path | None:
    """The StyleGAN2 checkpoint a user provided, or None.

    `$JGEN_STYLEGAN2_WEIGHTS` (a `.pkl` or `.pt` file) if set, else the single `*.pkl` / `*.pt` file in
    `$JGEN_CACHE_DIR/stylegan2/` (default `~/.cache/jgen/stylegan2/`).

    Raises:
      FileNotFoundError: the variable names a missing file.
      CheckpointError: the folder holds several checkpoints (set the variable to choose one).
    """
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"${WEIGHTS_ENV}={env} is not a file: point it at an NVlabs .pkl or a "
                                    "rosinality .pt StyleGAN2 checkpoint, or unset it")
        return path
    folder = Path(os.environ.get("JGEN_CACHE_DIR") or Path.home() / ".cache" / "jgen").expanduser() / "stylegan2"
    found = sorted(p for p in folder.glob("*") if p.suffix in (".pkl", ".pt", ".pth") and p.is_file())
    if len(found) > 1:
        raise CheckpointError(f"{folder} holds several checkpoints ({', '.join(p.name for p in found)}): set "
                              f"${WEIGHTS_ENV} to the one to use")
    return found[0] if found else None


def _array(x: Any, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise CheckpointError(f"{what} is a {type(x).__name__}, expected a tensor")
    return x


def official_key(path: tuple[str, ...]) -> str:
    """The NVlabs `G_ema.state_dict()` name of a jgen parameter path, e.g.
    ("synthesis_network", "b8", "conv0", "affine", "weight") -> "synthesis.b8.conv0.affine.weight"."""
    head = {"mapping_network": "mapping", "synthesis_network": "synthesis"}[path[0]]
    return ".".join((head,) + tuple(path[1:]))


def _to_jgen(name: str, x: np.ndarray) -> np.ndarray:
    """Official array -> jgen layout, by leaf name and rank (see the module docstring)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "weight" and x.ndim == 2:
        return x.T  # [out, in] -> [in, out]
    if leaf == "weight" and x.ndim == 4:
        return x.transpose(2, 3, 1, 0)  # [O, I, kh, kw] -> [kh, kw, I, O]
    if leaf == "const":
        return x.transpose(1, 2, 0)  # [C, 4, 4] -> [4, 4, C]
    return x


def _channel_base_max(channels: Mapping[int, int]) -> tuple[int, int]:
    """channel_base, channel_max with min(channel_base // r, channel_max) == channels[r] for every r."""
    cmax = max(channels.values())
    lo, hi = cmax * max(channels), None  # no r below cmax: any base >= cmax * R works; take the smallest
    for r, c in channels.items():
        if c < cmax:
            lo_r, hi_r = c * r, (c + 1) * r - 1
            lo = lo_r if hi is None else max(lo, lo_r)
            hi = hi_r if hi is None else min(hi, hi_r)
    if hi is not None and lo > hi:
        lo = hi + 1  # forces the failure below
    base = lo
    if any(min(base // r, cmax) != c for r, c in channels.items()):
        raise CheckpointError(f"channels per resolution {dict(sorted(channels.items()))} are not "
                              "min(channel_base // r, channel_max) for any channel_base: jgen's config cannot "
                              "express this generator")
    return base, cmax


def infer_config(state: Mapping[str, Any], *, mapping_lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995) -> ml_collections.ConfigDict:
    """The `stylegan2_config` of an NVlabs-named generator state dict, from its shapes alone."""
    keys = list(state)
    if any(k.startswith("synthesis.input.") for k in keys):
        raise CheckpointError("this is a StyleGAN3 generator (synthesis.input.*): jgen implements StyleGAN2 only")
    if any(k.startswith("mapping.embed.") for k in keys):
        raise CheckpointError("class-conditional generator (mapping.embed.*, c_dim > 0): jgen's StyleGAN2 has no "
                              "class conditioning")
    if any(re.match(r"synthesis\.b\d+\.skip\.", k) for k in keys):
        raise CheckpointError("synthesis architecture 'resnet' (synthesis.b*.skip.*): jgen implements 'skip'")
    res = sorted({int(m.group(1)) for k in keys if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not res or res != stylegan2.block_resolutions(res[-1]):
        raise CheckpointError(f"synthesis blocks at resolutions {res}: expected b4, b8, ..., bR")
    missing_rgb = [r for r in res if f"synthesis.b{r}.torgb.weight" not in state]
    if missing_rgb:
        raise CheckpointError(f"blocks {missing_rgb} have no torgb: synthesis architecture 'orig'? jgen "
                              "implements 'skip' (a toRGB per block)")
    fcs = sorted(int(m.group(1)) for k in keys if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
    if not fcs or fcs != list(range(len(fcs))):
        raise CheckpointError(f"mapping layers fc{fcs}: expected fc0 .. fc(L-1)")
    w_dim = _array(state[f"mapping.fc{fcs[-1]}.weight"], "mapping weight").shape[0]
    widths = [_array(state[f"mapping.fc{i}.weight"], "mapping weight").shape[0] for i in fcs]
    if any(w != w_dim for w in widths):
        raise CheckpointError(f"mapping layer widths {widths}: jgen's mapping uses w_dim={w_dim} throughout")
    channels = {r: _array(state[f"synthesis.b{r}.conv1.weight"], "conv weight").shape[0] for r in res}
    base, cmax = _channel_base_max(channels)
    return stylegan2.stylegan2_config(
        resolution=res[-1], img_channels=state[f"synthesis.b{res[-1]}.torgb.weight"].shape[0],
        z_dim=state["mapping.fc0.weight"].shape[1], w_dim=w_dim, mapping_layers=len(fcs), channel_base=base,
        channel_max=cmax, mapping_lr_mul=mapping_lr_mul, w_avg_beta=w_avg_beta)


@functools.lru_cache(maxsize=4)
def _param_shapes_cached(items: tuple) -> Any:
    # Tracing a 1024-px generator's init takes seconds; configs repeat (shape checks, then the conversion).
    return stylegan2.param_shapes(ml_collections.ConfigDict(dict(items)))


def _param_shapes(config: ml_collections.ConfigDict) -> Any:
    return _param_shapes_cached(tuple(sorted(config.to_dict().items())))


def nvlabs_state_shapes(config: ml_collections.ConfigDict) -> "OrderedDict[str, tuple[int, ...]]":
    """Every key of an NVlabs `G_ema.state_dict()` for `config`, with its official shape: the jgen parameters
    (`official_key`, shapes transposed back), `mapping.w_avg` and the `resample_filter` buffers [4, 4]."""
    out: OrderedDict[str, tuple[int, ...]] = OrderedDict()
    for path, spec in jax.tree_util.tree_flatten_with_path(_param_shapes(config))[0]:
        names = tuple(getattr(p, "key", str(p)) for p in path)
        key, shape = official_key(names), tuple(spec.shape)
        if names[-1] == "weight" and len(shape) == 2:
            shape = shape[::-1]
        elif names[-1] == "weight" and len(shape) == 4:
            shape = (shape[3], shape[2], shape[0], shape[1])
        elif names[-1] == "const":
            shape = (shape[2], shape[0], shape[1])
        out[key] = shape
    out["mapping.w_avg"] = (config.w_dim,)
    for r in stylegan2.block_resolutions(config.resolution):
        out[f"synthesis.b{r}.resample_filter"] = (4, 4)
        for layer in ("conv0", "conv1") if r > 4 else ("conv1",):
            out[f"synthesis.b{r}.{layer}.resample_filter"] = (4, 4)
    return out


def _check_fir(name: str, x: Any, gain: float) -> None:
    x = _array(x, name)
    if x.shape != (4, 4) or not np.allclose(np.asarray(x, np.float64), _FIR * gain, rtol=1e-3, atol=1e-6):
        raise CheckpointError(f"{name} is not the [1, 3, 3, 1] FIR filter jgen uses (shape {x.shape}): "
                              "generators with another resampling filter are not supported")


def nvlabs_state_to_jgen(state: Mapping[str, Any], *, mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995,
                         dtype: Any = jnp.float32) -> tuple[ml_collections.ConfigDict, Any, jax.Array | None]:
    """NVlabs-named generator state dict (`G_ema.state_dict()`, arrays) -> (config, params, w_avg).

    Args:
      state: flat {name: array} as the module docstring lists; `mapping.w_avg` becomes `w_avg`.
      mapping_lr_mul, w_avg_beta: config values the state dict does not hold.
      dtype: dtype of the returned params (float16 / bfloat16 checkpoints are widened); None: numpy float32
        arrays, views of `state` where no cast is needed (no copy, no device transfer).

    Returns:
      config (`stylegan2_config`), params (the tree of `stylegan2.param_shapes(config)`, jax arrays), w_avg
      [w_dim] or None when the state has no `mapping.w_avg`.

    Raises:
      CheckpointError: an unsupported generator, a missing or misshapen key, an unexpected key.
    """
    config = infer_config(state, mapping_lr_mul=mapping_lr_mul, w_avg_beta=w_avg_beta)
    shapes = _param_shapes(config)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(shapes)
    used, out = set(), []
    for path, spec in leaves:
        names = tuple(getattr(p, "key", str(p)) for p in path)
        key = official_key(names)
        if key not in state:
            raise CheckpointError(f"checkpoint has no {key} (needed for jgen's {'/'.join(names)} {spec.shape})")
        x = _to_jgen(key, _array(state[key], key))
        if tuple(x.shape) != tuple(spec.shape):
            raise CheckpointError(f"{key} has shape {tuple(state[key].shape)}, which gives {tuple(x.shape)} for "
                                  f"jgen's {'/'.join(names)}; expected {tuple(spec.shape)}")
        used.add(key)
        out.append(np.asarray(x, np.float32) if dtype is None else jnp.asarray(np.asarray(x, np.float32), dtype))
    w_avg = state.get("mapping.w_avg")
    for key in state:
        if key in used or key == "mapping.w_avg":
            continue
        if key.endswith(".resample_filter"):
            _check_fir(key, state[key], 1.0)
            continue
        raise CheckpointError(f"unexpected key {key} in the generator state: not part of jgen's StyleGAN2")
    if w_avg is not None:
        w_avg = _array(w_avg, "mapping.w_avg")
        if w_avg.shape != (config.w_dim,):
            raise CheckpointError(f"mapping.w_avg has shape {w_avg.shape}, expected ({config.w_dim},)")
        w_avg = np.asarray(w_avg, np.float32) if dtype is None else jnp.asarray(np.asarray(w_avg, np.float32), dtype)
    return config, jax.tree_util.tree_unflatten(treedef, out), w_avg


def _squeeze_lead(name: str, x: Any, ndim: int) -> np.ndarray:
    x = _array(x, name)
    lead = x.ndim - ndim
    if lead < 0 or any(d != 1 for d in x.shape[:lead]):
        raise CheckpointError(f"{name} has shape {x.shape}: expected {ndim} axes after leading singletons")
    return x.reshape(x.shape[lead:])


def rosinality_to_nvlabs_names(state: Mapping[str, Any]) -> "OrderedDict[str, np.ndarray]":
    """rosinality `Generator.state_dict()` -> the NVlabs names and shapes (`nvlabs_state_to_jgen` input).

    style.{i+1} -> mapping.fc{i}; input.input -> synthesis.b4.const; conv1 / to_rgb1 / noises.noise_0 -> b4's
    conv1 / torgb / noise_const; convs.{2k-2}, convs.{2k-1}, to_rgbs.{k-1}, noises.noise_{2k-1}, noise_{2k}
    -> b{4 * 2^k}'s conv0, conv1, torgb and their noise_const; conv.modulation -> affine,
    activate.bias -> bias, noise.weight [1] -> noise_strength []. The blur/upsample kernels are checked.
    """
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    used = set()

    def take(src: str, dst: str, ndim: int) -> None:
        if src not in state:
            raise CheckpointError(f"rosinality checkpoint has no {src}")
        x = _array(state[src], src)
        if src.startswith("to_rgb") and src.endswith(".bias"):  # [1, 3, 1, 1] -> [3]
            x = x.reshape(-1)
        out[dst] = _squeeze_lead(src, x, ndim)
        used.add(src)

    styles = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if not styles or styles != list(range(1, len(styles) + 1)):
        raise CheckpointError(f"rosinality mapping layers style.{styles}: expected style.1 .. style.L (is this a "
                              "rosinality stylegan2-pytorch generator state dict?)")
    for i in styles:
        take(f"style.{i}.weight", f"mapping.fc{i - 1}.weight", 2)
        take(f"style.{i}.bias", f"mapping.fc{i - 1}.bias", 1)
    take("input.input", "synthesis.b4.const", 3)

    def styled_conv(src: str, dst: str, noise: str) -> None:
        take(f"{src}.conv.weight", f"{dst}.weight", 4)
        take(f"{src}.conv.modulation.weight", f"{dst}.affine.weight", 2)
        take(f"{src}.conv.modulation.bias", f"{dst}.affine.bias", 1)
        take(f"{src}.noise.weight", f"{dst}.noise_strength", 0)
        take(f"{src}.activate.bias", f"{dst}.bias", 1)
        take(noise, f"{dst}.noise_const", 2)

    def to_rgb(src: str, dst: str) -> None:
        take(f"{src}.conv.weight", f"{dst}.weight", 4)
        take(f"{src}.conv.modulation.weight", f"{dst}.affine.weight", 2)
        take(f"{src}.conv.modulation.bias", f"{dst}.affine.bias", 1)
        take(f"{src}.bias", f"{dst}.bias", 1)

    styled_conv("conv1", "synthesis.b4.conv1", "noises.noise_0")
    to_rgb("to_rgb1", "synthesis.b4.torgb")
    n_rgb = len({m.group(1) for k in state if (m := re.match(r"to_rgbs\.(\d+)\.", k))})
    for k in range(1, n_rgb + 1):
        r = 4 * 2 ** k
        styled_conv(f"convs.{2 * k - 2}", f"synthesis.b{r}.conv0", f"noises.noise_{2 * k - 1}")
        styled_conv(f"convs.{2 * k - 1}", f"synthesis.b{r}.conv1", f"noises.noise_{2 * k}")
        to_rgb(f"to_rgbs.{k - 1}", f"synthesis.b{r}.torgb")
    for key in state:
        if key in used:
            continue
        if key.endswith(".blur.kernel") or key.endswith(".upsample.kernel"):
            _check_fir(key, state[key], 4.0)  # rosinality multiplies its up-sampling kernels by factor^2
            continue
        raise CheckpointError(f"unexpected key {key} in the rosinality generator state: not part of StyleGAN2 "
                              "config-e/f as jgen implements it")
    return out


def _mean_w(config, params, samples: int, key: jax.Array) -> jax.Array:
    g = stylegan2.Generator(config)
    z = jax.random.normal(key, (samples, config.z_dim))
    w = jax.jit(lambda p, z: g.apply({"params": p}, z, method=g.mapping))(params, z)
    return jnp.mean(w, 0)


def rosinality_state_to_jgen(state: Mapping[str, Any], *, latent_avg: Any = None, mapping_lr_mul: float = 0.01,
                             w_avg_samples: int = 4096, key: jax.Array | None = None, dtype: Any = jnp.float32):
    """rosinality `g_ema` state dict -> (config, params, w_avg).

    w_avg is `latent_avg` when given (convert_weight.py stores the TF `dlatent_avg`), else the mean of the
    mapping over `w_avg_samples` N(0, I) latents drawn from `key` (default PRNGKey(0)), which is what
    rosinality's `mean_latent(4096)` estimates; `w_avg_samples=0` returns None instead.
    """
    config, params, _ = nvlabs_state_to_jgen(rosinality_to_nvlabs_names(state), mapping_lr_mul=mapping_lr_mul,
                                             dtype=dtype)
    if latent_avg is not None:
        w_avg = _squeeze_lead("latent_avg", latent_avg, 1)
        if w_avg.shape != (config.w_dim,):
            raise CheckpointError(f"latent_avg has shape {w_avg.shape}, expected ({config.w_dim},)")
        w_avg = jnp.asarray(np.asarray(w_avg, np.float32), dtype)
    elif w_avg_samples:
        w_avg = _mean_w(config, params, int(w_avg_samples), jax.random.PRNGKey(0) if key is None else key)
    else:
        w_avg = None
    return config, params, w_avg


def _float16_warning(module: Any) -> None:
    clamps, fp16 = set(), False

    def walk(m: Any) -> None:
        nonlocal fp16
        if isinstance(m, torch_reader.PersistentObject):
            if m.state.get("conv_clamp") is not None:
                clamps.add(m.state["conv_clamp"])
            fp16 = fp16 or bool(m.state.get("use_fp16"))
            for child in (m.state.get("_modules") or {}).values():
                walk(child)

    walk(module)
    if clamps or fp16:
        warnings.warn(f"the generator was built for float16 training (conv_clamp {sorted(clamps)}, float16 "
                      f"blocks: {fp16}); jgen computes every layer in float32 without clamping, so outputs differ "
                      "from the original's float16 GPU path by float16 rounding and wherever an activation exceeds "
                      "the clamp", stacklevel=3)


def from_nvlabs_pkl(path: str | os.PathLike, *, network: str = "G_ema", unknown_globals: str = "error",
                    dtype: Any = jnp.float32):
    """An NVlabs stylegan2-ada-pytorch / stylegan3 `.pkl` -> (config, params, w_avg); see the module docstring.

    mapping_lr_mul and w_avg_beta are read from the pickled modules (`mapping.fc0.bias_gain`,
    `mapping.w_avg_beta`) when present, else 0.01 and 0.995.

    Args:
      path: the pickle.
      network: which generator of the snapshot ("G_ema", the one to sample from, or "G").
      unknown_globals: see `torch_reader.load_torch_file`.
      dtype: dtype of the returned params.
    """
    return _from_nvlabs_obj(torch_reader.load_torch_file(path, unknown_globals=unknown_globals), path,
                            network=network, dtype=dtype)


def _from_nvlabs_obj(obj: Any, path: Any, *, network: str = "G_ema", dtype: Any = jnp.float32):
    if not isinstance(obj, dict) or network not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} is not an NVlabs network snapshot: expected a dict with {network!r}, got "
                              f"{keys}")
    g = obj[network]
    state = torch_reader.module_state_dict(g)
    lr_mul, beta = 0.01, 0.995
    if isinstance(g, torch_reader.PersistentObject):
        _float16_warning(g)
        mapping = (g.state.get("_modules") or {}).get("mapping")
        if isinstance(mapping, torch_reader.PersistentObject):
            fc0 = (mapping.state.get("_modules") or {}).get("fc0")
            if isinstance(fc0, torch_reader.PersistentObject) and fc0.state.get("bias_gain") is not None:
                lr_mul = float(fc0.state["bias_gain"])
            if mapping.state.get("w_avg_beta") is not None:
                beta = float(mapping.state["w_avg_beta"])
    return nvlabs_state_to_jgen(state, mapping_lr_mul=lr_mul, w_avg_beta=beta, dtype=dtype)


def from_rosinality_pt(path: str | os.PathLike, *, network: str = "g_ema", mapping_lr_mul: float = 0.01,
                       w_avg_samples: int = 4096, key: jax.Array | None = None, unknown_globals: str = "error",
                       dtype: Any = jnp.float32):
    """A rosinality stylegan2-pytorch `.pt` -> (config, params, w_avg); see `rosinality_state_to_jgen`.

    Args:
      path: the `torch.save` file (zip or legacy).
      network: the state dict to convert ("g_ema", or "g" of a train.py checkpoint).
      mapping_lr_mul: the `--lr_mlp`-style multiplier the checkpoint was trained with (0.01, rosinality's
        default; the file does not record it).
      w_avg_samples, key: how w_avg is estimated when the file has no `latent_avg`.
      unknown_globals: see `torch_reader.load_torch_file`.
      dtype: dtype of the returned params.
    """
    return _from_rosinality_obj(torch_reader.load_torch_file(path, unknown_globals=unknown_globals), path,
                                network=network, mapping_lr_mul=mapping_lr_mul, w_avg_samples=w_avg_samples,
                                key=key, dtype=dtype)


def _from_rosinality_obj(obj: Any, path: Any, *, network: str = "g_ema", mapping_lr_mul: float = 0.01,
                         w_avg_samples: int = 4096, key: jax.Array | None = None, dtype: Any = jnp.float32):
    if not isinstance(obj, dict) or network not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path} is not a rosinality checkpoint: expected a dict with {network!r}, got {keys}")
    return rosinality_state_to_jgen(obj[network], latent_avg=obj.get("latent_avg"), mapping_lr_mul=mapping_lr_mul,
                                    w_avg_samples=w_avg_samples, key=key, dtype=dtype)


def load_checkpoint(path: str | os.PathLike, *, unknown_globals: str = "error", **kwargs: Any):
    """NVlabs `.pkl` or rosinality `.pt`, told apart by content ("G_ema" vs "g_ema") -> (config, params, w_avg).

    The file is read once; other keyword arguments go to `from_nvlabs_pkl` / `from_rosinality_pt`.
    """
    obj = torch_reader.load_torch_file(path, unknown_globals=unknown_globals)
    if isinstance(obj, dict) and "G_ema" in obj:
        return _from_nvlabs_obj(obj, path, **kwargs)
    if isinstance(obj, dict) and "g_ema" in obj:
        return _from_rosinality_obj(obj, path, **kwargs)
    keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{path}: neither an NVlabs snapshot (dict with 'G_ema') nor a rosinality checkpoint "
                          f"(dict with 'g_ema'); it holds {keys}")
