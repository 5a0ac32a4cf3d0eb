"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .masks import MaskStore
from .modules import MLP
from .pruners import BasePruner, CombinedPruning, InputPruning, MagnitudePruning, PruningContext
from .schedules import BaseSchedule, Iterative, OneShot, Polynomial

__version__ = "0.1.0"

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "CombinedPruning",
    "InputPruning",
    "Iterative",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "OneShot",
    "Polynomial",
    "PrunedNet",
    "PrunedNetClassifier",
    "PrunedNetRegressor",
    "PruningContext",
    "TrainingDivergedError",
]
