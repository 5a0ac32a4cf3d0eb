"""Decoding for :func:`~skprune.load`: allow-listed JSON and tensors back to objects, in a memory budget."""

from __future__ import annotations

import copy
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

from .._params import _UNSET as UNSET
from .._training._prepare import module_kwargs, module_to_device
from ..exceptions import PersistenceError
from ..nn._layers import iter_prunable_weights
from ..pruners._protocol import PrunerProtocol
from ._allowlist import resolve
from ._budget import MemoryBudget
from ._copying import restore_group_settings
from ._restore import resize_leaves, sparse_state
from ._runtime import (
    RUNTIME,
    has_default,
    is_object_runtime_parameter,
    net_parameter_kind,
    parameter_default,
    same_value,
)
from ._schema import (
    NOT_JSON_ATTRIBUTES,
    as_list,
    check_module_params,
    check_net_params,
    is_fitted_name,
    is_net_class,
    stored_as_state_class,
)
from ._skops import load_estimator
from ._sparse_linear import SparseLinear

__all__ = ["Decoder"]

#: Parameters renamed since files were written: old name -> new name (pruners only).
_RENAMED_PRUNER_PARAMS = {"fraction": "sparsity", "criterion": "importance"}


def _leaves(value) -> tuple[int, int]:
    """Number of leaves of nested lists, and the length of the longest string among them."""
    count, longest, stack = 0, 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
            longest = max(longest, len(item) if isinstance(item, str) else 32)
    return count, longest


