"""What a saved configuration holds: format identifiers, fitted-attribute rules, kinds of estimators.

Shared by the encoder (:mod:`._encoding`) and the decoder (:mod:`._decoding`).
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from skorch import NeuralNet

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
]

FORMAT = "skprune"
FORMAT_VERSION = 2

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
