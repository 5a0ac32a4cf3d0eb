"""Plots of a fitted network: per-layer sparsity and training history.

matplotlib is an optional dependency: ``pip install skprune[plot]``. It is
imported when a plot is drawn, never when skprune is imported.
"""

from __future__ import annotations

import numpy as np

from .._unwrap import final_pruned_net
from ._matplotlib import axes_for

__all__ = ["plot_history", "plot_layer_sparsity"]


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

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier, plot_layer_sparsity
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.8), max_epochs=5, random_state=0).fit(X, y)
    >>> ax = plot_layer_sparsity(net)
    """
    net = final_pruned_net(estimator)
    table = net.pruning_report()
    plt_axes = axes_for(ax)
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

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier, plot_history
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.8), max_epochs=5, random_state=0).fit(X, y)
    >>> ax = plot_history(net)
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
    plt_axes = axes_for(ax)
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
