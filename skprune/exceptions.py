"""Exceptions raised by skprune."""

from __future__ import annotations

__all__ = ["CompactionError", "PersistenceError", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite.

    Raised by ``fit`` instead of returning a model that predicts garbage.
    Usually fixed by a smaller ``lr``, scaled inputs (``StandardScaler``) or
    a smaller ``alpha``.
    """


class CompactionError(ValueError):
    """The network cannot be compacted: a removed unit feeds an operation compaction cannot follow."""


class PersistenceError(ValueError):
    """A file cannot be loaded (wrong format, version or content), or an estimator cannot be saved."""
