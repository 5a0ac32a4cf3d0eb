"""Safe persistence: ``save(obj, path)`` and ``load(path)`` without pickle.

A file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file
written and read by the ``safetensors`` library (see :mod:`._safefile` for
the checks made before any tensor is built). Its ``__metadata__`` holds

* ``format``: ``"skprune"`` and ``format_version``: ``"2"`` (``"1"``: files of
  skprune 0.1, still read),
* ``config``: the object as allow-listed JSON (parameters, fitted
  attributes, nested estimators),
* ``sha256``: a digest of the configuration and of every tensor.

What can be saved: a :class:`~skprune.PrunedNet` (dense, pruned, compacted,
or with CSR layers from :func:`~skprune.to_sparse`), a fitted
:class:`~skprune.PrunedNetCV`, and ``Pipeline`` / ``ColumnTransformer``
objects made of scikit-learn transformers with a ``PrunedNet`` inside (for
example ``GridSearchCV(...).best_estimator_``). Torch tensors go to the
safetensors part; scikit-learn objects are stored as their state
(``__getstate__``) in JSON and rebuilt with ``__setstate__``, like
``skops.io`` does, only for allow-listed classes.

Loading parses JSON and copies bytes into tensors; nothing is unpickled, so
an untrusted file cannot run code. Classes (the estimator, module,
optimizer, pruner, transformers, ...) are referenced by import path and
resolved only from an allow-list: public classes of ``skprune``,
``torch.nn``, ``torch.optim``, ``skorch``'s callbacks and datasets,
scikit-learn's preprocessing, imputation, composition, feature selection and
decomposition estimators and CV splitters, plus what the user registered
with :func:`register_serializable`. Nothing is imported because a file
names it. Memory is bounded too: modules are first built on the ``meta``
device and arrays counted before allocation, against a budget proportional
to the file's size. Any tool that reads safetensors can read the weights
(``module_.*`` entries).
"""

from __future__ import annotations

import inspect
import json
import math
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import nn as _nn_package
from .. import pruners
from .._doc_link import DocLinkMixin
from .._training import _data
from .._training._log import TrainingLog
from .._training._prepare import module_kwargs
from .._version import __version__
from ..exceptions import PersistenceError
from ..nn._layers import refresh_sizes
from . import _safefile
from ._safefile import DTYPE_NAMES, parse_json, tensor_digest

__all__ = ["PersistenceError", "save", "load", "register_serializable", "FORMAT_VERSION"]

FORMAT = "skprune"
FORMAT_VERSION = 2
#: Memory that objects rebuilt from a file may take: this plus ``_BUDGET_PER_BYTE`` per file byte.
_BUDGET_BASE = 64 * 2**20
_BUDGET_PER_BYTE = 64
#: Parameters renamed since files were written: old name -> new name (pruners only).
_RENAMED_PRUNER_PARAMS = {"fraction": "sparsity", "criterion": "importance"}

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
    found.update(_sklearn_allowed())
    _BUILTIN = found
    return found


#: scikit-learn modules whose public estimators may be stored (state as JSON).
_SKLEARN_MODULES = (
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.compose",
    "sklearn.pipeline",
    "sklearn.feature_selection",
    "sklearn.decomposition",
)
_NUMPY_TYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool_",
    "str_",
    "object_",
    "number",
    "integer",
    "floating",
    "signedinteger",
    "unsignedinteger",
)


