"""Safe persistence: ``save(est, path)`` and ``load(path)`` without pickle.

A file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file
(written and read here, no extra dependency): an 8-byte little-endian
header length, a JSON header describing each tensor (dtype, shape, byte
range), then the raw tensor bytes. The header's ``__metadata__`` holds

* ``format``: ``"skprune"`` and ``format_version``: ``"1"``,
* ``config``: the estimator's parameters and fitted attributes as JSON,
* ``sha256``: a checksum of the tensor bytes.

Loading parses JSON and copies bytes into tensors; nothing is unpickled, so
an untrusted file cannot run code. Classes (the estimator, module,
optimizer, pruner, ...) are referenced by import path and resolved only
from an allow-list: public classes of ``skprune``, ``torch.nn``,
``torch.optim`` and ``skorch``'s callbacks and datasets, plus what the user
registered with :func:`register_serializable`. Nothing is imported because
a file names it. Any tool that reads safetensors can read the weights
(``module_.*`` entries).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import nn as _nn_package
from .. import pruners
from .._doc_link import DocLinkMixin
from .._training import _data
from .._training._log import TrainingLog
from .._version import __version__
from ..exceptions import PersistenceError
from ..nn._layers import refresh_sizes

__all__ = ["PersistenceError", "save", "load", "register_serializable", "FORMAT_VERSION"]

FORMAT = "skprune"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 2**20

_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}

#: Fitted attributes managed by skorch or restored from tensors, never stored as JSON.
_NOT_JSON_ATTRIBUTES = {
    "module_",
    "criterion_",
    "optimizer_",
    "history_",
    "callbacks_",
    "masks_",
    "pruner_",
    "initialized_",
    "virtual_params_",
    "init_context_",
    "prefixes_",
    "cuda_dependent_attributes_",
}
_PRIVATE_FITTED = ("_classes", "_y_ndim")
#: skorch callbacks that touch files or external services when initialized or
#: trained; a file may not bring them in unless the user registers them.
_UNSAFE_CALLBACKS = {
    "Checkpoint",
    "TrainEndCheckpoint",
    "LoadInitState",
    "MlflowLogger",
    "NeptuneLogger",
    "TensorBoard",
    "SacredLogger",
    "WandbLogger",
}


def _is_fitted_name(name: str) -> bool:
    return (name.endswith("_") and not name.startswith("_")) or name in _PRIVATE_FITTED




# ------------------------------------------------------------- allow-list
_REGISTERED: dict[str, object] = {}
_BUILTIN: dict[str, object] | None = None


def _path_of(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def register_serializable(obj):
    """Allow :func:`load` to reconstruct a class or function of yours.

    Files refer to classes by import path; :func:`load` resolves only
    skprune's, torch's and skorch's public classes and those registered
    here, so a file can never make it import or call anything else.
    Register your class (module, pruner, callback, ...) in the process that
    saves and in the one that loads. Objects are rebuilt as
    ``cls(**params)`` from their ``get_params()`` or, failing that, from
    attributes named like the ``__init__`` parameters.

    Parameters
    ----------
    obj : class or function
        What to allow.

    Returns
    -------
    obj
        Unchanged, so this works as a decorator.

    Examples
    --------
    >>> from torch import nn
    >>> import skprune
    >>> @skprune.register_serializable  # in the saving and in the loading process
    ... class Tiny(nn.Module):
    ...     def __init__(self, n_features_in, n_outputs):
    ...         super().__init__()
    ...         self.output = nn.Linear(n_features_in, n_outputs)
    ...     def forward(self, x):
    ...         return self.output(x)
    """
    if not (isinstance(obj, type) or inspect.isfunction(obj)):
        raise TypeError(f"register_serializable expects a class or a function, got {obj!r}.")
    _REGISTERED[_path_of(obj)] = obj
    return obj


def _builtin_allowed() -> dict[str, object]:
    global _BUILTIN
    if _BUILTIN is not None:
        return _BUILTIN
    import skorch.callbacks
    import skorch.dataset
    import torch.optim.lr_scheduler
    import torch.utils.data

    found: dict[str, object] = {}

    def add(obj):
        if isinstance(obj, type):
            found[_path_of(obj)] = obj

    for namespace in (_nn_package, pruners, _data):
        for name in getattr(namespace, "__all__", []):
            add(getattr(namespace, name, None))
    add(TrainingLog)
    for cls in _public_skprune_classes(DocLinkMixin):  # estimators, pruners, schedules
        add(cls)
    for name in dir(nn):
        obj = getattr(nn, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            add(obj)
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
            add(obj)
    for name in dir(torch.optim.lr_scheduler):
        obj = getattr(torch.optim.lr_scheduler, name)
        if isinstance(obj, type) and obj.__module__.startswith("torch.optim"):
            add(obj)
    for name in getattr(skorch.callbacks, "__all__", []):
        if name not in _UNSAFE_CALLBACKS:
            add(getattr(skorch.callbacks, name))
    add(skorch.dataset.ValidSplit)
    add(skorch.dataset.Dataset)
    add(torch.utils.data.DataLoader)
    _BUILTIN = found
    return found


def _public_skprune_classes(base: type) -> list[type]:
    """Public skprune classes deriving from ``base``, found without importing them here."""
    found, stack = [], [base]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("skprune.") and not sub.__name__.startswith("_"):
                found.append(sub)
    return found


def _resolve(path: str):
    obj = _REGISTERED.get(path) or _builtin_allowed().get(path)
    if obj is None and path.startswith("skprune."):
        # files written before the package layout moved name e.g. "skprune.modules.MLP"
        obj = _legacy_skprune_path(path)
    if obj is None:
        raise PersistenceError(
            f"The file refers to {path!r}, which is not in skprune's allow-list; load never imports "
            "code that a file names. If you trust this file and that class, call "
            "skprune.register_serializable(<that class>) before skprune.load."
        )
    return obj


def _legacy_skprune_path(path: str):
    """The allow-listed skprune class that an older file names by a former module path."""
    name = path.rsplit(".", 1)[-1]
    matches = [
        obj
        for key, obj in _builtin_allowed().items()
        if key.startswith("skprune.") and key.rsplit(".", 1)[-1] == name
    ]
    return matches[0] if len(matches) == 1 else None


def _reference(obj, where: str) -> dict:
    path = _path_of(obj) if hasattr(obj, "__qualname__") else repr(obj)
    if _REGISTERED.get(path) is obj or _builtin_allowed().get(path) is obj:
        return {"__ref__": path}
    raise PersistenceError(
        f"Cannot save {where}={obj!r}: skprune.load could only restore it by importing arbitrary "
        "code. Use a skprune/torch/skorch class, or call "
        f"skprune.register_serializable({path.split('.')[-1]}) before saving and before loading."
    )


# ---------------------------------------------------------------- encoding
class _Encoder:
    """Turn parameter values into JSON; collect the tensors of module instances."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.n_modules = 0

    def encode(self, value, where: str):
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return self.encode(value.item(), where)
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise PersistenceError(f"Cannot save {where}: dictionary keys must be strings.")
            return {"__dict__": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, gauss = value.get_state()
            return {"__random_state__": [kind, keys.tolist(), pos, has_gauss, gauss]}
        if isinstance(value, (torch.device, torch.dtype)):
            return {"__torch__": type(value).__name__, "value": str(value).replace("torch.", "")}
        if isinstance(value, type) or inspect.isfunction(value):
            return _reference(value, where)
        if isinstance(value, nn.Module):
            return self._encode_module(value, where)
        return self._encode_object(value, where)

    def _encode_array(self, array: np.ndarray, where: str):
        if array.dtype.kind in "biufU":
            return {"__ndarray__": array.tolist(), "dtype": array.dtype.str}
        if array.dtype.kind == "O" and all(
            isinstance(v, (str, bool, int, float, np.generic)) for v in array.ravel()
        ):
            return {"__ndarray__": [self.encode(v, where) for v in array.tolist()], "dtype": "object"}
        raise PersistenceError(f"Cannot save {where}: arrays of dtype {array.dtype} are not supported.")

    def _init_params(self, obj, where: str) -> dict:
        if hasattr(obj, "get_params") and not isinstance(obj, nn.Module):
            return obj.get_params(deep=False)
        params = {}
        signature = inspect.signature(type(obj).__init__)
        for name, p in list(signature.parameters.items())[1:]:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            if name in ("device", "dtype") and p.default is None:
                continue
            if not hasattr(obj, name):
                if p.default is p.empty:
                    raise PersistenceError(
                        f"Cannot save {where}={type(obj).__name__}(...): its __init__ parameter "
                        f"{name!r} is not stored as an attribute, so it cannot be rebuilt. Pass a "
                        "class with module__* parameters instead of an instance, or store the "
                        "parameter as an attribute of the same name."
                    )
                continue
            value = getattr(obj, name)
            if isinstance(value, torch.Tensor) or value is None and name == "bias":
                value = value is not None  # e.g. Linear(bias=True) stores the bias Parameter
            params[name] = value
        return params

    def _encode_module(self, module: nn.Module, where: str):
        spec = self._module_spec(module, where)
        prefix = f"objects.{self.n_modules}."
        self.n_modules += 1
        for key, tensor in module.state_dict().items():
            self.tensors[prefix + key] = tensor
        spec["state"] = prefix
        return spec

    def _module_spec(self, module: nn.Module, where: str) -> dict:
        ref = _reference(type(module), where)
        if isinstance(module, nn.Sequential):
            children = [
                [name, self._module_spec(child, f"{where}.{name}")] for name, child in module.named_children()
            ]
            return {"__module__": ref["__ref__"], "children": children}
        params = self._init_params(module, where)
        return {
            "__module__": ref["__ref__"],
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
        }

    def _encode_object(self, obj, where: str):
        ref = _reference(type(obj), where)
        params = self._init_params(obj, where)
        return {
            "__object__": ref["__ref__"],
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
        }


def _decode(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, tensors) for k, v in value["__dict__"].items()}
    if "__ndarray__" in value:
        dtype = value["dtype"]
        data = _decode(value["__ndarray__"], tensors)
        if dtype == "object":
            out = np.empty(len(data), dtype=object)
            out[:] = data
            return out
        if np.dtype(dtype).kind not in "biufU":
            raise PersistenceError(f"Unsupported array dtype {dtype!r} in file.")
        return np.asarray(data, dtype=np.dtype(dtype))
    if "__random_state__" in value:
        kind, keys, pos, has_gauss, gauss = value["__random_state__"]
        state = np.random.RandomState()
        state.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        return state
    if "__torch__" in value:
        if value["__torch__"] == "device":
            return torch.device(value["value"])
        dtype = getattr(torch, value["value"], None)
        if not isinstance(dtype, torch.dtype):
            raise PersistenceError(f"Unknown torch dtype {value['value']!r} in file.")
        return dtype
    if "__ref__" in value:
        return _resolve(value["__ref__"])
    if "__module__" in value:
        module = _build_module(value, tensors)
        prefix = value.get("state")
        if prefix is not None:
            state = {k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)}
            _resize_leaves(module, state)
            module.load_state_dict(state, strict=True)
        return module
    if "__object__" in value:
        cls = _resolve(value["__object__"])
        return cls(**_decode_params(value["params"], tensors))
    raise PersistenceError(f"Unrecognized entry in the file's configuration: {sorted(value)}.")


