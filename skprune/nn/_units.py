"""The unit graph: how the output units of each layer flow to the next.

Structured pruning and compaction both need to know, for every Linear/Conv2d
layer, which later layers read its output units (and through which
BatchNorm, activation, pooling or flatten operations). This module traces a
network with :mod:`torch.fx` and answers that once, for both: the pruners
use it to zero whole units consistently, compaction to remove them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn

from ..exceptions import CompactionError
from ._graph import (
    CHANNEL_DROPOUT,
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    ELEMENTWISE_MODULES,
    NORM_TYPES,
    POOL_FUNCTIONS,
    POOL_MODULES,
    PRODUCER_TYPES,
)
from ._graph import describe_node as _describe
from ._graph import flatten_start as _flatten_start

__all__ = ["UnitGroup", "removed_units", "trace_unit_groups"]


@dataclass
class UnitGroup:
    """How the output units of one Linear/Conv2d layer flow to the next layer.

    Parameters
    ----------
    producer : str
        Name of the layer whose output units are considered.
    norms : list of str
        BatchNorm layers between producer and consumer (their features are
        the producer's units).
    consumer : str or None
        Layer reading the units (``None`` if none can be followed).
    block : int
        Inputs of ``consumer`` per unit: 1, or ``H * W`` for a Conv2d
        followed by ``Flatten`` and a Linear layer.
    ops : list of torch.fx.Node
        Operations between producer and consumer, in order.
    pooled : bool
        Whether a pooling operation lies on the path.
    blocked : str or None
        Why the units cannot be removed, or ``None``.
    is_output : bool
        Whether the units are network outputs (never removed, whatever their weights).

    Examples
    --------
    >>> from torch import nn
    >>> from skprune.nn import trace_unit_groups
    >>> group = trace_unit_groups(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))["0"]
    >>> group.producer, group.consumer, group.blocked
    ('0', '2', None)
    """

    producer: str
    norms: list[str] = field(default_factory=list)
    consumer: str | None = None
    block: int = 1
    ops: list = field(default_factory=list)
    pooled: bool = False
    blocked: str | None = None
    is_output: bool = False


def _only_input_is(node: fx.Node, source: fx.Node) -> bool:
    """Whether ``source`` is the first argument and no other argument is a graph value."""
    if not node.args or node.args[0] is not source:
        return False
    others = list(node.args[1:]) + list(node.kwargs.values())
    flat = []
    for value in others:
        fx.node.map_arg(value, flat.append)
    return not flat


def _follow(start: fx.Node, modules: dict[str, nn.Module], calls: dict[str, int]) -> UnitGroup:
    producer = modules[start.target]
    group = UnitGroup(producer=start.target)
    n_units = producer.out_features if isinstance(producer, nn.Linear) else producer.out_channels
    is_conv = isinstance(producer, nn.Conv2d)
    if calls[start.target] > 1:
        group.blocked = f"layer {start.target!r} is called more than once in forward"
        return group
    flattened = False
    current = start
    while True:
        users = list(current.users)
        if len(users) != 1:
            used_by = ", ".join(_describe(u, modules) for u in users) or "nothing"
            group.blocked = (
                f"the output of {_describe(current, modules)} is used by {len(users)} operations "
                f"({used_by}); compaction follows a single chain to the next layer"
            )
            return group
        node = users[0]
        if node.op == "output":
            group.blocked = f"the units of layer {start.target!r} are network outputs"
            group.is_output = True
            return group
        if node.op == "call_module" and not _only_input_is(node, current):
            group.blocked = f"{_describe(node, modules)} takes more than one input"
            return group
        if node.op in ("call_function", "call_method") and not _only_input_is(node, current):
            group.blocked = f"{_describe(node, modules)} combines the units with another value"
            return group
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, PRODUCER_TYPES):
            if calls[node.target] > 1:
                group.blocked = f"layer {node.target!r} is called more than once in forward"
                return group
            if isinstance(module, nn.Conv2d):
                if not is_conv or flattened:
                    group.blocked = f"{_describe(node, modules)} cannot read flattened or Linear units"
                    return group
                if module.groups != 1:
                    group.blocked = f"{_describe(node, modules)} is a grouped convolution (groups > 1)"
                    return group
                if module.in_channels != n_units:
                    group.blocked = f"{_describe(node, modules)} does not read {n_units} channels"
                    return group
            else:
                if is_conv and not flattened:
                    group.blocked = f"{_describe(node, modules)} reads an unflattened feature map"
                    return group
                if module.in_features % n_units:
                    group.blocked = (
                        f"{_describe(node, modules)} has {module.in_features} inputs, not a multiple "
                        f"of the {n_units} units of {start.target!r}"
                    )
                    return group
                group.block = module.in_features // n_units
            group.consumer = node.target
            return group
        if isinstance(module, NORM_TYPES) and not flattened:
            if module.num_features != n_units or calls[node.target] > 1:
                group.blocked = f"{_describe(node, modules)} does not normalize the {n_units} units"
                return group
            group.norms.append(node.target)
        elif isinstance(module, ELEMENTWISE_MODULES) or (isinstance(module, CHANNEL_DROPOUT) and is_conv):
            pass
        elif isinstance(module, nn.PReLU) and module.num_parameters == 1:
            pass
        elif isinstance(module, POOL_MODULES) and is_conv and not flattened:
            group.pooled = True
        elif node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS:
            pass
        elif node.op == "call_function" and node.target in POOL_FUNCTIONS and is_conv and not flattened:
            group.pooled = True
        elif node.op == "call_method" and node.target in ELEMENTWISE_METHODS:
            pass
        elif _flatten_start(node, modules) == 1:
            flattened = flattened or is_conv
        else:
            hint = ""
            if node.op == "call_method" and node.target in ("view", "reshape"):
                hint = "; use nn.Flatten() or torch.flatten(x, 1) instead of a reshape with fixed sizes"
            group.blocked = f"{_describe(node, modules)} is not supported between layers{hint}"
            return group
        group.ops.append(node)
        current = node


def trace_unit_groups(module: nn.Module) -> dict[str, UnitGroup]:
    """Trace ``module`` with torch.fx and follow each Linear/Conv2d layer's units.

    Parameters
    ----------
    module : torch.nn.Module
        The network.

    Returns
    -------
    dict of str to UnitGroup
        One entry per Linear/Conv2d layer called in ``forward``, by layer name.

    Raises
    ------
    CompactionError
        If torch.fx cannot trace the module.

    Examples
    --------
    >>> from torch import nn
    >>> from skprune.nn import trace_unit_groups
    >>> module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> groups = trace_unit_groups(module)
    >>> groups["0"].consumer, groups["2"].is_output
    ('2', True)
    """
    try:
        graph_module = fx.symbolic_trace(module)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, ...)
        raise CompactionError(
            f"Cannot follow the data flow of {type(module).__name__}: torch.fx could not trace its "
            f"forward ({type(exc).__name__}: {exc}). Compaction needs a forward without "
            "data-dependent control flow, built from Linear, Conv2d, BatchNorm, activations, "
            "pooling, Flatten and Dropout."
        ) from exc
    modules = dict(graph_module.named_modules())
    calls: dict[str, int] = {}
    for node in graph_module.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    groups = {}
    for node in graph_module.graph.nodes:
        if node.op == "call_module" and isinstance(modules[node.target], PRODUCER_TYPES):
            if node.target not in groups:
                groups[node.target] = _follow(node, modules, calls)
    return groups


@torch.no_grad()
def removed_units(layer: nn.Module) -> torch.Tensor:
    """Boolean mask of the output units of ``layer`` whose whole weight row is zero.

    Parameters
    ----------
    layer : torch.nn.Linear or torch.nn.Conv2d
        The layer.

    Returns
    -------
    torch.Tensor
        Boolean, one entry per output unit (row of the weight).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skprune.nn import removed_units
    >>> layer = nn.Linear(3, 4)
    >>> with torch.no_grad():
    ...     layer.weight[1] = 0.0
    >>> removed_units(layer).tolist()
    [False, True, False, False]
    """
    weight = layer.weight.detach()
    return ~weight.reshape(weight.shape[0], -1).ne(0).any(dim=1)