def _sklearn_allowed() -> dict[str, object]:
    """Standard scikit-learn transformers, compositions, CV splitters, score functions; numpy types."""
    import importlib

    import sklearn.model_selection
    from sklearn.base import BaseEstimator

    found: dict[str, object] = {}
    for module_name in _SKLEARN_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if isinstance(obj, type) and (issubclass(obj, BaseEstimator) or name == "make_column_selector"):
                found[_path_of(obj)] = obj
            elif inspect.isfunction(obj) and module_name == "sklearn.feature_selection":
                found[_path_of(obj)] = obj  # score functions such as f_classif
    for name in (
        "KFold",
        "StratifiedKFold",
        "GroupKFold",
        "StratifiedGroupKFold",
        "RepeatedKFold",
        "RepeatedStratifiedKFold",
        "ShuffleSplit",
        "StratifiedShuffleSplit",
        "GroupShuffleSplit",
        "TimeSeriesSplit",
        "LeaveOneOut",
        "PredefinedSplit",
    ):
        obj = getattr(sklearn.model_selection, name, None)
        if obj is not None:
            found[_path_of(obj)] = obj
    for name in _NUMPY_TYPES:
        found[f"numpy.{name}"] = getattr(np, name)
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
    if isinstance(obj, type) and issubclass(obj, np.generic):
        path = f"numpy.{obj.__name__}"
    if _REGISTERED.get(path) is obj or _builtin_allowed().get(path) is obj:
        return {"__ref__": path}
    raise PersistenceError(
        f"Cannot save {where}={obj!r}: skprune.load could only restore it by importing arbitrary "
        "code. Use a skprune/torch/skorch class, or call "
        f"skprune.register_serializable({path.split('.')[-1]}) before saving and before loading."
    )


# ---------------------------------------------------------------- encoding
def _is_net(value) -> bool:
    from .._estimator import PrunedNet

    return isinstance(value, PrunedNet)


def _stored_as_state(value) -> bool:
    """Whether ``value`` is stored as its whole state (scikit-learn style) rather than its parameters."""
    from sklearn.base import BaseEstimator

    if not isinstance(value, BaseEstimator) or _is_net(value):
        return False
    return not type(value).__module__.startswith("skprune.pruners")


