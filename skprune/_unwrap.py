"""Find the PrunedNet inside a pipeline or a fitted search."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from ._estimator import PrunedNet

__all__ = ["final_pruned_net"]


def final_pruned_net(estimator, *, name: str = "estimator", unwrap_search: bool = True) -> PrunedNet:
    """Return the :class:`PrunedNet` of ``estimator``: itself or a pipeline's last step.

    With ``unwrap_search=True``, fitted searches (``GridSearchCV``,
    ``PrunedNetCV``) are unwrapped to their ``best_estimator_``.

    Raises
    ------
    TypeError
        If ``estimator`` neither is nor ends with a ``PrunedNet``.
    """
    inner = estimator
    if unwrap_search and hasattr(inner, "best_estimator_"):
        inner = inner.best_estimator_
    if isinstance(inner, Pipeline):
        inner = inner.steps[-1][1]
    if not isinstance(inner, PrunedNet):
        raise TypeError(
            f"{name} must be a PrunedNetClassifier, PrunedNetRegressor (any skprune PrunedNet) "
            f"or a Pipeline ending with one, got {type(estimator).__name__}: {estimator!r:.200}."
        )
    return inner
