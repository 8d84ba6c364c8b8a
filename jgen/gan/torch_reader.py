"""Reads PyTorch checkpoints into numpy arrays without PyTorch and without running code from the file.

    obj = load_torch_file("550000.pt")                  # torch.save file: zip (torch >= 1.6) or legacy
    obj = load_torch_file("network-snapshot.pkl")       # plain pickle with tensors (NVlabs StyleGAN2-ADA/3)
    flat = module_state_dict(obj["G_ema"])              # {"mapping.fc0.weight": ndarray, ...}

Formats, as PyTorch writes them:

* zip (`torch.save`, torch >= 1.6): `<prefix>/data.pkl` (pickle protocol 2) whose tensors are
  `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and whose storages are persistent ids
  `("storage", torch.FloatStorage, key, location, numel)`; the raw bytes of storage `key` are
  `<prefix>/data/<key>` in the byte order of `<prefix>/byteorder` (little when absent).
* legacy `torch.save` (torch < 1.6, or `_use_new_zipfile_serialization=False`): four pickles (magic number,
  protocol version 1001, system info, the object with persistent ids
  `("storage", type, key, location, numel, view)`), a pickled list of storage keys, then per key an int64
  element count and the raw little-endian bytes.
* plain `pickle.dump` of tensors (the NVlabs `network-snapshot-*.pkl`): every storage is
  `torch.storage._load_from_bytes(b)` where `b` is a legacy `torch.save` of that storage alone.

Safety: the unpickler resolves only an allow-list of globals (`ALLOWED_GLOBALS`: containers, numpy arrays and
dtypes, and emulations of the torch tensor/storage rebuild functions written here) and refuses every other
global *before* importing anything: `pickle.UnpicklingError("refusing to load global os.system ...")`. Nothing
from the file is imported, called or executed. With `unknown_globals="placeholder"` a refused global becomes an
inert `OpaqueObject` subclass instead (calling it, NEWOBJ and BUILD only record their arguments), so trusted
files holding other objects (a training script's argument namespace, an optimizer) still read; even then no
code runs. NVlabs' `torch_utils.persistence._reconstruct_persistent_obj`, which `exec`s the module source
embedded in the pickle, is replaced by `PersistentObject`, which keeps that source as an inert string and the
module state (`_parameters`, `_buffers`, `_modules`, attributes) as data. Tensor views are bounds-checked
against their storage. TensorFlow StyleGAN pickles (`dnnlib.tflib`) are out of scope: convert them to the
PyTorch layout with the official `stylegan2-ada-pytorch/legacy.py` first.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import builtins
import codecs
import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import ml_dtypes
import numpy as np

from jgen.data.safe_pickle import ALLOWED_GLOBALS as _NUMPY_GLOBALS

__all__ = [
    "load_torch_file", "loads_torch_pickle", "module_state_dict", "PersistentObject", "OpaqueObject", "EasyDict",
    "TorchDtype",
    "ALLOWED_GLOBALS", "STORAGE_DTYPES", "UNKNOWN_GLOBALS_MODES",
]

UNKNOWN_GLOBALS_MODES = ("error", "placeholder")
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> element dtype (the storage's own dtype; `_rebuild_tensor_v2` views it).
STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("f8"), "FloatStorage": np.dtype("f4"), "HalfStorage": np.dtype("f2"),
    "BFloat16Storage": np.dtype(ml_dtypes.bfloat16), "LongStorage": np.dtype("i8"), "IntStorage": np.dtype("i4"),
    "ShortStorage": np.dtype("i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"), "ComplexFloatStorage": np.dtype("c8"), "ComplexDoubleStorage": np.dtype("c16"),
    "UntypedStorage": np.dtype("u1"),
}
# torch.<dtype> globals (pickled torch.dtype objects) -> numpy dtypes.
_TORCH_DTYPES: dict[str, np.dtype] = {
    "float64": np.dtype("f8"), "float32": np.dtype("f4"), "float16": np.dtype("f2"),
    "bfloat16": np.dtype(ml_dtypes.bfloat16), "int64": np.dtype("i8"), "int32": np.dtype("i4"),
    "int16": np.dtype("i2"), "int8": np.dtype("i1"), "uint8": np.dtype("u1"), "bool": np.dtype("?"),
    "complex64": np.dtype("c8"), "complex128": np.dtype("c16"),
}


class _Frozen:
    """Shared table entries must not be changed by a pickle's BUILD opcode (it would poison later loads)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise pickle.UnpicklingError(f"{type(self).__name__} is read-only")

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError(f"{type(self).__name__} is read-only")


