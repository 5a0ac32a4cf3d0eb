"""Networks: the default MLP and ConvNet, and how skprune reads any network's layers.

``iter_prunable_weights`` names the layers whose weights pruning may touch;
``trace_unit_groups`` is the unit graph that structured pruning and
compaction share (which layers read each layer's output units);
``trace_residual_blocks`` finds the residual blocks depth pruning removes.
"""

from ._dropout import Dropout
from ._layers import iter_prunable_weights, refresh_sizes
from ._networks import MLP, ConvNet, ResidualBlock
from ._residual import ResidualBlockInfo, trace_residual_blocks
from ._summary import count_parameters, layer_table
from ._units import UnitGroup, removed_units, trace_unit_groups

__all__ = [
    "MLP",
    "ConvNet",
    "Dropout",
    "ResidualBlock",
    "ResidualBlockInfo",
    "UnitGroup",
    "count_parameters",
    "iter_prunable_weights",
    "layer_table",
    "refresh_sizes",
    "removed_units",
    "trace_residual_blocks",
    "trace_unit_groups",
]

from .._serializable import register_builtin  # noqa: E402  (load may rebuild these from a file)

register_builtin(*(obj for obj in map(globals().get, __all__) if isinstance(obj, type)))
