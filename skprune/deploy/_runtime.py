"""Which parameters a file holds (the model) and which it never holds (the runtime).

A file written by :func:`skprune.save` describes a model: its architecture,
training configuration, tensors and fitted preprocessing. It never says how
or where that model runs: parameters that choose a compiler and its options,
a device, worker processes, a cache folder, an output sink or a file path
are *runtime* parameters. :func:`skprune.save` does not write them (it warns
when one had a non-default value) and :func:`skprune.load` never reads them,
even from a hand-edited file: the defaults apply, and the user sets them
after loading, e.g. ``net.set_params(device="cuda", compile=True)``.

This module is the one place that classifies every parameter. A test
(``test_every_estimator_parameter_is_classified_as_model_or_runtime``) fails
when a parameter of :class:`~skprune.PrunedNet`,
:class:`~skprune.PrunedNetClassifier` or :class:`~skprune.PrunedNetRegressor`
(skorch's inherited ones included) or a ``prefix__`` family is missing here.
"""

from __future__ import annotations

import inspect

__all__ = [
    "MODEL",
    "RUNTIME",
    "NET_PARAMETERS",
    "NET_PARAMETER_FAMILIES",
    "OBJECT_RUNTIME_PARAMETERS",
    "net_parameter_kind",
    "is_object_runtime_parameter",
    "parameter_default",
]

MODEL = "model"
RUNTIME = "runtime"

#: Every parameter of PrunedNet, PrunedNetClassifier and PrunedNetRegressor.
NET_PARAMETERS: dict[str, str] = {
    # the model: architecture, loss, training configuration, pruning
    "module": MODEL,
    "criterion": MODEL,
    "optimizer": MODEL,
    "lr": MODEL,
    "max_epochs": MODEL,
    "batch_size": MODEL,
    "pruner": MODEL,
    "compact_during_fit": MODEL,  # the fitted module_ is the compacted network
    "alpha": MODEL,
    "random_state": MODEL,
    "dataset": MODEL,
    "train_split": MODEL,
    "callbacks": MODEL,  # allow-listed callbacks only; their sinks and paths are runtime (below)
    "predict_nonlinearity": MODEL,
    "warm_start": MODEL,
    "class_weight": MODEL,
    "classes": MODEL,  # skorch's classes=: the labels, known before fit
    "normalize_y": MODEL,
    # the runtime: how and where the model runs
    "compile": RUNTIME,  # torch.compile: a compiler with options (cpp.march reaches gcc)
    "device": RUNTIME,
    "iterator_train": RUNTIME,  # data loaders: worker processes, pinned memory, collate functions
    "iterator_valid": RUNTIME,
    "verbose": RUNTIME,  # printing
    "use_caching": RUNTIME,
    "torch_load_kwargs": RUNTIME,  # options of torch.load (weights_only=False unpickles)
}

#: ``prefix__name`` parameters (skorch's ``module__hidden_layer_sizes``,
#: ``compile__options``, ``iterator_valid__num_workers``, ...), by prefix.
NET_PARAMETER_FAMILIES: dict[str, str] = {
    "module": MODEL,
    "criterion": MODEL,
    "optimizer": MODEL,
    "dataset": MODEL,
    "callbacks": MODEL,
    "compile": RUNTIME,
    "iterator_train": RUNTIME,
    "iterator_valid": RUNTIME,
}

#: Parameters of any stored object (scikit-learn estimators, skorch callbacks,
#: pruners, ``module__``/``callbacks__`` entries) that are runtime wherever they
#: appear: process pools, cache folders, output sinks, files, devices.
OBJECT_RUNTIME_PARAMETERS = frozenset(
    {
        "n_jobs",  # process or thread pools (ColumnTransformer, FeatureUnion, ...)
        "pre_dispatch",
        "memory",  # Pipeline's cache folder: joblib unpickles what it finds there
        "verbose",
        "sink",  # where a skorch callback writes (print by default)
        "dirname",
        "f_params",
        "f_optimizer",
        "f_criterion",
        "f_history",
        "f_pickle",
        "f_module",
        "fn_prefix",
        "logdir",
        "log_dir",
        "device",
        "num_workers",
        "pin_memory",
        "pin_memory_device",
        "persistent_workers",
        "prefetch_factor",
        "worker_init_fn",
        "multiprocessing_context",
        "timeout",
    }
)


def net_parameter_kind(name: str) -> str | None:
    """``"model"`` or ``"runtime"`` for a net parameter, ``None`` if it is not classified."""
    if name in NET_PARAMETERS:
        return NET_PARAMETERS[name]
    root, sep, rest = name.partition("__")
    if not sep or root not in NET_PARAMETER_FAMILIES:
        return None
    if rest.rsplit("__", 1)[-1] in OBJECT_RUNTIME_PARAMETERS:
        return RUNTIME
    return NET_PARAMETER_FAMILIES[root]


def is_object_runtime_parameter(name: str) -> bool:
    """Whether ``name``, a parameter of a stored object other than a net, is a runtime one."""
    return name in OBJECT_RUNTIME_PARAMETERS


_NO_DEFAULT = object()


def parameter_default(cls, name: str):
    """The ``__init__`` default of parameter ``name`` of ``cls`` (a sentinel if it has none)."""
    try:
        parameter = inspect.signature(cls).parameters.get(name)
    except (TypeError, ValueError):
        return _NO_DEFAULT
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return _NO_DEFAULT
    return parameter.default


def has_default(value) -> bool:
    return value is not _NO_DEFAULT


def same_value(value, default) -> bool:
    """Whether a parameter value is its default (by identity, or equal and of the same type)."""
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # e.g. arrays: not a default
        return False
