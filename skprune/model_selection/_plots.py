"""Plot of the accuracy-versus-sparsity trade-off of a search.

matplotlib is an optional dependency: ``pip install skprune[plot]``. It is
imported when a plot is drawn, never when skprune is imported.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier, is_regressor

from ..inspection._matplotlib import axes_for
from ._rules import (
    OneStandardErrorRule,
    _mean_and_se,
    _metric_name,
    _sparsity_values,
    find_sparsity_key,
)

__all__ = ["plot_sparsity_path"]


def _search_metric(search, metric):
    if metric is not None:
        return metric
    refit = getattr(search, "refit", None)
    if isinstance(refit, OneStandardErrorRule):
        return refit.metric
    if isinstance(refit, str):
        return refit
    return None


def _metric_label(search, metric: str) -> str:
    """Readable name of the plotted score: the scoring string, or the estimator's default score."""
    if metric != "score":
        return metric
    scoring = getattr(search, "scoring", None)
    if isinstance(scoring, str):
        return scoring
    estimator = getattr(search, "estimator", None)
    if scoring is None and estimator is not None:
        if is_classifier(estimator):
            return "accuracy"
        if is_regressor(estimator):
            return "R²"
    return "score"


def _uses_1se(search) -> bool:
    return getattr(search, "selection", None) == "1se" or isinstance(
        getattr(search, "refit", None), OneStandardErrorRule
    )


def plot_sparsity_path(search, *, ax=None, metric=None, sparsity=None, show_1se=None, label=None):
    """Plot mean cross-validated score against sparsity, with error bars and the chosen point.

    Error bars are one standard error of the fold scores
    (``std(ddof=1) / sqrt(n_folds)``). When the search has other
    hyperparameters besides sparsity (e.g. ``alpha`` in a
    ``GridSearchCV``), each of their combinations is one line.

    Parameters
    ----------
    search : fitted PrunedNetCV, GridSearchCV or RandomizedSearchCV, or a ``cv_results_`` mapping
        The search whose ``cv_results_`` to plot. The chosen candidate
        (``best_index_``) is marked when the search has one.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; ``None`` creates a figure.
    metric : str or None, default=None
        Score to plot for multi-metric searches; ``None`` uses the metric
        the search refit on, else ``"score"``.
    sparsity : str or None, default=None
        ``cv_results_`` key of the sparsity; ``None`` finds the
        ``param_...pruner__sparsity`` key.
    show_1se : bool or None, default=None
        Draw the "best mean − 1 SE" threshold of the one-standard-error
        rule; ``None`` draws it when the search selected with that rule.
    label : str or None, default=None
        Legend label of the path (single-line plots).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetCV, plot_sparsity_path
    >>> X, y = load_iris(return_X_y=True)
    >>> search = PrunedNetCV(PrunedNetClassifier(pruner=MagnitudePruning(), random_state=0),
    ...                      sparsities=[0.0, 0.5, 0.9], cv=3, dense_epochs=5, finetune_epochs=1).fit(X, y)
    >>> ax = plot_sparsity_path(search)
    """
    plt_axes = axes_for(ax)
    results = search.cv_results_ if hasattr(search, "cv_results_") else search
    metric = _metric_name(results, _search_metric(search, metric))
    mean, se = _mean_and_se(results, metric)
    sparsities = _sparsity_values(results, sparsity)
    sparsity_key = find_sparsity_key(results) if sparsity is None else sparsity

    # one line per combination of the other hyperparameters
    params = list(results["params"]) if "params" in results else [{}] * len(mean)
    param_name = sparsity_key[len("param_") :] if sparsity_key.startswith("param_") else None
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(params):
        others = {k: v for k, v in p.items() if k != param_name}
        key = ", ".join(f"{k.rsplit('__', 1)[-1]}={v!r}" for k, v in sorted(others.items()))
        groups.setdefault(key, []).append(i)
    for key, index in groups.items():
        index = np.asarray(index)[np.argsort(sparsities[index], kind="stable")]
        plt_axes.errorbar(
            sparsities[index],
            mean[index],
            yerr=se[index],
            marker="o",
            markersize=4,
            capsize=3,
            label=key or label or "mean ± 1 SE over folds",
        )

    best_index = getattr(search, "best_index_", None)
    if show_1se is None:
        show_1se = _uses_1se(search)
    if show_1se:
        top = int(np.nanargmax(mean))
        plt_axes.axhline(
            mean[top] - se[top], color="grey", linestyle="--", linewidth=1, label="best mean − 1 SE"
        )
    if best_index is not None:
        plt_axes.plot(
            sparsities[best_index],
            mean[best_index],
            marker="*",
            markersize=14,
            color="crimson",
            linestyle="none",
            label=f"chosen: sparsity {sparsities[best_index]:g}",
            zorder=5,
        )
    plt_axes.set_xlabel("sparsity (fraction of weights pruned)")
    plt_axes.set_ylabel(f"cross-validated {_metric_label(search, metric)}")
    plt_axes.grid(True, alpha=0.3)
    plt_axes.legend(loc="lower left", fontsize="small")
    return plt_axes
