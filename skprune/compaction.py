"""Compaction: turn removed units into a physically smaller network.

Structured pruning (:class:`~skprune.NeuronPruning`,
:class:`~skprune.ChannelPruning`) zeroes whole hidden units: the unit's
weight row and bias, the matching BatchNorm entries and the matching input
weights of the next layer. The network still computes with the zeros.
:func:`compact_module` removes them: the producing layer loses output
units, BatchNorm loses the matching features, and the consuming layer loses
the matching inputs, so the module is smaller and faster while its
predictions are unchanged (to float rounding).

A unit is *removed* when its whole weight row is exactly zero, whatever
pruned it (so rows that unstructured pruning happened to empty go too).
Its output is then a constant (its bias passed through BatchNorm and the
activation); a non-zero constant, such as ``sigmoid(0) = 0.5``, is folded
into the next layer's bias.

The data flow is found with :mod:`torch.fx`, so this works for the built-in
:class:`~skprune.MLP`, for ``nn.Sequential`` and for any fx-traceable module
whose removed units sit in chains of

* ``Linear -> [BatchNorm1d] -> [activation / Dropout] -> Linear``
* ``Conv2d -> [BatchNorm2d] -> [activation / Dropout / pooling] -> Conv2d``
* ``Conv2d -> ... -> Flatten -> [activation / Dropout] -> Linear``

The module keeps its class and ``forward``: only its Linear, Conv2d and
BatchNorm leaves are replaced by smaller ones, so it pickles and predicts
as before. A removed unit whose output goes anywhere else (a residual add,
a concatenation, a reshape with hard-coded sizes, the network output)
raises :class:`CompactionError` naming the layer.
"""

from __future__ import annotations

import copy
import operator
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from ._copying import copy_with_module

__all__ = ["CompactionError", "UnitGroup", "compact_module", "trace_unit_groups", "removed_units"]


class CompactionError(ValueError):
    """The network cannot be compacted: a removed unit feeds an operation compaction cannot follow."""


#: Layers whose output units can be removed.
PRODUCER_TYPES = (nn.Linear, nn.Conv2d)
_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
#: Element-wise modules (``f(0)`` is computed, not assumed).
_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
    nn.AlphaDropout,
)
_CHANNEL_DROPOUT = (nn.Dropout1d, nn.Dropout2d)
_POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_ELEMENTWISE_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.gelu,
    F.silu,
    F.mish,
    F.tanh,
    F.sigmoid,
    F.hardtanh,
    F.hardswish,
    F.hardsigmoid,
    F.softplus,
    F.dropout,
}
_ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid"}
_POOL_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d}


@dataclass
class UnitGroup:
    """How the output units of one Linear/Conv2d layer flow to the next layer.

    Attributes
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
    """

    producer: str
    norms: list[str] = field(default_factory=list)
    consumer: str | None = None
    block: int = 1
    ops: list = field(default_factory=list)
    pooled: bool = False
    blocked: str | None = None
    is_output: bool = False


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"layer {node.target!r} ({type(modules[node.target]).__name__})"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        hint = " (a residual connection)" if node.target in (operator.add, torch.add) else ""
        return f"operation {name!r} at node {node.name!r}{hint}"
    if node.op == "call_method":
        return f"method '.{node.target}()' at node {node.name!r}"
    return f"{node.op} node {node.name!r}"


def _only_input_is(node: fx.Node, source: fx.Node) -> bool:
    """Whether ``source`` is the first argument and no other argument is a graph value."""
    if not node.args or node.args[0] is not source:
        return False
    others = list(node.args[1:]) + list(node.kwargs.values())
    flat = []
    for value in others:
        fx.node.map_arg(value, flat.append)
    return not flat


def _flatten_start(node: fx.Node, modules) -> int | None:
    """Start dimension if ``node`` flattens all but the batch dimension, else ``None``."""
    if node.op == "call_module" and isinstance(modules[node.target], nn.Flatten):
        m = modules[node.target]
        return 1 if (m.start_dim == 1 and m.end_dim == -1) else None
    if (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    ):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return 1 if (start == 1 and end == -1) else None
    return None


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
        if isinstance(module, _NORM_TYPES) and not flattened:
            if module.num_features != n_units or calls[node.target] > 1:
                group.blocked = f"{_describe(node, modules)} does not normalize the {n_units} units"
                return group
            group.norms.append(node.target)
        elif isinstance(module, _ELEMENTWISE_MODULES) or (isinstance(module, _CHANNEL_DROPOUT) and is_conv):
            pass
        elif isinstance(module, nn.PReLU) and module.num_parameters == 1:
            pass
        elif isinstance(module, _POOL_MODULES) and is_conv and not flattened:
            group.pooled = True
        elif node.op == "call_function" and node.target in _ELEMENTWISE_FUNCTIONS:
            pass
        elif node.op == "call_function" and node.target in _POOL_FUNCTIONS and is_conv and not flattened:
            group.pooled = True
        elif node.op == "call_method" and node.target in _ELEMENTWISE_METHODS:
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
    """Boolean mask of the output units of ``layer`` whose whole weight row is zero."""
    weight = layer.weight.detach()
    return ~weight.reshape(weight.shape[0], -1).ne(0).any(dim=1)


