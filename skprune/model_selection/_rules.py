"""Choosing a sparsity from cross-validation results: best score or one standard error.

The one-standard-error rule (Breiman et al. 1984; glmnet's ``lambda.1se``)
picks the *simplest* model whose mean cross-validated score is within one
standard error of the best mean score. Applied to pruning, "simplest" means
"sparsest": the largest sparsity that cross-validation cannot tell apart
from the best one.

Both :class:`~skprune.PrunedNetCV` and ``GridSearchCV(refit=OneStandardErrorRule())``
apply the rule through :func:`one_standard_error_index`, to results laid out
as scikit-learn's ``cv_results_`` (a dict of arrays or a DataFrame).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import numpy as np

__all__ = [
    "OneStandardErrorRule",
    "best_score_index",
    "find_sparsity_key",
    "one_standard_error_index",
    "standard_error",
]


def standard_error(scores, axis: int = -1) -> np.ndarray:
    """Standard error of the mean of cross-validation scores.

    ``std(scores, ddof=1) / sqrt(n_folds)``, as in glmnet's ``cvsd``. NaN
    scores (failed fits) are left out.

    Parameters
    ----------
    scores : array-like
        Scores, folds along ``axis``.
    axis : int, default=-1
        Axis of the folds.

    Returns
    -------
    ndarray
        Standard errors (0 where fewer than two finite scores exist).
    """
    scores = np.asarray(scores, dtype=float)
    n = np.sum(np.isfinite(scores), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice" where every score is NaN
        centered = scores - np.nanmean(scores, axis=axis, keepdims=True)
        variance = np.nansum(centered**2, axis=axis) / (n - 1)
        se = np.sqrt(variance / n)
    return np.where(n > 1, se, 0.0)


def _columns(cv_results) -> list[str]:
    if not isinstance(cv_results, Mapping) and not hasattr(cv_results, "columns"):
        raise TypeError(
            "cv_results must be a dict of arrays or a DataFrame laid out like "
            f"GridSearchCV.cv_results_, got {type(cv_results).__name__}."
        )
    return [str(c) for c in (cv_results.columns if hasattr(cv_results, "columns") else cv_results)]


def find_sparsity_key(cv_results) -> str:
    """Return the ``cv_results_`` key holding the pruner's target sparsity.

    The unique key ``param_pruner__sparsity`` or ``param_<step>__pruner__sparsity``
    (a pipeline).

    Raises
    ------
    ValueError
        If there is no such key, or several.
    """
    columns = _columns(cv_results)
    keys = [c for c in columns if re.fullmatch(r"param_(.+__)?pruner__sparsity", c)]
    if len(keys) != 1:
        found = "no" if not keys else f"several ({keys})"
        raise ValueError(
            f"Found {found} 'param_...pruner__sparsity' key in cv_results; searched "
            f"{len(columns)} keys. Search over a pruner__sparsity parameter or pass "
            "sparsity='<key>' naming the cv_results key that holds the sparsity "
            "(e.g. 'mean_test_sparsity' from skprune.sparsity_scorer)."
        )
    return keys[0]


def _metric_name(cv_results, metric: str | None) -> str:
    columns = _columns(cv_results)
    available = sorted(c[len("mean_test_") :] for c in columns if c.startswith("mean_test_"))
    if metric is None:
        if "score" in available:
            return "score"
        raise ValueError(
            "cv_results come from multi-metric scoring; pass metric=<name> to say which "
            f"score to select on, one of {available}."
        )
    if metric not in available:
        raise ValueError(f"metric={metric!r} is not in cv_results; available metrics are {available}.")
    return metric


def _mean_and_se(cv_results, metric: str) -> tuple[np.ndarray, np.ndarray]:
    columns = _columns(cv_results)
    split_keys = sorted(
        (c for c in columns if re.fullmatch(rf"split\d+_test_{re.escape(metric)}", c)),
        key=lambda c: int(re.match(r"split(\d+)", c).group(1)),
    )
    if not split_keys:
        raise ValueError(
            f"cv_results has no 'split<k>_test_{metric}' keys: the standard error needs the "
            "per-fold scores (GridSearchCV and PrunedNetCV always record them)."
        )
    splits = np.column_stack([np.asarray(cv_results[k], dtype=float) for k in split_keys])
    mean = np.asarray(cv_results[f"mean_test_{metric}"], dtype=float)
    return mean, standard_error(splits, axis=1)


def _sparsity_values(cv_results, sparsity: str | None) -> np.ndarray:
    key = find_sparsity_key(cv_results) if sparsity is None else sparsity
    if key not in _columns(cv_results):
        raise ValueError(f"sparsity={key!r} is not a key of cv_results.")
    values = np.ma.filled(np.ma.asarray(cv_results[key], dtype=object), np.nan)
    try:
        values = values.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"cv_results[{key!r}] must hold numbers, got {values[:5]!r}.") from None
    if np.isnan(values).any():
        missing = np.flatnonzero(np.isnan(values))[:5].tolist()
        raise ValueError(
            f"cv_results[{key!r}] has no value for candidates {missing}: every candidate of the "
            "search must set the sparsity."
        )
    return values


def best_score_index(mean_scores, sparsities) -> int:
    """Index of the best mean score, ties broken toward the larger sparsity.

    Parameters
    ----------
    mean_scores : array-like of shape (n_candidates,)
        Mean cross-validated scores (higher is better); NaN is ignored.
    sparsities : array-like of shape (n_candidates,)
        Sparsity of each candidate.

    Returns
    -------
    int
    """
    mean_scores = np.asarray(mean_scores, dtype=float)
    sparsities = np.asarray(sparsities, dtype=float)
    if not np.isfinite(mean_scores).any():
        raise ValueError("All mean scores are NaN or infinite: every candidate failed to fit or score.")
    best = np.nanmax(np.where(np.isfinite(mean_scores), mean_scores, np.nan))
    tied = np.flatnonzero(mean_scores == best)
    return int(tied[np.argmax(sparsities[tied])])


def one_standard_error_index(cv_results, *, metric: str | None = None, sparsity: str | None = None) -> int:
    """Index of the sparsest candidate within one standard error of the best.

    Let ``b`` be the candidate with the best mean score and ``se_b`` the
    standard error of its fold scores (``std(ddof=1) / sqrt(n_folds)``).
    Among candidates whose mean score is at least ``mean_b - se_b``, the
    one with the largest sparsity is returned; ties in sparsity (e.g. other
    hyperparameters in the grid) go to the higher mean score.

    Parameters
    ----------
    cv_results : dict or DataFrame
        Results laid out like ``GridSearchCV.cv_results_``: ``mean_test_<metric>``
        and ``split<k>_test_<metric>`` keys plus a sparsity key.
    metric : str or None, default=None
        Score to select on; ``None`` means ``"score"`` (single-metric search).
        Higher must be better, as with every scikit-learn scorer.
    sparsity : str or None, default=None
        Key of the candidates' sparsity; ``None`` finds the unique
        ``param_...pruner__sparsity`` key. ``"mean_test_sparsity"`` (from
        :func:`skprune.sparsity_scorer`) uses the measured sparsity instead.

    Returns
    -------
    int
        Index into the candidates (what ``GridSearchCV`` stores as ``best_index_``).

    Examples
    --------
    >>> from skprune import one_standard_error_index
    >>> cv_results = {
    ...     "param_pruner__sparsity": [0.5, 0.8, 0.9],
    ...     "split0_test_score": [0.95, 0.95, 0.80],
    ...     "split1_test_score": [0.97, 0.96, 0.82],
    ...     "split2_test_score": [0.96, 0.96, 0.81],
    ...     "mean_test_score": [0.96, 0.9567, 0.81],
    ... }
    >>> one_standard_error_index(cv_results)  # 0.8 is within one standard error of the best
    1
    """
    metric = _metric_name(cv_results, metric)
    mean, se = _mean_and_se(cv_results, metric)
    sparsities = _sparsity_values(cv_results, sparsity)
    best = best_score_index(mean, sparsities)
    threshold = mean[best] - se[best]
    eligible = np.flatnonzero(np.isfinite(mean) & (mean >= threshold))
    top = sparsities[eligible].max()
    eligible = eligible[sparsities[eligible] == top]
    return int(eligible[np.argmax(mean[eligible])])


class OneStandardErrorRule:
    """Refit callable for ``GridSearchCV`` applying the one-standard-error rule.

    Pass an instance as ``refit``: the search then refits the sparsest
    candidate whose mean score is within one standard error of the best
    (see :func:`one_standard_error_index`).

    Parameters
    ----------
    metric : str or None, default=None
        Score to select on; required with multi-metric ``scoring``.
    sparsity : str or None, default=None
        ``cv_results_`` key of the sparsity; ``None`` finds the
        ``param_...pruner__sparsity`` key.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skprune import PrunedNetClassifier, MagnitudePruning, OneStandardErrorRule
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=20)
    >>> search = GridSearchCV(net, {"pruner__sparsity": [0.5, 0.8, 0.9, 0.95]},
    ...                       refit=OneStandardErrorRule())
    """

    def __init__(self, metric: str | None = None, sparsity: str | None = None):
        self.metric = metric
        self.sparsity = sparsity

    def __call__(self, cv_results) -> int:
        """Return the index of the chosen candidate in ``cv_results``."""
        return one_standard_error_index(cv_results, metric=self.metric, sparsity=self.sparsity)

    def __repr__(self) -> str:
        args = [f"{k}={v!r}" for k, v in (("metric", self.metric), ("sparsity", self.sparsity)) if v]
        return f"OneStandardErrorRule({', '.join(args)})"
