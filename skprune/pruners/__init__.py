"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .function import FunctionPruner, GradientStatistics
from .gradient import SNIPPruning, TaylorPruning
from .l1 import L1Pruning
from .lottery import LotteryTicket
from .magnitude import MagnitudePruning
from .random import RandomPruning

__all__ = [
    "BasePruner",
    "FunctionPruner",
    "GradientStatistics",
    "L1Pruning",
    "LotteryTicket",
    "MagnitudePruning",
    "PruningContext",
    "RandomPruning",
    "SNIPPruning",
    "TaylorPruning",
    "is_pruner",
]
