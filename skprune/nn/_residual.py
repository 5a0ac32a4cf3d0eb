"""Residual blocks ``y = x + f(x)`` of any network, found with torch.fx.

Depth pruning (:class:`~skprune.BlockPruning`) removes whole residual
blocks and compaction deletes their modules; both need to know, for every
residual add of the network, which operations form the *branch* ``f`` and
which the *shortcut*. :func:`trace_residual_blocks` answers that once.

A residual add ``a + b`` is a block when both operands come from one value
``x`` (the block input) through two self-contained paths: every operation
on a path reads only ``x`` or the path, and its result is used only on the
path (or by the add). The path without parametric layers (``x`` itself), or
with fewer of them (a projection ``proj(x)``: a 1x1 convolution and a
BatchNorm in a downsampling ResNet block), is the shortcut; the other is
the branch. Two paths with as many parametric layers are no residual block.

A branch is removable when setting *all* of its parameters to zero makes
its output exactly zero for every input: it ends in a Linear/Conv layer or
an affine normalization, followed only by operations that keep zero at
zero (ReLU, Dropout, pooling, ...). Removing the block then leaves
``y = x`` (or ``y = proj(x)`` with a projection shortcut: the block still
changes the shape, as the downsampling it was built for).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from ._graph import is_add, is_zero_preserving
from ._layers import PRUNABLE_TYPES

__all__ = ["ResidualBlockInfo", "branch_is_zero", "trace_residual_blocks"]

_AFFINE_NORMS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
_MULTIPLY = (operator.mul, torch.mul)


@dataclass
class ResidualBlockInfo:
    """One residual block ``y = shortcut(x) + f(x)`` of a traced network.

    Parameters
    ----------
    name : str
        The module that holds the block (``"layer1.0"`` in a torchvision
        ResNet), else the common prefix of its branch's modules, else the
        name of the add node.
    branch : list of str
        Names of the modules called in the branch ``f``, in call order.
    shortcut : list of str
        Modules called on the shortcut (empty for an identity shortcut).
    parameters : list of str
        Names of every parameter of the branch's modules.
    weights : list of str
        Names of the branch's Linear/Conv weights.
    owner : str or None
        The submodule whose ``forward`` is exactly this block (its input is
        the block input, its only result is computed from the add), so
        compaction can replace it; ``None`` when the add happens in a
        ``forward`` that does more (or in the network's own forward).
    add : str
        Name of the add node in the traced graph.
    nodes : list of str
        Names of the branch's nodes in the traced graph, in order (the
        last one is the branch output, the add's operand).
    shortcut_value : str
        Name of the add's other operand in the traced graph.

    Examples
    --------
    >>> from skprune import MLP
    >>> from skprune.nn import trace_residual_blocks
    >>> block = trace_residual_blocks(MLP(n_features_in=4, n_outputs=2, n_blocks=1))[0]
    >>> block.name, block.projection, block.weights
    ('layers.blocks.0', False, ['layers.blocks.0.branch.fc_a.weight', 'layers.blocks.0.branch.fc_b.weight'])
    """

    name: str
    branch: list[str]
    shortcut: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    weights: list[str] = field(default_factory=list)
    owner: str | None = None
    add: str = ""
    nodes: list[str] = field(default_factory=list)
    shortcut_value: str = ""

    @property
    def projection(self) -> bool:
        """Whether the shortcut has layers of its own (``y = proj(x) + f(x)``)."""
        return bool(self.shortcut)


def _side(start: fx.Node, operand: fx.Node, ancestors: dict) -> set[fx.Node]:
    """Nodes strictly after ``start`` that ``operand`` depends on (itself included)."""
    if operand is start:
        return set()
    return (ancestors[operand] | {operand}) - ancestors[start] - {start}


def _self_contained(side: set[fx.Node], start: fx.Node, operand: fx.Node, add: fx.Node) -> bool:
    for node in side:
        if node.op not in ("call_module", "call_function", "call_method"):
            return False
        if any(arg not in side and arg is not start for arg in node.all_input_nodes):
            return False
        allowed = {add} if node is operand else side
        if any(user not in allowed for user in node.users):
            return False
    return True


def _zero_nodes(nodes, modules: dict, layer_is_zero) -> set[fx.Node]:
    """The nodes of ``nodes`` (in graph order) whose output is exactly zero.

    ``layer_is_zero(layer, inputs_zero)`` decides for a prunable layer or an
    affine norm; adds, products and zero-preserving operations follow from
    their inputs.
    """
    zero: set[fx.Node] = set()
    for node in nodes:
        inputs = node.all_input_nodes
        layer = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(layer, (*PRUNABLE_TYPES, *_AFFINE_NORMS)):
            ok = layer_is_zero(layer, bool(inputs) and all(arg in zero for arg in inputs))
        elif is_add(node):
            ok = all(arg in zero for arg in inputs)
        elif node.op == "call_function" and node.target in _MULTIPLY:
            ok = any(arg in zero for arg in inputs)
        else:
            ok = bool(inputs) and is_zero_preserving(node, modules) and all(arg in zero for arg in inputs)
        if ok:
            zero.add(node)
    return zero


def _zero_once_masked(layer, inputs_zero: bool) -> bool:
    """A prunable layer is zero with weight and bias masked; a norm needs an affine weight and bias."""
    if isinstance(layer, PRUNABLE_TYPES):
        return True
    return getattr(layer, "weight", None) is not None and getattr(layer, "bias", None) is not None


def _zero_now(layer, inputs_zero: bool) -> bool:
    """Whether a prunable layer or a norm outputs exactly zero with its current parameters."""
    if isinstance(layer, PRUNABLE_TYPES):
        return (_all_zero(layer.weight) or inputs_zero) and _all_zero(getattr(layer, "bias", None))
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    return weight is not None and bias is not None and _all_zero(weight) and _all_zero(bias)


def _zero_when_masked(side: set[fx.Node], operand: fx.Node, order: dict, modules: dict) -> bool:
    """Whether the branch output is exactly zero once every parameter of its modules is zero."""
    return operand in _zero_nodes(sorted(side, key=order.__getitem__), modules, _zero_once_masked)


def _n_parametric(side: set[fx.Node], modules: dict) -> int:
    return sum(
        1
        for node in side
        if node.op == "call_module" and any(True for _ in modules[node.target].parameters(recurse=True))
    )


def _owner(add: fx.Node, start: fx.Node, nodes: set[fx.Node], graph: fx.Graph) -> str | None:
    """The deepest submodule whose forward is exactly this block (input ``start``, one result)."""
    stacks = [list((node.meta.get("nn_module_stack") or {}).keys()) for node in nodes | {add}]
    if not stacks or not all(stacks):
        return None
    common = [key for key in stacks[0] if all(key in stack for stack in stacks[1:])]
    for owner in reversed(common):
        if not owner:
            continue
        inside = {n for n in graph.nodes if owner in (n.meta.get("nn_module_stack") or {})}
        if start in inside:
            continue
        reads_outside = {a for n in inside for a in n.all_input_nodes if a not in inside}
        escaping = [n for n in inside if any(u not in inside for u in n.users)]
        if reads_outside == {start} and len(escaping) == 1:
            return owner
        return None
    return None


def _has_state(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _common_prefix(names: list[str]) -> str:
    parts = [name.split(".") for name in names]
    prefix = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        prefix.append(items[0])
    if prefix and len(prefix) == len(parts[0]) and len(parts) == 1:
        prefix = prefix[:-1]  # a single-module branch is named after its parent
    return ".".join(prefix)


def trace_residual_blocks(
    module: nn.Module, *, return_skipped: bool = False
) -> list[ResidualBlockInfo] | tuple[list[ResidualBlockInfo], dict[str, str]]:
    """Find the removable residual blocks ``y = shortcut(x) + f(x)`` of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The network; traced with :func:`torch.fx.symbolic_trace`.
    return_skipped : bool, default=False
        Also return, for every add that is not a removable block, why.

    Returns
    -------
    blocks : list of ResidualBlockInfo
        In the order of their adds in ``forward``.
    skipped : dict of str to str
        Only with ``return_skipped``: add node name -> reason.

    Raises
    ------
    Exception
        Whatever :func:`torch.fx.symbolic_trace` raises for a forward it
        cannot trace (data-dependent control flow, ...).

    Examples
    --------
    >>> from skprune import MLP
    >>> from skprune.nn import trace_residual_blocks
    >>> mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(8,), n_blocks=2)
    >>> [block.name for block in trace_residual_blocks(mlp)]
    ['layers.blocks.0', 'layers.blocks.1']
    """
    traced = fx.symbolic_trace(module)
    graph = traced.graph
    modules = dict(traced.named_modules())
    order = {node: i for i, node in enumerate(graph.nodes)}
    ancestors: dict[fx.Node, set[fx.Node]] = {}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        found: set[fx.Node] = set()
        for arg in node.all_input_nodes:
            found |= ancestors[arg] | {arg}
        ancestors[node] = found
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    owners_of: dict[int, set[str]] = {}
    for name, sub in modules.items():
        for param in sub.parameters(recurse=False):
            owners_of.setdefault(id(param), set()).add(name)

    blocks, skipped = [], {}
    for add in graph.nodes:
        if not is_add(add):
            continue
        a, b = add.args
        common = (ancestors[a] | {a}) & (ancestors[b] | {b})
        if not common:
            skipped[add.name] = "its operands share no input"
            continue
        start = max(common, key=order.__getitem__)
        side_a, side_b = _side(start, a, ancestors), _side(start, b, ancestors)
        if side_a & side_b or not (
            _self_contained(side_a, start, a, add) and _self_contained(side_b, start, b, add)
        ):
            skipped[add.name] = "its operands are not two self-contained paths from one input"
            continue
        n_a, n_b = _n_parametric(side_a, modules), _n_parametric(side_b, modules)
        if n_a == n_b:
            skipped[add.name] = "both operands have as many layers: no shortcut to keep"
            continue
        (branch, operand), (shortcut, other) = (
            ((side_b, b), (side_a, a)) if n_a < n_b else ((side_a, a), (side_b, b))
        )
        called = [n.target for n in sorted(branch, key=order.__getitem__) if n.op == "call_module"]
        if any(calls[name] > 1 and _has_state(modules[name]) for name in called):
            skipped[add.name] = "a layer of the branch is called more than once in forward"
            continue
        # a stateless module (nn.ReLU) may be reused outside the branch: it is not the branch's
        branch_modules = list(dict.fromkeys(name for name in called if calls[name] == called.count(name)))
        names = set(branch_modules)
        inside = {sub for name in names for sub, _ in modules[name].named_modules(prefix=name)}
        shared = [
            name
            for name in names
            for param in modules[name].parameters()
            if owners_of.get(id(param), set()) - inside
        ]
        if shared:
            skipped[add.name] = f"layer {shared[0]!r} of the branch shares parameters with another layer"
            continue
        if not _zero_when_masked(branch, operand, order, modules):
            skipped[add.name] = (
                "the branch output is not zero when its parameters are (it does not end in a "
                "Linear/Conv layer or affine normalization followed only by zero-preserving operations)"
            )
            continue
        parameters = [
            f"{name}.{pname}" for name in branch_modules for pname, _ in modules[name].named_parameters()
        ]
        weights = [
            f"{name}.weight"
            for name in branch_modules
            if isinstance(modules[name], PRUNABLE_TYPES) and isinstance(modules[name].weight, nn.Parameter)
        ]
        owner = _owner(add, start, branch | shortcut, graph)
        label = owner or _common_prefix(branch_modules) or add.name
        blocks.append(
            ResidualBlockInfo(
                name=label,
                branch=branch_modules,
                shortcut=[n.target for n in sorted(shortcut, key=order.__getitem__) if n.op == "call_module"],
                parameters=parameters,
                weights=weights,
                owner=owner,
                add=add.name,
                nodes=[n.name for n in sorted(branch, key=order.__getitem__)],
                shortcut_value=other.name,
            )
        )
    seen: dict[str, int] = {}
    for block in blocks:  # unique names (two adds in one module)
        if block.name in seen:
            seen[block.name] += 1
            block.name = f"{block.name}#{seen[block.name]}"
        else:
            seen[block.name] = 0
    if return_skipped:
        return blocks, skipped
    return blocks


def _all_zero(tensor) -> bool:
    return tensor is None or not bool(tensor.detach().any())


@torch.no_grad()
def branch_is_zero(module: nn.Module, block: ResidualBlockInfo) -> bool:
    """Whether the branch of ``block`` outputs exactly zero for every input, given its current values.

    True when every parameter-carrying operation on the way to the branch
    output is zero: a Linear/Conv layer whose weight (or input) and bias are
    zero, an affine normalization whose weight and bias are zero, followed
    by operations that keep zero at zero. This holds for a block masked by
    :class:`~skprune.BlockPruning`, and for a branch whose last layer lost
    every unit by other means.

    Parameters
    ----------
    module : torch.nn.Module
        The network ``block`` was found in (by :func:`trace_residual_blocks`).
    block : ResidualBlockInfo
    """
    traced = fx.symbolic_trace(module)
    modules = dict(traced.named_modules())
    by_name = {node.name: node for node in traced.graph.nodes}
    zero = _zero_nodes([by_name[name] for name in block.nodes], modules, _zero_now)
    return bool(block.nodes) and by_name[block.nodes[-1]] in zero
