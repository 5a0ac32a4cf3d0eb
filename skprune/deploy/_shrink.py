"""Compaction during ``fit``: fine-tune the physically smaller network after the last pruning step.

Structured pruners (:class:`~skprune.NeuronPruning`, :class:`~skprune.ChannelPruning`,
:class:`~skprune.BlockPruning`, and a :class:`~skprune.CombinedPruning` with
one of them) leave whole units or residual blocks at exactly zero. Once the
schedule has taken its last step, nothing will bring them back, so the rest
of the fit can train the network that :meth:`~skprune.PrunedNet.compact`
would build at the end: :func:`compact_during_fit` compacts the estimator's
``module_`` in place (the same compaction as ``compact()``), slices the mask
store and the optimizer's state to the kept entries (Adam's moments and step
counts, SGD's momentum, ... keep their values), and the pruning engine goes on
with the smaller network (:meth:`~skprune._training._engine.PruningEngine.rebind`).
Predictions at the end equal those of the masked fit compacted afterwards, to
float rounding.

What cannot be followed is left as it is, and the reason is returned (the
estimator shows it in its verbose log and in ``compacted_during_fit_``):
an optimizer whose update of an entry reads other entries (``LBFGS``, factored
optimizers: their state has no per-entry slice), state of an unexpected
shape, a callback that restores weights saved earlier (``load_best=True``),
or a network compaction cannot trace.

:class:`~skprune.InputPruning` is not compacted during fit: the estimator
still takes all ``n_features_in_`` columns at ``predict`` (compaction never
narrows the network's input), so a removed feature stays a masked zero column.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from ..nn._summary import count_parameters
from ..pruners._blocks import BlockPruning
from ..pruners._combined import CombinedPruning
from ..pruners._masks import is_elementwise
from ..pruners._structured import StructuredPruner
from ._compaction import COMPILED_PREFIX, _compact, slice_by_plan, slice_masks, unwrap_compiled

__all__ = ["compact_during_fit", "removes_units"]

#: Pruners whose masks remove whole units or blocks, so compaction makes the network smaller.
UNIT_PRUNERS = (StructuredPruner, BlockPruning)


def removes_units(pruner) -> bool:
    """Whether ``pruner`` removes whole units or residual blocks (itself or a part of a CombinedPruning)."""
    if isinstance(pruner, UNIT_PRUNERS):
        return True
    if isinstance(pruner, CombinedPruning):
        parts = pruner.pruners if isinstance(pruner.pruners, (list, tuple)) else []
        return any(isinstance(part, tuple) and len(part) == 2 and removes_units(part[1]) for part in parts)
    return False


def _state_refusal(optimizer, params_by_id: dict) -> str | None:
    """Why the state of ``optimizer`` cannot be sliced entry by entry, or ``None`` if it can."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        return f"the optimizer ({type(optimizer).__name__}) is not a torch.optim.Optimizer"
    if not is_elementwise(optimizer):
        return (
            f"{type(optimizer).__name__} updates an entry from others (its state has no per-entry "
            "slice); compaction during fit supports SGD, Adam, AdamW, Adamax, NAdam, RAdam, RMSprop, "
            "Adagrad, ..."
        )
    for param, state in optimizer.state.items():
        if id(param) not in params_by_id:
            return f"{type(optimizer).__name__} holds state for a tensor that is not a parameter of the net"
        for key, value in state.items():
            scalar = value is None or isinstance(value, (numbers.Number, str))
            if isinstance(value, torch.Tensor):
                scalar = value.dim() == 0 or tuple(value.shape) == tuple(param.shape)
            if not scalar:
                return (
                    f"{type(optimizer).__name__}'s state {key!r} of {params_by_id[id(param)]!r} is "
                    f"not shaped like the parameter ({type(value).__name__})"
                )
    return None


