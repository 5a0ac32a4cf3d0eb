"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .callbacks import TrainingLog
from .compaction import CompactionError, compact_module
from .cv import PrunedNetCV
from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .export import compression_report, quantize_int8, to_sparse
from .masks import MaskStore
from .modules import MLP, ConvNet
from .persistence import PersistenceError, load, register_serializable, save
from .plotting import plot_history, plot_layer_sparsity, plot_sparsity_path
from .pruners import (
    BasePruner,
    ChannelPruning,
    CombinedPruning,
    FunctionPruner,
    GradientStatistics,
    InputPruning,
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    NeuronPruning,
    PruningContext,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
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
    "FunctionPruner",
    "GradientStatistics",
    "InputPruning",
    "Iterative",
    "L1Pruning",
    "LotteryTicket",
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
    "RandomPruning",
    "SNIPPruning",
    "TaylorPruning",
    "TrainingDivergedError",
    "TrainingLog",
    "compact_module",
    "compression_report",
    "load",
    "quantize_int8",
    "register_serializable",
    "save",
    "one_standard_error_index",
    "plot_history",
    "plot_layer_sparsity",
    "plot_sparsity_path",
    "sparsity_scorer",
    "to_sparse",
]
