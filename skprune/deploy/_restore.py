"""Rebuilding module structure from stored tensors: CSR Linear layers and compacted layer shapes."""

from __future__ import annotations

import torch
from torch import nn

from ..exceptions import PersistenceError
from ..nn._layers import refresh_sizes
from ._sparse_linear import SparseLinear

__all__ = ["resize_leaves", "sparse_state"]


def sparse_state(module: nn.Module, name: str, out_features: int, in_features: int, state: dict) -> dict:
    """Put a SparseLinear at ``name`` and turn its stored CSR parts into a CSR weight in ``state``."""
    key = f"{name}.weight"
    try:
        crow, col, values = (state.pop(f"{key}.{part}") for part in ("crow_indices", "col_indices", "values"))
    except KeyError:
        raise PersistenceError(f"The CSR weight of layer {name!r} is missing from the file.") from None
    if not (crow.dtype == col.dtype and crow.dtype in (torch.int32, torch.int64)):
        raise PersistenceError(f"Invalid CSR indices for layer {name!r}.")
    if crow.shape != (out_features + 1,) or col.shape != values.shape or values.dim() != 1:
        raise PersistenceError(f"Invalid CSR shape for layer {name!r}.")
    try:
        weight = torch.sparse_csr_tensor(
            crow, col, values, size=(out_features, in_features), check_invariants=True
        )
    except RuntimeError as exc:
        raise PersistenceError(f"Invalid CSR weight for layer {name!r}: {exc}") from None
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    sparse = SparseLinear.__new__(SparseLinear)
    nn.Module.__init__(sparse)
    sparse.in_features, sparse.out_features = in_features, out_features
    sparse.register_buffer("weight", weight)
    sparse.register_buffer("bias", torch.zeros(out_features, dtype=values.dtype))
    setattr(parent, child, sparse)
    state[key] = weight
    return state


@torch.no_grad()
def resize_leaves(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Give Linear/Conv/BatchNorm leaves the (compacted) shapes found in ``state``."""
    for name, layer in module.named_modules():
        prefix = f"{name}." if name else ""
        weight = state.get(prefix + "weight")
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and weight is not None:
            if tuple(layer.weight.shape) == tuple(weight.shape):
                continue
            if weight.dim() != layer.weight.dim():
                raise PersistenceError(f"The weight of layer {name!r} has the wrong number of dimensions.")
            layer.weight = nn.Parameter(torch.empty_like(weight, dtype=layer.weight.dtype))
            if layer.bias is not None:
                layer.bias = nn.Parameter(layer.weight.new_empty(weight.shape[0]))
            if isinstance(layer, nn.Linear):
                layer.out_features, layer.in_features = weight.shape[0], weight.shape[1]
            else:
                layer.out_channels, layer.in_channels = weight.shape[0], weight.shape[1] * layer.groups
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            mean = state.get(prefix + "running_mean", state.get(prefix + "weight"))
            if mean is None or mean.dim() != 1 or mean.shape[0] == layer.num_features:
                continue
            n = mean.shape[0]
            for attr in ("weight", "bias", "running_mean", "running_var"):
                old = getattr(layer, attr, None)
                if old is None:
                    continue
                new = old.new_empty(n)
                setattr(layer, attr, nn.Parameter(new) if isinstance(old, nn.Parameter) else new)
            layer.num_features = n
    refresh_sizes(module)
