"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .combined import CombinedPruning
from .function import FunctionPruner, GradientStatistics
from .gradient import SNIPPruning, TaylorPruning
from .input import InputPruning
from .l1 import L1Pruning
from .lottery import LotteryTicket
from .magnitude import MagnitudePruning
from .random import RandomPruning
from .structured import ChannelPruning, NeuronPruning, StructuredPruner

__all__ = [
    "BasePruner",
    "ChannelPruning",
    "CombinedPruning",
    "FunctionPruner",
    "GradientStatistics",
    "InputPruning",
    "L1Pruning",
    "LotteryTicket",
    "MagnitudePruning",
    "NeuronPruning",
    "PruningContext",
    "RandomPruning",
    "SNIPPruning",
    "StructuredPruner",
    "TaylorPruning",
    "is_pruner",
]