def _slice_state(optimizer, old: dict, new: dict, plan: dict, renames: dict) -> None:
    """Move ``optimizer`` in place onto the compacted parameters, with its state sliced to them.

    ``old`` and ``new`` map names to parameters before and after compaction;
    the optimizer object, its groups and their settings stay (so a learning-rate
    scheduler bound to it goes on), only the parameters and their state change.
    """
    old_names = {id(p): name for name, p in old.items()}

    def successor(param):
        name = old_names.get(id(param))
        if name is None:
            return param  # e.g. a parameter of the criterion: unchanged
        if renames:
            if name not in renames:
                return None  # a deleted layer's parameter
            name = renames[name]
        return new.get(name)

    state = {}
    for param, entry in optimizer.state.items():
        target = successor(param)
        if target is None:
            continue
        name = renames.get(old_names[id(param)], old_names[id(param)]) if id(param) in old_names else None
        moved = {}
        for key, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and name is not None:
                value = slice_by_plan(name, value, plan).contiguous()
            moved[key] = value
        state[target] = moved
    for group in optimizer.param_groups:
        kept = [successor(p) for p in group["params"]]
        group["params"][:] = [p for p in kept if p is not None]  # in place: some optimizers keep the list
    optimizer.state.clear()
    optimizer.state.update(state)


def _learnable(module: nn.Module, prefix: str) -> dict:
    return {f"{prefix}{name}": p for name, p in module.named_parameters()}


def compact_during_fit(estimator) -> dict:
    """Compact ``estimator.module_`` in place during its fit; slice its masks and optimizer state.

    Parameters
    ----------
    estimator : PrunedNet
        A net in the middle of ``fit``, right after its pruner's last step.

    Returns
    -------
    dict
        ``{"n_params_before", "n_params_after", "removed_layers"}`` when the
        module was compacted, ``{"skipped": reason}`` when it was left as it
        is (nothing changed on the estimator then).
    """
    for name, callback in getattr(estimator, "callbacks_", None) or []:
        if getattr(callback, "load_best", False) is True:  # skorch's EarlyStopping, Checkpoint
            return {
                "skipped": f"callback {name!r} ({type(callback).__name__}, load_best=True) restores "
                "weights saved for the full-size network"
            }
    inner, wrapped = unwrap_compiled(estimator.module_)
    prefix = COMPILED_PREFIX if wrapped else ""
    optimizer = getattr(estimator, "optimizer_", None)
    old = _learnable(inner, prefix)
    refusal = _state_refusal(optimizer, {id(p): name for name, p in old.items()} | _criterion_ids(estimator))
    if refusal is not None:
        return {"skipped": refusal}
    try:
        module, plan, deleted, renames = _compact(inner)
    except Exception as exc:  # CompactionError, or a network torch.fx cannot trace
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    if not plan and not deleted:
        return {"skipped": "no unit or block was removed"}
    before = count_parameters(inner)[0]
    module = module.to(estimator.device)
    if wrapped:  # compile=True: the compacted network goes back into torch.compile's wrapper
        plan = {f"{COMPILED_PREFIX}{name}": entry for name, entry in plan.items()}
        renames = {f"{COMPILED_PREFIX}{o}": f"{COMPILED_PREFIX}{n}" for o, n in renames.items()}
        outer = estimator.torch_compile(module, "module")
    else:
        outer = module
    new = _learnable(module, prefix)
    if optimizer is not None:
        _slice_state(optimizer, old, new, plan, renames)
    slice_masks(estimator.masks_, outer, plan, renames)
    estimator.module_ = outer
    if deleted:
        estimator.removed_layers_ = {**estimator.__dict__.get("removed_layers_", {}), **deleted}
    return {
        "n_params_before": int(before),
        "n_params_after": int(count_parameters(module)[0]),
        "removed_layers": sorted(deleted),
    }


def _criterion_ids(estimator) -> dict:
    criterion = getattr(estimator, "criterion_", None)
    if not isinstance(criterion, nn.Module):
        return {}
    return {id(p): f"criterion_.{name}" for name, p in criterion.named_parameters()}
