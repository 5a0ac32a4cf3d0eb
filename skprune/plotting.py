"""Plots of the accuracy-versus-sparsity trade-off, per-layer sparsity and training history.

matplotlib is an optional dependency: ``pip install skprune[plot]``. It is
imported when a plot is drawn, never when skprune is imported.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier, is_regressor

from .scoring import final_pruned_net
from .selection import (
    OneStandardErrorRule,
    _mean_and_se,
    _metric_name,
    _sparsity_values,
    find_sparsity_key,
)

__all__ = ["plot_history", "plot_layer_sparsity", "plot_sparsity_path"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "skprune's plots need matplotlib, which is not installed: pip install 'skprune[plot]' "
            "(or pip install matplotlib)."
        ) from exc
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


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
    search : fitted PrunedNetCV, GridSearchCV or RandomizedSearchCV, or a cv_results_ mapping
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
    """
    plt_axes = _axes(ax)
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


def plot_layer_sparsity(estimator, *, ax=None):
    """Bar chart of each Linear/Conv layer's sparsity, counted from exact zeros.

    Parameters
    ----------
    estimator : fitted PrunedNet, Pipeline ending with one, or a fitted search
        A search (``PrunedNetCV``, ``GridSearchCV``) is unwrapped to its
        ``best_estimator_``.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; ``None`` creates a figure.

    Returns
    -------
    matplotlib.axes.Axes
    """
    net = final_pruned_net(estimator)
    table = net.pruning_report()
    plt_axes = _axes(ax)
    x = np.arange(len(table))
    bars = plt_axes.bar(x, table["sparsity"].astype(float), color="steelblue")
    for bar, nonzero, total in zip(bars, table["weight_nonzero"], table["weight_params"]):
        plt_axes.annotate(
            f"{nonzero}/{total}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize="small",
            xytext=(0, 2),
            textcoords="offset points",
        )
    plt_axes.set_xticks(x, table["layer"])
    plt_axes.set_ylim(0, 1.1)
    plt_axes.set_ylabel("sparsity (exact zeros)")
    plt_axes.set_title(f"per-layer sparsity (overall {net.sparsity_:.2f}); labels: nonzero/total weights")
    return plt_axes


def plot_history(estimator, *, ax=None, metrics=None, sparsity=True):
    """Plot the training history: losses (or other scores) per epoch, and the sparsity.

    The metrics are drawn on ``ax`` against the epoch; the measured
    sparsity after each epoch is drawn as a shaded area on a second y-axis
    (0 to 1, on the right), so the loss can be read against each pruning
    step.

    Parameters
    ----------
    estimator : fitted PrunedNet, Pipeline ending with one, or a fitted search
        A search (``PrunedNetCV``, ``GridSearchCV``) is unwrapped to its
        ``best_estimator_``.
    ax : matplotlib Axes or None, default=None
        Axes to draw on; ``None`` creates a figure.
    metrics : str, list of str or None, default=None
        Columns of :meth:`~skprune.PrunedNet.history_frame` to draw on the
        left axis; ``None`` draws ``train_loss`` and, with a validation
        split, ``valid_loss``.
    sparsity : bool, default=True
        Draw the sparsity on a second y-axis.

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the metrics; the sparsity axis is ``ax.sparsity_axis``
        (``None`` when not drawn).
    """
    net = final_pruned_net(estimator)
    frame = net.history_frame()
    if metrics is None:
        metrics = [c for c in ("train_loss", "valid_loss") if c in frame.columns]
    elif isinstance(metrics, str):
        metrics = [metrics]
    else:
        metrics = list(metrics)
    unknown = [m for m in metrics if m not in frame.columns]
    if unknown:
        raise ValueError(
            f"metrics {unknown} are not in the training history; available: {list(frame.columns)}."
        )
    plt_axes = _axes(ax)
    epochs = frame.index.to_numpy()
    marker = "o" if len(frame) <= 30 else None
    for metric in metrics:
        plt_axes.plot(epochs, frame[metric].astype(float), marker=marker, markersize=3, label=metric)
    plt_axes.set_xlabel("epoch")
    if metrics and all(m.endswith("loss") for m in metrics):
        plt_axes.set_ylabel("loss")
    elif len(metrics) == 1:
        plt_axes.set_ylabel(metrics[0])
    plt_axes.grid(True, alpha=0.3)

    handles, labels = plt_axes.get_legend_handles_labels()
    sparsity_axis = None
    if sparsity and "sparsity" in frame.columns:
        sparsity_axis = plt_axes.twinx()
        values = frame["sparsity"].astype(float).to_numpy()
        sparsity_axis.fill_between(epochs, values, color="grey", alpha=0.2, step="mid")
        (line,) = sparsity_axis.step(epochs, values, where="mid", color="grey", linewidth=1)
        sparsity_axis.set_ylim(0, 1.05)
        sparsity_axis.set_ylabel("sparsity (exact zeros)")
        # draw the metrics above the shaded sparsity, not under it
        plt_axes.set_zorder(sparsity_axis.get_zorder() + 1)
        plt_axes.patch.set_visible(False)
        handles.append(line)
        labels.append("sparsity")
    if handles:
        plt_axes.legend(handles, labels, loc="best", fontsize="small")
    plt_axes.set_title(f"training history of {type(net).__name__}")
    plt_axes.sparsity_axis = sparsity_axis
    return plt_axes