class Decoder(MemoryBudget):
    """Rebuild values from JSON, within a memory budget."""

    def __init__(self, tensors: dict[str, torch.Tensor], budget: int, path, version: int = 3, trusted=()):
        super().__init__(budget, path, n_tensors=len(tensors))
        self.tensors = tensors
        #: types the caller trusts beyond skops' defaults (``skprune.load(path, trusted=[...])``)
        self.trusted = tuple(trusted or ())
        #: files of format 3 and later never hold runtime parameters: one that does was edited
        self.refuse_runtime = version >= 3

    def _model_params(self, params, kind, owner: str) -> dict:
        """``params`` (still encoded) without runtime parameters: those are never read from a file."""
        if not isinstance(params, dict):
            raise PersistenceError("Invalid parameters in the file's configuration.")
        kept = {}
        for name, value in params.items():
            name = str(name)
            found = kind(name)
            if found is None:
                raise PersistenceError(
                    f"{str(self.path)!r} sets {owner} parameter {name[:60]!r}, which is not a parameter "
                    "of that estimator."
                )
            if found != RUNTIME:
                kept[name] = value
            elif self.refuse_runtime:
                raise PersistenceError(
                    f"{str(self.path)!r} sets the runtime parameter {owner}.{name[:60]}, which skprune.save "
                    "never writes (a file holds the model, not how or where it runs): the file was edited "
                    "and is refused."
                )
        return kept

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
            tensor = self.tensors[name]
            self.charge(tensor.numel() * tensor.element_size(), f"tensor {name!r}")  # each reference
            return tensor.clone()
        if "__ref__" in value:
            return resolve(str(value["__ref__"]))
        if "__module__" in value:
            return self._module(value)
        if "__object__" in value:
            cls = resolve(str(value["__object__"]))
            if not isinstance(cls, type) or issubclass(cls, nn.Module) or is_net_class(cls):
                raise PersistenceError(f"{value['__object__']!r} cannot be rebuilt as a plain object.")
            params = self._model_params(value.get("params"), _object_kind, cls.__name__)
            obj = cls(**self.params(params, cls))
            if isinstance(obj, PrunerProtocol):
                self._check_schema(obj, obj.check_params)  # a pruner's own schema, as fit would check it
            return obj
        if "__estimator__" in value:
            return self._state_object(value)
        if "__net__" in value:
            return self.net(value["__net__"], str(value.get("prefix", "")))
        if "__scorer__" in value:
            return _RebuildScorer()
        if "__skops__" in value:
            name = str(value["__skops__"])
            if not name.startswith("sklearn.") or name not in self.tensors:
                raise PersistenceError(f"The file's configuration refers to a missing entry {name[:40]!r}.")
            return load_estimator(self.tensors[name], self, self.trusted)
        raise PersistenceError(f"Unrecognized entry in the file's configuration: {sorted(value)[:5]}.")

    def params(self, params, cls=None) -> dict:
        if not isinstance(params, dict):
            raise PersistenceError("Invalid parameters in the file's configuration.")
        out = {str(k): self.decode(v) for k, v in params.items()}
        if isinstance(cls, type) and cls.__module__.startswith("skprune.pruners."):  # a skprune pruner
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
        n, longest = _leaves(data)
        itemsize = dtype.itemsize
        if dtype.kind == "U" and itemsize == 0:  # numpy pads every element to the longest string
            itemsize = 4 * longest
        self.charge(max(itemsize, 1) * n, f"an array of dtype {dtype}")
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
            default = parameter_default(cls, key) if is_object_runtime_parameter(key) else None
            if has_default(default) and is_object_runtime_parameter(key):
                # n_jobs, memory, verbose...: never read from a file; the default applies. save writes
                # the default, so another value in a file of format 3 means the file was edited.
                if self.refuse_runtime and not (item is None or same_value(self._plain(item), default)):
                    raise PersistenceError(
                        f"{str(self.path)!r} sets the runtime parameter {cls.__name__}.{key} to "
                        f"{str(item)[:60]!r}; skprune.save never writes those (a file holds the model, not "
                        "how or where it runs): the file was edited and is refused."
                    )
                decoded[key] = default
                continue
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
        if getattr(obj, "_parameter_constraints", None) and hasattr(obj, "_validate_params"):
            self._check_schema(obj, obj._validate_params)  # scikit-learn's own schema: types and ranges
        return obj

    def _check_schema(self, obj, check) -> None:
        """Run ``check`` (an object's own parameter validation); an invalid value ends in PersistenceError."""
        try:
            check()
        except (TypeError, ValueError) as exc:
            raise PersistenceError(
                f"{str(self.path)!r}: its {type(obj).__name__} has an invalid parameter: {exc}"
            ) from None

    @staticmethod
    def _plain(item):
        """A JSON scalar as stored (runtime values are compared, never decoded into objects)."""
        return item if isinstance(item, (str, int, float, bool)) else object()

    def _module(self, spec: dict) -> nn.Module:
        """A torch module: built on the meta device, then given the stored tensors (``assign=True``).

        What the module declares must be exactly what the file stores, so building it
        costs no more memory than the file's tensors.
        """
        prefix = spec.get("state")
        state = {}
        if prefix is not None:
            prefix = str(prefix)
            state = {k[len(prefix) :]: t for k, t in self.tensors.items() if k.startswith(prefix)}
        with torch.random.fork_rng(), torch.device("meta"):
            module = self._build_module(spec)
        resize_leaves(module, state)
        declared = module.state_dict()
        for key in sorted(set(declared) | set(state)):
            if (
                key not in state
                or key not in declared
                or tuple(declared[key].shape) != tuple(state[key].shape)
            ):
                raise PersistenceError(
                    f"{str(self.path)!r}: module {type(module).__name__} declares tensor {key[:60]!r} "
                    f"{tuple(declared[key].shape) if key in declared else '(none)'} but the file stores "
                    f"{tuple(state[key].shape) if key in state else 'none'}."
                )
        module.load_state_dict(state, strict=True, assign=True)
        if _has_meta(module):  # non-persistent buffers: build it for real (charged), then load
            module = self.construct(lambda: self._build_module(spec), type(module).__name__)
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
        check_module_params(params, cls.__name__, len(self.tensors))
        return cls(**params)

    def net(self, config, prefix: str):
        """A PrunedNet from its configuration and its tensors under ``prefix``."""

        if not isinstance(config, dict):
            raise PersistenceError("Invalid network entry in the file's configuration.")
        spec = config.get("estimator")
        if not (isinstance(spec, dict) and is_net_class(resolve(str(spec.get("__object__"))))):
            raise PersistenceError("The file's network entry is not a skprune estimator.")
        cls = resolve(spec["__object__"])
        params = self._model_params(spec.get("params"), _net_kind(cls), cls.__name__)
        estimator = cls(**self.params(params))
        fitted = config.get("fitted")
        if not fitted:
            return estimator
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
        check_net_params(estimator, len(self.tensors))
        self._charge_module(estimator)
        module_prefix = f"{prefix}module_."
        module_state = {
            k[len(module_prefix) :]: t for k, t in self.tensors.items() if k.startswith(module_prefix)
        }
        self._initialize_on_meta(estimator)
        _check_output_layer(estimator, module_state, self.path)
        sparse_layers = dict(fitted.get("sparse_layers", {}))
        _load_module_state(estimator.module_, sparse_layers, dict(module_state), assign=True)
        if _has_meta(estimator.module_):  # e.g. non-persistent buffers: build it for real (charged above)
            with torch.random.fork_rng():
                estimator.initialize_module()
            _load_module_state(estimator.module_, sparse_layers, dict(module_state), assign=False)
        if not any(isinstance(m, SparseLinear) for m in estimator.module_.modules()):
            estimator.module_ = module_to_device(estimator.module_, estimator.device)
        estimator.masks_.load_state_dict(self._masks(fitted, prefix, estimator.module_))
        estimator.masks_.to(estimator.device)
        if not any(isinstance(m, SparseLinear) for m in estimator.module_.modules()):
            estimator.initialize_optimizer()
            groups = self.decode(fitted.get("optimizer_groups"))
            _check_group_settings(groups, self.path)
            restore_group_settings(estimator.optimizer_, groups)
        else:
            estimator.optimizer_ = None
        estimator.pruner_ = self.decode(fitted.get("pruner_"))
        estimator.history = History(self.decode(fitted.get("history", [])))
        if built_with:  # the values set after fit, pending until the next fit, as in the saved net
            _set_values(estimator, latest)
            estimator.__dict__["_stale_components"] = built_with
        return estimator

    def _initialize_on_meta(self, estimator) -> None:
        """``estimator.initialize()`` with the module built on the meta device (no memory, no init work)."""

        def on_meta():
            with torch.device("meta"):
                kwargs = module_kwargs(estimator)
                module = estimator.module
                if isinstance(module, nn.Module):  # an instance: copied as initialize_module does
                    built = type(module)(**kwargs) if kwargs else copy.deepcopy(module)
                else:
                    built = module(**kwargs)
            if not isinstance(built, nn.Module):
                raise PersistenceError(f"{str(self.path)!r}: its module did not build a torch module.")
            with estimator._current_init_context("module"):
                estimator.module_ = built
            return estimator

        # skorch's _initialize_module builds, then moves to the device (and compiles): here it only builds
        estimator.__dict__["_initialize_module"] = on_meta
        try:
            with torch.random.fork_rng():
                estimator.initialize()
        finally:
            del estimator.__dict__["_initialize_module"]

    def _masks(self, fitted: dict, prefix: str, module: nn.Module) -> dict:
        """The stored masks, checked against the module: existing parameters, same shapes, and every
        pruned entry exactly zero in the stored weight."""
        parameters = dict(module.named_parameters())
        parameters.update({k: v for k, v in module.state_dict().items() if k not in parameters})
        shapes = fitted.get("mask_shapes", {})
        if not isinstance(shapes, dict):
            raise PersistenceError(f"{str(self.path)!r}: invalid masks in the file's configuration.")
        masks = {}
        for key, shape in shapes.items():
            packed = self.tensors.get(f"{prefix}masks_.{key}")
            if packed is None:
                raise PersistenceError(f"{str(self.path)!r}: the mask of {str(key)[:60]!r} is missing.")
            if not (isinstance(shape, list) and all(type(s) is int and s >= 0 for s in shape)):
                raise PersistenceError(f"Invalid mask shape for {key!r} in the file.")
            n = math.prod(shape)
            if packed.dtype != torch.uint8 or packed.numel() != (n + 7) // 8:
                raise PersistenceError(f"The mask of {key!r} does not match its declared shape {shape}.")
            weight = parameters.get(key)
            if weight is None:
                raise PersistenceError(
                    f"{str(self.path)!r} holds a mask for {str(key)[:60]!r}, which is not a parameter "
                    "of its network."
                )
            if tuple(weight.shape) != tuple(shape):
                raise PersistenceError(
                    f"{str(self.path)!r}: the mask of {key!r} has shape {shape}, its weight "
                    f"{list(weight.shape)}."
                )
            bits = torch.from_numpy(np.unpackbits(packed.numpy(), count=n).astype(bool)).reshape(shape)
            dense = weight.to_dense() if weight.layout != torch.strided else weight
            if bits.any() and bool((dense.detach().cpu()[bits] != 0).any()):
                raise PersistenceError(
                    f"{str(self.path)!r}: the mask of {key!r} marks weights as pruned that are not zero "
                    "in the stored weight; masks and weights disagree, the file is refused."
                )
            masks[key] = bits
        return masks

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
                kind = net_parameter_kind(str(key))
                if not (key in params or "__" in key) or root not in _COMPONENT_ROOTS or kind != "model":
                    raise PersistenceError(f"{str(self.path)!r} tries to set parameter {str(key)[:40]!r}.")
                if not (isinstance(value, dict) and set(value) in ({"unset"}, {"value"})):
                    raise PersistenceError("Invalid pending parameters in the file's configuration.")
                decoded = UNSET if "unset" in value else self.decode(value["value"])
                out.setdefault(component, {})[key] = decoded
        return out