class _Encoder:
    """Turn values into JSON; collect the tensors of modules and nets."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.n_modules = 0
        self.n_nets = 0

    def encode(self, value, where: str):
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic) and value.dtype.kind in "biufU":
            return self.encode(value.item(), where)
        if isinstance(value, np.ndarray):
            return self._encode_array(value, where)
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
            return {
                "__items__": [
                    [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        if isinstance(value, slice):
            return {"__slice__": [self.encode(v, where) for v in (value.start, value.stop, value.step)]}
        if isinstance(value, np.dtype):
            if value.kind not in "biufUO" or value.shape or value.names:
                raise PersistenceError(f"Cannot save {where}: numpy dtype {value} is not supported.")
            return {"__dtype__": value.str}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, gauss = value.get_state()
            return {"__random_state__": [kind, keys.tolist(), pos, has_gauss, gauss]}
        if isinstance(value, (torch.device, torch.dtype)):
            return {"__torch__": type(value).__name__, "value": str(value).replace("torch.", "")}
        if isinstance(value, type) or inspect.isfunction(value):
            return _reference(value, where)
        if isinstance(value, pd.DataFrame):
            return self._encode_frame(value, where)
        if _is_net(value):
            return self.encode_net(value, where, prefix=f"nets.{self._next_net()}.")
        if isinstance(value, nn.Module):
            return self._encode_module(value, where)
        if _stored_as_state(value):
            return self._encode_state(value, where)
        return self._encode_object(value, where)

    def _next_net(self) -> int:
        self.n_nets += 1
        return self.n_nets - 1

    def _encode_array(self, array: np.ndarray, where: str):
        if array.dtype.kind in "biufU":
            return {"__ndarray__": array.tolist(), "dtype": array.dtype.str}
        if array.dtype.kind == "O" and all(
            v is None or isinstance(v, (str, bool, int, float, np.generic)) for v in array.ravel()
        ):
            return {
                "__ndarray__": [self.encode(v, where) for v in array.ravel().tolist()],
                "dtype": "object",
                "shape": list(array.shape),
            }
        raise PersistenceError(f"Cannot save {where}: arrays of dtype {array.dtype} are not supported.")

    def _encode_frame(self, frame: pd.DataFrame, where: str):
        if not (isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 and frame.index.step == 1):
            frame = frame.reset_index(drop=True)
        columns = []
        for name in frame.columns:
            if not isinstance(name, str):
                raise PersistenceError(f"Cannot save {where}: DataFrame column names must be strings.")
            values = frame[name].to_numpy()
            if values.dtype.kind == "O":
                encoded = [self.encode(v, f"{where}[{name!r}]") for v in values.tolist()]
            else:
                encoded = self._encode_array(values, f"{where}[{name!r}]")
            columns.append([name, encoded])
        return {"__dataframe__": columns, "n_rows": len(frame)}

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

    def _encode_state(self, obj, where: str):
        """A scikit-learn estimator: its whole state (parameters and fitted attributes)."""
        from sklearn.model_selection._search import BaseSearchCV

        if isinstance(obj, BaseSearchCV):
            raise PersistenceError(
                f"Cannot save {where}={type(obj).__name__}: save its refitted model instead, "
                "skprune.save(search.best_estimator_, path) (a PrunedNet or a Pipeline ending with one)."
            )
        ref = _reference(type(obj), where)
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else dict(vars(obj))
        if not isinstance(state, dict):
            raise PersistenceError(f"Cannot save {where}={type(obj).__name__}: its state is not a dict.")
        encoded = {}
        for key, value in state.items():
            if not isinstance(key, str):
                raise PersistenceError(f"Cannot save {where}: attribute names must be strings.")
            if key == "scorer_" and (getattr(obj, "scoring", 0) is None or isinstance(obj.scoring, str)):
                encoded[key] = {"__scorer__": None}  # rebuilt from `scoring` when loading
                continue
            encoded[key] = self.encode(value, f"{where}.{key}")
        return {"__estimator__": ref["__ref__"], "state": encoded}

    def encode_net(self, estimator, where: str, prefix: str) -> dict:
        """A PrunedNet: parameters, fitted attributes, and its module and masks as tensors."""
        from ._export import SparseLinear

        config = {"estimator": self._encode_object(estimator, where), "fitted": None}
        if getattr(estimator, "initialized_", False) and hasattr(estimator, "module_"):
            fitted = {"attributes": _fitted_attributes(estimator, self)}
            fitted["pruner_"] = self.encode(getattr(estimator, "pruner_", None), f"{where}.pruner_")
            try:
                history = self.encode(list(estimator.history), f"{where}.history")
                fitted["history"] = json.loads(json.dumps(history, allow_nan=False))
            except (PersistenceError, TypeError, ValueError):
                warnings.warn(
                    "The training history holds values JSON cannot store; it is not saved.", stacklevel=3
                )
                fitted["history"] = []
            sparse = {}
            for name, layer in estimator.module_.named_modules():
                if isinstance(layer, SparseLinear):
                    sparse[name] = [layer.out_features, layer.in_features]
            for key, tensor in estimator.module_.state_dict().items():
                if isinstance(tensor, torch.Tensor) and tensor.layout == torch.sparse_csr:
                    tensor = tensor.detach().cpu()
                    self.tensors[f"{prefix}module_.{key}.crow_indices"] = tensor.crow_indices()
                    self.tensors[f"{prefix}module_.{key}.col_indices"] = tensor.col_indices()
                    self.tensors[f"{prefix}module_.{key}.values"] = tensor.values()
                else:
                    self.tensors[f"{prefix}module_.{key}"] = _check_tensor(key, tensor)
            if sparse:
                fitted["sparse_layers"] = sparse
            fitted["mask_shapes"] = {}
            for key, tensor in estimator.masks_.state_dict().items():
                # one bit per weight (np.packbits), not one byte
                packed = np.packbits(tensor.detach().cpu().numpy().astype(bool).ravel())
                self.tensors[f"{prefix}masks_.{key}"] = torch.from_numpy(packed)
                fitted["mask_shapes"][key] = list(tensor.shape)
            config["fitted"] = fitted
        return {"__net__": config, "prefix": prefix}


def _check_tensor(name: str, tensor) -> torch.Tensor:
    if (
        not isinstance(tensor, torch.Tensor)
        or tensor.layout != torch.strided
        or tensor.dtype not in DTYPE_NAMES
    ):
        kind = getattr(tensor, "dtype", type(tensor).__name__)
        raise PersistenceError(
            f"Cannot save {name!r} ({kind}, layout {getattr(tensor, 'layout', '?')}): only dense "
            "float/int/bool tensors and CSR Linear weights are saved. For int8 use "
            "skprune.quantize_int8, whose ONNX model is saved with its .save(path)."
        )
    return tensor.detach().to("cpu").contiguous()


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


# ---------------------------------------------------------------- decoding
def _leaves(value) -> int:
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


class _Decoder:
    """Rebuild values from JSON, within a memory budget."""

    def __init__(self, tensors: dict[str, torch.Tensor], budget: int, path):
        self.tensors = tensors
        self.budget = budget
        self.used = 0
        self.path = path

    def charge(self, nbytes: int, what: str) -> None:
        self.used += int(nbytes)
        if self.used > self.budget:
            raise PersistenceError(
                f"{str(self.path)!r}: rebuilding {what} would take more than {self.budget} bytes of "
                "memory, far more than a file of this size can describe; the file is refused."
            )

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            if isinstance(value, str):
                self.charge(len(value), "a string")
            return value
        if "__float__" in value:
            return float(str(value["__float__"]))
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in _as_list(value["__tuple__"]))
        if "__dict__" in value:
            items = value["__dict__"]
            if not isinstance(items, dict):
                raise PersistenceError("Invalid dictionary in the file's configuration.")
            return {k: self.decode(v) for k, v in items.items()}
        if "__items__" in value:
            out = {}
            for item in _as_list(value["__items__"]):
                key, val = _as_list(item, 2)
                key = self.decode(key)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise PersistenceError("Invalid dictionary key in the file's configuration.")
                out[key] = self.decode(val)
            return out
        if "__slice__" in value:
            parts = [self.decode(v) for v in _as_list(value["__slice__"], 3)]
            if not all(p is None or type(p) is int for p in parts):
                raise PersistenceError("Invalid slice in the file's configuration.")
            return slice(*parts)
        if "__dtype__" in value:
            return self._dtype(value["__dtype__"], "biufUO")
        if "__ndarray__" in value:
            return self._array(value)
        if "__dataframe__" in value:
            return self._frame(value)
        if "__random_state__" in value:
            kind, keys, pos, has_gauss, gauss = _as_list(value["__random_state__"], 5)
            if not (isinstance(keys, list) and len(keys) == 624):
                raise PersistenceError("Invalid random state in the file's configuration.")
            state = np.random.RandomState()
            state.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
            return state
        if "__torch__" in value:
            if value["__torch__"] == "device":
                return torch.device(str(value["value"]))
            dtype = getattr(torch, str(value["value"]), None)
            if not isinstance(dtype, torch.dtype):
                raise PersistenceError(f"Unknown torch dtype {value['value']!r} in file.")
            return dtype
        if "__ref__" in value:
            return _resolve(str(value["__ref__"]))
        if "__module__" in value:
            return self._module(value)
        if "__object__" in value:
            cls = _resolve(str(value["__object__"]))
            if not isinstance(cls, type) or issubclass(cls, nn.Module) or _is_net_class(cls):
                raise PersistenceError(f"{value['__object__']!r} cannot be rebuilt as a plain object.")
            return cls(**self.params(value.get("params"), cls))
        if "__estimator__" in value:
            return self._state_object(value)
        if "__net__" in value:
            return self.net(value["__net__"], str(value.get("prefix", "")))
        if "__scorer__" in value:
            return _RebuildScorer()
        raise PersistenceError(f"Unrecognized entry in the file's configuration: {sorted(value)[:5]}.")

    def params(self, params, cls=None) -> dict:
        if not isinstance(params, dict):
            raise PersistenceError("Invalid parameters in the file's configuration.")
        out = {str(k): self.decode(v) for k, v in params.items()}
        if cls is not None and isinstance(cls, type) and issubclass(cls, pruners.BasePruner):
            accepted = inspect.signature(cls).parameters
            for old, new in _RENAMED_PRUNER_PARAMS.items():
                if old in out and old not in accepted and new in accepted and new not in out:
                    out[new] = out.pop(old)  # a file written before the parameter was renamed
        return out

    def _dtype(self, text, kinds: str) -> np.dtype:
        try:
            dtype = np.dtype(str(text))
        except (TypeError, ValueError):
            raise PersistenceError(f"Invalid numpy dtype {str(text)[:40]!r} in the file.") from None
        if dtype.kind not in kinds or dtype.shape or dtype.names:
            raise PersistenceError(f"Unsupported numpy dtype {str(text)[:40]!r} in the file.")
        return dtype

    def _array(self, value) -> np.ndarray:
        data = value["__ndarray__"]
        if value.get("dtype") == "object":
            items = [self.decode(v) for v in _as_list(data)]
            if not all(v is None or isinstance(v, (str, bool, int, float)) for v in items):
                raise PersistenceError("Invalid object array in the file's configuration.")
            shape = value.get("shape", [len(items)])
            if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
                raise PersistenceError("Invalid array shape in the file's configuration.")
            if math.prod(shape) != len(items):
                raise PersistenceError("An object array's shape does not match its values.")
            self.charge(8 * len(items), "an array")
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(shape)
        dtype = self._dtype(value.get("dtype"), "biufU")
        self.charge(max(dtype.itemsize, 1) * _leaves(data), f"an array of dtype {dtype}")
        try:
            return np.asarray(data, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise PersistenceError(f"Invalid array in the file's configuration ({exc}).") from None

    def _frame(self, value) -> pd.DataFrame:
        n_rows = value.get("n_rows")
        columns = {}
        for item in _as_list(value["__dataframe__"]):
            name, data = _as_list(item, 2)
            column = self.decode(data)
            if not isinstance(name, str) or len(column) != n_rows:
                raise PersistenceError("Invalid DataFrame in the file's configuration.")
            if isinstance(column, list):
                array = np.empty(len(column), dtype=object)
                array[:] = column
                column = array
            columns[name] = column
        return pd.DataFrame(columns, index=pd.RangeIndex(n_rows))

    def _state_object(self, value):
        cls = _resolve(str(value["__estimator__"]))
        if not (isinstance(cls, type) and _stored_as_state_class(cls)):
            raise PersistenceError(f"{value['__estimator__']!r} is not an estimator stored by its state.")
        state = value.get("state")
        if not isinstance(state, dict):
            raise PersistenceError("Invalid estimator state in the file's configuration.")
        decoded = {}
        for key, item in state.items():
            if not (isinstance(key, str) and key.isidentifier()) or key.startswith("__"):
                raise PersistenceError(
                    f"The file tries to set attribute {str(key)[:40]!r}, which load never sets."
                )
            decoded[key] = self.decode(item)
        obj = cls.__new__(cls)
        with warnings.catch_warnings():
            # a different scikit-learn version warns (InconsistentVersionWarning); keep it visible
            warnings.simplefilter("default")
            if hasattr(obj, "__setstate__"):
                obj.__setstate__(decoded)
            else:
                obj.__dict__.update(decoded)
        if isinstance(obj.__dict__.get("scorer_"), _RebuildScorer):
            from sklearn.metrics import check_scoring

            obj.scorer_ = check_scoring(obj.estimator, scoring=obj.scoring)
        return obj

    def _module(self, spec: dict) -> nn.Module:
        module = self._build_module(spec)
        prefix = spec.get("state")
        if prefix is not None:
            prefix = str(prefix)
            state = {k[len(prefix) :]: t for k, t in self.tensors.items() if k.startswith(prefix)}
            _resize_leaves(module, state)
            module.load_state_dict(state, strict=True)
        return module

    def _build_module(self, spec: dict) -> nn.Module:
        cls = _resolve(str(spec["__module__"]))
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise PersistenceError(f"{spec['__module__']!r} is not a torch module class.")
        if "children" in spec:
            from collections import OrderedDict

            children = OrderedDict()
            for item in _as_list(spec["children"]):
                name, child = _as_list(item, 2)
                children[str(name)] = self._build_module(child)
            return cls(children)
        params = self.params(spec.get("params"))
        return self.construct(lambda: cls(**params), cls.__name__)

    def probe(self, factory, what: str) -> None:
        """Charge the memory of the module ``factory()`` builds, measured on the meta device."""
        with torch.random.fork_rng(), torch.device("meta"):
            probe = factory()
        if not isinstance(probe, nn.Module):
            raise PersistenceError(f"{what} did not build a torch module.")
        nbytes = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))
        self.charge(nbytes, f"module {what}")

    def construct(self, factory, what: str) -> nn.Module:
        """Build a module after checking, on the meta device, that it fits the budget."""
        self.probe(factory, what)
        with torch.random.fork_rng():
            return factory()

    def net(self, config, prefix: str):
        """A PrunedNet from its configuration and its tensors under ``prefix``."""
        from skorch.history import History

        from ._export import SparseLinear

        if not isinstance(config, dict):
            raise PersistenceError("Invalid network entry in the file's configuration.")
        spec = config.get("estimator")
        if not (isinstance(spec, dict) and _is_net_class(_resolve(str(spec.get("__object__"))))):
            raise PersistenceError("The file's network entry is not a skprune estimator.")
        cls = _resolve(spec["__object__"])
        estimator = cls(**self.params(spec.get("params")))
        fitted = config.get("fitted")
        if not fitted:
            return estimator
        params = set(estimator.get_params(deep=False))
        for name, value in dict(fitted["attributes"]).items():
            if not (name.isidentifier() and _is_fitted_name(name)) or name in _NOT_JSON_ATTRIBUTES | params:
                raise PersistenceError(
                    f"{str(self.path)!r} tries to set attribute {name!r}, which load never sets."
                )
            estimator.__dict__[name] = self.decode(value)
        self._charge_module(estimator)
        with torch.random.fork_rng():
            estimator.initialize()
        module_prefix = f"{prefix}module_."
        module_state = {
            k[len(module_prefix) :]: t for k, t in self.tensors.items() if k.startswith(module_prefix)
        }
        for name, (out_features, in_features) in dict(fitted.get("sparse_layers", {})).items():
            module_state = _sparse_state(
                estimator.module_, name, int(out_features), int(in_features), module_state
            )
        _resize_leaves(estimator.module_, module_state)
        estimator.module_.load_state_dict(module_state, strict=True)
        if not any(isinstance(m, SparseLinear) for m in estimator.module_.modules()):
            estimator.module_.to(estimator.device)
        masks = {}
        for key, shape in dict(fitted.get("mask_shapes", {})).items():
            packed = self.tensors[f"{prefix}masks_.{key}"]
            if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
                raise PersistenceError(f"Invalid mask shape for {key!r} in the file.")
            n = math.prod(shape)
            if packed.dtype != torch.uint8 or packed.numel() != (n + 7) // 8:
                raise PersistenceError(f"The mask of {key!r} does not match its declared shape {shape}.")
            bits = np.unpackbits(packed.numpy(), count=n).astype(bool)
            masks[key] = torch.from_numpy(bits).reshape(shape)
        estimator.masks_.load_state_dict(masks)
        estimator.masks_.to(estimator.device)
        if not any(isinstance(m, SparseLinear) for m in estimator.module_.modules()):
            estimator.initialize_optimizer()
        else:
            estimator.optimizer_ = None
        estimator.pruner_ = self.decode(fitted.get("pruner_"))
        estimator.history = History(self.decode(fitted.get("history", [])))
        return estimator

    def _charge_module(self, estimator) -> None:
        """Check on the meta device that the estimator's module fits the budget before building it."""
        module = estimator.module
        kwargs = module_kwargs(estimator)
        if isinstance(module, nn.Module):
            if kwargs:
                self.probe(lambda: type(module)(**kwargs), type(module).__name__)
        elif isinstance(module, type) and issubclass(module, nn.Module):
            self.probe(lambda: module(**kwargs), module.__name__)


