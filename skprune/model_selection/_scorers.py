"""Scorers that report how pruned a fitted model is, for multi-metric searches."""

from __future__ import annotations

from .._unwrap import final_pruned_net

__all__ = ["sparsity_scorer"]


def sparsity_scorer(estimator, X=None, y=None) -> float:
    """Fraction of the fitted network's Linear/Conv weights that are exactly zero.

    A scorer with scikit-learn's ``(estimator, X, y)`` signature, so a
    multi-metric search records the sparsity each candidate really reached
    (counted from the weights) next to its accuracy; ``X`` and ``y`` are
    ignored. Higher is sparser.

    A network compacted during fit (a structured pruner with the default
    ``compact_during_fit=True``) has its removed units deleted, not zeroed,
    so its measured sparsity is about 0 whatever ``pruner__sparsity`` was:
    compare such candidates by ``param_...pruner__sparsity`` (the default
    of :class:`~skprune.OneStandardErrorRule`) or by ``n_params_``, or
    search with ``compact_during_fit=False``.

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
