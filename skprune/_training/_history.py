"""The training history (skorch ``History``) as a pandas DataFrame, and the sparsity it records per epoch."""

from __future__ import annotations

from numbers import Number

import numpy as np
import pandas as pd
import torch

from ..nn._summary import counted_layers, weight_counts

__all__ = ["history_to_frame", "measured_sparsity"]

_FIRST = ("train_loss", "valid_loss")
_LAST = ("sparsity",)


def _column_order(columns) -> list[str]:
    """Losses first, then scores, sparsity, ``event_*`` entries and the duration."""
    columns = set(columns)
    first = [c for c in _FIRST if c in columns]
    events = sorted(c for c in columns if c.startswith("event_"))
    tail = [c for c in _LAST if c in columns] + events + (["dur"] if "dur" in columns else [])
    middle = sorted(columns - set(first) - set(tail))
    return first + middle + tail


def history_to_frame(history) -> pd.DataFrame:
    """Turn a skorch ``History`` (a list of per-epoch dicts) into a DataFrame.

    Parameters
    ----------
    history : skorch.history.History or list of dict
        One dict per epoch with an ``epoch`` entry.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, indexed by ``epoch``; one column per scalar entry
        (see :meth:`skprune.PrunedNet.history_frame`), leaving out skorch's
        ``*_best`` flags and ``*_batch_count`` bookkeeping. Entries missing
        in some epochs are NaN there.
    """
    rows = []
    for i, epoch in enumerate(history, start=1):
        row = {"epoch": int(epoch.get("epoch", i))}
        for key, value in epoch.items():
            if key in ("epoch", "batches") or key.endswith(("_best", "_batch_count")):
                continue
            if isinstance(value, (Number, np.number)) or value is None:
                row[key] = value
        rows.append(row)
    frame = pd.DataFrame.from_records(
        rows, columns=["epoch", *_column_order({k for r in rows for k in r} - {"epoch"})]
    )
    return frame.set_index("epoch")


def measured_sparsity(module: torch.nn.Module) -> float:
    """Fraction of the Linear/Conv weights of ``module`` (CSR copies included) that are exactly zero."""
    total = nonzero = 0
    with torch.no_grad():
        for _, layer in counted_layers(module):
            entries, nonzeros = weight_counts(layer.weight)
            total, nonzero = total + entries, nonzero + nonzeros
    return 1.0 - nonzero / total if total else 0.0
