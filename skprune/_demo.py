"""The main job: choose how sparse a network on digits should be, by cross-validation.

It practises what the library teaches: :class:`~skprune.PrunedNetCV` computes
a warm-started sparsity path per fold, and the one-standard-error rule picks
the sparsest network whose score cannot be told apart from the best one.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._classifier import PrunedNetClassifier
from .model_selection import PrunedNetCV
from .pruners import MagnitudePruning

__all__ = ["run_demo"]

DEFAULT_SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)


class _ProgressScorer:
    """Accuracy that also prints a progress line each time a held-out fold is scored.

    ``PrunedNetCV`` scores every level of every fold's path; the line goes to
    the standard error stream of the process that scores (joblib's workers
    inherit it), so progress shows whatever ``n_jobs`` is.
    """

    def __init__(self, start: float):
        self.start = start
        self._accuracy = get_scorer("accuracy")

    def __call__(self, estimator, X, y):
        score = self._accuracy(estimator, X, y)
        net = estimator[-1]
        print(
            f"  [{time.time() - self.start:6.1f} s] a held-out fold scored at sparsity "
            f"{net.sparsity_:.2f}: accuracy {score:.4f}",
            file=sys.stderr,
            flush=True,
        )
        return score


def _weights(net) -> tuple[int, int]:
    """(weights, nonzero weights) of the Linear/Conv layers: what pruning removes."""
    report = net.pruning_report()
    return int(report["weight_params"].sum()), int(report["weight_nonzero"].sum())


def run_demo(
    *,
    sparsities=DEFAULT_SPARSITIES,
    cv: int = 5,
    max_epochs: int = 30,
    n_jobs: int | None = -1,
    random_state: int = 0,
    print_fn=print,
) -> PrunedNetCV:
    """Cross-validate a sparsity path on scikit-learn's digits, choose by the 1-SE rule, explain.

    Parameters
    ----------
    sparsities : sequence of float, default=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
        Strictly increasing sparsities of the path.
    cv : int, default=5
        Number of stratified folds.
    max_epochs : int, default=30
        Epochs of the dense fit that starts each fold's path (each sparsity
        level then fine-tunes for a few epochs, as ``PrunedNetCV`` does).
    n_jobs : int or None, default=-1
        Folds run in parallel (joblib).
    random_state : int, default=0
        Seed of the networks and the folds.
    print_fn : callable, default=print
        Where the tables and the explanation go (progress lines go to stderr).

    Returns
    -------
    PrunedNetCV
        The fitted search; ``best_estimator_[-1]`` is the chosen network.
    """
    X, y = load_digits(return_X_y=True)
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(),
        module__hidden_layer_sizes=(256, 128),
        max_epochs=max_epochs,
        batch_size=64,
        random_state=random_state,
    )
    start = time.time()
    search = PrunedNetCV(
        make_pipeline(StandardScaler(), net),
        sparsities=list(sparsities),
        cv=StratifiedKFold(cv, shuffle=True, random_state=random_state),
        scoring=_ProgressScorer(start),
        selection="1se",
        n_jobs=n_jobs,
    )
    print_fn(
        f"skprune demo: PrunedNetCV on digits ({X.shape[0]} samples, {X.shape[1]} features), "
        f"MLP (256, 128), {cv} stratified folds, sparsities {', '.join(f'{s:g}' for s in sparsities)}.\n"
        f"Each fold trains densely for {max_epochs} epochs, then prunes to each sparsity in turn "
        "and fine-tunes, scoring the held-out fold at every level (one line per level and fold)."
    )
    search.fit(X, y)
    elapsed = time.time() - start
    results = search.cv_results_
    best = int(np.argmax(results["mean_test_score"].to_numpy()))
    best_mean = float(results["mean_test_score"].iloc[best])
    best_se = float(results["se_test_score"].iloc[best])
    threshold = best_mean - best_se
    table = pd.DataFrame(
        {
            "sparsity": results[f"param_{search._sparsity_param()}"].astype(float),
            "measured": results["mean_fitted_sparsity"],
            "mean_accuracy": results["mean_test_score"],
            "std": results["std_test_score"],
            "se": results["se_test_score"],
            "rank": results["rank_test_score"],
            "within_1se": results["mean_test_score"] >= threshold - 1e-12,
        }
    )
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print_fn("\n" + table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print_fn(
            "rank: 1 is the best mean accuracy; equal means (to 12 decimals) share a rank and the "
            "next rank is skipped, as in GridSearchCV. measured: the sparsity the folds' networks "
            "reached, counted from their weights."
        )
        chosen = search.best_index_
        print_fn(
            f"\nchosen: sparsity {search.best_sparsity_:g} by the one-standard-error rule. The best mean "
            f"accuracy is {best_mean:.4f} (sparsity {table['sparsity'].iloc[best]:g}), with a standard "
            f"error of {best_se:.4f} over the {cv} folds; every sparsity scoring at least "
            f"{best_mean:.4f} - {best_se:.4f} = {threshold:.4f} cannot be told apart from it, and the "
            f"sparsest of those is {search.best_sparsity_:g} (mean accuracy "
            f"{table['mean_accuracy'].iloc[chosen]:.4f}, rank {table['rank'].iloc[chosen]})."
        )
        model = search.best_estimator_[-1]
        n_weights, n_nonzero_weights = _weights(model)
        print_fn(
            f"refit on all {X.shape[0]} samples: {n_weights - n_nonzero_weights:,} of {n_weights:,} "
            f"weights pruned (sparsity_ {model.sparsity_:.4f}); counting biases too, "
            f"{model.n_nonzero_params_:,} of {model.n_params_:,} parameters are nonzero."
        )
        print_fn("\nper-layer report of the chosen model:")
        print_fn(model.pruning_report().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print_fn(f"\ntotal time: {elapsed:.1f} s (cross-validation and refit)")
    return search


if __name__ == "__main__":  # pragma: no cover
    run_demo()
