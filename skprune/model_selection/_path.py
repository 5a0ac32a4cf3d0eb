"""The sparsity path of one training fold: one dense fit, then warm-started levels, each scored.

:class:`~skprune.PrunedNetCV` runs :func:`fit_and_score_path` once per fold
(in parallel through scikit-learn's ``Parallel``) and :func:`run_path` once
more to refit on all the data.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing

from .._unwrap import final_pruned_net

__all__ = ["EPOCHS_PER_HALVING", "fit_and_score_path", "level_epochs", "run_path"]


def _path_pruner(pruner, level: float, at: float):
    """A copy of the user's pruner pruning once, at fraction ``at`` of the fit, to ``level``."""
    return pruner.at_path_level(float(level), at=at)


#: default fine-tune epochs per halving of the density, as a fraction of ``dense_epochs``
#: (chosen with benchmarks/cv_cost.py: see the PrunedNetCV docstring)
EPOCHS_PER_HALVING = 1 / 8


def level_epochs(sparsities, dense_epochs: int, finetune_epochs) -> list[int]:
    """Fine-tune epochs of each level of a path.

    An int gives every level that many. ``None`` makes the budget follow
    the step: a level that divides the density of the previous one by
    ``2**h`` gets ``ceil(h * dense_epochs * EPOCHS_PER_HALVING)`` epochs
    (at least 1), so 0.9 -> 0.95 gets as many as 0.5 -> 0.75; a first
    level of 0 gets none (the dense fit is scored as it is).
    """
    if finetune_epochs is not None:
        return [int(finetune_epochs)] * len(sparsities)
    densities = np.concatenate([[1.0], 1.0 - np.asarray(sparsities, dtype=float)])
    halvings = np.log2(densities[:-1] / densities[1:])
    return [
        0 if h <= 0 else max(1, int(np.ceil(h * dense_epochs * EPOCHS_PER_HALVING - 1e-9))) for h in halvings
    ]


def run_path(model, X, y, sparsities, dense_epochs: int, finetune_epochs, on_level=None):
    """Fit ``model`` (a PrunedNet or a Pipeline ending with one) along the sparsity path.

    One dense fit of ``dense_epochs`` (the user's pruner at sparsity 0),
    then for each sparsity a warm-started fit of ``finetune_epochs`` (an
    int, or ``None`` for :func:`level_epochs`' step-following budget) that
    prunes at its start (after its first epoch for pruners that need
    gradient statistics) and fine-tunes for the rest. ``on_level(i, fit_time)``
    is called after level ``i``. The net's ``max_epochs``, ``warm_start``
    and ``pruner`` parameters are restored at the end (``pruner`` at the
    last sparsity fitted), so the fitted model shows the user's settings.

    Returns
    -------
    float
        Seconds spent in the dense fit (preprocessing included).
    """
    net = final_pruned_net(model)
    user_pruner, user_max_epochs, user_warm_start = net.pruner, net.max_epochs, net.warm_start
    start = time.perf_counter()
    Xt = model[:-1].fit_transform(X, y) if isinstance(model, Pipeline) and len(model.steps) > 1 else X
    net.set_params(
        pruner=_path_pruner(user_pruner, 0.0, at=1.0), max_epochs=dense_epochs, warm_start=False
    ).fit(Xt, y)
    dense_time = time.perf_counter() - start
    net.set_params(warm_start=True)
    budgets = level_epochs(sparsities, dense_epochs, finetune_epochs)
    for i, (sparsity, epochs) in enumerate(zip(sparsities, budgets)):
        start = time.perf_counter()
        at = 0.0
        if user_pruner.requires_gradient_statistics and epochs > 1:
            at = 1.0 / epochs  # gather one epoch of statistics before the step
        if epochs > 0:  # a first level of 0 scores the dense fit as it is
            net.set_params(pruner=_path_pruner(user_pruner, sparsity, at=at), max_epochs=epochs).fit(Xt, y)
        if on_level is not None:
            on_level(i, time.perf_counter() - start)
    net.set_params(
        pruner=_user_pruner_at(user_pruner, float(sparsities[-1])),
        max_epochs=user_max_epochs,
        warm_start=user_warm_start,
    )
    return dense_time


def _user_pruner_at(pruner, level: float):
    """The user's pruner, schedule included, set to ``level`` the way a path level sets it.

    ``at_path_level`` also resets what would override the level (``InputPruning``'s
    ``n_features``, a deprecated ``fraction``), so the result is a valid pruner to refit.
    """
    schedule = pruner.get_params(deep=False).get("schedule")
    at_level = _path_pruner(pruner, level, at=1.0)
    return at_level.set_params(schedule=None if schedule is None else clone(schedule))


def fit_and_score_path(model, X, y, train, test, scorer, sparsities, dense_epochs, finetune_epochs):
    """Run the sparsity path on one training fold; score the test fold at each level."""
    X_train, y_train = _safe_indexing(X, train), (None if y is None else _safe_indexing(y, train))
    X_test, y_test = _safe_indexing(X, test), (None if y is None else _safe_indexing(y, test))
    n = len(sparsities)
    out = {key: np.empty(n) for key in ("score", "fitted_sparsity", "fit_time", "score_time")}

    def on_level(i, fit_time):
        start = time.perf_counter()
        out["score"][i] = scorer(model, X_test, y_test)
        out["score_time"][i] = time.perf_counter() - start
        out["fit_time"][i] = fit_time
        out["fitted_sparsity"][i] = final_pruned_net(model).sparsity_

    out["dense_fit_time"] = run_path(
        model, X_train, y_train, sparsities, dense_epochs, finetune_epochs, on_level=on_level
    )
    return out