class _RebuildScorer:
    """Placeholder for a scorer rebuilt from the estimator's ``scoring`` after loading."""


def _as_list(value, length: int | None = None) -> list:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise PersistenceError("Invalid list in the file's configuration.")
    return value


def _is_net_class(cls) -> bool:
    from .._estimator import PrunedNet

    return isinstance(cls, type) and issubclass(cls, PrunedNet)


def _stored_as_state_class(cls) -> bool:
    from sklearn.base import BaseEstimator

    return (
        issubclass(cls, BaseEstimator)
        and not _is_net_class(cls)
        and not cls.__module__.startswith("skprune.pruners")
    )


def _sparse_state(module: nn.Module, name: str, out_features: int, in_features: int, state: dict) -> dict:
    """Put a SparseLinear at ``name`` and turn its stored CSR parts into a CSR weight in ``state``."""
    from ._export import SparseLinear

    key = f"{name}.weight"
    try:
        crow, col, values = (state.pop(f"{key}.{part}") for part in ("crow_indices", "col_indices", "values"))
    except KeyError:
        raise PersistenceError(f"The CSR weight of layer {name!r} is missing from the file.") from None
    if not (crow.dtype == col.dtype and crow.dtype in (torch.int32, torch.int64)):
        raise PersistenceError(f"Invalid CSR indices for layer {name!r}.")
    if crow.shape != (out_features + 1,) or col.shape != values.shape or values.dim() != 1:
        raise PersistenceError(f"Invalid CSR shape for layer {name!r}.")
    try:
        weight = torch.sparse_csr_tensor(
            crow, col, values, size=(out_features, in_features), check_invariants=True
        )
    except RuntimeError as exc:
        raise PersistenceError(f"Invalid CSR weight for layer {name!r}: {exc}") from None
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    sparse = SparseLinear.__new__(SparseLinear)
    nn.Module.__init__(sparse)
    sparse.in_features, sparse.out_features = in_features, out_features
    sparse.register_buffer("weight", weight)
    sparse.register_buffer("bias", torch.zeros(out_features, dtype=values.dtype))
    setattr(parent, child, sparse)
    state[key] = weight
    return state


