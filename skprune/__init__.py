"""skprune: neural-network pruning as a scikit-learn hyperparameter."""

from .estimator import PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from .exceptions import TrainingDivergedError
from .masks import MaskStore
from .modules import MLP
from .pruners import (
    BasePruner,
    FunctionPruner,
    GradientStatistics,
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    PruningContext,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)
from .schedules import BaseSchedule, Iterative, OneShot, Polynomial

__version__ = "0.1.0"

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "FunctionPruner",
    "GradientStatistics",
    "Iterative",
    "L1Pruning",
    "LotteryTicket",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "OneShot",
    "Polynomial",
    "PrunedNet",
    "PrunedNetClassifier",
    "PrunedNetRegressor",
    "PruningContext",
    "RandomPruning",
    "SNIPPruning",
    "TaylorPruning",
    "TrainingDivergedError",
]
