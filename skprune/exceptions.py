"""Exceptions raised by skprune."""

from __future__ import annotations

__all__ = ["CompactionError", "ConstantModelWarning", "PersistenceError", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite.

    Raised by ``fit`` instead of returning a model that predicts garbage.
    Usually fixed by a smaller ``lr``, scaled inputs (``StandardScaler``) or
    a smaller ``alpha``.

    Examples
    --------
    >>> import numpy as np
    >>> from skprune import PrunedNetRegressor, TrainingDivergedError
    >>> X, y = np.random.default_rng(0).normal(size=(50, 3)), np.full(50, 1e30)
    >>> try:
    ...     PrunedNetRegressor(max_epochs=2, lr=1.0).fit(X, y)
    ... except (TrainingDivergedError, ValueError) as error:
    ...     print(type(error).__name__)
    TrainingDivergedError
    """


class CompactionError(ValueError):
    """The network cannot be compacted: a removed unit feeds an operation compaction cannot follow.

    Raised by ``compact()`` and :func:`~skprune.compact_module`, naming the
    layer and the operation (a residual add, a concatenation, a reshape).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skprune import CompactionError, compact_module
    >>> class Residual(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         return self.b(torch.relu(self.a(x)) + x)
    >>> module = Residual()
    >>> with torch.no_grad():
    ...     module.a.weight[0] = 0.0
    ...     module.a.bias[0] = 0.0
    >>> try:
    ...     compact_module(module)
    ... except CompactionError:
    ...     print("cannot compact across a residual add")
    cannot compact across a residual add
    """


class PersistenceError(ValueError):
    """A file cannot be loaded (wrong format, version or content), or an estimator cannot be saved.

    Raised by :func:`~skprune.load` for anything that is not a file written
    by :func:`~skprune.save` (a pickle, a truncated file, a class outside the
    allow-list), and by :func:`~skprune.save` for what it cannot store.

    Examples
    --------
    >>> import pickle, tempfile
    >>> from pathlib import Path
    >>> import skprune
    >>> path = Path(tempfile.mkdtemp()) / "model.pkl"
    >>> _ = path.write_bytes(pickle.dumps({"not": "a skprune file"}))
    >>> try:
    ...     skprune.load(path)
    ... except skprune.PersistenceError:
    ...     print("refused")
    refused
    """


class ConstantModelWarning(UserWarning):
    """A fitted network predicts one constant for every training row while the targets vary.

    Issued at the end of ``fit``/``partial_fit`` (with or without a pruner);
    the message names the likely cause: too high a sparsity, too few
    epochs, or the scale of the data. Filter it like any warning category.

    Examples
    --------
    >>> import warnings
    >>> from skprune import ConstantModelWarning
    >>> issubclass(ConstantModelWarning, UserWarning)
    True
    >>> with warnings.catch_warnings():  # make a constant model an error in a search
    ...     warnings.simplefilter("error", ConstantModelWarning)
    """
