"""Read `torch.save` files (``.pth``/``.pt``/``.bin``) without torch, executing nothing from them.

A PyTorch checkpoint is a pickle, and unpickling calls whatever functions the file names. `load`
resolves only the names that rebuild tensors (``torch._utils._rebuild_tensor_v2`` and its siblings,
the storage and dtype names) and plain containers (``collections.OrderedDict``, ``set``, bytes);
NumPy scalars of numeric dtypes (training metadata) are rebuilt from their bytes; classes of the
OpenMMLab packages (mmcv, mmengine, mmseg, mmdet: configs and logs in mmseg checkpoints) become
inert `Placeholder` objects, never imported. Any other global is refused by name with
`UnsafeCheckpointError` before anything is called. Tensors
come back as `TorchTensor` (``shape``, ``dtype``, ``numpy()``), cut from the file's raw storages
with their offsets and strides; the device a tensor was saved from is ignored.

Layouts: the zip archive of torch >= 1.6 (``NAME/data.pkl``, ``NAME/data/<key>``,
``NAME/byteorder``) and the legacy stream (``_use_new_zipfile_serialization=False``): pickles of the
magic number, the protocol version and the saver's system info, the main pickle, the sorted storage
keys, then each storage as a little-endian int64 element count and its little-endian bytes.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

from keras_pvt.checkpoints.errors import CheckpointReadError, UnsafeCheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
# A tensor may repeat storage elements (stride 0, from `expand`) only up to this many elements.
MAX_EXPANDED_ELEMENTS = 1 << 24

DTYPES: dict[str, np.dtype] = {
    name: np.dtype(kind)
    for name, kind in {
        "float64": np.float64,
        "float32": np.float32,
        "float16": np.float16,
        "bfloat16": ml_dtypes.bfloat16,
        "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
        "float8_e4m3fnuz": ml_dtypes.float8_e4m3fnuz,
        "float8_e5m2": ml_dtypes.float8_e5m2,
        "float8_e5m2fnuz": ml_dtypes.float8_e5m2fnuz,
        "float8_e8m0fnu": ml_dtypes.float8_e8m0fnu,
        "complex128": np.complex128,
        "complex64": np.complex64,
        "int64": np.int64,
        "int32": np.int32,
        "int16": np.int16,
        "int8": np.int8,
        "uint64": np.uint64,
        "uint32": np.uint32,
        "uint16": np.uint16,
        "uint8": np.uint8,
        "bool": np.bool_,
    }.items()
}
# The legacy typed storages (`torch.FloatStorage`, ...); quantized ones are not supported.
STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class _ForbiddenGlobalError(Exception):
    """Internal: the pickle named a global outside the allowlist."""


class _MalformedError(Exception):
    """Internal: the pickle is well-formed but does not describe tensors the way torch writes them."""


class _Inert:
    """Base of every object the unpickler hands out: setting its state (pickle BUILD) is refused."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise _MalformedError(f"the pickle tries to set the state of a {type(self).__name__}")


class _StorageType(_Inert):
    """`torch.FloatStorage` & co. (dtype) or `torch.storage.UntypedStorage` (dtype None: bytes)."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype | None) -> None:
        self.name, self.dtype = name, dtype


class _DType(_Inert):
    """A `torch.<dtype>` name, as passed to `_rebuild_tensor_v3`."""

    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: np.dtype) -> None:
        self.name, self.dtype = name, dtype


class _TensorClass(_Inert):
    """`torch.Tensor` or `torch.nn.Parameter`, as named by `_rebuild_from_type_v2`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Storage(_Inert):
    """One storage record: its key, element type (None: untyped bytes), size and, once read, data."""

    __slots__ = ("big_endian", "data", "dtype", "key", "nbytes")

    def __init__(self, key: str, dtype: np.dtype | None, nbytes: int) -> None:
        self.key, self.dtype, self.nbytes = key, dtype, nbytes
        self.data: bytes | None = None
        self.big_endian = False


