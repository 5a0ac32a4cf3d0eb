"""Copying a fitted estimator around a replacement module, and its optimizer's settings."""

from __future__ import annotations

import copy

from torch import nn

__all__ = ["copy_with_module", "group_settings", "restore_group_settings"]


def copy_with_module(estimator, module: nn.Module):
    """Deep copy of a fitted estimator whose ``module_`` is ``module``.

    The original module and its optimizer are not copied (a compacted or
    quantized copy does not need them); the copy has ``optimizer_ = None``.
    Returns ``(copy, had_optimizer)``.
    """
    estimator.check_is_fitted()
    original, optimizer = estimator.module_, getattr(estimator, "optimizer_", None)
    estimator.__dict__["module_"] = None
    estimator.__dict__["optimizer_"] = None
    try:
        out = copy.deepcopy(estimator)
    finally:
        estimator.__dict__["module_"] = original
        estimator.__dict__["optimizer_"] = optimizer
    out.__dict__["module_"] = module
    return out, optimizer is not None


def _is_setting(value) -> bool:
    """A number or a tuple of numbers (``lr``, ``betas``...), not a switch such as ``fused``."""
    if isinstance(value, tuple):
        return bool(value) and all(_is_setting(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def group_settings(optimizer) -> list[dict] | None:
    """The numeric settings of each parameter group (``lr``, ``initial_lr``, ``momentum``, ``betas``...).

    A learning-rate scheduler changes ``lr`` during training and records
    ``initial_lr``; an optimizer rebuilt for a compacted or loaded module
    starts from the estimator's parameters instead, and a scheduler resumed
    on it (skorch's ``LRScheduler`` at ``partial_fit``) needs both.
    """
    if optimizer is None or not hasattr(optimizer, "param_groups"):
        return None
    groups = optimizer.param_groups
    return [{k: v for k, v in group.items() if k != "params" and _is_setting(v)} for group in groups]


def restore_group_settings(optimizer, settings) -> None:
    """Put ``settings`` (from :func:`group_settings`) back on a rebuilt optimizer with as many groups."""
    if optimizer is None or not isinstance(settings, list) or len(settings) != len(optimizer.param_groups):
        return
    for group, values in zip(optimizer.param_groups, settings):
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(key, str) and key != "params" and _is_setting(value):
                group[key] = value
