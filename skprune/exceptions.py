"""Exceptions raised by skprune."""

from __future__ import annotations

__all__ = ["TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite.

    Raised by ``fit`` instead of returning a model that predicts garbage.
    Usually fixed by a smaller ``lr``, scaled inputs (``StandardScaler``) or
    a smaller ``alpha``.
    """