#: Parameters whose change after fit waits for the next fit (see ``set_params``), by first name part.
_COMPONENT_ROOTS = ("module", "criterion", "optimizer")


def _set_values(estimator, values: dict) -> None:
    """Set (or, for ``UNSET``, remove) parameter attributes directly, as skorch stores them."""
    for key, value in values.items():
        if value is UNSET:
            estimator.__dict__.pop(key, None)
        else:
            estimator.__dict__[key] = value


def _load_module_state(module: nn.Module, sparse_layers: dict, state: dict, assign: bool) -> None:
    """Put the stored tensors into ``module``: CSR layers, compacted shapes, then the state dict."""
    for name, (out_features, in_features) in sparse_layers.items():
        state = sparse_state(module, name, int(out_features), int(in_features), state)
    resize_leaves(module, state)
    module.load_state_dict(state, strict=True, assign=assign)


def _check_group_settings(groups, path) -> None:
    """Refuse negative or non-finite optimizer settings (``lr``, ``betas``, ``weight_decay``...).

    Every numeric setting of torch's optimizers is finite and >= 0; the
    estimator's ``lr`` is checked by the schema, and the per-group copy that
    a later ``partial_fit`` resumes from must be too.
    """
    if not isinstance(groups, list):
        return
    for group in groups:
        if not isinstance(group, dict):
            continue
        for key, value in group.items():
            values = value if isinstance(value, tuple) else (value,)
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if any(not (math.isfinite(v) and v >= 0) for v in numbers):
                raise PersistenceError(
                    f"{str(path)!r} holds the optimizer setting {str(key)[:40]}={value!r}; optimizer "
                    "settings are finite numbers >= 0, so the file was edited and is refused."
                )