class _StorageType(_Frozen):
    """What a `torch.FloatStorage`-like global resolves to: its name and element dtype, nothing callable."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: np.dtype):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self) -> str:
        return f"<storage type torch.{self.name}>"


class _Storage:
    """A flat typed buffer: `array` [numel] of `dtype` (read from the file on first use)."""

    def __init__(self, dtype: np.dtype, numel: int, read: Callable[[], np.ndarray], pending: bool = False):
        self.dtype, self.numel, self._read, self._array = dtype, int(numel), read, None
        self.pending = pending  # bytes not read yet (first pass over a legacy file): tensors are not built

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            a = self._read()
            if a.dtype.itemsize != self.dtype.itemsize or a.size < self.numel:
                raise pickle.UnpicklingError(f"storage holds {a.size} x {a.dtype} but its record says "
                                             f"{self.numel} x {self.dtype}: the file is damaged")
            self._array = a[:self.numel]
        return self._array

    def view(self, offset: int, numel: int) -> "_Storage":
        if offset < 0 or offset + numel > self.numel:
            raise pickle.UnpicklingError(f"storage view [{offset}, {offset + numel}) lies outside its storage of "
                                         f"{self.numel} elements: the file is damaged")
        return _Storage(self.dtype, numel, lambda: self.array[offset:offset + numel], self.pending)


def _as_int_tuple(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in x):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of ints, got {x!r}")
    return tuple(int(v) for v in x)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any, *_rest: Any) -> np.ndarray:
    """Emulates `torch._utils._rebuild_tensor(_v2)`: the strided view (offset, size, stride) of a storage, as a
    fresh C-contiguous numpy array. Every index it touches is checked to lie inside the storage."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor rebuild expects a storage, got {type(storage).__name__}")
    size, stride = _as_int_tuple(size, "size"), _as_int_tuple(stride, "stride")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError(f"tensor storage offset must be a non-negative int, got {storage_offset!r}")
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"tensor size {size} / stride {stride} are not valid")
    if storage.pending:
        return None
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel:
        raise pickle.UnpicklingError(f"tensor (offset {storage_offset}, size {size}, stride {stride}) reads element "
                                     f"{last} of a storage of {storage.numel}: the file is damaged")
    flat = storage.array
    # Bounds from the buffer itself (not the record), and no object dtypes: as_strided must stay inside it.
    if (not isinstance(flat, np.ndarray) or flat.ndim != 1 or not flat.flags.c_contiguous or flat.dtype.hasobject
            or last >= flat.size):
        raise pickle.UnpicklingError("tensor storage buffer is not a flat numeric array large enough for its view")
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[storage_offset:], size, tuple(s * item for s in stride),
                                           writeable=False)
    return np.array(view, order="C")


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None, *_rest: Any):
    """Emulates `torch._utils._rebuild_parameter(_with_state)`: a parameter is its data array."""
    if not isinstance(data, np.ndarray) and data is not None:  # None: first pass over a legacy file
        raise pickle.UnpicklingError(f"parameter rebuild expects a tensor, got {type(data).__name__}")
    return data


