"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .magnitude import MagnitudePruning
from .structured import ChannelPruning, NeuronPruning, StructuredPruner

__all__ = [
    "BasePruner",
    "PruningContext",
    "is_pruner",
    "MagnitudePruning",
    "NeuronPruning",
    "ChannelPruning",
    "StructuredPruner",
]
