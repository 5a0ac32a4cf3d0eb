"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .cv import PrunedNetCV
from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .masks import MaskStore
from .modules import MLP
from .plotting import plot_layer_sparsity, plot_sparsity_path
from .pruners import BasePruner, MagnitudePruning, PruningContext
from .schedules import BaseSchedule, Iterative, OneShot, Polynomial
from .scoring import sparsity_scorer
from .selection import OneStandardErrorRule, one_standard_error_index

__version__ = "0.1.0"

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "Iterative",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "OneShot",
    "OneStandardErrorRule",
    "Polynomial",
    "PrunedNet",
    "PrunedNetCV",
    "PrunedNetClassifier",
    "PrunedNetRegressor",
    "PruningContext",
    "TrainingDivergedError",
    "one_standard_error_index",
    "plot_layer_sparsity",
    "plot_sparsity_path",
    "sparsity_scorer",
]
