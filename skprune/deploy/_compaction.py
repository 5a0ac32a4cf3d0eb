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

Residual blocks ``y = shortcut(x) + f(x)`` whose branch ``f`` outputs
exactly zero (removed by :class:`~skprune.BlockPruning`, or whose last
layers lost every unit and bias) take no part in the predictions, and are
deleted first: the submodule holding the block is dropped from its
``nn.Sequential`` when what is left is the identity (the later blocks are
renumbered, as ``del sequential[i]`` does), and otherwise replaced by a
:class:`torch.fx.GraphModule` of its ``forward`` without the branch (e.g.
``relu(downsample(x))`` for a torchvision ``Bottleneck`` with a projection
shortcut). Every deleted layer is reported, with the reason
(``return_removed=True``; :meth:`~skprune.PrunedNet.compact` stores it in
``removed_layers_``).
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..exceptions import CompactionError
from ..nn._groups import trace_channel_groups
from ..nn._layers import iter_prunable_weights, refresh_sizes
from ..nn._residual import ResidualBlockInfo, branch_is_zero, trace_residual_blocks
from ..nn._units import (
    NORM_TYPES,
    POOL_FUNCTIONS,
    POOL_MODULES,
    UnitGroup,
    removed_units,
    trace_unit_groups,
)
from ..pruners._masks import MaskStore
from ._copying import copy_with_module, group_settings, restore_group_settings
from ._sparse_linear import SparseLinear

__all__ = ["compact_module", "unwrap_compiled"]

#: Prefix of parameter names under ``torch.compile``'s wrapper (skorch's ``compile=True``).
COMPILED_PREFIX = "_orig_mod."


def unwrap_compiled(module: nn.Module) -> tuple[nn.Module, bool]:
    """The network inside ``torch.compile``'s ``OptimizedModule`` wrapper, and whether there was one."""
    inner = getattr(module, "_orig_mod", None)
    if isinstance(inner, nn.Module) and type(module).__name__ == "OptimizedModule":
        return inner, True
    return module, False


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
            if isinstance(module, POOL_MODULES + (nn.Flatten,)):
                continue  # identity on a constant map
            was_training = module.training
            module.eval()
            try:
                value = module(value)
            finally:
                module.train(was_training)
        elif node.op == "call_function":
            if node.target in POOL_FUNCTIONS or node.target is torch.flatten:
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


@torch.no_grad()
def _plan_channel_group(group, modules, keep_out, keep_in, restrict, network: str):
    """Plan the removal of the channels removed in every member of a channel group.

    A channel goes only if it is exactly zero where the members meet: every
    producer's weight row and bias are zero and every BatchNorm on the
    channels has zero weight and bias there (what ChannelPruning masks).
    """
    removed = None
    for name in group.producers:
        layer = modules[name]
        gone = removed_units(layer)
        if layer.bias is not None:
            gone = gone & layer.bias.detach().eq(0)
        removed = gone if removed is None else removed & gone
    for norm_name, offset in group.norms:
        norm = modules[norm_name]
        if norm.weight is None or norm.bias is None:
            return None  # a BatchNorm without affine parameters turns zero into non-zero: keep
        window = slice(offset, offset + group.size)
        removed = removed & norm.weight.detach()[window].eq(0) & norm.bias.detach()[window].eq(0)
    if removed is None or not removed.any():
        return removed
    if bool(removed.all()):
        raise CompactionError(
            f"Cannot compact {network}: every channel of the group {group.producers} is removed, so "
            "the network output no longer depends on its input. Use a smaller pruning fraction."
        )
    keep = ~removed
    for name in group.producers:
        restrict(keep_out, name, keep)
    for norm_name, offset in group.norms:
        n = modules[norm_name].num_features
        full = torch.ones(n, dtype=torch.bool, device=keep.device)
        full[offset : offset + group.size] = keep
        restrict(keep_out, norm_name, full)
    for consumer_name, offset, block in group.consumers:
        consumer = modules[consumer_name]
        n = consumer.weight.shape[1] * (consumer.groups if isinstance(consumer, nn.Conv2d) else 1)
        full = torch.ones(n, dtype=torch.bool, device=keep.device)
        full[offset * block : (offset + group.size) * block] = keep.repeat_interleave(block)
        restrict(keep_in, consumer_name, full)
    return removed


