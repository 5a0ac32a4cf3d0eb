"""Pruning strategies (policy objects that decide masks) and the schedules that time them."""

from ._base import BasePruner
from ._blocks import BlockPruning
from ._combined import CombinedPruning
from ._function import FunctionPruner, GradientStatistics
from ._gradient import SNIPPruning, TaylorPruning
from ._input import InputPruning
from ._l1 import L1Pruning
from ._lottery import LotteryTicket
from ._magnitude import MagnitudePruning
from ._protocol import ActivationRequest, PrunerProtocol, PruningContext, is_pruner
from ._random import RandomPruning
from ._schedules import BaseSchedule, Iterative, OneShot, Polynomial
from ._structured import ChannelPruning, NeuronPruning, StructuredPruner

__all__ = [
    "ActivationRequest",
    "BasePruner",
    "BaseSchedule",
    "BlockPruning",
    "Iterative",
    "OneShot",
    "Polynomial",
    "ChannelPruning",
    "CombinedPruning",
    "FunctionPruner",
    "GradientStatistics",
    "InputPruning",
    "L1Pruning",
    "LotteryTicket",
    "MagnitudePruning",
    "NeuronPruning",
    "PrunerProtocol",
    "PruningContext",
    "RandomPruning",
    "SNIPPruning",
    "StructuredPruner",
    "TaylorPruning",
    "is_pruner",
]

from .._serializable import register_builtin  # noqa: E402  (load may rebuild these from a file)

register_builtin(*(obj for obj in map(globals().get, __all__) if isinstance(obj, type)))
