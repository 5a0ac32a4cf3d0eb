"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .compaction import CompactionError, compact_module
from .cv import PrunedNetCV
from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .export import compression_report, quantize_int8, to_sparse
from .masks import MaskStore
from .modules import MLP, ConvNet
from .persistence import PersistenceError, load, register_serializable, save
from .plotting import plot_layer_sparsity, plot_sparsity_path
from .pruners import (
    BasePruner,
    ChannelPruning,
    CombinedPruning,
    InputPruning,
    MagnitudePruning,
    NeuronPruning,
    PruningContext,
)
from .schedules import BaseSchedule, Iterative, OneShot, Polynomial
from .scoring import sparsity_scorer
from .selection import OneStandardErrorRule, one_standard_error_index

__version__ = "0.1.0"

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "ChannelPruning",
    "CombinedPruning",
    "CompactionError",
    "ConvNet",
    "InputPruning",
    "Iterative",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "NeuronPruning",
    "PersistenceError",
    "OneShot",
    "OneStandardErrorRule",
    "Polynomial",
    "PrunedNet",
    "PrunedNetCV",
    "PrunedNetClassifier",
    "PrunedNetRegressor",
    "PruningContext",
    "TrainingDivergedError",
    "compact_module",
    "compression_report",
    "load",
    "quantize_int8",
    "register_serializable",
    "save",
    "one_standard_error_index",
    "plot_layer_sparsity",
    "plot_sparsity_path",
    "sparsity_scorer",
    "to_sparse",
]
