"""Encoding for :func:`~skprune.save`: values to allow-listed JSON, modules and masks to tensors."""

from __future__ import annotations

import inspect
import json
import math
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection._search import BaseSearchCV
from torch import nn

from .._params import _UNSET as UNSET
from ..exceptions import PersistenceError
from ._allowlist import is_allowed, reference
from ._copying import group_settings
from ._runtime import (
    RUNTIME,
    has_default,
    is_object_runtime_parameter,
    net_parameter_kind,
    parameter_default,
    same_value,
)
from ._safefile import DTYPE_NAMES
from ._schema import NOT_JSON_ATTRIBUTES, is_fitted_name, is_net, stored_as_state
from ._skops import dump_estimator
from ._sparse_linear import SparseLinear

__all__ = ["Encoder", "check_tensor"]


class Encoder:
    """Turn values into JSON; collect the tensors of modules and nets."""

    def __init__(self):
        self.tensors: dict[str, torch.Tensor] = {}
        self.n_modules = 0
        self.n_nets = 0
        self.n_values = 0
        self.n_sklearn = 0
        #: runtime parameters with a non-default value that were not written (``where.name``)
        self.not_kept: list[str] = []

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
        if isinstance(value, (type, np.ufunc)) or inspect.isfunction(value) or inspect.isbuiltin(value):
            return reference(value, where)
        if isinstance(value, pd.DataFrame):
            return self._encode_frame(value, where)
        if isinstance(value, torch.Tensor):  # e.g. criterion__weight: stored with the weights
            name = f"values.{self.n_values}"
            self.n_values += 1
            self.tensors[name] = check_tensor(where, value)
            return {"__tensor__": name}
        if is_net(value):
            return self.encode_net(value, where, prefix=f"nets.{self._next_net()}.")
        if isinstance(value, nn.Module):
            return self._encode_module(value, where)
        if stored_as_state(value):
            return self._encode_state(value, where)
        return self._encode_object(value, where)

    def _next_net(self) -> int:
        self.n_nets += 1
        return self.n_nets - 1

    def _encode_array(self, array: np.ndarray, where: str):
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            # JSON has no NaN/inf: those entries are written as "nan"/"inf"/"-inf", which
            # np.asarray(..., dtype=float) reads back (e.g. SimpleImputer's statistics_ of an empty column)
            values = array.astype(object)
            flat = values.reshape(-1)
            for i in np.flatnonzero(~np.isfinite(array.reshape(-1))):
                flat[i] = repr(float(flat[i]))
            return {"__ndarray__": values.tolist(), "dtype": array.dtype.str}
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
            if name == "bias" and (value is None or isinstance(value, torch.Tensor)):
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
        ref = reference(type(module), where)
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

    def _without_runtime(self, obj, params: dict, where: str, kind) -> dict:
        """``params`` without the runtime ones (see :mod:`._runtime`), noting those set to non-defaults."""
        kept = {}
        for name, value in params.items():
            if kind(name) != RUNTIME:
                kept[name] = value
                continue
            default = parameter_default(type(obj), name)
            if not (has_default(default) and same_value(value, default)):
                self.not_kept.append(f"{where}.{name}")
        return kept

    def _encode_object(self, obj, where: str):
        ref = reference(type(obj), where)
        params = self._init_params(obj, where)
        if is_net(obj):
            params = self._without_runtime(obj, params, where, _net_kind(obj))
        else:
            params = self._without_runtime(obj, params, where, _object_kind)
        return {
            "__object__": ref["__ref__"],
            "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
        }

    def _encode_state(self, obj, where: str):
        """A scikit-learn estimator: its whole state (parameters and fitted attributes)."""

        if isinstance(obj, BaseSearchCV):
            raise PersistenceError(
                f"Cannot save {where}={type(obj).__name__}: save its refitted model instead, "
                "skprune.save(search.best_estimator_, path) (a PrunedNet or a Pipeline ending with one)."
            )
        if not is_allowed(type(obj)) and type(obj).__module__.startswith("sklearn."):
            # LogisticRegression, HistGradientBoosting, stacking...: stored by skops.io (see _skops)
            tensor, not_kept = dump_estimator(obj, where)
            name = f"sklearn.{self.n_sklearn}"
            self.n_sklearn += 1
            self.tensors[name] = tensor
            self.not_kept.extend(not_kept)
            return {"__skops__": name}
        ref = reference(type(obj), where)
        state = obj.__getstate__() if hasattr(obj, "__getstate__") else dict(vars(obj))
        if not isinstance(state, dict):
            raise PersistenceError(f"Cannot save {where}={type(obj).__name__}: its state is not a dict.")
        encoded = {}
        init_params = set(obj.get_params(deep=False)) if hasattr(obj, "get_params") else set()
        runtime = self._without_runtime(
            obj, {k: state[k] for k in init_params if k in state}, where, _object_kind
        )
        for key, value in state.items():
            if not isinstance(key, str):
                raise PersistenceError(f"Cannot save {where}: attribute names must be strings.")
            if key in init_params and key not in runtime:  # a runtime parameter: its default is stored
                default = parameter_default(type(obj), key)
                value = default if has_default(default) else None
            if key == "scorer_" and (getattr(obj, "scoring", 0) is None or isinstance(obj.scoring, str)):
                encoded[key] = {"__scorer__": None}  # rebuilt from `scoring` when loading
                continue
            encoded[key] = self.encode(value, f"{where}.{key}")
        return {"__estimator__": ref["__ref__"], "state": encoded}

    def encode_net(self, estimator, where: str, prefix: str) -> dict:
        """A PrunedNet: parameters, fitted attributes, and its module and masks as tensors."""
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
            # torch.compile's wrapper (compile=True) is runtime: the module it wraps is stored
            module = getattr(estimator.module_, "_orig_mod", estimator.module_)
            wrapped = module is not estimator.module_
            for name, layer in module.named_modules():
                if isinstance(layer, SparseLinear):
                    sparse[name] = [layer.out_features, layer.in_features]
            for key, tensor in module.state_dict().items():
                if isinstance(tensor, torch.Tensor) and tensor.layout == torch.sparse_csr:
                    tensor = tensor.detach().cpu()
                    self.tensors[f"{prefix}module_.{key}.crow_indices"] = tensor.crow_indices()
                    self.tensors[f"{prefix}module_.{key}.col_indices"] = tensor.col_indices()
                    self.tensors[f"{prefix}module_.{key}.values"] = tensor.values()
                else:
                    self.tensors[f"{prefix}module_.{key}"] = check_tensor(key, tensor)
            if sparse:
                fitted["sparse_layers"] = sparse
            fitted["mask_shapes"] = {}
            for key, tensor in estimator.masks_.state_dict().items():
                if wrapped and key.startswith("_orig_mod."):
                    key = key[len("_orig_mod.") :]
                # one bit per weight (np.packbits), not one byte
                packed = np.packbits(tensor.detach().cpu().numpy().astype(bool).ravel())
                self.tensors[f"{prefix}masks_.{key}"] = torch.from_numpy(packed)
                fitted["mask_shapes"][key] = list(tensor.shape)
            pending = estimator.__dict__.get("_stale_components")
            kind = _net_kind(estimator)
            pending = {
                component: {key: value for key, value in values.items() if kind(key) != RUNTIME}
                for component, values in (pending or {}).items()
            }
            pending = {component: values for component, values in pending.items() if values}
            if pending:  # set_params after fit: the fitted components were built with these values
                fitted["built_with"] = {
                    component: {
                        key: {"unset": True} if value is UNSET else {"value": self.encode(value, key)}
                        for key, value in values.items()
                    }
                    for component, values in pending.items()
                }
            settings = group_settings(getattr(estimator, "optimizer_", None))
            if settings is not None:  # lr as scheduled, initial_lr: no optimizer state (buffers)
                fitted["optimizer_groups"] = self.encode(settings, f"{where}.optimizer_.param_groups")
            config["fitted"] = fitted
        return {"__net__": config, "prefix": prefix}


def _object_kind(name: str) -> str:
    return RUNTIME if is_object_runtime_parameter(name) else "model"


def _net_kind(estimator):
    """The kind of each parameter of a net; unclassified ones of user subclasses are model parameters."""

    def kind(name: str) -> str:
        found = net_parameter_kind(name)
        if found is None and type(estimator).__module__.startswith("skprune."):
            raise PersistenceError(
                f"Cannot save {type(estimator).__name__}: its parameter {name!r} is not classified as "
                "a model or a runtime parameter (skprune/deploy/_runtime.py). Please report this."
            )
        return found or "model"

    return kind


def check_tensor(name: str, tensor) -> torch.Tensor:
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


def _fitted_attributes(estimator, encoder: Encoder) -> dict:
    params = set(estimator.get_params(deep=False))
    out = {}
    for name, value in vars(estimator).items():
        if name in params or name in NOT_JSON_ATTRIBUTES:
            continue
        if not is_fitted_name(name):
            continue
        if isinstance(value, (nn.Module, torch.optim.Optimizer)):
            raise PersistenceError(
                f"Cannot save fitted attribute {name!r} ({type(value).__name__}): only the main "
                "module_ is saved."
            )
        out[name] = encoder.encode(value, name)
    return out
