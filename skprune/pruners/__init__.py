"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .combined import CombinedPruning
from .input import InputPruning
from .magnitude import MagnitudePruning

__all__ = ["BasePruner", "PruningContext", "is_pruner", "CombinedPruning", "InputPruning", "MagnitudePruning"]