def _without_branch(owner: nn.Module, block: ResidualBlockInfo, prefix: str) -> nn.Module | None:
    """``owner``'s forward without the branch of ``block`` (``None``: what is left is the identity)."""
    relative = [name[len(prefix) :] for name in block.branch]
    match = [b for b in trace_residual_blocks(owner) if b.branch == relative]
    if len(match) != 1:
        raise CompactionError(f"Cannot find the residual block {block.name!r} in its own forward.")
    traced = fx.symbolic_trace(owner)
    graph = traced.graph
    by_name = {node.name: node for node in graph.nodes}
    add, shortcut = by_name[match[0].add], by_name[match[0].shortcut_value]
    add.replace_all_uses_with(shortcut)
    graph.erase_node(add)
    graph.eliminate_dead_code()
    graph.lint()
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    outputs = [n for n in graph.nodes if n.op == "output"]
    if len(placeholders) == 1 and len(outputs) == 1 and outputs[0].args[0] is placeholders[0]:
        return None
    return fx.GraphModule(traced, graph, class_name=f"{type(owner).__name__}WithoutBranch")


@torch.no_grad()
def _may_hold_zero_branch(module: nn.Module) -> bool:
    """Whether some layer outputs exactly zero everywhere, where a zero residual branch would start.

    A branch outputs zero only from a Linear/Conv layer without any unit left
    or an affine normalization whose weight and bias are zero (see
    :func:`~skprune.nn._residual.branch_is_zero`); without one, tracing the
    blocks is not needed.
    """
    for layer in module.modules():
        if isinstance(layer, NORM_TYPES):
            weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
            if weight is not None and not weight.any() and (bias is None or not bias.any()):
                return True
        elif isinstance(getattr(layer, "weight", None), torch.Tensor) and layer.weight.dim() >= 2:
            if layer.weight.layout == torch.strided and bool(removed_units(layer).all()):
                return True
    return False


@torch.no_grad()
def remove_zero_blocks(module: nn.Module) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """Delete (in place) the residual blocks of ``module`` whose branch outputs exactly zero.

    A block whose add is in a ``forward`` that does more than the block
    (e.g. the network's own) cannot be dropped without changing that
    ``forward``: its layers stay, at zero, and are left alone by unit
    compaction (``inert``).

    Returns
    -------
    removed : dict of str to str
        Every deleted layer (Linear, Conv, BatchNorm, activation ...) -> why.
    renames : dict of str to str
        Old -> new name of every parameter and buffer that is left (blocks
        after a deleted one in an ``nn.Sequential`` are renumbered).
    inert : set of str
        Layers of zero branches that could not be deleted.
    """
    if not _may_hold_zero_branch(module):
        return {}, {}, set()
    try:
        blocks = trace_residual_blocks(module)
    except Exception:  # untraceable: trace_unit_groups below says why, if it matters
        return {}, {}, set()
    before = {id(t): n for n, t in [*module.named_parameters(), *module.named_buffers()]}
    removed: dict[str, str] = {}
    inert: set[str] = set()
    zero = [branch_is_zero(module, block) for block in blocks]  # all judged on the network as given
    for block, is_zero in reversed(list(zip(blocks, zero))):  # later blocks first: a deletion renumbers
        if not is_zero:  # only the blocks after it
            continue
        if block.owner is None:
            inert.update(block.branch)
            continue
        owner = module.get_submodule(block.owner)
        reduced = _without_branch(owner, block, f"{block.owner}.")
        parent_name, _, child = block.owner.rpartition(".")
        parent = module.get_submodule(parent_name)
        left = "the identity" if reduced is None else "its shortcut and what follows the add"
        why = f"in residual block {block.name!r}, whose branch outputs zero (the block is now {left})"
        for name in block.branch:
            removed[name] = why
        if reduced is None and isinstance(parent, nn.Sequential):
            names = list(parent._modules)
            del parent._modules[child]
            if all(key.isdigit() for key in names):  # renumber, as del sequential[i] does
                parent._modules = type(parent._modules)(
                    (str(i), sub) for i, sub in enumerate(parent._modules.values())
                )
        else:
            setattr(parent, child, nn.Identity() if reduced is None else reduced)
    if not removed:
        return {}, {}, inert
    removed = dict(sorted(removed.items()))
    renames = {
        before[id(t)]: n for n, t in [*module.named_parameters(), *module.named_buffers()] if id(t) in before
    }
    return removed, renames, inert


def _set_param(layer: nn.Module, name: str, value: torch.Tensor) -> None:
    old = getattr(layer, name)
    setattr(layer, name, nn.Parameter(value, requires_grad=old.requires_grad))