class _TensorType(_Frozen):
    """`torch.Tensor` / `torch.nn.Parameter` as a marker (only `_rebuild_from_type_v2` takes it)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        object.__setattr__(self, "name", name)


class TorchDtype(_Frozen):
    """A pickled `torch.float32`-like dtype: its torch name and the numpy dtype (`.numpy`)."""

    __slots__ = ("name", "numpy")

    def __init__(self, name: str, dtype: np.dtype):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "numpy", dtype)

    def __repr__(self) -> str:
        return f"torch.{self.name}"


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any = None) -> np.ndarray:
    """Emulates `torch._tensor._rebuild_from_type_v2` for plain tensors: `func(*args)` where `func` must be one
    of the rebuild emulations above (tensor subclass state is dropped)."""
    if func not in (_rebuild_tensor, _rebuild_parameter) or not isinstance(new_type, _TensorType):
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 with {func!r}, {new_type!r} is not allowed")
    return func(*args)


def _bytes(*args: Any) -> bytes:
    # bytes() and bytes(b"..."); bytes(n) would allocate n zero bytes on the file's say.
    if args and isinstance(args[0], int):
        raise pickle.UnpicklingError("bytes(int) is not allowed in a checkpoint")
    return bytes(*args)


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol-2 pickles spell Python-3 bytes as _codecs.encode(str, "latin1"); other codecs are refused.
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(obj).__name__}, {encoding!r}) is not allowed")
    return codecs.encode(obj, encoding, errors)


class EasyDict(dict):
    """Inert stand-in for `dnnlib.util.EasyDict` (a dict with attribute access)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PersistentObject:
    """What NVlabs' `torch_utils.persistence._reconstruct_persistent_obj(meta)` becomes: data, never code.

    Attributes:
      class_name: the pickled class (e.g. "Generator", "SynthesisLayer").
      module_src: the Python source the pickle carries for that class; kept as a string and never executed.
      state: the object's `__dict__` (for a torch module: `_parameters`, `_buffers`, `_modules`, attributes).
      version: the persistence format version (6 in stylegan2-ada-pytorch and stylegan3).
    """

    def __init__(self, meta: Any):
        if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
            raise pickle.UnpicklingError("torch_utils.persistence object without a class meta dict "
                                         f"(keys {sorted(meta) if isinstance(meta, dict) else type(meta)})")
        self.class_name = str(meta.get("class_name"))
        self.module_src = meta.get("module_src")
        self.version = meta.get("version")
        self.state = dict(meta["state"])

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__.get("state", {})
        if name in state:
            return state[name]
        modules = state.get("_modules") or {}
        if name in modules:
            return modules[name]
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"<PersistentObject {self.class_name} (source not executed)>"


class OpaqueObject:
    """Base of the inert classes that refused globals become with `unknown_globals="placeholder"`.

    `pickled_global` names the global; calling the class (REDUCE/NEWOBJ/INST) stores `args`/`kwargs`, BUILD
    stores `state`, APPEND(S)/SETITEM(S) store `items`. Nothing is imported or called.
    """

    pickled_global = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items = args, kwargs, None, []
        return obj

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def append(self, value: Any) -> None:
        self.items.append(value)

    def extend(self, values: Any) -> None:
        self.items.extend(values)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def __repr__(self) -> str:
        return f"<inert placeholder for {self.pickled_global}>"


def _placeholder_class(module: str, name: str) -> type:
    return type(f"Opaque_{name}"[:100], (OpaqueObject,), {"pickled_global": f"{module}.{name}",
                                                         "__module__": __name__})


# (module, name) -> object; every name here is inert (containers, numpy array rebuilders, emulations above).
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = dict(_NUMPY_GLOBALS)
ALLOWED_GLOBALS[("_codecs", "encode")] = _codecs_encode
for _name in ("list", "tuple", "dict", "set", "frozenset", "complex"):
    ALLOWED_GLOBALS[("builtins", _name)] = getattr(builtins, _name)
ALLOWED_GLOBALS[("builtins", "bytes")] = _bytes
ALLOWED_GLOBALS[("collections", "OrderedDict")] = collections.OrderedDict
ALLOWED_GLOBALS[("argparse", "Namespace")] = argparse.Namespace  # rosinality train.py saves its args
for _fn in ("_rebuild_tensor", "_rebuild_tensor_v2"):
    ALLOWED_GLOBALS[("torch._utils", _fn)] = _rebuild_tensor
for _fn in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
    ALLOWED_GLOBALS[("torch._utils", _fn)] = _rebuild_parameter
ALLOWED_GLOBALS[("torch._tensor", "_rebuild_from_type_v2")] = _rebuild_from_type_v2
ALLOWED_GLOBALS[("torch", "Tensor")] = _TensorType("Tensor")
ALLOWED_GLOBALS[("torch.nn.parameter", "Parameter")] = _TensorType("Parameter")
for _name, _dt in STORAGE_DTYPES.items():
    ALLOWED_GLOBALS[("torch", _name)] = _StorageType(_name, _dt)
    ALLOWED_GLOBALS[("torch.storage", _name)] = _StorageType(_name, _dt)