@torch.no_grad()
def _resize_leaves(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give Linear/Conv/BatchNorm leaves the (compacted) shapes found in ``state``."""
    for name, layer in module.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and weight is not None:
            if tuple(layer.weight.shape) == tuple(weight.shape):
                continue
            if weight.dim() != layer.weight.dim():
                raise PersistenceError(f"The weight of layer {name!r} has the wrong number of dimensions.")
            layer.weight = nn.Parameter(torch.empty_like(weight, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias = nn.Parameter(layer.weight.new_empty(weight.shape[0]))
            if isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape[0], weight.shape[1]
            else:
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1] * layer.groups
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            mean = state.get(prefix + "running_mean", state.get(prefix + "weight"))
            if mean is None or mean.dim() != 1 or mean.shape[0] == layer.num_features:
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


# ------------------------------------------------------------------ public
def save(estimator, path) -> None:
    """Save an estimator, pipeline or fitted search result to ``path`` without pickle.

    Parameters are stored as JSON (classes by allow-listed import path);
    weights, buffers and pruning masks as tensors through the
    ``safetensors`` library. The optimizer state is not stored: a loaded
    estimator predicts exactly as the saved one, and a further ``fit``
    starts a fresh optimizer.

    Parameters
    ----------
    estimator : PrunedNet, PrunedNetCV, Pipeline or ColumnTransformer
        A :class:`~skprune.PrunedNetClassifier`, :class:`~skprune.PrunedNetRegressor`
        or :class:`~skprune.PrunedNet` (pruned, compacted, dense, or with
        CSR layers from :func:`~skprune.to_sparse`), fitted or not; a
        :class:`~skprune.PrunedNetCV`; or a scikit-learn ``Pipeline`` /
        ``ColumnTransformer`` of allow-listed transformers with such a net
        inside (e.g. ``GridSearchCV(...).best_estimator_``).
    path : str or path-like
        Destination file (written to a temporary file, then renamed, so a
        crash never leaves half a file). ``.skp`` is a good suffix.

    Raises
    ------
    PersistenceError
        If something refers to a class that is not allow-listed (register
        it with :func:`register_serializable`), or holds values that cannot
        be stored without pickle.
    """
    from sklearn.base import BaseEstimator

    if not isinstance(estimator, BaseEstimator):
        raise PersistenceError(
            f"skprune.save stores estimators (a PrunedNet, PrunedNetCV or a Pipeline with one), got "
            f"{type(estimator).__name__}. Wrap a torch module in PrunedNetClassifier/PrunedNetRegressor."
        )
    encoder = _Encoder()
    if _is_net(estimator):
        root = encoder.encode_net(estimator, type(estimator).__name__, prefix="")
    else:
        root = encoder.encode(estimator, type(estimator).__name__)
    config = json.dumps({"root": root}, allow_nan=False, separators=(",", ":"))
    tensors = {name: _check_tensor(name, tensor) for name, tensor in encoder.tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "skprune_version": __version__,
        "config": config,
        "sha256": tensor_digest(config, tensors),
    }
    _safefile.write_file(path, tensors, metadata)


def load(path):
    """Load what :func:`save` wrote; nothing is unpickled, memory and time are bounded.

    Parameters
    ----------
    path : str or path-like
        A regular file written by :func:`save` (any skprune version).

    Returns
    -------
    estimator
        The estimator, pipeline or search, fitted if it was saved fitted,
        with identical predictions.

    Raises
    ------
    PersistenceError
        If the file is not a skprune file (for example a pickle or a
        ``torch.save`` archive) or not a regular file, was written by a
        newer format version, is corrupted or was modified, names a class
        outside the allow-list, or describes objects far larger than the
        file itself.
    """
    metadata, _, blob, body_start = _safefile.read_file(path)
    version = metadata.get("format_version")
    if not (isinstance(version, str) and version.isdigit() and len(version) < 6):
        raise PersistenceError(f"{str(path)!r} has an invalid format_version {version!r}.")
    if int(version) > FORMAT_VERSION:
        raise PersistenceError(
            f"{str(path)!r} was written in skprune file format version {version} (by skprune "
            f"{metadata.get('skprune_version', '?')}); this skprune reads versions up to "
            f"{FORMAT_VERSION}. Upgrade skprune to load it."
        )
    config_text = metadata.get("config")
    if not isinstance(config_text, str):
        raise PersistenceError(f"{str(path)!r} has no configuration.")
    if int(version) <= 1:
        import hashlib

        ok = hashlib.sha256(blob[body_start:]).hexdigest() == metadata.get("sha256")
        tensors = _safefile.load_tensors(path, blob) if ok else {}
    else:
        tensors = _safefile.load_tensors(path, blob)
        ok = tensor_digest(config_text, tensors) == metadata.get("sha256")
    if not ok:
        raise PersistenceError(
            f"{str(path)!r} is corrupted or was modified: its content does not match its checksum."
        )
    config = parse_json(config_text, "configuration", path)
    if not isinstance(config, dict):
        raise PersistenceError(f"{str(path)!r} has no valid configuration.")
    decoder = _Decoder(tensors, _BUDGET_BASE + _BUDGET_PER_BYTE * len(blob), path)
    try:
        if int(version) <= 1:
            obj = decoder.net(config, prefix="")
        elif "root" in config and isinstance(config["root"], dict):
            obj = decoder.decode(config["root"])
        else:
            raise PersistenceError(f"{str(path)!r} has no valid configuration.")
    except PersistenceError:
        raise
    except RecursionError:
        raise PersistenceError(f"{str(path)!r}: its configuration nests too deeply.") from None
    except Exception as exc:  # any failure to rebuild an allow-listed object from bad values
        raise PersistenceError(f"{str(path)!r} could not be restored: {type(exc).__name__}: {exc}") from exc
    from sklearn.base import BaseEstimator

    if not isinstance(obj, BaseEstimator) or isinstance(obj, nn.Module):
        raise PersistenceError(
            f"{str(path)!r} holds a {type(obj).__name__}, not an estimator; skprune.load returns only "
            "estimators, pipelines and searches."
        )
    return obj