def compact_module(module: nn.Module, *, return_plan: bool = False, return_removed: bool = False):
    """Return a physically smaller copy of ``module`` without its removed units.

    Parameters
    ----------
    module : torch.nn.Module
        A (pruned) network. It is not modified.
    return_plan : bool, default=False
        Also return the indices kept in each changed parameter.
    return_removed : bool, default=False
        Also return the layers that were deleted whole, with the reason.

    Returns
    -------
    compacted : torch.nn.Module
        A copy of ``module`` (same class and ``forward``) whose Linear,
        Conv2d and BatchNorm layers have lost the removed units. Its
        outputs equal the input module's in evaluation mode.
    plan : dict of str to dict of int to LongTensor
        Only if ``return_plan``: for each changed parameter or buffer name
        (of the compacted module), the kept indices along each changed
        dimension.
    removed : dict of str to str
        Only if ``return_removed``: each deleted layer (by its name in
        ``module``) and why, e.g. the layers of a residual block whose
        branch outputs zero.

    Raises
    ------
    CompactionError
        If a layer has removed units whose output flows into an operation
        compaction cannot follow (the message names it), or if the module
        cannot be traced.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skprune import compact_module
    >>> module = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> with torch.no_grad():  # units 0-3 of the hidden layer removed
    ...     module[0].weight[:4] = 0.0
    ...     module[0].bias[:4] = 0.0
    >>> compact_module(module)[0]
    Linear(in_features=4, out_features=4, bias=True)
    """
    compacted, plan, deleted, _ = _compact(module)
    out = (compacted,) + ((plan,) if return_plan else ()) + ((deleted,) if return_removed else ())
    return out if len(out) > 1 else compacted


def _compact(module: nn.Module):
    """``(compacted, plan, removed, renames)``: see :func:`compact_module` and :func:`remove_zero_blocks`."""
    csr = [name for name, layer in module.named_modules() if isinstance(layer, SparseLinear)]
    if csr:
        raise CompactionError(
            f"Cannot compact {type(module).__name__}: layers {csr} hold CSR weights from to_sparse, "
            "which is an export for prediction. Call compact() before to_sparse: "
            "to_sparse(net.compact())."
        )
    compacted = copy.deepcopy(module)
    deleted, renames, inert = remove_zero_blocks(compacted)
    groups = trace_unit_groups(compacted)
    modules = dict(compacted.named_modules())
    keep_out: dict[str, torch.Tensor] = {}  # output units / BatchNorm features kept (bool)
    keep_in: dict[str, torch.Tensor] = {}  # input features / channels kept (bool, full length)
    folds: list[tuple[str, torch.Tensor, torch.Tensor, int]] = []
    channel_groups = None
    needed = []

    def restrict(store, name, keep):
        store[name] = store[name] & keep if name in store else keep

    for name, group in groups.items():
        layer = modules[name]
        removed = removed_units(layer)
        if not removed.any() or group.is_output or name in inert:
            continue  # outputs stay, even when their weights are all zero; so do zero branches kept
        if group.blocked is not None:
            if channel_groups is None:
                channel_groups = {p: g for g in trace_channel_groups(compacted) for p in g.producers}
            grouped = channel_groups.get(name)
            if grouped is not None and grouped.blocked is None:
                needed.append((name, grouped, group.blocked, removed))  # removed with its group, below
                continue
            reason = group.blocked
            if grouped is not None and grouped.blocked and grouped.blocked != reason:
                reason = f"{reason}, and its channel group cannot be removed: {grouped.blocked}"
            raise CompactionError(
                f"Cannot compact {type(module).__name__}: layer {name!r} has {int(removed.sum())} "
                f"removed units, but {reason}. Compaction follows chains of Linear/Conv2d, BatchNorm, "
                "activations, pooling, Flatten and Dropout, residual adds and channel concatenations "
                "where the removed channels are zero in every layer that meets them. Prune only such "
                "layers (the pruner's `layers` parameter; ChannelPruning masks whole groups) or keep "
                "the masked model uncompacted."
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
        restrict(keep_out, name, keep)
        for norm in group.norms:
            restrict(keep_out, norm, keep)
        restrict(keep_in, group.consumer, keep.repeat_interleave(group.block))
        if (removed & nonzero).any():
            folds.append((group.consumer, removed & nonzero, constants, group.block))

    planned = {}
    for name, grouped, reason, removed in needed:
        if id(grouped) not in planned:
            planned[id(grouped)] = _plan_channel_group(
                grouped, modules, keep_out, keep_in, restrict, type(module).__name__
            )
        gone = planned[id(grouped)]
        left = removed if gone is None else removed & ~gone
        if left.any():
            others = [p for p in grouped.producers if p != name]
            raise CompactionError(
                f"Cannot compact {type(module).__name__}: layer {name!r} has {int(left.sum())} removed "
                f"units, but {reason}. Its channels are tied to {others} (a residual add or a "
                "concatenation): a channel goes only when it is zero in every one of them and in "
                "their BatchNorms. ChannelPruning removes such groups together; or keep the masked "
                "model uncompacted."
            )

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
            if isinstance(layer, NORM_TYPES):
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
                index_in = torch.nonzero(keep_in[name]).flatten()
                weight = _index_select(weight, 1, index_in)
                entry[1] = index_in
            _set_param(layer, "weight", weight.contiguous())
            plan[f"{name}.weight"] = entry
            if isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape[0], weight.shape[1]
            else:
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1]
    refresh_sizes(compacted)
    return compacted, plan, deleted, renames


