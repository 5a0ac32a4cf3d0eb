"""scikit-learn estimators outside skprune's allow-list, stored with :mod:`skops.io`.

A pipeline's transformers that skprune knows (scaling, imputation, encoding,
composition...) are stored as typed JSON. Any other scikit-learn estimator
(``LogisticRegression``, ``HistGradientBoostingClassifier`` in a
``StackingClassifier``, ...) is stored by `skops.io <https://skops.readthedocs.io>`_,
a maintained loader of scikit-learn objects that never unpickles and
rebuilds only *trusted* types. Its bytes travel inside the safetensors file
as one ``uint8`` tensor (covered by the file's checksum).

At load, skops' own audit lists the types it does not trust by default
(:func:`skprune.get_untrusted_types` shows them before loading); such a file
is refused unless the caller names those types in ``skprune.load(path,
trusted=[...])``. The archive's declared sizes are checked against the
memory budget before anything is decompressed, and runtime parameters
(``n_jobs``, ``memory``, ``verbose``...) of every estimator it holds get
their defaults, as everywhere else in a file.
"""

from __future__ import annotations

import io
import zipfile

import torch
from sklearn.base import BaseEstimator

from ..exceptions import PersistenceError
from ._runtime import has_default, is_object_runtime_parameter, parameter_default, same_value
from ._schema import is_net

__all__ = ["dump_estimator", "load_estimator", "untrusted_types", "contains_net"]

#: Types skprune trusts in skops entries beyond skops' defaults: plain containers of values.
#: ``Bunch`` is scikit-learn's dict with attribute access (``StackingClassifier.named_estimators_``).
TRUSTED = ("sklearn.utils._bunch.Bunch",)

#: Largest compression ratio accepted for an archive member (a zip bomb has thousands).
MAX_RATIO = 200


def contains_net(value, depth: int = 0) -> bool:
    """Whether a PrunedNet hides anywhere in ``value``'s attributes (skops cannot store one)."""
    if depth > 20:
        return False
    if is_net(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(contains_net(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(contains_net(v, depth + 1) for v in value.values())
    if isinstance(value, BaseEstimator):
        return any(contains_net(v, depth + 1) for v in vars(value).values())
    return False


def dump_estimator(estimator, where: str) -> tuple[torch.Tensor, list[str]]:
    """The skops bytes of ``estimator`` as a uint8 tensor, and its runtime parameters set to non-defaults."""
    import skops.io as sio

    if contains_net(estimator):
        raise PersistenceError(
            f"Cannot save {where}={type(estimator).__name__}: it holds a PrunedNet, which only a "
            "Pipeline or ColumnTransformer may hold in a file. Put the net in a Pipeline."
        )
    not_kept = [
        f"{where}.{name}" if not path else f"{where}.{path}.{name}"
        for path, obj in _estimators(estimator)
        for name, value in obj.get_params(deep=False).items()
        if is_object_runtime_parameter(name)
        and not same_value(value, parameter_default(type(obj), name))
    ]
    try:
        data = sio.dumps(estimator, compression=zipfile.ZIP_DEFLATED)
    except Exception as exc:  # skops refuses what it cannot store without pickle
        raise PersistenceError(
            f"Cannot save {where}={type(estimator).__name__}: skops.io cannot store it ({exc})."
        ) from None
    return torch.frombuffer(bytearray(data), dtype=torch.uint8), not_kept


def _estimators(estimator, path: str = ""):
    """``(path, estimator)`` for ``estimator`` and every estimator among its parameters."""
    yield path, estimator
    for name, value in estimator.get_params(deep=False).items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, tuple) and len(item) >= 2:
                item = item[1]
            if isinstance(item, BaseEstimator):
                yield from _estimators(item, f"{path}.{name}" if path else name)


def _check_archive(data: bytes, budget) -> None:
    """Declared sizes of the archive within the budget, and no member compressed like a bomb."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise PersistenceError(f"{str(budget.path)!r}: a scikit-learn entry is not valid ({exc}).") from None
    total = 0
    for member in members:
        if member.file_size > MAX_RATIO * max(member.compress_size, 1024):
            raise PersistenceError(
                f"{str(budget.path)!r}: a scikit-learn entry expands {member.file_size} bytes from "
                f"{member.compress_size}; the file is refused."
            )
        total += member.file_size
    budget.charge(2 * total, "a scikit-learn estimator")


def untrusted_types(data: bytes) -> list[str]:
    """The types in skops bytes that skops does not trust by default."""
    import skops.io as sio

    try:
        return [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED]
    except Exception as exc:  # a malformed archive or schema
        raise PersistenceError(f"A scikit-learn entry of the file cannot be read ({exc}).") from None


def load_estimator(tensor: torch.Tensor, budget, trusted) -> BaseEstimator:
    """Rebuild an estimator from its skops bytes: audited, bounded, runtime parameters at defaults."""
    import skops.io as sio

    if tensor.dtype != torch.uint8 or tensor.dim() != 1:
        raise PersistenceError(f"{str(budget.path)!r}: a scikit-learn entry is not a byte string.")
    data = tensor.numpy().tobytes()
    _check_archive(data, budget)
    unknown = [t for t in untrusted_types(data) if t not in set(trusted or ())]
    if unknown:
        raise PersistenceError(
            f"{str(budget.path)!r} holds types that skops.io does not trust by default: {unknown}. "
            "Loading them would let the file decide more than values (see skops' audit: "
            "skprune.get_untrusted_types(path) lists them). If you created the file or trust its "
            f"source, pass them explicitly: skprune.load(path, trusted={unknown!r})."
        )
    try:
        estimator = sio.loads(data, trusted=[*TRUSTED, *(trusted or ())])
    except Exception as exc:  # any failure of skops on bad values
        raise PersistenceError(
            f"{str(budget.path)!r}: a scikit-learn entry could not be restored ({type(exc).__name__}: "
            f"{str(exc)[:200]})."
        ) from None
    if not isinstance(estimator, BaseEstimator):
        raise PersistenceError(f"{str(budget.path)!r}: a scikit-learn entry is not an estimator.")
    for _, obj in list(_estimators(estimator)):
        for name in obj.get_params(deep=False):
            if is_object_runtime_parameter(name):
                default = parameter_default(type(obj), name)
                if has_default(default):
                    setattr(obj, name, default)  # n_jobs, memory, verbose: never read from a file
    return estimator
