"""Copying a fitted estimator around a replacement module."""

from __future__ import annotations

import copy

from torch import nn

__all__ = ["copy_with_module"]


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