for _name, _dt in _TORCH_DTYPES.items():
    ALLOWED_GLOBALS[("torch", _name)] = TorchDtype(_name, _dt)
ALLOWED_GLOBALS[("torch_utils.persistence", "_reconstruct_persistent_obj")] = PersistentObject
for _mod in ("dnnlib", "dnnlib.util"):
    ALLOWED_GLOBALS[(_mod, "EasyDict")] = EasyDict
# ("torch.storage", "_load_from_bytes") is bound per unpickler (it parses nested legacy torch.save bytes).


def _normalise_global(module: str, name: str) -> tuple[str, str]:
    """Python-2 names that protocol < 3 pickles carry (`__builtin__.set`, `copy_reg`) -> Python-3 names."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


# Objects a BUILD opcode may fill in. BUILD on anything else (a class, a function, a shared table entry) could
# change it for the rest of the process, so it is refused.
_BUILD_TARGETS = (np.ndarray, np.dtype, collections.OrderedDict, EasyDict, argparse.Namespace, OpaqueObject)


class _RestrictedUnpickler(pickle._Unpickler):  # the pure-Python unpickler: its BUILD can be restricted
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, file, *, persistent_load: Callable[[Any], Any] | None, unknown_globals: str,
                 allow_nested_bytes: bool):
        super().__init__(file, encoding="latin1")
        self._persistent = persistent_load
        self._unknown = unknown_globals
        self._nested = allow_nested_bytes

    def load_build(self) -> None:
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, type) or not isinstance(inst, _BUILD_TARGETS):
            raise pickle.UnpicklingError(f"refusing to set the state of {type(inst).__name__} {inst!r:.80}: only "
                                         "arrays, dtypes, dicts, namespaces and placeholders take pickled state")
        if isinstance(inst, (np.ndarray, np.dtype, OpaqueObject)):  # their own __setstate__
            return super().load_build()
        self.stack.pop()
        slots = None
        if isinstance(state, tuple) and len(state) == 2:
            state, slots = state
        if slots or (state and not (isinstance(state, dict) and all(isinstance(k, str) for k in state))):
            raise pickle.UnpicklingError(f"refusing pickled state {type(state).__name__} for {type(inst).__name__}")
        inst.__dict__.update(state or {})
    dispatch[pickle.BUILD[0]] = load_build

    def find_class(self, module: str, name: str) -> Any:
        key = _normalise_global(module, name)
        if key in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[key]
        if key == ("torch.storage", "_load_from_bytes") and self._nested:
            return lambda data: _load_storage_bytes(data, self._unknown)
        if key[0].startswith("dnnlib.tflib"):
            raise pickle.UnpicklingError(
                f"{module}.{name}: this is a TensorFlow StyleGAN pickle, which jgen does not read; convert it to "
                "the PyTorch layout with NVlabs stylegan2-ada-pytorch's legacy.py (python legacy.py --source=... "
                "--dest=...) and load the result")
        if self._unknown == "placeholder":
            return _placeholder_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: jgen.gan.torch_reader only resolves tensors, storages, "
            "containers and numpy arrays and never imports or calls anything a file names. If you trust the file "
            "and it holds other objects, pass unknown_globals='placeholder' to read them as inert placeholders")

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r} in a plain pickle")
        return self._persistent(pid)


def _check_mode(unknown_globals: str) -> None:
    if unknown_globals not in UNKNOWN_GLOBALS_MODES:
        raise ValueError(f"unknown_globals={unknown_globals!r} is not valid: expected one of {UNKNOWN_GLOBALS_MODES}")


def _storage_record(pid: Any) -> tuple[_StorageType, str, int, Any]:
    if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}: expected ('storage', type, key, "
                                     "location, numel[, view])")
    storage_type, key, _location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"persistent id {pid!r} names no torch storage type")
    if isinstance(key, bytes):
        key = key.decode("ascii")
    if not isinstance(numel, int) or numel < 0:
        raise pickle.UnpicklingError(f"persistent id {pid!r}: numel must be a non-negative int")
    return storage_type, str(key), int(numel), pid[5] if len(pid) == 6 else None


def _plain_load(data: Any, unknown_globals: str) -> Any:
    """A small pickle of plain values (legacy headers, key lists)."""
    return _RestrictedUnpickler(data, persistent_load=None, unknown_globals=unknown_globals,
                                allow_nested_bytes=False).load()


def _legacy_load(f: io.BufferedIOBase, unknown_globals: str, *, allow_nested_bytes: bool) -> Any:
    """Reads a legacy (non-zip) `torch.save` stream positioned at its start."""
    magic = _plain_load(f, unknown_globals)
    if magic != _LEGACY_MAGIC:
        raise pickle.UnpicklingError("not a torch.save file: the legacy magic number is missing")
    protocol = _plain_load(f, unknown_globals)
    if protocol != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError(f"legacy torch.save protocol {protocol} is not supported (expected 1001)")
    sys_info = _plain_load(f, unknown_globals)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise pickle.UnpicklingError("big-endian legacy torch.save files are not supported")
    # The storage bytes follow the object's pickle, so the pickle is read twice: once to learn the storages
    # (tensors not built), then, with the bytes in hand, for real.
    start = f.tell()
    records: dict[str, tuple[np.dtype, int]] = {}
    buffers: dict[str, np.ndarray] = {}

    def unpickle(pending: bool) -> Any:
        roots: dict[str, _Storage] = {}

        def persistent_load(pid: Any) -> Any:
            if isinstance(pid, tuple) and pid and pid[0] in ("module", b"module"):
                return _placeholder_class("torch.nn", "Module")  # container source record; never executed
            storage_type, key, numel, view = _storage_record(pid)
            if key not in roots:
                records[key] = (storage_type.dtype, numel)
                roots[key] = _Storage(storage_type.dtype, numel, lambda k=key: buffers[k], pending)
            if view is not None:
                _view_key, offset, view_size = view
                return roots[key].view(int(offset), int(view_size))
            return roots[key]

        return _RestrictedUnpickler(f, persistent_load=persistent_load, unknown_globals=unknown_globals,
                                    allow_nested_bytes=allow_nested_bytes).load()

    unpickle(pending=True)
    keys = _plain_load(f, unknown_globals)
    if not isinstance(keys, list):
        raise pickle.UnpicklingError("legacy torch.save file without its storage key list")
    for key in keys:
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        if key not in records:
            raise pickle.UnpicklingError(f"storage {key} is listed but not used: the file is damaged")
        dtype, numel = records[key]
        (count,) = struct.unpack("<q", _read_exact(f, 8))
        if count != numel:
            raise pickle.UnpicklingError(f"storage {key} record holds {count} elements, expected {numel}")
        buffers[key] = np.frombuffer(_read_exact(f, count * dtype.itemsize), dtype.newbyteorder("<")).astype(
            dtype, copy=False)
    missing = sorted(set(records) - set(buffers))
    if missing:
        raise pickle.UnpicklingError(f"storages {missing[:5]} have no data: the file is damaged")
    end = f.tell()
    f.seek(start)
    obj = unpickle(pending=False)
    f.seek(end)
    return obj


def _read_exact(f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError(f"file ends early: wanted {n} bytes, got {len(data)}")
    return data


def _load_storage_bytes(data: Any, unknown_globals: str) -> _Storage:
    """`torch.storage._load_from_bytes(b)` without torch: `b` is a legacy `torch.save` of one storage."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError(f"_load_from_bytes expects bytes, got {type(data).__name__}")
    storage = _legacy_load(io.BytesIO(data), unknown_globals, allow_nested_bytes=False)
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"_load_from_bytes payload is a {type(storage).__name__}, not a storage")
    return storage


