"""The input-feature view of a network: its first layer and the weight each feature gets.

Input feature ``j`` reaches a network only through column ``j`` of the
weight of its first layer (``weight[:, j]`` of an ``nn.Linear``). The norm of
that column is therefore what the network makes of the feature: a column of
exact zeros means the feature is not used at all. :class:`~skprune.InputPruning`
removes whole columns, and the estimators' ``feature_importances_`` reads
their norms.

The first layer is the first Linear/Conv layer in ``named_modules`` order
(the first of :func:`~skprune.nn.iter_prunable_weights`), which is the
input layer of :class:`~skprune.MLP` and of any module that registers its
layers in the order it uses them.
"""

from __future__ import annotations

import torch
from torch import nn

from ._layers import iter_prunable_weights

__all__ = ["input_layer", "input_column_norms"]


def input_layer(module: nn.Module, *, owner: str = "InputPruning") -> tuple[str, str, nn.Linear]:
    """Return ``(param_name, layer_name, layer)`` of the network's input layer.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    owner : str, default="InputPruning"
        Name used in error messages.

    Returns
    -------
    tuple of (str, str, torch.nn.Linear)

    Raises
    ------
    ValueError
        If the module has no Linear/Conv layer, or its first one is not an
        ``nn.Linear`` (for a convolution, columns are channels and pixels,
        not input features).
    """
    first = next(iter_prunable_weights(module), None)
    if first is None:
        raise ValueError(
            f"{owner} needs a network whose first layer is torch.nn.Linear; "
            f"{type(module).__name__} has no Linear or Conv layer."
        )
    param_name, layer_name, layer = first
    if not isinstance(layer, nn.Linear):
        raise ValueError(
            f"{owner} needs a network whose first layer (in named_modules order) is "
            f"torch.nn.Linear, so that input feature j is weight column j; the first layer of "
            f"{type(module).__name__} is {layer_name!r} of type {type(layer).__name__}."
        )
    return param_name, layer_name, layer


@torch.no_grad()
def input_column_norms(layer: nn.Linear) -> torch.Tensor:
    """Return the L2 norm of each input column of ``layer.weight``.

    Parameters
    ----------
    layer : torch.nn.Linear

    Returns
    -------
    Tensor of shape (in_features,)
        ``||weight[:, j]||_2`` for each input feature ``j``; exactly zero for
        a removed feature.
    """
    return torch.linalg.vector_norm(layer.weight.detach().float(), dim=0)