@torch.no_grad()
def _unit_constants(group: UnitGroup, modules: dict[str, nn.Module]) -> torch.Tensor:
    """Output of each unit of ``group.producer`` after the chain when its weights are zero."""
    producer = modules[group.producer]
    n_units = producer.weight.shape[0]
    bias = producer.bias.detach() if producer.bias is not None else producer.weight.new_zeros(n_units)
    value = bias.reshape(1, n_units, 1, 1) if isinstance(producer, nn.Conv2d) else bias.reshape(1, n_units)
    value = value.clone()
    for node in group.ops:
        if node.op == "call_module":
            module = modules[node.target]
            if isinstance(module, _POOL_MODULES + (nn.Flatten,)):
                continue  # identity on a constant map
            was_training = module.training
            module.eval()
            try:
                value = module(value)
            finally:
                module.train(was_training)
        elif node.op == "call_function":
            if node.target in _POOL_FUNCTIONS or node.target is torch.flatten:
                continue
            if node.target is F.dropout:
                continue  # identity at inference
            value = node.target(value, *node.args[1:], **node.kwargs)
        elif node.op == "call_method":
            if node.target == "flatten":
                continue
            value = getattr(value, node.target)(*node.args[1:], **node.kwargs)
    return value.reshape(n_units)


def _index_select(tensor: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    return tensor.index_select(dim, index.to(tensor.device)).clone()


def _block_index(keep: torch.Tensor, block: int) -> torch.Tensor:
    """Input indices of the kept units when each unit owns ``block`` consecutive inputs."""
    units = torch.nonzero(keep).flatten()
    return (units[:, None] * block + torch.arange(block, device=units.device)[None, :]).flatten()


def _set_param(layer: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(layer, name)
    setattr(layer, name, nn.Parameter(value, requires_grad=old.requires_grad))


def compact_module(module: nn.Module, *, return_plan: bool = False):
    """Return a physically smaller copy of ``module`` without its removed units.

    Parameters
    ----------
    module : torch.nn.Module
        A (pruned) network. It is not modified.
    return_plan : bool, default=False
        Also return the indices kept in each changed parameter.

    Returns
    -------
    compacted : torch.nn.Module
        A copy of ``module`` (same class and ``forward``) whose Linear,
        Conv2d and BatchNorm layers have lost the removed units. Its
        outputs equal the input module's in evaluation mode.
    plan : dict of str to dict of int to LongTensor
        Only if ``return_plan``: for each changed parameter or buffer name,
        the kept indices along each changed dimension.

    Raises
    ------
    CompactionError
        If a layer has removed units whose output flows into an operation
        compaction cannot follow (the message names it), or if the module
        cannot be traced.
    """
    compacted = copy.deepcopy(module)
    groups = trace_unit_groups(compacted)
    modules = dict(compacted.named_modules())
    keep_out: dict[str, torch.Tensor] = {}
    keep_in: dict[str, tuple[torch.Tensor, int]] = {}
    folds: list[tuple[str, torch.Tensor, torch.Tensor, int]] = []
    for name, group in groups.items():
        layer = modules[name]
        removed = removed_units(layer)
        if not removed.any() or group.is_output:
            continue  # outputs stay, even when their weights are all zero
        if group.blocked is not None:
            raise CompactionError(
                f"Cannot compact {type(module).__name__}: layer {name!r} has {int(removed.sum())} "
                f"removed units, but {group.blocked}. Compaction follows Linear -> [BatchNorm] -> "
                "activation/Dropout -> Linear and Conv2d -> [BatchNorm] -> activation/pooling -> "
                "Conv2d or Flatten -> Linear chains. Prune only layers inside such chains (the "
                "pruner's `layers` parameter) or keep the masked model uncompacted."
            )
        if bool(removed.all()):
            raise CompactionError(
                f"Cannot compact {type(module).__name__}: every unit of layer {name!r} is removed, "
                "so the network output no longer depends on its input. Use a smaller pruning fraction."
            )
        constants = _unit_constants(group, modules)
        nonzero = removed & constants.ne(0)
        consumer = modules[group.consumer]
        foldable = consumer.bias is not None and not group.pooled
        if isinstance(consumer, nn.Conv2d):
            foldable = foldable and all(p == 0 for p in consumer.padding) and consumer.padding != "same"
        if nonzero.any() and not foldable:
            warnings.warn(
                f"compact: {int(nonzero.sum())} removed units of layer {name!r} output a non-zero "
                f"constant that cannot be folded into {group.consumer!r} (no bias, padding or "
                "pooling on the path); they are kept.",
                UserWarning,
                stacklevel=2,
            )
            removed = removed & ~nonzero
        if not removed.any():
            continue
        keep = ~removed
        keep_out[name] = keep
        for norm in group.norms:
            keep_out[norm] = keep
        keep_in[group.consumer] = (keep, group.block)
        if (removed & nonzero).any():
            folds.append((group.consumer, removed & nonzero, constants, group.block))

    with torch.no_grad():
        for consumer_name, fold_units, constants, block in folds:
            consumer = modules[consumer_name]
            weight = consumer.weight.detach()
            if isinstance(consumer, nn.Conv2d):
                per_unit = weight.sum(dim=(2, 3))  # valid convolution of a constant map
            else:
                per_unit = weight.reshape(weight.shape[0], -1, block).sum(dim=2)
            shift = per_unit[:, fold_units] @ constants[fold_units].to(per_unit.dtype)
            consumer.bias.add_(shift)

    plan: dict[str, dict[int, torch.Tensor]] = {}
    with torch.no_grad():
        for name in set(keep_out) | set(keep_in):
            layer = modules[name]
            index_out = torch.nonzero(keep_out[name]).flatten() if name in keep_out else None
            if isinstance(layer, _NORM_TYPES):
                for attr in ("weight", "bias", "running_mean", "running_var"):
                    value = getattr(layer, attr, None)
                    if value is None:
                        continue
                    new = _index_select(value.detach(), 0, index_out)
                    if isinstance(value, nn.Parameter):
                        _set_param(layer, attr, new)
                    else:
                        setattr(layer, attr, new)
                    plan[f"{name}.{attr}"] = {0: index_out}
                layer.num_features = int(index_out.numel())
                continue
            weight = layer.weight.detach()
            entry: dict[int, torch.Tensor] = {}
            if index_out is not None:
                weight = _index_select(weight, 0, index_out)
                entry[0] = index_out
                if layer.bias is not None:
                    _set_param(layer, "bias", _index_select(layer.bias.detach(), 0, index_out))
                    plan[f"{name}.bias"] = {0: index_out}
            if name in keep_in:
                keep, block = keep_in[name]
                index_in = _block_index(keep, block)
                weight = _index_select(weight, 1, index_in)
                entry[1] = index_in
            _set_param(layer, "weight", weight.contiguous())
            plan[f"{name}.weight"] = entry
            if isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape[0], weight.shape[1]
            else:
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1]
    _refresh_mlp_sizes(compacted)
    if return_plan:
        return compacted, plan
    return compacted


def _refresh_mlp_sizes(module: nn.Module) -> None:
    """Keep the built-in MLP's ``hidden_layer_sizes`` truthful after compaction."""
    from .modules import MLP

    if isinstance(module, MLP):
        module.hidden_layer_sizes = tuple(
            layer.out_features
            for name, layer in module.layers.named_children()
            if isinstance(layer, nn.Linear) and name != "output"
        )
    refresh = getattr(module, "_refresh_sizes", None)
    if callable(refresh):  # e.g. ConvNet's channels and hidden
        refresh()


def slice_by_plan(name: str, tensor: torch.Tensor, plan: dict[str, dict[int, torch.Tensor]]) -> torch.Tensor:
    """Slice a tensor shaped like parameter ``name`` as :func:`compact_module` sliced it."""
    for dim, index in plan.get(name, {}).items():
        tensor = tensor.index_select(dim, index.to(tensor.device))
    return tensor


def compact_estimator(estimator):
    """Return a fitted copy of ``estimator`` whose ``module_`` is compacted.

    See :meth:`skprune.PrunedNet.compact`.
    """
    estimator.check_is_fitted()
    module, plan = compact_module(estimator.module_, return_plan=True)
    module = module.to(estimator.device)
    compacted, had_optimizer = copy_with_module(estimator, module)
    store = compacted.masks_
    params = dict(module.named_parameters())
    sliced = {}
    for name, pruned in store.pruned.items():
        pruned = slice_by_plan(name, pruned, plan)
        if name in params and pruned.shape == params[name].shape and bool(pruned.any()):
            sliced[name] = pruned
    store.pruned = sliced
    if had_optimizer:
        compacted.initialize_optimizer()
    return compacted
