"""Per-layer figures counted from the weights themselves (exact zeros)."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ._layers import iter_prunable_weights

__all__ = ["layer_table", "count_parameters"]

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
    for _, layer_name, layer in iter_prunable_weights(module):
        weight = layer.weight
        bias = getattr(layer, "bias", None)
        w_total = weight.numel()
        w_nonzero = int(torch.count_nonzero(weight))
        b_total = bias.numel() if isinstance(bias, torch.Tensor) else 0
        b_nonzero = int(torch.count_nonzero(bias)) if b_total else 0
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
    return total, nonzero
