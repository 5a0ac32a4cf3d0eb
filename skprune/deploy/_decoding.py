"""Decoding for :func:`~skprune.load`: allow-listed JSON and tensors back to objects, in a memory budget."""

from __future__ import annotations

import inspect
import math
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import check_scoring
from skorch.history import History
from torch import nn

from .. import pruners
from .._params import _UNSET as UNSET
from ..exceptions import PersistenceError
from ._allowlist import resolve
from ._budget import MemoryBudget
from ._copying import restore_group_settings
from ._restore import resize_leaves, sparse_state
from ._schema import NOT_JSON_ATTRIBUTES, as_list, is_fitted_name, is_net_class, stored_as_state_class
from ._sparse_linear import SparseLinear

__all__ = ["Decoder"]

#: Parameters renamed since files were written: old name -> new name (pruners only).
_RENAMED_PRUNER_PARAMS = {"fraction": "sparsity", "criterion": "importance"}


def _leaves(value) -> int:
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


class Decoder(MemoryBudget):
    """Rebuild values from JSON, within a memory budget."""

    def __init__(self, tensors: dict[str, torch.Tensor], budget: int, path):
        super().__init__(budget, path)
        self.tensors = tensors

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
            return tuple(self.decode(v) for v in as_list(value["__tuple__"]))
        if "__dict__" in value:
            items = value["__dict__"]
            if not isinstance(items, dict):
                raise PersistenceError("Invalid dictionary in the file's configuration.")
            return {k: self.decode(v) for k, v in items.items()}
        if "__items__" in value:
            out = {}
            for item in as_list(value["__items__"]):
                key, val = as_list(item, 2)
                key = self.decode(key)
                if not isinstance(key, (str, int, float, bool, tuple, type(None))):
                    raise PersistenceError("Invalid dictionary key in the file's configuration.")
                out[key] = self.decode(val)
            return out
        if "__slice__" in value:
            parts = [self.decode(v) for v in as_list(value["__slice__"], 3)]
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
            kind, keys, pos, has_gauss, gauss = as_list(value["__random_state__"], 5)
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
        if "__tensor__" in value:
            name = str(value["__tensor__"])
            if not name.startswith("values.") or name not in self.tensors:
                raise PersistenceError(f"The file's configuration refers to a missing tensor {name[:40]!r}.")
            return self.tensors[name].clone()
        if "__ref__" in value:
            return resolve(str(value["__ref__"]))
        if "__module__" in value:
            return self._module(value)
        if "__object__" in value:
            cls = resolve(str(value["__object__"]))
            if not isinstance(cls, type) or issubclass(cls, nn.Module) or is_net_class(cls):
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
            items = [self.decode(v) for v in as_list(data)]
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
        for item in as_list(value["__dataframe__"]):
            name, data = as_list(item, 2)
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
        cls = resolve(str(value["__estimator__"]))
        if not (isinstance(cls, type) and stored_as_state_class(cls)):
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

            obj.scorer_ = check_scoring(obj.estimator, scoring=obj.scoring)
        return obj

    def _module(self, spec: dict) -> nn.Module:
        module = self._build_module(spec)
        prefix = spec.get("state")
        if prefix is not None:
            prefix = str(prefix)
            state = {k[len(prefix) :]: t for k, t in self.tensors.items() if k.startswith(prefix)}
            resize_leaves(module, state)
            module.load_state_dict(state, strict=True)
        return module

    def _build_module(self, spec: dict) -> nn.Module:
        cls = resolve(str(spec["__module__"]))
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise PersistenceError(f"{spec['__module__']!r} is not a torch module class.")
        if "children" in spec:

            children = OrderedDict()
            for item in as_list(spec["children"]):
                name, child = as_list(item, 2)
                children[str(name)] = self._build_module(child)
            return cls(children)
        params = self.params(spec.get("params"))
        return self.construct(lambda: cls(**params), cls.__name__)

    def net(self, config, prefix: str):
        """A PrunedNet from its configuration and its tensors under ``prefix``."""

        if not isinstance(config, dict):
            raise PersistenceError("Invalid network entry in the file's configuration.")
        spec = config.get("estimator")
        if not (isinstance(spec, dict) and is_net_class(resolve(str(spec.get("__object__"))))):
            raise PersistenceError("The file's network entry is not a skprune estimator.")
        cls = resolve(spec["__object__"])
        estimator = cls(**self.params(spec.get("params")))
        fitted = config.get("fitted")
        if not fitted:
            return estimator
        fallback = _unavailable_device(estimator.device)
        if fallback is not None:
            warnings.warn(
                f"{str(self.path)!r} holds a net fitted on device={estimator.device!r}, which is not "
                f"available here; it is loaded on {fallback!r} (its device parameter is set to it).",
                UserWarning,
                stacklevel=4,
            )
            estimator.device = fallback
        params = set(estimator.get_params(deep=False))
        for name, value in dict(fitted["attributes"]).items():
            if not (name.isidentifier() and is_fitted_name(name)) or name in NOT_JSON_ATTRIBUTES | params:
                raise PersistenceError(
                    f"{str(self.path)!r} tries to set attribute {name!r}, which load never sets."
                )
            estimator.__dict__[name] = self.decode(value)
        built_with = self._built_with(fitted.get("built_with"), estimator)
        latest = {key: estimator.__dict__.get(key, UNSET) for values in built_with.values() for key in values}
        _set_values(estimator, {key: v for values in built_with.values() for key, v in values.items()})
        self._charge_module(estimator)
        with torch.random.fork_rng():
            estimator.initialize()
        module_prefix = f"{prefix}module_."
        module_state = {
            k[len(module_prefix) :]: t for k, t in self.tensors.items() if k.startswith(module_prefix)
        }
        for name, (out_features, in_features) in dict(fitted.get("sparse_layers", {})).items():
            module_state = sparse_state(
                estimator.module_, name, int(out_features), int(in_features), module_state
            )
        resize_leaves(estimator.module_, module_state)
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
            restore_group_settings(estimator.optimizer_, self.decode(fitted.get("optimizer_groups")))
        else:
            estimator.optimizer_ = None
        estimator.pruner_ = self.decode(fitted.get("pruner_"))
        estimator.history = History(self.decode(fitted.get("history", [])))
        if built_with:  # the values set after fit, pending until the next fit, as in the saved net
            _set_values(estimator, latest)
            estimator.__dict__["_stale_components"] = built_with
        return estimator

    def _built_with(self, entry, estimator) -> dict:
        """The values the fitted components were built with, where ``set_params`` changed them after fit."""
        if entry is None:
            return {}
        if not isinstance(entry, dict):
            raise PersistenceError("Invalid pending parameters in the file's configuration.")
        params = set(estimator.get_params(deep=False))
        out: dict[str, dict] = {}
        for component, values in entry.items():
            if component not in ("module", "criterion", "optimizer") or not isinstance(values, dict):
                raise PersistenceError("Invalid pending parameters in the file's configuration.")
            for key, value in values.items():
                root = str(key).split("__", 1)[0]
                if not (key in params or "__" in key) or root not in _COMPONENT_ROOTS:
                    raise PersistenceError(f"{str(self.path)!r} tries to set parameter {str(key)[:40]!r}.")
                if not (isinstance(value, dict) and set(value) in ({"unset"}, {"value"})):
                    raise PersistenceError("Invalid pending parameters in the file's configuration.")
                decoded = UNSET if "unset" in value else self.decode(value["value"])
                out.setdefault(component, {})[key] = decoded
        return out


#: Parameters whose change after fit waits for the next fit (see ``set_params``), by first name part.
_COMPONENT_ROOTS = ("module", "criterion", "optimizer", "compile")


def _set_values(estimator, values: dict) -> None:
    """Set (or, for ``UNSET``, remove) parameter attributes directly, as skorch stores them."""
    for key, value in values.items():
        if value is UNSET:
            estimator.__dict__.pop(key, None)
        else:
            estimator.__dict__[key] = value


def _unavailable_device(device) -> str | None:
    """``"cpu"`` if ``device`` (a saved net's) does not exist on this machine, else ``None``.

    A net fitted on a GPU is often served on a machine without one; skorch's
    unpickling moves it to the CPU the same way.
    """
    if device is None:
        return None
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        return None  # left to torch's own error
    if device.type == "cuda":
        available = torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    elif device.type == "mps":
        available = torch.backends.mps.is_available()
    else:
        return None
    return None if available else "cpu"


class _RebuildScorer:
    """Placeholder for a scorer rebuilt from the estimator's ``scoring`` after loading."""