def _zip_load(path: str | os.PathLike, unknown_globals: str) -> Any:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pkl) != 1:
            raise pickle.UnpicklingError(f"{path}: a torch zip checkpoint holds one '<name>/data.pkl', found {pkl}")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = z.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in names else "little"
        if byteorder not in ("little", "big"):
            raise pickle.UnpicklingError(f"{path}: unknown byteorder {byteorder!r}")
        order = "<" if byteorder == "little" else ">"
        storages: dict[str, _Storage] = {}

        def read(key: str, dtype: np.dtype) -> np.ndarray:
            name = f"{prefix}data/{key}"
            if name not in names:
                raise pickle.UnpicklingError(f"{path}: storage {key} is missing ({name})")
            return np.frombuffer(z.read(name), dtype.newbyteorder(order)).astype(dtype, copy=False)

        def persistent_load(pid: Any) -> _Storage:
            storage_type, key, numel, _ = _storage_record(pid)
            if key not in storages:
                storages[key] = _Storage(storage_type.dtype, numel, lambda: read(key, storage_type.dtype))
            return storages[key]

        with z.open(pkl[0]) as f:
            obj = _RestrictedUnpickler(f, persistent_load=persistent_load, unknown_globals=unknown_globals,
                                       allow_nested_bytes=True).load()
        for s in storages.values():  # read while the archive is open
            s.array  # noqa: B018
    return obj