def _check_output_layer(estimator, state: dict, path) -> None:
    """Refuse a stored output layer whose width disagrees with ``classes_`` / ``n_outputs_``.

    Compaction never narrows the output layer, so in skprune's own networks
    (whose last Linear/Conv is the output) the width built from the fitted
    attributes must be the stored one; otherwise predictions would index
    past ``classes_``.
    """
    module = estimator.module_
    if not type(module).__module__.startswith("skprune.nn"):
        return
    layers = list(iter_prunable_weights(module))
    if not layers:
        return
    name = layers[-1][0]
    stored = state.get(name)
    built = dict(module.named_parameters()).get(name)
    if stored is None or built is None or stored.dim() < 1 or built.dim() < 1:
        return  # a CSR output layer: its width is checked with its CSR parts
    if stored.shape[0] != built.shape[0]:
        raise PersistenceError(
            f"{str(path)!r}: the stored output layer {name!r} has {stored.shape[0]} outputs, but the "
            f"file's fitted attributes (classes_ / n_outputs_) give {built.shape[0]}; the file is refused."
        )


def _has_meta(module: nn.Module) -> bool:
    return any(t.is_meta for t in (*module.parameters(), *module.buffers()))


def _object_kind(name: str) -> str:
    return RUNTIME if is_object_runtime_parameter(name) else "model"


def _net_kind(cls):
    """Kinds of a net class's parameters; a registered user subclass's own parameters are model ones."""
    own = cls.__module__.startswith("skprune.")
    accepted = set(inspect.signature(cls).parameters)

    def kind(name: str):
        found = net_parameter_kind(name)
        if found is None and not own and name in accepted:
            return "model"
        return found

    return kind


class _RebuildScorer:
    """Placeholder for a scorer rebuilt from the estimator's ``scoring`` after loading."""
