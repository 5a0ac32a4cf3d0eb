"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .combined import CombinedPruning
from .input import InputPruning
from .magnitude import MagnitudePruning
from .structured import ChannelPruning, NeuronPruning, StructuredPruner

__all__ = [
    "BasePruner",
    "ChannelPruning",
    "CombinedPruning",
    "InputPruning",
    "MagnitudePruning",
    "NeuronPruning",
    "PruningContext",
    "StructuredPruner",
    "is_pruner",
]
