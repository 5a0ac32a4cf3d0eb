"""Channel groups: output channels that must be removed together (residual adds, concatenations).

:func:`skprune.nn.trace_unit_groups` follows one layer's units along a
single chain to the next layer. Networks with shortcuts break that chain:
in a ResNet ``BasicBlock`` the output channels of the block's last
convolution are *added* to the block's input, so channel ``c`` of both
producers is one channel downstream and can only be removed from both at
once; in a DenseNet block the outputs of several layers are *concatenated*,
so channel ``c`` of a layer is channel ``offset + c`` of every later
reader. This module traces the network with :mod:`torch.fx` and works out,
like the dependency graphs of Torch-Pruning (Fang et al. 2023, *DepGraph*):

* a *channel space* per Linear/Conv2d output; a residual add merges the
  spaces of its two operands (union-find), a concatenation along channels
  lays spaces side by side (segments with offsets);
* for each group of merged spaces: the producers (whose output rows go),
  the BatchNorm layers reading them (and at which offset), the consumers
  (whose input columns go, at which offset and with which ``block`` of
  inputs per channel after a ``Flatten``);
* why a group cannot be removed: it reaches the network input or output,
  an operation the tracer does not know, a non-zero-preserving activation
  between a producer and an add (the removed channel must be exactly zero
  where spaces meet), a grouped convolution, a layer called twice.

:class:`~skprune.ChannelPruning` scores a group as one unit and masks it in
every member; :func:`~skprune.compact_module` removes it everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn

from ._graph import (
    ADD_FUNCTIONS,
    CHANNEL_DROPOUT,
    ELEMENTWISE_FUNCTIONS,
    ELEMENTWISE_METHODS,
    ELEMENTWISE_MODULES,
    NORM_TYPES,
    POOL_FUNCTIONS,
    POOL_MODULES,
    PRODUCER_TYPES,
    ZERO_PRESERVING_MODULES,
)
from ._graph import flatten_start as _flatten_start
from ._units import trace_unit_groups

__all__ = ["ChannelGroup", "trace_channel_groups"]

_ZERO_PRESERVING_MODULES = ZERO_PRESERVING_MODULES
_ADD = ADD_FUNCTIONS


@dataclass
class ChannelGroup:
    """Output channels of one or more layers that exist only together.

    Attributes
    ----------
    size : int
        Channels in the group.
    producers : list of str
        Linear/Conv2d layers whose output channels these are.
    norms : list of (str, int)
        BatchNorm layers reading the channels, with the channels' offset in their features.
    consumers : list of (str, int, int)
        Layers reading the channels: name, offset in their input channels
        (or features) and inputs per channel (``block``; ``H * W`` after Flatten).
    blocked : str or None
        Why the channels cannot be removed, or ``None``.
    """

    size: int
    producers: list[str] = field(default_factory=list)
    norms: list[tuple[str, int]] = field(default_factory=list)
    consumers: list[tuple[str, int, int]] = field(default_factory=list)
    blocked: str | None = None


class _Spaces:
    """Union-find over channel spaces, with per-space facts merged on union."""

    def __init__(self):
        self.parent: list[int] = []
        self.size: list[int] = []
        self.producer: list[str | None] = []
        self.blocked: dict[int, str] = {}
        self.nonzero: set[int] = set()  # spaces that went through an f(0) != 0 operation

    def new(self, size: int, producer: str | None) -> int:
        self.parent.append(len(self.parent))
        self.size.append(size)
        self.producer.append(producer)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
        return a

    def block(self, space: int, why: str) -> None:
        self.blocked.setdefault(space, why)


@dataclass
class _Value:
    """Channel layout of a traced value: segments of (space, length); ``flat``: after Flatten."""

    segments: list[tuple[int, int]]
    flat: bool = False
    conv: bool = False


def _is_spatial_mean(node: fx.Node) -> bool:
    """``x.mean(dim=(2, 3))`` / ``torch.mean(x, (2, 3))``: global average pooling to (N, C)."""
    if not ((node.op == "call_method" and node.target == "mean") or node.target is torch.mean):
        return False
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    return not keepdim and isinstance(dim, (tuple, list)) and sorted(d % 4 for d in dim) == [2, 3]


def trace_channel_groups(module: nn.Module) -> list[ChannelGroup]:
    """Trace ``module`` and return its channel groups (see the module docstring).

    Raises whatever :func:`torch.fx.symbolic_trace` raises for an untraceable module.
    """
    traced = fx.symbolic_trace(module)
    modules = dict(traced.named_modules())
    spaces = _Spaces()
    values: dict[fx.Node, _Value] = {}
    norms: dict[int, list[tuple[str, int]]] = {}
    consumers: dict[int, list[tuple[str, int, int]]] = {}
    calls: dict[str, int] = {}
    for node in traced.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1

    def block_value(value: _Value | None, why: str) -> None:
        if value is not None:
            for space, _ in value.segments:
                spaces.block(space, why)

    def opaque(why: str) -> _Value:
        space = spaces.new(0, None)
        spaces.block(space, why)
        return _Value([(space, 0)])

    for node in traced.graph.nodes:
        inputs = [a for a in node.all_input_nodes if a in values]
        first = values.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if node.op == "placeholder":
            values[node] = opaque("the channels are the network's input")
            continue
        if node.op == "output":
            for arg in node.all_input_nodes:
                block_value(values.get(arg), "the channels are network outputs")
            continue
        if node.op == "get_attr":
            values[node] = opaque("a constant")
            continue
        module_ = modules.get(node.target) if node.op == "call_module" else None
        only_first = first is not None and len(inputs) == 1
        if isinstance(module_, PRODUCER_TYPES) and only_first and len(node.args) == 1:
            name = node.target
            n_in = module_.in_features if isinstance(module_, nn.Linear) else module_.in_channels
            total = sum(length for _, length in first.segments)
            why = None
            if calls[name] > 1:
                why = f"layer {name!r} is called more than once in forward"
            elif isinstance(module_, nn.Conv2d) and (module_.groups != 1 or first.flat or not first.conv):
                why = f"layer {name!r} is a grouped convolution or reads no feature map"
            elif total <= 0 or n_in % total or (isinstance(module_, nn.Conv2d) and n_in != total):
                why = f"layer {name!r} does not read whole channels"
            elif isinstance(module_, nn.Linear) and first.conv and not first.flat:
                why = f"layer {name!r} reads an unflattened feature map"
            if why is None:
                block = n_in // total
                offset = 0
                for space, length in first.segments:
                    consumers.setdefault(space, []).append((name, offset, block))
                    offset += length
            else:
                block_value(first, why)
            n_out = module_.out_features if isinstance(module_, nn.Linear) else module_.out_channels
            space = spaces.new(n_out, name)
            if calls[name] > 1:
                spaces.block(space, f"layer {name!r} is called more than once in forward")
            values[node] = _Value([(space, n_out)], conv=isinstance(module_, nn.Conv2d))
            continue
        if isinstance(module_, NORM_TYPES) and only_first and not first.flat:
            if calls[node.target] > 1 or module_.num_features != sum(n for _, n in first.segments):
                block_value(first, f"BatchNorm {node.target!r} does not normalize these channels")
            else:
                offset = 0
                for space, length in first.segments:
                    norms.setdefault(space, []).append((node.target, offset))
                    offset += length
            values[node] = first
            continue
        elementwise = (
            isinstance(module_, ELEMENTWISE_MODULES + CHANNEL_DROPOUT + (nn.PReLU,))
            or (node.op == "call_function" and node.target in ELEMENTWISE_FUNCTIONS)
            or (node.op == "call_method" and node.target in ELEMENTWISE_METHODS)
        )
        if only_first and elementwise:
            if isinstance(module_, nn.PReLU) and module_.num_parameters != 1:
                block_value(first, f"PReLU {node.target!r} has a parameter per channel")
            zero_ok = isinstance(module_, _ZERO_PRESERVING_MODULES) or (
                module_ is None
                and node.target not in (torch.sigmoid, "sigmoid")
                and getattr(node.target, "__name__", "") not in ("sigmoid", "softplus", "hardsigmoid")
            )
            if not zero_ok:
                for space, _ in first.segments:
                    spaces.nonzero.add(space)
            values[node] = first
            continue
        pooled = isinstance(module_, POOL_MODULES) or (
            node.op == "call_function" and node.target in POOL_FUNCTIONS
        )
        if only_first and pooled and first.conv and not first.flat:
            values[node] = first
            continue
        if only_first and first.conv and not first.flat and _is_spatial_mean(node):
            values[node] = _Value(first.segments, flat=True, conv=True)  # global average pooling
            continue
        if only_first and _flatten_start(node, modules) == 1:
            values[node] = _Value(first.segments, flat=first.conv or first.flat, conv=first.conv)
            continue
        if node.op == "call_function" and node.target in _ADD and len(node.args) == 2 and not node.kwargs:
            a, b = (values.get(arg) if isinstance(arg, fx.Node) else None for arg in node.args)
            if a is None or b is None:
                block_value(a or b, "the channels are added to a constant")
                values[node] = opaque("an add with a constant")
                continue
            if [n for _, n in a.segments] != [n for _, n in b.segments] or a.flat != b.flat:
                block_value(a, "an add of differently laid out channels")
                block_value(b, "an add of differently laid out channels")
                values[node] = opaque("an add of differently laid out channels")
                continue
            for (sa, _), (sb, _) in zip(a.segments, b.segments):
                merged = spaces.union(sa, sb)
                for other in (sa, sb):
                    if other in spaces.nonzero or spaces.find(other) in spaces.nonzero:
                        spaces.nonzero.add(merged)
            values[node] = a
            continue
        if node.op == "call_function" and node.target is torch.cat:
            tensors = node.args[0] if node.args else node.kwargs.get("tensors")
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            parts = [values.get(t) for t in tensors] if isinstance(tensors, (list, tuple)) else [None]
            if dim in (1, -3) and parts and all(p is not None and not p.flat for p in parts):
                segments = [seg for p in parts for seg in p.segments]
                values[node] = _Value(segments, conv=all(p.conv for p in parts))
                continue
            for p in parts:
                block_value(p, "a concatenation along another dimension than channels")
            values[node] = opaque("a concatenation")
            continue
        for arg in inputs:
            block_value(values[arg], f"operation {node.target!r} at node {node.name!r} is not followed")
        values[node] = opaque(f"the result of {node.name!r}")

    groups: dict[int, ChannelGroup] = {}
    for space, producer in enumerate(spaces.producer):
        root = spaces.find(space)
        if producer is None:
            continue
        group = groups.setdefault(root, ChannelGroup(size=spaces.size[space]))
        group.producers.append(producer)
        group.norms.extend(norms.get(space, []))
        group.consumers.extend(consumers.get(space, []))
        if space in spaces.blocked:
            group.blocked = group.blocked or spaces.blocked[space]
    for space, why in spaces.blocked.items():
        root = spaces.find(space)
        if root in groups:
            groups[root].blocked = groups[root].blocked or why
    for space in spaces.nonzero:
        root = spaces.find(space)
        if root in groups:
            groups[root].blocked = groups[root].blocked or (
                "an activation with f(0) != 0 lies on the channels' path, so a removed channel is not zero"
            )
    # de-duplicate (a space's consumers may be recorded under several merged spaces)
    out = []
    for group in groups.values():
        group.norms = list(dict.fromkeys(group.norms))
        group.consumers = list(dict.fromkeys(group.consumers))
        out.append(group)
    return out


def shared_channel_groups(module: nn.Module, layer_names) -> list[ChannelGroup]:
    """Removable channel groups that tie one of ``layer_names`` to other layers or offsets.

    These are the groups a single-chain view (:func:`trace_unit_groups`)
    cannot handle: several producers meeting at an add, or channels that
    reach their readers through a concatenation. Empty if the module cannot
    be traced.
    """
    try:
        chains = trace_unit_groups(module)
        groups = trace_channel_groups(module)
    except Exception:  # untraceable: units are still removed layer by layer
        return []
    names = set(layer_names)
    out = []
    for group in groups:
        if group.blocked is not None or not names & set(group.producers):
            continue
        if len(group.producers) == 1 and chains.get(group.producers[0]) is not None:
            if chains[group.producers[0]].blocked is None:
                continue  # a plain chain
        out.append(group)
    return out


@torch.no_grad()
def mask_channel_group(group: ChannelGroup, units: torch.Tensor, params: dict, keep_of) -> None:
    """Mark ``units`` of ``group`` removed in every member: producers, BatchNorms, consumers' inputs.

    ``keep_of(param_name)`` returns the (mutable) keep mask of a parameter.
    """

    def name_of(layer: str, attr: str) -> str:
        return f"{layer}.{attr}" if layer else attr

    for producer in group.producers:
        for attr in ("weight", "bias"):
            if name_of(producer, attr) in params:
                keep_of(name_of(producer, attr))[units] = False
    index = torch.nonzero(units).flatten()
    for norm, offset in group.norms:
        for attr in ("weight", "bias"):
            if name_of(norm, attr) in params:
                keep_of(name_of(norm, attr))[index + offset] = False
    for consumer, offset, block in group.consumers:
        columns = ((index + offset)[:, None] * block + torch.arange(block, device=index.device)).flatten()
        keep_of(name_of(consumer, "weight"))[:, columns] = False
