"""A Linear layer whose weight is stored as a CSR sparse matrix (the ``to_sparse`` export)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SparseLinear"]


class SparseLinear(nn.Module):
    """A Linear layer whose weight is a CSR sparse tensor (inference only).

    Parameters
    ----------
    linear : torch.nn.Linear
        Layer to convert; exact zeros of its weight are not stored.
    """

    def __init__(self, linear: nn.Linear):
        super().__init__()
        weight = linear.weight.detach()
        csr = weight.to_sparse_csr()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer(
            "weight",
            torch.sparse_csr_tensor(
                csr.crow_indices().to(torch.int32),
                csr.col_indices().to(torch.int32),
                csr.values(),
                size=weight.shape,
                check_invariants=False,  # built by torch from a dense tensor: valid
            ),
        )
        bias = linear.bias.detach() if linear.bias is not None else weight.new_zeros(weight.shape[0])
        self.register_buffer("bias", bias.clone())

    def __deepcopy__(self, memo) -> SparseLinear:
        # torch cannot deep-copy a CSR tensor ("Cannot access storage"): copy its parts
        weight = self.weight
        new = SparseLinear.__new__(SparseLinear)
        nn.Module.__init__(new)
        new.in_features, new.out_features = self.in_features, self.out_features
        new.register_buffer(
            "weight",
            torch.sparse_csr_tensor(
                weight.crow_indices().clone(),
                weight.col_indices().clone(),
                weight.values().clone(),
                size=weight.shape,
                check_invariants=False,  # a copy of a valid tensor
            ),
        )
        new.register_buffer("bias", self.bias.clone())
        new.train(self.training)
        memo[id(self)] = new
        return new

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return ``X @ W.T + b`` computed with the sparse weight."""
        shape = X.shape
        X2 = X.reshape(-1, shape[-1])
        out = torch.addmm(self.bias[:, None], self.weight, X2.T).T
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        nnz = self.weight.values().numel()
        total = self.in_features * self.out_features
        return f"in_features={self.in_features}, out_features={self.out_features}, nonzero={nnz}/{total}"