def slice_by_plan(name: str, tensor: torch.Tensor, plan: dict[str, dict[int, torch.Tensor]]) -> torch.Tensor:
    """Slice a tensor shaped like parameter ``name`` as :func:`compact_module` sliced it."""
    for dim, index in plan.get(name, {}).items():
        tensor = tensor.index_select(dim, index.to(tensor.device))
    return tensor


def slice_masks(store: MaskStore, module: nn.Module, plan: dict, renames: dict) -> None:
    """Slice the masks of ``store`` in place as compaction sliced the weights of ``module`` (compacted).

    Masks of deleted layers go, those of renamed ones (blocks after a deleted
    block) follow the new name, and masks left without a pruned entry go.
    """
    params = dict(module.named_parameters())
    sliced = {}
    for name, pruned in store.pruned.items():
        if renames:  # residual blocks were deleted: their masks go, later blocks' are renamed
            if name not in renames:
                continue
            name = renames[name]
        pruned = slice_by_plan(name, pruned, plan)
        if name in params and pruned.shape == params[name].shape and bool(pruned.any()):
            sliced[name] = pruned
    store.pruned = sliced


def unchanged_after_compaction(estimator) -> bool:
    """Whether a net compacted during its fit has nothing left to compact (no zero unit row).

    A residual branch that outputs zero ends in a layer whose rows are all
    zero, and a removable unit has a zero row, so a network without any zero
    row is one :meth:`~skprune.PrunedNet.compact` leaves as it is.
    """
    info = estimator.__dict__.get("compacted_during_fit_")
    if not isinstance(info, dict) or "n_params_after" not in info:
        return False
    inner, wrapped = unwrap_compiled(estimator.module_)
    if wrapped:  # torch.compile's wrapper: compacted (and wrapped again) the usual way
        return False
    return not any(bool(removed_units(layer).any()) for _, _, layer in iter_prunable_weights(inner))


def compact_estimator(estimator):
    """Return a fitted copy of ``estimator`` whose ``module_`` is compacted.

    See :meth:`skprune.PrunedNet.compact`.
    """
    estimator.check_is_fitted()
    if unchanged_after_compaction(estimator):  # compacted during fit, nothing removed since: a copy
        compacted, had_optimizer = copy_with_module(estimator, copy.deepcopy(estimator.module_))
        if had_optimizer:
            compacted.initialize_optimizer()
            restore_group_settings(compacted.optimizer_, group_settings(estimator.optimizer_))
        return compacted
    inner, wrapped = unwrap_compiled(estimator.module_)
    module, plan, deleted, renames = _compact(inner)
    module = module.to(estimator.device)
    if wrapped:  # compile=True: compact the network inside torch.compile's wrapper, then wrap again
        plan = {f"{COMPILED_PREFIX}{name}": entry for name, entry in plan.items()}
        renames = {f"{COMPILED_PREFIX}{old}": f"{COMPILED_PREFIX}{new}" for old, new in renames.items()}
        module = estimator.torch_compile(module, "module")
    compacted, had_optimizer = copy_with_module(estimator, module)
    slice_masks(compacted.masks_, module, plan, renames)
    compacted.removed_layers_ = {**estimator.__dict__.get("removed_layers_", {}), **deleted}
    if had_optimizer:
        compacted.initialize_optimizer()
        # the learning rate where training stopped (and a scheduler's initial_lr), not the initial one
        restore_group_settings(compacted.optimizer_, group_settings(estimator.optimizer_))
    return compacted
