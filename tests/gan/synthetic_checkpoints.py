"""Writers of synthetic StyleGAN2 checkpoints in the public layouts, without PyTorch (for the converter tests).

The key names, shapes and module nesting follow the public code (read, not copied):
NVlabs stylegan2-ada-pytorch `training/networks.py` (Generator -> synthesis.b{r}.{const, conv0, conv1, torgb},
mapping.fc{i}, mapping.w_avg; persistent classes pickled by `torch_utils/persistence.py`) and rosinality
stylegan2-pytorch `model.py` (style.{i}, input.input, conv1, to_rgb1, convs.{j}, to_rgbs.{k}, noises.noise_{j}).
The files are real PyTorch formats, written opcode by opcode with the pure-Python pickler so that `torch`
is never imported: `torch.save` zip (data.pkl + data/<key>), legacy `torch.save`, and the plain pickle of
persistent modules whose storages are `torch.storage._load_from_bytes(legacy bytes)`.

The inverse mappings jgen -> public layout (`jgen_to_nvlabs`, `jgen_to_rosinality`) are written here from
the public layouts, independently of `jgen.gan.convert`, so a round trip checks the converter.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

_STORAGE_NAMES = {np.dtype("f4"): "FloatStorage", np.dtype("f2"): "HalfStorage", np.dtype("f8"): "DoubleStorage",
                  np.dtype("i8"): "LongStorage", np.dtype("i4"): "IntStorage", np.dtype("u1"): "ByteStorage",
                  np.dtype("?"): "BoolStorage"}
_FIR = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0])
_FIR = (_FIR / _FIR.sum()).astype(np.float32)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# ----------------------------------------------------------------------------------------------- layouts

def nvlabs_layout(resolution: int = 1024, img_channels: int = 3, z_dim: int = 512, w_dim: int = 512,
                  mapping_layers: int = 8, channel_base: int = 32768, channel_max: int = 512
                  ) -> "OrderedDict[str, tuple[tuple[int, ...], str]]":
    """`G_ema.state_dict()` of the NVlabs StyleGAN2 generator ("skip" G, no conditioning): name -> (shape, kind),
    kind "param" or "buffer", in torch's order (per module: parameters, buffers, children). The defaults are
    config-f at 1024 px."""
    ch = lambda r: min(channel_base // r, channel_max)  # noqa: E731
    out: OrderedDict = OrderedDict()
    log2 = int(round(math.log2(resolution)))
    for r in [2 ** k for k in range(2, log2 + 1)]:  # Generator registers synthesis first
        b = f"synthesis.b{r}"
        if r == 4:
            out[f"{b}.const"] = ((ch(4), 4, 4), "param")
        out[f"{b}.resample_filter"] = ((4, 4), "buffer")
        for layer, cin in ((("conv0", ch(r // 2)), ("conv1", ch(r))) if r > 4 else (("conv1", ch(4)),)):
            p = f"{b}.{layer}"
            out[f"{p}.weight"] = ((ch(r), cin, 3, 3), "param")
            out[f"{p}.noise_strength"] = ((), "param")
            out[f"{p}.bias"] = ((ch(r),), "param")
            out[f"{p}.resample_filter"] = ((4, 4), "buffer")
            out[f"{p}.noise_const"] = ((r, r), "buffer")
            out[f"{p}.affine.weight"] = ((cin, w_dim), "param")
            out[f"{p}.affine.bias"] = ((cin,), "param")
        out[f"{b}.torgb.weight"] = ((img_channels, ch(r), 1, 1), "param")
        out[f"{b}.torgb.bias"] = ((img_channels,), "param")
        out[f"{b}.torgb.affine.weight"] = ((ch(r), w_dim), "param")
        out[f"{b}.torgb.affine.bias"] = ((ch(r),), "param")
    out["mapping.w_avg"] = ((w_dim,), "buffer")
    for i in range(mapping_layers):
        out[f"mapping.fc{i}.weight"] = ((w_dim, z_dim if i == 0 else w_dim), "param")
        out[f"mapping.fc{i}.bias"] = ((w_dim,), "param")
    return out


def rosinality_layout(size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                      channels: Mapping[int, int] | None = None) -> "OrderedDict[str, tuple[int, ...]]":
    """`Generator.state_dict()` of rosinality's StyleGAN2: name -> shape, in torch's order. `channels` overrides
    the channel table {4: 512, ..., 1024: 16 * channel_multiplier} (for small test generators). Defaults:
    config-f at 1024 px (`Generator(1024, 512, 8)`)."""
    if channels is None:
        channels = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
                    256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    log2 = int(round(math.log2(size)))
    out: OrderedDict = OrderedDict()
    for i in range(1, n_mlp + 1):
        out[f"style.{i}.weight"] = (style_dim, style_dim)
        out[f"style.{i}.bias"] = (style_dim,)
    out["input.input"] = (1, channels[4], 4, 4)

    def styled(p: str, cin: int, cout: int, up: bool) -> None:
        out[f"{p}.conv.weight"] = (1, cout, cin, 3, 3)
        if up:
            out[f"{p}.conv.blur.kernel"] = (4, 4)
        out[f"{p}.conv.modulation.weight"] = (cin, style_dim)
        out[f"{p}.conv.modulation.bias"] = (cin,)
        out[f"{p}.noise.weight"] = (1,)
        out[f"{p}.activate.bias"] = (cout,)

    def rgb(p: str, cin: int, up: bool) -> None:
        out[f"{p}.bias"] = (1, 3, 1, 1)
        if up:
            out[f"{p}.upsample.kernel"] = (4, 4)
        out[f"{p}.conv.weight"] = (1, 3, cin, 1, 1)
        out[f"{p}.conv.modulation.weight"] = (cin, style_dim)
        out[f"{p}.conv.modulation.bias"] = (cin,)

    styled("conv1", channels[4], channels[4], False)
    rgb("to_rgb1", channels[4], False)
    cin = channels[4]
    for j, i in enumerate(range(3, log2 + 1)):
        cout = channels[2 ** i]
        styled(f"convs.{2 * j}", cin, cout, True)
        styled(f"convs.{2 * j + 1}", cout, cout, False)
        cin = cout
    cin = channels[4]
    for j, i in enumerate(range(3, log2 + 1)):
        rgb(f"to_rgbs.{j}", channels[2 ** i], True)
    for idx in range((log2 - 2) * 2 + 1):
        r = 2 ** ((idx + 5) // 2)
        out[f"noises.noise_{idx}"] = (1, 1, r, r)
    return out


def random_state(shapes: Mapping[str, Any], seed: int = 0, dtype=np.float32) -> "OrderedDict[str, np.ndarray]":
    """Random values for a layout (N(0, 1), one draw dealt out), the FIR buffers set to what the code sets."""
    # nvlabs_layout values are (shape, kind), rosinality_layout values shapes.
    shapes = {k: v[0] if len(v) == 2 and isinstance(v[1], str) else v for k, v in shapes.items()}
    sizes = {k: int(np.prod(s, dtype=np.int64)) for k, s in shapes.items()}
    flat = np.random.default_rng(seed).standard_normal(sum(sizes.values()), np.float32).astype(dtype, copy=False)
    out, start = OrderedDict(), 0
    for k, s in shapes.items():
        if k.endswith("resample_filter"):
            out[k] = _FIR.astype(dtype)
        elif k.endswith(".blur.kernel") or k.endswith(".upsample.kernel"):
            out[k] = (_FIR * 4).astype(dtype)
        else:
            out[k] = flat[start:start + sizes[k]].reshape(s)
        start += sizes[k]
    return out


# ---------------------------------------------------------------------------------- jgen -> public layouts

def _jgen_flat(params: Mapping[str, Any], prefix: tuple = ()) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            out.update(_jgen_flat(v, prefix + (k,)))
        else:
            out[prefix + (k,)] = np.asarray(v)
    return out


def jgen_to_nvlabs(config: Any, params: Mapping[str, Any], w_avg: Any) -> "OrderedDict[str, np.ndarray]":
    """jgen params -> NVlabs `G_ema.state_dict()` (names and shapes of `nvlabs_layout`)."""
    flat = _jgen_flat(params)
    layout = nvlabs_layout(config.resolution, config.img_channels, config.z_dim, config.w_dim,
                           config.mapping_layers, config.channel_base, config.channel_max)
    out = OrderedDict()
    for key, (shape, _kind) in layout.items():
        parts = key.split(".")
        if parts[-1] == "resample_filter":
            out[key] = _FIR.copy()
            continue
        if key == "mapping.w_avg":
            out[key] = np.asarray(w_avg, np.float32)
            continue
        top = {"mapping": "mapping_network", "synthesis": "synthesis_network"}[parts[0]]
        x = flat[(top,) + tuple(parts[1:])]
        if x.ndim == 2 and parts[-1] == "weight":  # dense [in, out] -> torch [out, in]
            x = x.T
        elif x.ndim == 4:  # HWIO -> OIHW
            x = x.transpose(3, 2, 0, 1)
        elif parts[-1] == "const":  # HWC -> CHW
            x = x.transpose(2, 0, 1)
        assert x.shape == shape, (key, x.shape, shape)
        out[key] = np.array(x, np.float32, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    return out


def jgen_to_rosinality(config: Any, params: Mapping[str, Any]) -> "OrderedDict[str, np.ndarray]":
    """jgen params -> rosinality `Generator.state_dict()` (img_channels must be 3, rosinality's only choice)."""
    assert config.img_channels == 3
    nv = jgen_to_nvlabs(config, params, np.zeros(config.w_dim, np.float32))
    sides = [2 ** k for k in range(2, int(math.log2(config.resolution)) + 1)]
    ch = {r: min(config.channel_base // r, config.channel_max) for r in sides}
    layout = rosinality_layout(config.resolution, config.w_dim, config.mapping_layers, channels=ch)
    out = OrderedDict()
    for key, shape in layout.items():
        parts = key.split(".")
        if parts[-1] == "kernel":
            out[key] = (_FIR * 4).astype(np.float32)
            continue
        if parts[0] == "style":
            src = f"mapping.fc{int(parts[1]) - 1}.{parts[2]}"
        elif key == "input.input":
            src = "synthesis.b4.const"
        elif parts[0] == "noises":
            idx = int(parts[1].split("_")[1])
            r = 2 ** ((idx + 5) // 2)
            src = f"synthesis.b{r}.{'conv1' if idx == 0 or idx % 2 == 0 else 'conv0'}.noise_const"
        else:
            if parts[0] in ("conv1", "to_rgb1"):
                block, layer, rest = "b4", "conv1" if parts[0] == "conv1" else "torgb", parts[1:]
            elif parts[0] == "convs":
                j = int(parts[1])
                block, layer, rest = f"b{2 ** (j // 2 + 3)}", "conv0" if j % 2 == 0 else "conv1", parts[2:]
            else:  # to_rgbs.k
                block, layer, rest = f"b{2 ** (int(parts[1]) + 3)}", "torgb", parts[2:]
            leaf = {("conv", "weight"): "weight", ("conv", "modulation", "weight"): "affine.weight",
                    ("conv", "modulation", "bias"): "affine.bias", ("noise", "weight"): "noise_strength",
                    ("activate", "bias"): "bias", ("bias",): "bias"}[tuple(rest)]
            src = f"synthesis.{block}.{layer}.{leaf}"
        out[key] = np.array(nv[src].reshape(shape), order="C")
    return out


# --------------------------------------------------------------------------------------- pickle plumbing

class GlobalRef:
    """A global written as the GLOBAL opcode without importing it (e.g. torch._utils._rebuild_tensor_v2)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Call:
    """`func(*args)` in the pickle (REDUCE); func is a GlobalRef."""

    def __init__(self, func: GlobalRef, args: tuple):
        self.func, self.args = func, args


class Instance:
    """`cls.__new__(cls)` then SETITEMS `items` and BUILD `state` (how dict subclasses / plain objects pickle)."""

    def __init__(self, cls: GlobalRef, state: Any = None, items: Mapping | None = None):
        self.cls, self.state, self.items = cls, state, items


class Param:
    """A torch.nn.Parameter around an array (pickled via torch._utils._rebuild_parameter)."""

    def __init__(self, array: np.ndarray):
        self.array = array


class _Storage:
    def __init__(self, array: np.ndarray, key: str):
        self.array, self.key = np.ascontiguousarray(array).reshape(-1), key


class _TorchPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table takes our types
    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, protocol: int, storage_mode: str):
        super().__init__(file, protocol)
        self.storage_mode = storage_mode  # "persistent" (torch.save) or "bytes" (plain pickle)
        self.storages: list[_Storage] = []

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, _Storage) and self.storage_mode != "bytes":
            kind = GlobalRef("torch", _STORAGE_NAMES[obj.array.dtype])
            if self.storage_mode == "legacy":
                return ("storage", kind, obj.key, "cpu", obj.array.size, None)
            return ("storage", kind, obj.key, "cpu", obj.array.size)
        return None

    def save_globalref(self, obj: GlobalRef) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)
    dispatch[GlobalRef] = save_globalref

    def save_call(self, obj: Call) -> None:
        self.save(obj.func)
        self.save(tuple(obj.args))
        self.write(pickle.REDUCE)
        self.memoize(obj)
    dispatch[Call] = save_call

    def save_instance(self, obj: Instance) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        if obj.items:
            self._batch_setitems(iter(obj.items.items()))
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)
    dispatch[Instance] = save_instance

    def _tensor(self, array: np.ndarray) -> Call:
        array = np.asarray(array)
        storage = _Storage(array, str(len(self.storages)))
        self.storages.append(storage)
        if self.storage_mode == "bytes":
            storage_obj: Any = Call(GlobalRef("torch.storage", "_load_from_bytes"), (legacy_bytes(storage.array),))
        else:
            storage_obj = storage
        stride = tuple(int(np.prod(array.shape[i + 1:], dtype=np.int64)) for i in range(array.ndim))
        return Call(GlobalRef("torch._utils", "_rebuild_tensor_v2"),
                    (storage_obj, 0, tuple(array.shape), stride, False, OrderedDict()))

    def save_ndarray(self, obj: np.ndarray) -> None:
        self.save(self._tensor(obj))
    dispatch[np.ndarray] = save_ndarray

    def save_param(self, obj: Param) -> None:
        self.save(Call(GlobalRef("torch._utils", "_rebuild_parameter"), (self._tensor(obj.array), False,
                                                                           OrderedDict())))
    dispatch[Param] = save_param


def _dumps(obj: Any, protocol: int, storage_mode: str) -> tuple[bytes, list[_Storage]]:
    buf = io.BytesIO()
    p = _TorchPickler(buf, protocol, storage_mode)
    p.dump(obj)
    return buf.getvalue(), p.storages


def _legacy_header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC, 1001, sys_info))


def legacy_bytes(flat: np.ndarray) -> bytes:
    """`torch.save(storage, _use_new_zipfile_serialization=False)` of one storage (what `_load_from_bytes` reads)."""
    storage = _Storage(flat, "0")
    body, _ = _dumps(storage, 2, "legacy")
    data = np.ascontiguousarray(storage.array.astype(storage.array.dtype.newbyteorder("<")))
    return _legacy_header() + body + pickle.dumps(["0"], protocol=2) + struct.pack("<q", data.size) + data.tobytes()


def write_torch_zip(path: Any, obj: Any) -> None:
    """`torch.save(obj, path)` (zip format, torch >= 1.6): numpy arrays become tensors, Param parameters."""
    data, storages = _dumps(obj, 2, "zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data)
        z.writestr("archive/byteorder", "little")
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())
        z.writestr("archive/version", "3\n")


def write_torch_legacy(path: Any, obj: Any) -> None:
    """`torch.save(obj, path, _use_new_zipfile_serialization=False)`."""
    data, storages = _dumps(obj, 2, "legacy")
    with open(path, "wb") as f:
        f.write(_legacy_header() + data + pickle.dumps([s.key for s in storages], protocol=2))
        for s in storages:
            f.write(struct.pack("<q", s.array.size))
            f.write(s.array.astype(s.array.dtype.newbyteorder("<")).tobytes())


# ------------------------------------------------------------------------------------ NVlabs persistent pickle

HARMLESS_SRC = "# the source of training/networks.py would be here\n"


def _persistent(class_name: str, params: Mapping, buffers: Mapping, modules: Mapping, attrs: Mapping,
                module_src: str) -> Call:
    hooks = {k: OrderedDict() for k in ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks",
                                        "_state_dict_hooks", "_load_state_dict_pre_hooks")}
    state = {"training": False, "_parameters": OrderedDict((k, Param(v)) for k, v in params.items()),
             "_buffers": OrderedDict(buffers), "_non_persistent_buffers_set": set(), **hooks,
             "_modules": OrderedDict(modules), "_init_args": (),
             "_init_kwargs": Instance(GlobalRef("dnnlib.util", "EasyDict"), state={}, items=dict(attrs.get(
                 "_kwargs", {}))), **{k: v for k, v in attrs.items() if k != "_kwargs"}}
    meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name, "state": state}
    return Call(GlobalRef("torch_utils.persistence", "_reconstruct_persistent_obj"), (meta,))


def nvlabs_generator_object(state: Mapping[str, np.ndarray], *, module_src: str = HARMLESS_SRC,
                            mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> Call:
    """The pickled `G_ema` (persistent Generator) holding `state` (names of `nvlabs_layout`), with the module
    attributes the public code sets (z_dim, resolution, weight_gain as numpy float64, ...)."""
    layout_kinds = {k: ("buffer" if k.rsplit(".", 1)[-1] in ("resample_filter", "noise_const", "w_avg") else "param")
                    for k in state}
    tree: dict = {}
    for key, value in state.items():
        node = tree
        *mods, leaf = key.split(".")
        for m in mods:
            node = node.setdefault(m, {})
        node.setdefault("__leaves__", OrderedDict())[leaf] = value

    def class_of(path: tuple[str, ...]) -> str:
        if not path:
            return "Generator"
        last = path[-1]
        if last == "synthesis":
            return "SynthesisNetwork"
        if last == "mapping":
            return "MappingNetwork"
        if re.fullmatch(r"b\d+", last):
            return "SynthesisBlock"
        if last in ("conv0", "conv1"):
            return "SynthesisLayer"
        if last == "torgb":
            return "ToRGBLayer"
        return "FullyConnectedLayer"

    def attrs_of(path: tuple[str, ...], node: dict) -> dict:
        cls, leaves = class_of(path), node.get("__leaves__", {})
        if cls == "FullyConnectedLayer":
            w = leaves["weight"]
            lr = mapping_lr_mul if path[0] == "mapping" else 1.0
            return {"activation": "lrelu" if path[0] == "mapping" else "linear",
                    "weight_gain": np.float64(lr / np.sqrt(w.shape[1])), "bias_gain": lr}
        if cls == "SynthesisLayer":
            return {"resolution": leaves["noise_const"].shape[0], "up": 2 if path[-1] == "conv0" else 1,
                    "use_noise": True, "activation": "lrelu", "conv_clamp": None, "padding": 1,
                    "act_gain": math.sqrt(2)}
        if cls == "ToRGBLayer":
            return {"conv_clamp": None, "weight_gain": np.float64(1 / np.sqrt(leaves["weight"].shape[1]))}
        if cls == "SynthesisBlock":
            return {"resolution": int(path[-1][1:]), "architecture": "skip", "use_fp16": False}
        if cls == "MappingNetwork":
            return {"num_layers": sum(1 for k in node if k.startswith("fc")), "w_avg_beta": w_avg_beta,
                    "_kwargs": {"num_layers": sum(1 for k in node if k.startswith("fc"))}}
        return {}

    def build(path: tuple[str, ...], node: dict) -> Call:
        leaves = node.get("__leaves__", OrderedDict())
        params = OrderedDict((k, v) for k, v in leaves.items() if layout_kinds[".".join(path + (k,))] == "param")
        buffers = OrderedDict((k, v) for k, v in leaves.items() if layout_kinds[".".join(path + (k,))] == "buffer")
        children = OrderedDict((k, build(path + (k,), v)) for k, v in node.items() if k != "__leaves__")
        return _persistent(class_of(path), params, buffers, children, attrs_of(path, node), module_src)

    return build((), tree)


def write_nvlabs_pkl(path: Any, state: Mapping[str, np.ndarray], *, module_src: str = HARMLESS_SRC,
                     mapping_lr_mul: float = 0.01, w_avg_beta: float = 0.995) -> None:
    """An NVlabs `network-snapshot-*.pkl`: {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}, the
    generators holding `state`, D a small persistent Discriminator stand-in; plain pickle, protocol 4."""
    g = lambda: nvlabs_generator_object(state, module_src=module_src, mapping_lr_mul=mapping_lr_mul,  # noqa: E731
                                        w_avg_beta=w_avg_beta)
    d = _persistent("Discriminator", {"b4.out.weight": np.ones((1, 4), np.float32)}, {}, {}, {}, module_src)
    snapshot = {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "ffhq.zip",
                                        "resolution": 0, "use_labels": False, "xflip": True},
                "G": g(), "D": d, "G_ema": g(), "augment_pipe": None}
    data, _ = _dumps(snapshot, 4, "bytes")
    with open(path, "wb") as f:
        f.write(data)


def rosinality_checkpoint(g_ema: Mapping[str, np.ndarray], latent_avg: np.ndarray | None = None,
                          train: bool = True) -> dict:
    """What rosinality's train.py saves ({"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}), or with
    `train=False` what convert_weight.py saves ({"g_ema", "latent_avg"})."""
    if not train:
        return {"g_ema": OrderedDict(g_ema), "latent_avg": latent_avg}
    args = Instance(GlobalRef("argparse", "Namespace"), state={"size": 0, "batch": 16, "r1": 10.0,
                                                                "path": "lmdb", "ckpt": None})
    optim = {"state": {0: {"step": np.array(3.0, np.float32), "exp_avg": np.zeros(2, np.float32)}},
             "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "params": [0]}]}
    return {"g": OrderedDict(g_ema), "d": OrderedDict(), "g_ema": OrderedDict(g_ema), "g_optim": optim,
            "d_optim": optim, "args": args, "ada_aug_p": 0.0}

