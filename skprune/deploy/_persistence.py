"""Safe persistence: ``save(obj, path)`` and ``load(path)`` without pickle.

A file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file
written and read by the ``safetensors`` library (see :mod:`._safefile` for
the checks made before any tensor is read). Its ``__metadata__`` holds

* ``format``: ``"skprune"`` and ``format_version``: ``"3"`` (``"1"``: files of
  skprune 0.1 and ``"2"``, still read; their runtime parameters are ignored),
* ``config``: the object as typed JSON (model parameters, fitted
  attributes, nested estimators),
* ``sha256``: a digest of the configuration and of every tensor.

A file holds the model, never the runtime (:mod:`._runtime` lists which
parameters are which). Classes are resolved only from an allow-list
(:mod:`._allowlist`), values are checked against a schema
(:mod:`._schema`) and charged against a memory budget (:mod:`._budget`),
modules are built on the ``meta`` device and given the stored tensors, and
scikit-learn estimators outside the allow-list go through ``skops.io``
(:mod:`._skops`). Nothing is imported because a file names it, and nothing
is unpickled. Any tool that reads safetensors can read the weights
(``module_.*`` entries).
"""

from __future__ import annotations

import hashlib
import json
import warnings

from sklearn.base import BaseEstimator
from torch import nn

from .._version import __version__
from ..exceptions import PersistenceError
from . import _safefile
from ._allowlist import register_serializable
from ._budget import BUDGET_BASE, BUDGET_PER_BYTE
from ._decoding import Decoder
from ._encoding import Encoder, check_tensor
from ._safefile import parse_json, tensor_digest
from ._schema import FORMAT, FORMAT_VERSION, is_net

__all__ = [
    "PersistenceError",
    "get_untrusted_types",
    "RuntimeParametersNotSaved",
    "save",
    "load",
    "register_serializable",
    "FORMAT_VERSION",
]


