"""The main job: choose sparsity and alpha by 5-fold cross-validation on digits."""

from __future__ import annotations

import time

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._classifier import PrunedNetClassifier
from .pruners import MagnitudePruning

__all__ = ["run_demo"]

DEFAULT_SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95)
DEFAULT_ALPHAS = (1e-4, 1e-2)


def _nonzero_params(estimator) -> int:
    return int(estimator[-1].n_nonzero_params_)


def run_demo(
    *,
    sparsities=DEFAULT_SPARSITIES,
    alphas=DEFAULT_ALPHAS,
    cv: int = 5,
    max_epochs: int = 30,
    n_jobs: int | None = -1,
    random_state: int = 0,
    print_fn=print,
) -> GridSearchCV:
    """Run a pruning search on scikit-learn's digits and print the results.

    Parameters
    ----------
    sparsities, alphas : sequences of float
        Grid of ``pruner__sparsity`` and ``alpha``.
    cv : int, default=5
        Number of stratified folds.
    max_epochs : int, default=30
        Epochs per fit (pruning and fine-tuning included).
    n_jobs : int or None, default=-1
        Parallel fits (joblib).
    random_state : int, default=0
        Seed of the networks and the folds.
    print_fn : callable, default=print
        Where the tables go.

    Returns
    -------
    GridSearchCV
        The fitted search; ``best_estimator_[-1]`` is the chosen network.
    """
    X, y = load_digits(return_X_y=True)
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.9),
        module__hidden_layer_sizes=(256, 128),
        max_epochs=max_epochs,
        batch_size=64,
        random_state=random_state,
    )
    pipe = make_pipeline(StandardScaler(), net)
    grid = {
        "prunednetclassifier__pruner__sparsity": list(sparsities),
        "prunednetclassifier__alpha": list(alphas),
    }
    search = GridSearchCV(
        pipe,
        grid,
        cv=StratifiedKFold(cv, shuffle=True, random_state=random_state),
        n_jobs=n_jobs,
        scoring={"accuracy": "accuracy", "nonzero_params": lambda est, X, y: _nonzero_params(est)},
        refit="accuracy",
    )
    print_fn(
        f"skprune demo: {cv}-fold GridSearchCV on digits ({X.shape[0]} samples, "
        f"{X.shape[1]} features), MLP (256, 128), {max_epochs} epochs, "
        f"{len(sparsities) * len(alphas)} candidates"
    )
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start
    results = pd.DataFrame(search.cv_results_)
    table = pd.DataFrame(
        {
            "sparsity": results["param_prunednetclassifier__pruner__sparsity"].astype(float),
            "alpha": results["param_prunednetclassifier__alpha"].astype(float),
            "mean_accuracy": results["mean_test_accuracy"],
            "std_accuracy": results["std_test_accuracy"],
            "nonzero_params": results["mean_test_nonzero_params"].round().astype(int),
            "rank": results["rank_test_accuracy"],
        }
    ).sort_values(["sparsity", "alpha"])
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print_fn(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        best = search.best_estimator_[-1]
        print_fn(
            f"\nchosen: sparsity={search.best_params_['prunednetclassifier__pruner__sparsity']}, "
            f"alpha={search.best_params_['prunednetclassifier__alpha']}, "
            f"cv accuracy={search.best_score_:.4f}; measured sparsity "
            f"{best.sparsity_:.4f}, {best.n_nonzero_params_} of {best.n_params_} parameters nonzero"
        )
        print_fn("\nper-layer report of the chosen model:")
        print_fn(best.pruning_report().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print_fn(f"\nsearch time: {elapsed:.1f} s")
    return search


if __name__ == "__main__":  # pragma: no cover
    run_demo()
