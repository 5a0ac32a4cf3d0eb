"""skprune: neural-network pruning as a scikit-learn hyperparameter.

The public API is re-exported here; the subpackages show the layers:
:mod:`skprune.nn` (networks and the unit graph), :mod:`skprune.pruners`
(strategies and schedules), :mod:`skprune.model_selection` (the CV path,
selection rules, scorers), :mod:`skprune.inspection` (reports and plots) and
:mod:`skprune.deploy` (compaction, exports, persistence).

The names are imported from their modules on first use (PEP 562): ``import
skprune`` alone is cheap, so ``skprune --help`` and ``--version`` load neither
torch nor scikit-learn nor skorch. The first public name used imports them all.
"""

from __future__ import annotations

import importlib

from ._version import __version__ as __version__  # re-exported

#: public name -> the module that defines it (imported on first use)
_EXPORTS = {
    "PrunedNetClassifier": "._classifier",
    "PrunedNet": "._estimator",
    "PrunedNetRegressor": "._regressor",
    "TrainingLog": "._training._log",
    "MaskStore": ".pruners._masks",
    "OnnxPredictor": ".deploy",
    "compact_module": ".deploy",
    "compression_report": ".deploy",
    "get_untrusted_types": ".deploy",
    "load": ".deploy",
    "quantize_int8": ".deploy",
    "register_serializable": ".deploy",
    "save": ".deploy",
    "to_onnx": ".deploy",
    "to_sparse": ".deploy",
    "CompactionError": ".exceptions",
    "ConstantModelWarning": ".exceptions",
    "PersistenceError": ".exceptions",
    "TrainingDivergedError": ".exceptions",
    "plot_history": ".inspection",
    "plot_layer_sparsity": ".inspection",
    "OneStandardErrorRule": ".model_selection",
    "PrunedNetCV": ".model_selection",
    "one_standard_error_index": ".model_selection",
    "plot_sparsity_path": ".model_selection",
    "sparsity_scorer": ".model_selection",
    "MLP": ".nn",
    "ConvNet": ".nn",
    "BasePruner": ".pruners",
    "BaseSchedule": ".pruners",
    "BlockPruning": ".pruners",
    "ChannelPruning": ".pruners",
    "CombinedPruning": ".pruners",
    "FunctionPruner": ".pruners",
    "GradientStatistics": ".pruners",
    "InputPruning": ".pruners",
    "Iterative": ".pruners",
    "L1Pruning": ".pruners",
    "LotteryTicket": ".pruners",
    "MagnitudePruning": ".pruners",
    "NeuronPruning": ".pruners",
    "OneShot": ".pruners",
    "Polynomial": ".pruners",
    "PruningContext": ".pruners",
    "RandomPruning": ".pruners",
    "SNIPPruning": ".pruners",
    "TaylorPruning": ".pruners",
}

#: subpackages reachable as attributes (``skprune.nn``), as after an eager import
_SUBPACKAGES = ("deploy", "exceptions", "inspection", "model_selection", "nn", "pruners")


def _import_all() -> None:
    """Import every public name into this module's namespace (once)."""
    namespace = globals()
    for name, module in _EXPORTS.items():
        if name not in namespace:
            namespace[name] = getattr(importlib.import_module(module, __name__), name)


def __getattr__(name: str):
    if name in _EXPORTS:
        _import_all()
        return globals()[name]
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))


__all__ = sorted([*_EXPORTS, "__version__"])
