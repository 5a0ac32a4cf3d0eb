"""What a saved configuration holds: format identifiers, fitted-attribute rules, kinds of estimators.

Shared by the encoder (:mod:`._encoding`) and the decoder (:mod:`._decoding`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import BaseEstimator
from skorch import NeuralNet
from torch import nn

from .._doc_link import DocLinkMixin
from ..exceptions import PersistenceError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "NOT_JSON_ATTRIBUTES",
    "as_list",
    "is_fitted_name",
    "is_net",
    "is_net_class",
    "stored_as_state",
    "stored_as_state_class",
    "NET_SCHEMA",
    "check_module_params",
    "check_net_params",
]

FORMAT = "skprune"
FORMAT_VERSION = 3

#: Fitted attributes managed by skorch or restored from tensors, never stored as JSON.
NOT_JSON_ATTRIBUTES = {
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


def is_fitted_name(name: str) -> bool:
    return (name.endswith("_") and not name.startswith("_")) or name in _PRIVATE_FITTED


def is_net(value) -> bool:
    """Whether ``value`` is a skprune net (a :class:`~skprune.PrunedNet`).

    Recognized as a skorch ``NeuralNet`` carrying skprune's documentation mixin,
    which only ``PrunedNet`` and its subclasses combine: the estimator module
    imports ``deploy`` (for ``compact``), so ``deploy`` does not import it back.
    """
    return is_net_class(type(value))


def stored_as_state(value) -> bool:
    """Whether ``value`` is stored as its whole state (scikit-learn style) rather than its parameters."""
    if not isinstance(value, BaseEstimator) or is_net(value):
        return False
    return not type(value).__module__.startswith("skprune.pruners")


def as_list(value, length: int | None = None) -> list:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        raise PersistenceError("Invalid list in the file's configuration.")
    return value


def is_net_class(cls) -> bool:
    """Whether ``cls`` is :class:`~skprune.PrunedNet` or a subclass (see :func:`is_net`)."""
    return isinstance(cls, type) and issubclass(cls, NeuralNet) and issubclass(cls, DocLinkMixin)


def stored_as_state_class(cls) -> bool:
    return (
        issubclass(cls, BaseEstimator)
        and not is_net_class(cls)
        and not cls.__module__.startswith("skprune.pruners")
    )


# --- the schema of stored parameter values -------------------------------------------------------

#: Largest integer a stored size may hold (a layer width, a kernel size, a count).
MAX_INT = 2**31 - 1


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _finite_real(lo=None):
    def check(value) -> bool:
        return _is_real(value) and math.isfinite(value) and (lo is None or value >= lo)

    return check


def _int_in(lo, hi, *also):
    def check(value) -> bool:
        return (_is_int(value) and lo <= value <= hi) or any(value == a and _is_int(value) for a in also)

    return check


def _one_of(*checks):
    return lambda value: any(check(value) for check in checks)


def _is(*constants):
    return lambda value: any(value is c or (isinstance(value, str) and value == c) for c in constants)


def _subclass_of(base):
    return lambda value: isinstance(value, type) and issubclass(value, base)


def _instance_of(base):
    return lambda value: isinstance(value, base)


def _class_weight(value) -> bool:
    if value is None or value == "balanced":
        return True
    return isinstance(value, dict) and all(
        isinstance(k, (str, int, float, bool, np.generic)) and _finite_real(0)(v) for k, v in value.items()
    )


def _callbacks(value) -> bool:
    from skorch.callbacks import Callback

    if value is None or value == "disable":
        return True
    if not isinstance(value, list):
        return False
    for item in value:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            item = item[1]
        if not (isinstance(item, Callback) or (isinstance(item, type) and issubclass(item, Callback))):
            return False
    return True


def _pruner(value) -> bool:
    return value is None or (hasattr(value, "get_params") and hasattr(value, "set_params"))


def _random_state(value) -> bool:
    return value is None or _int_in(0, 2**32 - 1)(value) or isinstance(value, np.random.RandomState)


#: What each stored model parameter of a net may hold (runtime parameters are never stored).
NET_SCHEMA = {
    "module": (_one_of(_subclass_of(nn.Module), _instance_of(nn.Module)), "a torch module class or instance"),
    "criterion": (_one_of(_subclass_of(nn.Module), _instance_of(nn.Module)), "a torch loss class"),
    "optimizer": (_subclass_of(torch.optim.Optimizer), "a torch.optim optimizer class"),
    "lr": (_finite_real(0), "a finite number >= 0"),
    "max_epochs": (_int_in(0, 10**7), "an integer in [0, 10**7]"),
    "batch_size": (_int_in(1, MAX_INT, -1), "-1 or an integer in [1, 2**31)"),
    "alpha": (_finite_real(0), "a finite number >= 0"),
    "random_state": (_random_state, "None, an integer in [0, 2**32) or a RandomState"),
    "pruner": (_pruner, "None or a pruner"),
    "dataset": (_one_of(lambda v: isinstance(v, type)), "a dataset class"),
    "train_split": (_one_of(_is(None), callable), "None or a ValidSplit"),
    "callbacks": (_callbacks, "None, 'disable' or a list of skorch callbacks"),
    "predict_nonlinearity": (_one_of(_is("auto", None), callable), "'auto', None or a registered function"),
    "warm_start": (_instance_of(bool), "a bool"),
    "class_weight": (_class_weight, "None, 'balanced' or a dict of non-negative weights"),
    "normalize_y": (_instance_of(bool), "a bool"),
}


def _check_size_value(value, where: str, max_length: int, path_hint: str = "") -> None:
    """A ``module__*``/``optimizer__*``-style value: scalars, strings, and short lists of them."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if item is None or isinstance(item, (bool, str, np.bool_)):
            if isinstance(item, str) and len(item) > 256:
                raise PersistenceError(f"The file's {where} holds a string of {len(item)} characters.")
            continue
        if _is_int(item):
            if not -MAX_INT <= item <= MAX_INT:
                raise PersistenceError(f"The file's {where} holds the integer {item}, beyond 2**31.")
            continue
        if _is_real(item):
            if not math.isfinite(item):
                raise PersistenceError(f"The file's {where} holds the non-finite number {item}.")
            continue
        if isinstance(item, (list, tuple)):
            if len(item) > max_length or depth > 4:
                raise PersistenceError(
                    f"The file's {where} holds a list of {len(item)} values, more than the "
                    f"{max_length} that the tensors it stores can describe; the file is refused."
                )
            stack.extend((v, depth + 1) for v in item)
            continue
        if isinstance(item, (torch.Tensor, torch.dtype, type)) or callable(item):
            continue  # tensors are counted by the budget; classes and functions are allow-listed
        raise PersistenceError(f"The file's {where} holds a {type(item).__name__}, not a plain value.")


def check_module_params(params: dict, owner: str, n_tensors: int) -> None:
    """Parameters of a torch layer named by a file: plain values, sizes within bounds."""
    for name, value in params.items():
        _check_size_value(value, f"{owner} parameter {name!r}", max_length=16 + 4 * n_tensors)


def check_net_params(estimator, n_tensors: int) -> None:
    """Check every stored model parameter of a net against :data:`NET_SCHEMA` before building it.

    ``prefix__name`` values (``module__hidden_layer_sizes``, ``optimizer__momentum``, ...) must be
    plain values, integers below 2**31 and lists no longer than the file's tensors can describe.
    """
    from ._runtime import RUNTIME, net_parameter_kind

    for name, value in estimator.get_params(deep=False).items():
        if name in NET_SCHEMA:
            check, expected = NET_SCHEMA[name]
            if not check(value):
                raise PersistenceError(
                    f"The file sets {type(estimator).__name__}.{name} to {_short(value)}; it must be "
                    f"{expected}. The file is refused."
                )
        elif "__" in name and net_parameter_kind(name) != RUNTIME:
            _check_size_value(value, f"parameter {name!r}", max_length=16 + 4 * n_tensors)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
