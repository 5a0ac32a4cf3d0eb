"""Pruning strategies: policy objects that decide masks."""

from .base import BasePruner, PruningContext, is_pruner
from .magnitude import MagnitudePruning

__all__ = ["BasePruner", "PruningContext", "is_pruner", "MagnitudePruning"]