def loads_torch_pickle(data: bytes, *, unknown_globals: str = "error") -> Any:
    """Like `load_torch_file` for the bytes of a plain pickle (tensors as `_load_from_bytes` storages)."""
    _check_mode(unknown_globals)
    return _RestrictedUnpickler(io.BytesIO(data), persistent_load=None, unknown_globals=unknown_globals,
                                allow_nested_bytes=True).load()


def load_torch_file(path: str | os.PathLike, *, unknown_globals: str = "error") -> Any:
    """Reads a `torch.save` file (zip or legacy) or a plain pickle holding tensors, with tensors as numpy arrays.

    Args:
      path: the file (`.pt`, `.pth`, `.ckpt`, `.pkl`).
      unknown_globals: "error" (default): a global outside `ALLOWED_GLOBALS` raises; "placeholder": it becomes
        an inert `OpaqueObject` subclass. Neither mode imports or calls what the file names.

    Returns:
      The unpickled object: dicts/lists/tuples of numpy arrays (C-contiguous copies, the tensors' dtypes;
      bfloat16 as `ml_dtypes.bfloat16`), `PersistentObject`s for NVlabs persistent modules.

    Raises:
      FileNotFoundError: no such file.
      pickle.UnpicklingError: a refused global (the message names it), a damaged file, a TensorFlow pickle.
    """
    _check_mode(unknown_globals)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if zipfile.is_zipfile(path):
        return _zip_load(path, unknown_globals)
    with open(path, "rb") as f:
        head = f.read(64)
    try:  # a legacy torch.save starts with a small pickle of its magic number
        first = _plain_load(io.BytesIO(head), "error")
    except Exception:  # noqa: BLE001 - any failure means "not that header"
        first = None
    with open(path, "rb") as f:
        if first == _LEGACY_MAGIC:
            return _legacy_load(f, unknown_globals, allow_nested_bytes=True)
        return _RestrictedUnpickler(f, persistent_load=None, unknown_globals=unknown_globals,
                                    allow_nested_bytes=True).load()


def _module_parts(obj: Any) -> tuple[dict, dict, dict, set]:
    if isinstance(obj, PersistentObject):
        state = obj.state
    elif isinstance(obj, OpaqueObject) and isinstance(obj.state, dict):
        state = obj.state
    elif isinstance(obj, dict) and "_parameters" in obj:
        state = obj
    else:
        raise TypeError(f"{obj!r} is not a pickled torch module (no _parameters/_buffers/_modules state)")
    return (state.get("_parameters") or {}, state.get("_buffers") or {}, state.get("_modules") or {},
            set(state.get("_non_persistent_buffers_set") or ()))


def module_state_dict(obj: Any, prefix: str = "") -> collections.OrderedDict:
    """The flat `{name: array}` that `torch.nn.Module.state_dict()` of a pickled module would return.

    Per module, in torch's order: its parameters, its persistent buffers, then each child module with
    "<child>." prepended; `None` entries are skipped.
    """
    params, buffers, modules, non_persistent = _module_parts(obj)
    out: collections.OrderedDict = collections.OrderedDict()
    for name, value in params.items():
        if value is not None:
            out[prefix + name] = value
    for name, value in buffers.items():
        if value is not None and name not in non_persistent:
            out[prefix + name] = value
    for name, child in modules.items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out
