"""Scorers that report how pruned a fitted model is, for multi-metric searches."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from .estimator import PrunedNet

__all__ = ["final_pruned_net", "sparsity_scorer"]


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


def sparsity_scorer(estimator, X=None, y=None) -> float:
    """Fraction of the fitted network's Linear/Conv weights that are exactly zero.

    A scorer with scikit-learn's ``(estimator, X, y)`` signature, so a
    multi-metric search records the sparsity each candidate really reached
    (counted from the weights) next to its accuracy; ``X`` and ``y`` are
    ignored. Higher is sparser.

    Parameters
    ----------
    estimator : fitted PrunedNet or Pipeline ending with one
    X, y : ignored

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skprune import PrunedNetClassifier, MagnitudePruning, OneStandardErrorRule, sparsity_scorer
    >>> search = GridSearchCV(
    ...     PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=20),
    ...     {"pruner__sparsity": [0.5, 0.9]},
    ...     scoring={"accuracy": "accuracy", "sparsity": sparsity_scorer},
    ...     refit=OneStandardErrorRule(metric="accuracy"),
    ... )
    """
    return float(final_pruned_net(estimator).sparsity_)