def _decode_params(params, tensors) -> dict:
    if not isinstance(params, dict):
        raise PersistenceError("Invalid parameters in the file's configuration.")
    return {str(k): _decode(v, tensors) for k, v in params.items()}


def _build_module(spec: dict, tensors) -> nn.Module:
    cls = _resolve(spec["__module__"])
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise PersistenceError(f"{spec['__module__']!r} is not a torch module class.")
    if "children" in spec:
        from collections import OrderedDict

        return cls(OrderedDict((name, _build_module(child, tensors)) for name, child in spec["children"]))
    with torch.random.fork_rng():
        return cls(**_decode_params(spec["params"], tensors))


@torch.no_grad()
def _resize_leaves(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give Linear/Conv/BatchNorm leaves the (compacted) shapes found in ``state``."""
    for name, layer in module.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and weight is not None:
            if tuple(layer.weight.shape) == tuple(weight.shape):
                continue
            layer.weight = nn.Parameter(torch.empty_like(weight, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias = nn.Parameter(layer.weight.new_empty(weight.shape[0]))
            if isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape[0], weight.shape[1]
            else:
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1] * layer.groups
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            mean = state.get(prefix + "running_mean", state.get(prefix + "weight"))
            if mean is None or mean.shape[0] == layer.num_features:
                continue
            n = mean.shape[0]
            for attr in ("weight", "bias", "running_mean", "running_var"):
                old = getattr(layer, attr, None)
                if old is None:
                    continue
                new = old.new_empty(n)
                setattr(layer, attr, nn.Parameter(new) if isinstance(old, nn.Parameter) else new)
            layer.num_features = n
    refresh_sizes(module)


# ------------------------------------------------------------- file layout
def _check_tensor(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided or tensor.dtype not in _DTYPES:
        kind = getattr(tensor, "dtype", type(tensor).__name__)
        raise PersistenceError(
            f"Cannot save {name!r} ({kind}, layout {getattr(tensor, 'layout', '?')}): only dense "
            "float/int/bool tensors are saved. Save the float (uncompacted or compacted) "
            "estimator, and apply to_sparse()/quantize_int8() after loading."
        )
    return tensor.detach().to("cpu").contiguous()


def _write(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    header: dict = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        tensor = _check_tensor(name, tensors[name])
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {
            "dtype": _DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    body = b"".join(chunks)
    metadata = dict(metadata, sha256=hashlib.sha256(body).hexdigest())
    header = {"__metadata__": metadata, **header}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        f.write(body)
    os.replace(tmp, path)


def _not_skprune(path, detail: str) -> PersistenceError:
    return PersistenceError(
        f"{str(path)!r} is not a skprune file ({detail}). skprune.load reads only files written by "
        "skprune.save and never unpickles; for a pickle or torch.save file use pickle/torch.load "
        "yourself, and only on files you trust."
    )


def _read(path) -> tuple[dict, dict[str, torch.Tensor]]:
    with open(path, "rb") as f:
        blob = f.read()
    if blob[:2] == b"PK":
        raise _not_skprune(path, "it is a ZIP archive, such as a torch.save file, which holds a pickle")
    if blob[:1] == b"\x80":
        raise _not_skprune(path, "it looks like a pickle, which could run code when loaded")
    if len(blob) < 8:
        raise _not_skprune(path, "it is too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(len(blob) - 8, _MAX_HEADER):
        raise _not_skprune(path, "no valid header")
    try:
        header = json.loads(blob[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _not_skprune(path, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _not_skprune(path, "no valid header")
    metadata = header.pop("__metadata__", None) or {}
    if metadata.get("format") != FORMAT:
        raise _not_skprune(path, f"format marker {metadata.get('format')!r}, expected {FORMAT!r}")
    version = metadata.get("format_version")
    if not (isinstance(version, str) and version.isdigit()):
        raise PersistenceError(f"{str(path)!r} has an invalid format_version {version!r}.")
    if int(version) > FORMAT_VERSION:
        raise PersistenceError(
            f"{str(path)!r} was written in skprune file format version {version} (by skprune "
            f"{metadata.get('skprune_version', '?')}); this skprune reads versions up to "
            f"{FORMAT_VERSION}. Upgrade skprune to load it."
        )
    body = blob[8 + n :]
    if hashlib.sha256(body).hexdigest() != metadata.get("sha256"):
        raise PersistenceError(
            f"{str(path)!r} is corrupted or was modified: its tensor data does not match its checksum."
        )
    tensors = {}
    for name, info in header.items():
        try:
            dtype = _DTYPE_NAMES[info["dtype"]]
            shape = [int(s) for s in info["shape"]]
            start, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise PersistenceError(f"{str(path)!r}: invalid description of tensor {name!r}.") from None
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if not (0 <= start <= end <= len(body)) or end - start != math.prod(shape) * itemsize:
            raise PersistenceError(f"{str(path)!r}: tensor {name!r} does not match its byte range.")
        raw = bytearray(body[start:end])
        tensor = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = tensor.reshape(shape)
    try:
        config = json.loads(metadata["config"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise PersistenceError(f"{str(path)!r} has no valid configuration.") from None
    return config, tensors


# ------------------------------------------------------------------ public
def _fitted_attributes(estimator, encoder: _Encoder) -> dict:
    params = set(estimator.get_params(deep=False))
    out = {}
    for name, value in vars(estimator).items():
        if name in params or name in _NOT_JSON_ATTRIBUTES:
            continue
        if not _is_fitted_name(name):
            continue
        if isinstance(value, (nn.Module, torch.optim.Optimizer)):
            raise PersistenceError(
                f"Cannot save fitted attribute {name!r} ({type(value).__name__}): only the main "
                "module_ is saved."
            )
        out[name] = encoder.encode(value, name)
    return out


def save(estimator, path) -> None:
    """Save an estimator (fitted or not) to ``path`` without pickle.

    Parameters are stored as JSON (classes by allow-listed import path);
    ``module_`` weights, buffers and pruning masks as raw tensors in the
    safetensors layout. The optimizer state is not stored: a loaded
    estimator predicts exactly as the saved one, and a further ``fit``
    starts a fresh optimizer.

    Parameters
    ----------
    estimator : PrunedNet
        A :class:`~skprune.PrunedNetClassifier`, :class:`~skprune.PrunedNetRegressor`
        or :class:`~skprune.PrunedNet`, pruned, compacted or dense.
    path : str or path-like
        Destination file (overwritten atomically). ``.skp`` is a good suffix.

    Raises
    ------
    PersistenceError
        If a parameter refers to a class that is not allow-listed (register
        it with :func:`register_serializable`), or the module holds
        quantized or sparse tensors (save the float model instead).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.datasets import load_iris
    >>> import skprune
    >>> X, y = load_iris(return_X_y=True)
    >>> net = skprune.PrunedNetClassifier(max_epochs=3, random_state=0).fit(X, y)
    >>> path = Path(tempfile.mkdtemp()) / "model.skprune"
    >>> skprune.save(net, path)
    >>> bool((skprune.load(path).predict(X) == net.predict(X)).all())
    True
    """
    encoder = _Encoder()
    config = {"estimator": encoder._encode_object(estimator, type(estimator).__name__), "fitted": None}
    tensors = dict(encoder.tensors)
    if getattr(estimator, "initialized_", False) and hasattr(estimator, "module_"):
        fitted = {"attributes": _fitted_attributes(estimator, encoder)}
        pruner = getattr(estimator, "pruner_", None)
        fitted["pruner_"] = encoder.encode(pruner, "pruner_")
        try:
            fitted["history"] = json.loads(json.dumps(encoder.encode(list(estimator.history), "history")))
        except (PersistenceError, TypeError, ValueError):
            warnings.warn(
                "The training history holds values JSON cannot store; it is not saved.", stacklevel=2
            )
            fitted["history"] = []
        config["fitted"] = fitted
        tensors.update(encoder.tensors)
        for key, tensor in estimator.module_.state_dict().items():
            tensors[f"module_.{key}"] = tensor
        fitted["mask_shapes"] = {}
        for key, tensor in estimator.masks_.state_dict().items():
            # one bit per weight (np.packbits), not one byte
            packed = np.packbits(tensor.detach().cpu().numpy().astype(bool).ravel())
            tensors[f"masks_.{key}"] = torch.from_numpy(packed)
            fitted["mask_shapes"][key] = list(tensor.shape)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "skprune_version": __version__,
        "config": json.dumps(config, allow_nan=False),
    }
    _write(path, tensors, metadata)


def load(path):
    """Load an estimator written by :func:`save`; nothing is unpickled.

    Parameters
    ----------
    path : str or path-like
        File written by :func:`save`.

    Returns
    -------
    PrunedNet
        The estimator, fitted if it was saved fitted, with identical
        predictions.

    Raises
    ------
    PersistenceError
        If the file is not a skprune file (for example a pickle or a
        ``torch.save`` archive), was written by a newer format version, is
        corrupted, or names a class outside the allow-list.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import skprune
    >>> path = Path(tempfile.mkdtemp()) / "pruner.skprune"
    >>> skprune.save(skprune.PrunedNetClassifier(pruner=skprune.MagnitudePruning(0.8)), path)
    >>> skprune.load(path).pruner
    MagnitudePruning(sparsity=0.8)
    """
    from skorch.history import History

    config, tensors = _read(path)
    try:
        estimator = _decode(config["estimator"], tensors)
        fitted = config.get("fitted")
        if not fitted:
            return estimator
        params = set(estimator.get_params(deep=False))
        for name, value in fitted["attributes"].items():
            if not (name.isidentifier() and _is_fitted_name(name)) or name in _NOT_JSON_ATTRIBUTES | params:
                raise PersistenceError(
                    f"{str(path)!r} tries to set attribute {name!r}, which load never sets."
                )
            estimator.__dict__[name] = _decode(value, tensors)
        with torch.random.fork_rng():
            estimator.initialize()
        module_state = {k[len("module_.") :]: t for k, t in tensors.items() if k.startswith("module_.")}
        _resize_leaves(estimator.module_, module_state)
        estimator.module_.load_state_dict(module_state, strict=True)
        estimator.module_.to(estimator.device)
        masks = {}
        for key, shape in fitted.get("mask_shapes", {}).items():
            n = math.prod(shape)
            bits = np.unpackbits(tensors[f"masks_.{key}"].numpy(), count=n).astype(bool)
            masks[key] = torch.from_numpy(bits).reshape(shape)
        estimator.masks_.load_state_dict(masks)
        estimator.masks_.to(estimator.device)
        if any(k.startswith("module_.") for k in tensors):
            estimator.initialize_optimizer()
        estimator.pruner_ = _decode(fitted["pruner_"], tensors)
        estimator.history = History(_decode(fitted["history"], tensors))
    except PersistenceError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise PersistenceError(f"{str(path)!r} could not be restored: {type(exc).__name__}: {exc}") from exc
    return estimator