class RuntimeParametersNotSaved(UserWarning):
    """Warned by :func:`save` when runtime parameters with non-default values were not written.

    The message names them (``PrunedNetClassifier.device``,
    ``Pipeline.memory``...). See :mod:`skprune.deploy._runtime` for the list
    of runtime parameters; :func:`load` gives them their defaults.

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> import skprune
    >>> from skprune.deploy import RuntimeParametersNotSaved
    >>> path = os.path.join(tempfile.mkdtemp(), "net.skp")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     skprune.save(skprune.PrunedNetClassifier(verbose=1), path)
    >>> caught[0].category is RuntimeParametersNotSaved
    True
    >>> skprune.load(path).verbose
    0
    """


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
    IsADirectoryError, FileNotFoundError
        If ``path`` is a folder, or its folder does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import skprune
    >>> X, y = load_iris(return_X_y=True)
    >>> net = skprune.PrunedNetClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.skp")
    >>> skprune.save(net, path)
    >>> bool((skprune.load(path).predict(X) == net.predict(X)).all())
    True
    """

    if not isinstance(estimator, BaseEstimator):
        raise PersistenceError(
            f"skprune.save stores estimators (a PrunedNet, PrunedNetCV or a Pipeline with one), got "
            f"{type(estimator).__name__}. Wrap a torch module in PrunedNetClassifier/PrunedNetRegressor."
        )
    encoder = Encoder()
    if is_net(estimator):
        root = encoder.encode_net(estimator, type(estimator).__name__, prefix="")
    else:
        root = encoder.encode(estimator, type(estimator).__name__)
    if encoder.not_kept:
        warnings.warn(
            f"skprune.save did not keep the runtime parameters {', '.join(encoder.not_kept)}: a file holds "
            "the model, not how or where it runs (compiler, device, workers, caches, sinks, paths). "
            "skprune.load gives them their defaults; set them again after loading, e.g. "
            "net.set_params(device='cuda').",
            RuntimeParametersNotSaved,
            stacklevel=2,
        )
    config = json.dumps({"root": root}, allow_nan=False, separators=(",", ":"))
    tensors = _unshared({name: check_tensor(name, tensor) for name, tensor in encoder.tensors.items()})
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "skprune_version": __version__,
        "config": config,
        "sha256": tensor_digest(config, tensors),
    }
    _safefile.write_file(path, tensors, metadata)


def _unshared(tensors: dict) -> dict:
    """Copies of tensors whose memory another tensor already uses (safetensors refuses shared memory).

    A layer registered under two names (weight sharing) has one parameter under
    two keys; each key gets its bytes, and loading the state dict ties them again.
    """
    seen = set()
    out = {}
    for name, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        out[name] = tensor.clone() if pointer is not None and pointer in seen else tensor
        if pointer is not None:
            seen.add(pointer)
    return out


def load(path, *, trusted=None):
    """Load what :func:`save` wrote; nothing is unpickled, memory and time are bounded.

    A file holds the model only: runtime parameters (``compile``,
    ``device``, ``n_jobs``, ``memory``, data-loader workers, callback sinks
    and paths) get their defaults; set them after loading, e.g.
    ``net.set_params(device="cuda")``.

    Parameters
    ----------
    path : str or path-like
        A regular file written by :func:`save` (any skprune version).
    trusted : list of str, default=None
        scikit-learn types stored through ``skops.io`` that skops does not
        trust by default (for example a ``HistGradientBoostingClassifier``'s
        ``TreePredictor``), which you trust in this file. See
        :func:`get_untrusted_types`. Never pass a list you did not read.

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
        outside the allow-list, holds a value outside its parameter's
        schema, masks that disagree with the weights, a runtime parameter
        (format 3), untrusted types, or describes objects far larger than
        the file itself.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> import skprune
    >>> X, y = load_iris(return_X_y=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.skp")
    >>> skprune.save(skprune.PrunedNetClassifier(max_epochs=3, random_state=0).fit(X, y), path)
    >>> type(skprune.load(path)).__name__
    'PrunedNetClassifier'
    """
    if trusted is not None and not (
        isinstance(trusted, (list, tuple)) and all(isinstance(t, str) for t in trusted)
    ):
        raise TypeError(f"trusted must be a list of type names (str), got {trusted!r}.")
    metadata, tensors, config, version, size = _read_checked(path)
    decoder = Decoder(tensors, BUDGET_BASE + BUDGET_PER_BYTE * size, path, version=version, trusted=trusted)
    try:
        with decoder.bounded_construction():
            if version <= 1:
                obj = decoder.net(config, prefix="")
            elif "root" in config and isinstance(config["root"], dict):
                obj = decoder.decode(config["root"])
            else:
                raise PersistenceError(f"{str(path)!r} has no valid configuration.")
    except PersistenceError as exc:
        raise _older(exc, metadata, version) from None
    except RecursionError:
        raise PersistenceError(f"{str(path)!r}: its configuration nests too deeply.") from None
    except Exception as exc:  # any failure to rebuild an allow-listed object from bad values
        raise _older(
            PersistenceError(f"{str(path)!r} could not be restored: {type(exc).__name__}: {exc}"),
            metadata,
            version,
        ) from exc

    if not isinstance(obj, BaseEstimator) or isinstance(obj, nn.Module):
        raise PersistenceError(
            f"{str(path)!r} holds a {type(obj).__name__}, not an estimator; skprune.load returns only "
            "estimators, pipelines and searches."
        )
    return obj


def _read_checked(path):
    """Metadata, tensors, parsed configuration, format version and size of a file with a valid checksum."""
    metadata, _, blob, body_start = _safefile.read_file(path)
    version = metadata.get("format_version")
    if not (isinstance(version, str) and version.isascii() and version.isdigit() and len(version) < 6):
        raise PersistenceError(f"{str(path)!r} has an invalid format_version {str(version)[:20]!r}.")
    if int(version) > FORMAT_VERSION:
        raise PersistenceError(
            f"{str(path)!r} was written in skprune file format version {version} (by skprune "
            f"{str(metadata.get('skprune_version', '?'))[:20]}); this skprune reads versions up to "
            f"{FORMAT_VERSION}. Upgrade skprune to load it."
        )
    config_text = metadata.get("config")
    if not isinstance(config_text, str):
        raise PersistenceError(f"{str(path)!r} has no configuration.")
    if int(version) <= 1:
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
    return metadata, tensors, config, int(version), len(blob)


def _older(error: PersistenceError, metadata: dict, version: int) -> PersistenceError:
    """``error``, with how to re-save the file when an older skprune wrote it."""
    if version >= FORMAT_VERSION:
        return error
    writer = str(metadata.get("skprune_version", "0.1"))[:20]
    return PersistenceError(
        f"{error} This file was written by skprune {writer} (file format {version}), whose files could "
        "hold values this version no longer accepts. If you trust the file, load it with that version "
        f"(pip install skprune=={writer}), then save it again with this one: the new file holds only "
        "the model."
    )


def get_untrusted_types(path) -> list[str]:
    """The types a file holds beyond what :func:`load` accepts by default, without loading it.

    These are scikit-learn types stored through ``skops.io`` that skops does
    not trust by default, and classes or functions outside skprune's
    allow-list (which need :func:`register_serializable`). Read the list,
    then load with ``skprune.load(path, trusted=[...])`` (skops types) or
    register your classes, only if you trust the file's source.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.

    Returns
    -------
    list of str
        Sorted type names; empty when the file holds only default types.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> import skprune
    >>> X, y = load_iris(return_X_y=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "lr.skp")
    >>> skprune.save(make_pipeline(LogisticRegression()).fit(X, y), path)
    >>> skprune.get_untrusted_types(path)
    []
    """
    from ._allowlist import is_path_allowed
    from ._skops import untrusted_types

    _, tensors, config, _, _ = _read_checked(path)
    found: set[str] = set()
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key in ("__ref__", "__object__", "__module__", "__estimator__"):
                if isinstance(item.get(key), str) and not is_path_allowed(item[key]):
                    found.add(item[key])
            if isinstance(item.get("__skops__"), str) and item["__skops__"] in tensors:
                found.update(untrusted_types(tensors[item["__skops__"]].numpy().tobytes()))
            stack.extend(item.values())
    return sorted(found)
