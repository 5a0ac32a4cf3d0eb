"""The allow-list of classes and functions that a saved file may name.

Files refer to classes by import path; :func:`_resolve` maps a path to an
object only through this list (skprune's, torch's, skorch's and standard
scikit-learn public classes, plus what :func:`register_serializable` added),
so loading never imports code that a file names.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import sklearn.model_selection
import skorch.callbacks
import skorch.dataset
import skorch.utils
import torch.optim.lr_scheduler
from sklearn.base import BaseEstimator
from torch import nn

from .. import _serializable
from ..exceptions import PersistenceError

__all__ = ["register_serializable", "resolve", "reference", "is_allowed"]

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


#: Schedulers that take a user function (``lr_lambda``): functions are limited to PURE_FUNCTIONS.
_CALLABLE_SCHEDULERS = {"LambdaLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler"}

#: The torch layers a file may build by name: leaves whose construction cost is bounded by the
#: tensors stored with them (checked after building them on the meta device), and parameter-free
#: activations, pooling and reshaping layers. Recurrent, transformer and other composite layers
#: are not on it (an RNN's num_layers builds whatever the file asks for); register your own
#: module classes with register_serializable.
_TORCH_LAYERS = (
    nn.Sequential,
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.Embedding,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Softsign,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Tanhshrink,
)

#: The only functions a file may name that are not the user's (register_serializable): pure
#: functions of their arguments, without side effects (no ``print``, no I/O). numpy's ufuncs
#: (np.log1p, np.sqrt, ...) and scikit-learn's feature-selection score functions are added to it.
PURE_FUNCTIONS = (skorch.utils.to_numpy, skorch.utils.noop)

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
    >>> import torch
    >>> import skprune
    >>> @skprune.register_serializable
    ... class Tiny(torch.nn.Module):
    ...     def __init__(self, n_features_in=4, n_outputs=3):
    ...         super().__init__()
    ...         self.fc = torch.nn.Linear(n_features_in, n_outputs)
    ...     def forward(self, X):
    ...         return self.fc(X)
    >>> net = skprune.PrunedNetClassifier(module=Tiny)
    """
    if not (isinstance(obj, (type, np.ufunc)) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
        raise TypeError(f"register_serializable expects a class or a function, got {obj!r}.")
    _REGISTERED[_path_of(obj)] = obj
    return obj


def _builtin_allowed() -> dict[str, object]:
    """Third-party classes and functions on the allow-list, and skprune's (registered by each subpackage)."""
    _serializable.import_builtin_providers()
    return {**_third_party_allowed(), **_serializable.BUILTIN}


def _third_party_allowed() -> dict[str, object]:
    global _BUILTIN
    if _BUILTIN is not None:
        return _BUILTIN

    found: dict[str, object] = {}

    def add(obj):
        if isinstance(obj, type):
            found[_path_of(obj)] = obj

    for cls in _TORCH_LAYERS:
        add(cls)
    for name in dir(nn.modules.loss):  # criterion classes: built from criterion__* values only
        obj = getattr(nn.modules.loss, name)
        if isinstance(obj, type) and issubclass(obj, nn.modules.loss._Loss) and not name.startswith("_"):
            add(obj)
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
            add(obj)
    for name in dir(torch.optim.lr_scheduler):
        obj = getattr(torch.optim.lr_scheduler, name)
        if (
            isinstance(obj, type)
            and obj.__module__.startswith("torch.optim")
            and name not in _CALLABLE_SCHEDULERS
        ):
            add(obj)
    for name in getattr(skorch.callbacks, "__all__", []):
        if name not in _UNSAFE_CALLBACKS:
            add(getattr(skorch.callbacks, name))
    for function in PURE_FUNCTIONS:
        found[_path_of(function)] = function
    add(skorch.dataset.ValidSplit)
    add(skorch.dataset.Dataset)
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
    for name in dir(np):  # element-wise math (np.log1p, np.sqrt...), e.g. in a FunctionTransformer
        obj = getattr(np, name, None)
        if isinstance(obj, np.ufunc) and name == obj.__name__:
            found[f"numpy.{name}"] = obj
    return found


def resolve(path: str):
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


def is_path_allowed(path: str) -> bool:
    """Whether a path named by a file resolves (allow-listed, registered, or a former skprune path)."""
    if path in _REGISTERED or path in _builtin_allowed():
        return True
    return path.startswith("skprune.") and _legacy_skprune_path(path) is not None


def is_allowed(obj) -> bool:
    """Whether ``obj`` (a class or function) is on the allow-list or registered."""
    path = _path_of(obj) if hasattr(obj, "__qualname__") else repr(obj)
    return _REGISTERED.get(path) is obj or _builtin_allowed().get(path) is obj


def reference(obj, where: str) -> dict:
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
