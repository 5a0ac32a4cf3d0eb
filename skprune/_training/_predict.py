"""Prediction without skorch's per-call dataset, iterator and batch loop.

skorch's ``predict_proba`` wraps ``X`` in a dataset, builds an iterator and
runs an evaluation step per batch; at batch 1 that costs several times the
module's forward pass. :func:`fast_predict_proba` runs the module on the
validated tensor directly, in large chunks, under ``torch.no_grad``.
"""

from __future__ import annotations

import numpy as np
import torch

from ._data import ArrayDataset, BatchIterator

__all__ = ["fast_predict_proba"]

#: input elements per chunk (64 MiB of float32): large inputs go through in few forward passes
CHUNK_ELEMENTS = 1 << 24


def fast_predict_proba(net, X) -> np.ndarray | None:
    """Predicted outputs after the predict non-linearity, or ``None`` where skorch's path must run.

    Parameters
    ----------
    net : PrunedNet
        A fitted estimator.
    X : torch.Tensor or other
        Validated input (see ``prepare_predict_data``); anything but a dense
        tensor, or a custom dataset or iterator, returns ``None``.
    """
    if not (
        isinstance(X, torch.Tensor)
        and not X.is_sparse
        and net.dataset is ArrayDataset
        and net.iterator_valid is BatchIterator
        and not _user_nonlinearity(net)  # called per batch of batch_size, as skorch does
    ):
        return None
    module = net.module_
    if module.training:
        net._set_training(False)
    nonlinearity = net._get_predict_nonlinearity()
    n = X.shape[0]
    chunk = max(1, CHUNK_ELEMENTS // max(1, X[0].numel() if n else 1))
    outputs = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            y = module(X[start : start + chunk])
            if not isinstance(y, torch.Tensor):
                return None  # tuple/dict outputs: skorch's path takes the first
            outputs.append(nonlinearity(y).cpu().numpy())
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def _user_nonlinearity(net) -> bool:
    """Whether ``predict_nonlinearity`` is a user's callable (not ``"auto"`` or ``None``)."""
    nonlinearity = net.predict_nonlinearity
    return nonlinearity is not None and not (isinstance(nonlinearity, str) and nonlinearity == "auto")
