"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .compaction import CompactionError, compact_module
from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .export import compression_report, quantize_int8, to_sparse
from .masks import MaskStore
from .modules import MLP
from .persistence import PersistenceError, load, register_serializable, save
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

__version__ = "0.1.0"

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "ChannelPruning",
    "CombinedPruning",
    "CompactionError",
    "InputPruning",
    "Iterative",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "NeuronPruning",
    "PersistenceError",
    "OneShot",
    "Polynomial",
    "PrunedNet",
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
    "to_sparse",
]
