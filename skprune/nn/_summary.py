"""Per-layer figures counted from the weights themselves (exact zeros)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import torch
from torch import nn

from ._layers import iter_prunable_weights

__all__ = ["counted_layers", "layer_table", "count_parameters", "weight_counts"]

REPORT_COLUMNS = [
    "layer",
    "type",
    "shape",
    "params",
    "nonzero",
    "weight_params",
    "weight_nonzero",
    "sparsity",
]


def _is_sparse(tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.layout != torch.strided


def weight_counts(tensor) -> tuple[int, int]:
    """``(entries, non-zero entries)`` of a dense or sparse (CSR, COO) tensor, counted as dense."""
    if not isinstance(tensor, torch.Tensor):
        return 0, 0
    total = 1
    for size in tensor.shape:
        total *= int(size)
    values = tensor.values() if _is_sparse(tensor) else tensor
    return total, int(torch.count_nonzero(values.detach()))


def counted_layers(module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield ``(layer_name, layer)`` for every Linear/Conv layer, and every layer with a sparse weight.

    A layer that stores its weight as a sparse tensor (a CSR copy made by
    :func:`skprune.to_sparse`) is not prunable, but its weights count in
    the sparsity, the parameter counts and the layer table like those of
    the Linear layer it replaced.
    """
    prunable = {id(layer) for _, _, layer in iter_prunable_weights(module)}
    for layer_name, layer in module.named_modules():
        if id(layer) in prunable or _is_sparse(getattr(layer, "weight", None)):
            yield layer_name, layer


@torch.no_grad()
def layer_table(module: nn.Module) -> pd.DataFrame:
    """Return one row per Linear/Conv layer of ``module``.

    Columns: ``layer`` (module name), ``type``, ``shape`` (weight shape),
    ``params`` and ``nonzero`` (weight and bias together),
    ``weight_params``, ``weight_nonzero`` and ``sparsity`` (fraction of the
    weight entries that are exactly zero).

    Parameters
    ----------
    module : torch.nn.Module
        The network.

    Returns
    -------
    pandas.DataFrame
        One row per layer; :meth:`skprune.PrunedNet.pruning_report` is this
        table for the fitted module.

    Examples
    --------
    >>> from torch import nn
    >>> from skprune.nn import layer_table
    >>> layer_table(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))["layer"].tolist()
    ['0', '2']
    """
    rows = []
    for layer_name, layer in counted_layers(module):
        weight = layer.weight
        w_total, w_nonzero = weight_counts(weight)
        b_total, b_nonzero = weight_counts(getattr(layer, "bias", None))
        rows.append(
            {
                "layer": layer_name,
                "type": type(layer).__name__,
                "shape": tuple(weight.shape),
                "params": w_total + b_total,
                "nonzero": w_nonzero + b_nonzero,
                "weight_params": w_total,
                "weight_nonzero": w_nonzero,
                "sparsity": 1.0 - w_nonzero / w_total if w_total else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


@torch.no_grad()
def count_parameters(module: nn.Module) -> tuple[int, int]:
    """Return ``(total, nonzero)`` over all parameters of ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The network.

    Returns
    -------
    tuple of (int, int)
        Number of parameter entries, and of those not exactly zero.

    Examples
    --------
    >>> from torch import nn
    >>> from skprune.nn import count_parameters
    >>> layer = nn.Linear(3, 2)
    >>> _ = nn.init.zeros_(layer.bias)
    >>> count_parameters(layer)
    (8, 6)
    """
    total = 0
    nonzero = 0
    for param in module.parameters():
        total += param.numel()
        nonzero += int(torch.count_nonzero(param))
    for _, layer in counted_layers(module):  # sparse weights (and their biases) are buffers
        if _is_sparse(layer.weight):
            for tensor in (layer.weight, getattr(layer, "bias", None)):
                if not isinstance(tensor, nn.Parameter):
                    entries, nonzeros = weight_counts(tensor)
                    total, nonzero = total + entries, nonzero + nonzeros
    return total, nonzero