class TorchTensor(_Inert):
    """A tensor of the file: dtype, shape, and a view (offset, strides in elements) of a storage."""

    __slots__ = ("dtype", "offset", "shape", "storage", "stride")

    def __init__(self, storage: _Storage, dtype: np.dtype, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.dtype, self.offset = storage, dtype, offset
        self.shape, self.stride = shape, stride

    def __repr__(self) -> str:
        return f"TorchTensor(shape={self.shape}, dtype={self.dtype.name})"

    def numpy(self) -> np.ndarray:
        """The values as a new C-contiguous array in native byte order (shared storages are copied)."""
        if 0 in self.shape:
            return np.zeros(self.shape, self.dtype)
        values = np.frombuffer(self.storage.data, self.dtype, self.storage.nbytes // self.dtype.itemsize)
        if self.storage.big_endian:
            values = _swap_bytes(values)
        view = np.lib.stride_tricks.as_strided(
            values[self.offset :],
            shape=self.shape,
            strides=tuple(step * self.dtype.itemsize for step in self.stride),
            writeable=False,
        )
        return np.array(view, order="C")


def _swap_bytes(values: np.ndarray) -> np.ndarray:
    """Big-endian values (any dtype, complex as two reals) in native little-endian order."""
    unit = values.dtype.itemsize // (2 if values.dtype.kind == "c" else 1)
    if unit == 1:
        return values
    return values.view(f"u{unit}").byteswap().view(values.dtype)


def _count(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise _MalformedError(f"the {what} is {value!r:.60}, not a non-negative integer")
    return value


def _dims(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)):
        raise _MalformedError(f"the tensor {what} is {value!r:.60}, not a tuple")
    return tuple(_count(item, f"tensor {what} entry") for item in value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype) -> TorchTensor:
    """A `TorchTensor` after checking that its view stays inside its storage."""
    if not isinstance(storage, _Storage):
        raise _MalformedError(f"a tensor is rebuilt from {type(storage).__name__}, not from a storage")
    offset, shape, stride = _count(offset, "storage offset"), _dims(size, "size"), _dims(stride, "stride")
    if len(stride) != len(shape):
        raise _MalformedError(f"a tensor has size {shape} but stride {stride}")
    available = storage.nbytes // dtype.itemsize
    numel = math.prod(shape)
    if numel:
        last = offset + sum((n - 1) * step for n, step in zip(shape, stride))
        if last >= available:
            raise _MalformedError(
                f"a tensor of size {shape}, stride {stride} at offset {offset} reaches past the end "
                f"of its storage ({available} elements)"
            )
        if numel > max(available, MAX_EXPANDED_ELEMENTS):
            raise _MalformedError(f"a tensor of size {shape} repeats its {available}-element storage")
    return TorchTensor(storage, dtype, offset, shape, stride)


def _refuse_metadata(metadata: Any) -> None:
    if metadata:  # {"conj": True} / {"neg": True}: lazily conjugated or negated views
        raise _MalformedError(
            f"a tensor carries the flags {metadata!r:.60}; call `.resolve_conj().resolve_neg()` before saving"
        )


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any) -> TorchTensor:
    if not isinstance(storage, _Storage) or storage.dtype is None:
        raise _MalformedError("a tensor is rebuilt from an untyped storage without a dtype")
    return _tensor(storage, offset, size, stride, storage.dtype)


def _rebuild_tensor_v2(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> TorchTensor:
    _refuse_metadata(metadata)
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_tensor_v3(
    storage: Any,
    offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    dtype: Any,
    metadata: Any = None,
) -> TorchTensor:
    if not isinstance(dtype, _DType):
        raise _MalformedError(f"a tensor has the dtype {dtype!r:.60}")
    _refuse_metadata(metadata)
    return _tensor(storage, offset, size, stride, dtype.dtype)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> TorchTensor:
    """`nn.Parameter`: its tensor (the gradient flag and Python attributes do not matter here)."""
    if not isinstance(data, TorchTensor):
        raise _MalformedError(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> TorchTensor:
    """A tensor that had Python attributes: rebuilt by `func`; the attributes are dropped."""
    if func not in _REBUILDERS or not isinstance(new_type, _TensorClass) or not isinstance(args, tuple):
        raise _MalformedError(
            "`_rebuild_from_type_v2` is asked to call something other than a tensor rebuild"
        )
    return func(*args)


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """`_codecs.encode`, as protocol-2 pickles use it for bytes: latin-1 text only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _MalformedError("`_codecs.encode` is called other than to rebuild bytes")
    return text.encode("latin-1")


def _bytearray(data: Any = b"") -> bytearray:
    if not isinstance(data, bytes):  # bytearray(10**12) would allocate a terabyte
        raise _MalformedError("`bytearray` is called other than to rebuild bytes")
    return bytearray(data)


# NumPy scalars in training metadata (mmseg's best mIoU, a seed): ``numpy.dtype(code, False, True)``
# with its state, and ``scalar(dtype, raw bytes)``. Only numeric dtypes; their bytes are read, not run.
_NUMPY_CODE = re.compile(r"^[biufc]\d{1,2}$")


class _NumpyDType(_Inert):
    """`numpy.dtype` as a pickle rebuilds it: a numeric type code, then (BUILD) its byte order."""

    __slots__ = ("dtype",)

    def __init__(self, code: Any, align: Any = False, copy: Any = True) -> None:
        if not isinstance(code, str) or not _NUMPY_CODE.match(code):
            raise _MalformedError(f"a NumPy dtype {code!r:.30} is not a plain numeric type")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise _MalformedError(f"a NumPy dtype has the state {state!r:.60}")
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" else self.dtype


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    if not isinstance(dtype, _NumpyDType) or not isinstance(data, bytes) or len(data) != dtype.dtype.itemsize:
        raise _MalformedError("`numpy scalar` is called other than with a numeric dtype and its bytes")
    return np.frombuffer(data, dtype.dtype)[0]


# Training dumps of OpenMMLab (mmcv, mmengine, mmseg, mmdet) keep their own objects next to the
# weights (configs, log buffers). Those classes are never imported: each name becomes an inert
# `Placeholder` that absorbs its arguments and state, and `readers` refuses one among the tensors.
OPENMMLAB_PACKAGES = ("mmcv", "mmengine", "mmseg", "mmdet")


class Placeholder:
    """An object of a class the file names but keras-pvt never imports; holds nothing."""

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Placeholder:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # a dict subclass's items (SETITEMS)
        pass

    def append(self, item: Any) -> None:  # a list subclass's items (APPENDS)
        pass

    def extend(self, items: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<{self.qualified_name} (not loaded)>"


_PLACEHOLDERS: dict[str, type] = {}


def _placeholder(qualified: str) -> type:
    if qualified not in _PLACEHOLDERS:
        _PLACEHOLDERS[qualified] = type("Placeholder", (Placeholder,), {"qualified_name": qualified})
    return _PLACEHOLDERS[qualified]


def _allowed_globals() -> dict[str, Any]:
    allowed: dict[str, Any] = {
        "collections.OrderedDict": OrderedDict,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.complex": complex,
        "builtins.bytearray": _bytearray,
        "_codecs.encode": _latin1_encode,
        "torch.Size": tuple,
        "torch.Tensor": _TensorClass("torch.Tensor"),
        "torch.nn.parameter.Parameter": _TensorClass("torch.nn.parameter.Parameter"),
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch._tensor._rebuild_from_type_v2": _rebuild_from_type_v2,
        "torch.storage.UntypedStorage": _StorageType("UntypedStorage", None),
        "numpy.dtype": _NumpyDType,
        "numpy.core.multiarray.scalar": _numpy_scalar,
        "numpy._core.multiarray.scalar": _numpy_scalar,
    }
    for name, dtype_name in STORAGE_DTYPES.items():
        allowed[f"torch.{name}"] = _StorageType(name, DTYPES[dtype_name])
    for name, dtype in DTYPES.items():
        allowed[f"torch.{name}"] = _DType(name, dtype)
    for name in ("set", "frozenset", "complex", "bytearray"):  # Python 2 spelling
        allowed[f"__builtin__.{name}"] = allowed[f"builtins.{name}"]
    return allowed


_ALLOWED = _allowed_globals()


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):  # written by Python 2
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        raise _MalformedError(f"the {what} is {value!r:.60}, not a string")
    return value


class _Unpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED` names; storages come from `storages` (filled as they are named)."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file, encoding="utf-8")
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified not in _ALLOWED:
            if module.split(".", 1)[0] in OPENMMLAB_PACKAGES:
                return _placeholder(qualified)
            raise _ForbiddenGlobalError(qualified)
        return _ALLOWED[qualified]

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6)) or _text(pid[0], "record") != "storage":
            raise _MalformedError(f"the pickle refers to {pid!r:.80}, not to a storage")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) == 6 and pid[5] is not None:
            raise _MalformedError(
                "it uses storage views (written by PyTorch before 0.4), which are not supported"
            )
        if not isinstance(storage_type, _StorageType):
            raise _MalformedError(f"a storage has the type {storage_type!r:.60}")
        key = _text(key, "storage key")
        itemsize = storage_type.dtype.itemsize if storage_type.dtype is not None else 1
        storage = _Storage(key, storage_type.dtype, _count(numel, "storage size") * itemsize)
        known = self.storages.setdefault(key, storage)
        if known.nbytes != storage.nbytes:
            raise _MalformedError(f"storage {key!r} is named with two different sizes")
        return known


def load(path: str | os.PathLike) -> Any:
    """The object a `torch.save` file holds, each tensor as a `TorchTensor`.

    Raises `UnsafeCheckpointError` naming the first global outside the allowlist (nothing is called)
    and `CheckpointReadError` for a truncated, corrupt or foreign file.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    try:
        if head.startswith(ZIP_SIGNATURES):
            return _load_zip(path)
        if head.startswith(b"\x80"):  # a pickle (protocol 2 and up): the legacy layout
            return _load_legacy(path)
    except _ForbiddenGlobalError as error:
        raise UnsafeCheckpointError(
            f"Refusing to load {str(path)!r}: its pickle asks for {str(error)!r}, which is not a "
            "tensor or a plain container, so loading it could run code. keras-pvt never executes "
            "anything from a checkpoint; if you trust the file, re-save just the weights where torch "
            "is installed (`torch.save(model.state_dict(), path)`, or as .safetensors)."
        ) from None
    except _MalformedError as error:
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a PyTorch checkpoint: {error}. Re-save the weights with "
            "`torch.save(model.state_dict(), path)`, or download the file again."
        ) from None
    except CheckpointReadError:
        raise
    except Exception as error:  # a damaged zip or pickle fails in many ways inside zipfile and pickle
        raise CheckpointReadError(
            f"Cannot read {str(path)!r} as a PyTorch file: it is truncated, corrupt or not a PyTorch "
            f"file ({type(error).__name__}: {error}). Download or export it again."
        ) from error
    raise CheckpointReadError(
        f"{str(path)!r} is not a PyTorch checkpoint: it starts with {head!r}, neither a zip archive "
        "(torch.save since 1.6) nor a pickle (older torch.save). It is corrupt, or another format "
        "under a .pth/.pt/.bin/.ckpt name."
    )


def _load_zip(path: Path) -> Any:
    storages: dict[str, _Storage] = {}
    with zipfile.ZipFile(path) as archive:
        prefix = _archive_prefix(archive)
        with archive.open(f"{prefix}data.pkl") as pickled:
            obj = _Unpickler(pickled, storages).load()
        big_endian = _big_endian(archive, prefix)
        for storage in storages.values():
            name = f"{prefix}data/{storage.key}"
            try:
                info = archive.getinfo(name)
            except KeyError:
                raise _MalformedError(f"the storage record {name!r} is missing") from None
            if info.file_size != storage.nbytes:
                raise _MalformedError(
                    f"the storage record {name!r} has {info.file_size} bytes, the pickle says "
                    f"{storage.nbytes}"
                )
            storage.data, storage.big_endian = archive.read(info), big_endian
    return obj


def _archive_prefix(archive: zipfile.ZipFile) -> str:
    """ "NAME/" of the single ``NAME/data.pkl`` record."""
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) == 1:
        return pickles[0][: -len("data.pkl")]
    if any(name.endswith("/constants.pkl") for name in names):
        raise _MalformedError(
            "it is a TorchScript archive (torch.jit.save), not a state dict; load it with torch and "
            "save `model.state_dict()`"
        )
    raise _MalformedError(f"the zip archive has {len(pickles)} NAME/data.pkl records, not one")


def _big_endian(archive: zipfile.ZipFile, prefix: str) -> bool:
    try:
        order = archive.read(f"{prefix}byteorder").strip()
    except KeyError:  # written before torch 2.1: little-endian
        return False
    if order not in (b"little", b"big"):
        raise _MalformedError(f"the byteorder record says {order[:20]!r}")
    return order == b"big"


def _load_legacy(path: Path) -> Any:
    storages: dict[str, _Storage] = {}
    with open(path, "rb") as handle:

        def unpickle() -> Any:  # one unpickler per pickle, as torch.save wrote them
            return _Unpickler(handle, storages).load()

        if unpickle() != LEGACY_MAGIC:
            raise _MalformedError("it is a pickle without the torch.save magic number")
        version = unpickle()
        if version != LEGACY_PROTOCOL:
            raise _MalformedError(
                f"it has the legacy protocol version {version!r:.20}, not {LEGACY_PROTOCOL}"
            )
        unpickle()  # system info of the saver; the storages are little-endian whatever it says
        obj = unpickle()
        keys = unpickle()
        if (
            not isinstance(keys, list)
            or not all(isinstance(key, str) for key in keys)
            or set(keys) != set(storages)
        ):
            raise _MalformedError("its list of storage keys does not match the storages the pickle names")
        for key in keys:
            storage = storages[key]
            itemsize = storage.dtype.itemsize if storage.dtype is not None else 1
            header = handle.read(8)
            if len(header) < 8 or int.from_bytes(header, "little") * itemsize != storage.nbytes:
                raise _MalformedError(f"the size of storage {key!r} does not match the pickle")
            storage.data = handle.read(storage.nbytes)
            if len(storage.data) != storage.nbytes:
                raise _MalformedError(f"storage {key!r} is cut short: the file is truncated")
    return obj
