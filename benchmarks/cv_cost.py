"""Cost of choosing sparsity by cross-validation: PrunedNetCV with its defaults against GridSearchCV.

Both searches evaluate the same sparsities on the same 5 folds, score with
the estimator's default (accuracy, or R² for the regression set), pick the
best mean score and refit on the whole training split; the chosen models
are then scored on a held-out test split. Both use their defaults, as a
new user would:

* GridSearchCV fits every candidate from scratch with the estimator's
  ``max_epochs`` (``MAX_EPOCHS``) and the pruner's default gradual
  schedule (Zhu & Gupta's ``Polynomial``): ``n_sparsities * MAX_EPOCHS``
  epochs per fold.
* PrunedNetCV (``dense_epochs=None, finetune_epochs=None``) trains densely
  once for ``MAX_EPOCHS``, then walks the sparsities in increasing order,
  each level pruned one-shot and fine-tuned for a number of epochs that
  follows the step (``ceil(halvings of the density * MAX_EPOCHS / 6)``).

Refit time is included in both times; a short warm-up fit precedes the
timed ones. Everything runs in one process (``n_jobs=1``, one torch
thread) so the ratio compares work, not parallelism. Both wall time and
the process's CPU time are reported: on a machine shared with other jobs
the CPU-time ratio is the steadier figure. Each dataset can be run with
several seeds (train/test split, folds and network initialization); times
are summed and held-out scores averaged over the seeds.
Run: ``python benchmarks/cv_cost.py [--seeds 0 1 2]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetCV, PrunedNetRegressor
from skprune.model_selection._path import level_epochs
from skprune.model_selection._rules import one_standard_error_index

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
MAX_EPOCHS = 20
TOLERANCE = {True: 1.0, False: 2.0}  # points of accuracy (classification) or of R² x 100


def datasets():
    X, y = load_digits(return_X_y=True)
    yield "digits (1797 x 64, 10 classes)", (X / 16.0).astype(np.float32), y, False, True
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer (569 x 30, 2 classes)", X.astype(np.float32), y, True, True
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes (442 x 10, regression)", X.astype(np.float32), y, True, False


def make_estimator(scale: bool, classification: bool, seed: int):
    cls = PrunedNetClassifier if classification else PrunedNetRegressor
    net = cls(
        pruner=MagnitudePruning(),
        lr=0.01 if classification else 3e-3,
        batch_size=64,
        max_epochs=MAX_EPOCHS,
        random_state=seed,
    )
    return make_pipeline(StandardScaler(), net) if scale else net


def timed_fit(search, X, y):
    """Fit; return the search, its wall time and the CPU time of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    search.fit(X, y)
    return search, time.perf_counter() - wall, time.process_time() - cpu


def run(name, X, y, scale, classification, seed):
    stratify = y if classification else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=stratify, random_state=seed
    )
    cv = (StratifiedKFold if classification else KFold)(5, shuffle=True, random_state=seed)
    estimator = make_estimator(scale, classification, seed)
    prefix = (type(estimator[-1]).__name__.lower() + "__") if scale else ""

    path = PrunedNetCV(estimator, sparsities=SPARSITIES, cv=cv, n_jobs=1)
    grid = GridSearchCV(estimator, {f"{prefix}pruner__sparsity": list(SPARSITIES)}, cv=cv, n_jobs=1)
    # warm up torch (first-call costs) so neither search pays them
    clone(estimator).set_params(**{f"{prefix}max_epochs": 2}).fit(X_train[:200], y_train[:200])
    path, path_time, path_cpu = timed_fit(path, X_train, y_train)
    grid, grid_time, grid_cpu = timed_fit(grid, X_train, y_train)
    grid_sparsity = grid.best_params_[f"{prefix}pruner__sparsity"]
    path_acc = path.score(X_test, y_test)
    grid_acc = grid.score(X_test, y_test)
    return {
        "dataset": name,
        "seed": seed,
        "path_s": path_time,
        "grid_s": grid_time,
        "wall_ratio": path_time / grid_time,
        "path_cpu_s": path_cpu,
        "grid_cpu_s": grid_cpu,
        "cpu_ratio": path_cpu / grid_cpu,
        "path_sparsity": path.best_sparsity_,
        "grid_sparsity": grid_sparsity,
        "path_1se": SPARSITIES[one_standard_error_index(path.cv_results_)],
        "grid_1se": SPARSITIES[one_standard_error_index(grid.cv_results_)],
        "path_cv_score": path.best_score_,
        "grid_cv_score": grid.best_score_,
        "path_test_score": path_acc,
        "grid_test_score": grid_acc,
        "diff_points": 100 * (path_acc - grid_acc),
        "tolerance": TOLERANCE[classification],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the train/test split and the nets"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [run(name, X, y, scale, cls, seed) for seed in args.seeds for name, X, y, scale, cls in datasets()]
    table = pd.DataFrame(rows)
    per_fold_path = MAX_EPOCHS + sum(level_epochs(SPARSITIES, MAX_EPOCHS, None))
    per_fold_grid = len(SPARSITIES) * MAX_EPOCHS
    print(
        f"{len(SPARSITIES)} sparsities {SPARSITIES} x 5 folds; max_epochs={MAX_EPOCHS}; PrunedNetCV "
        f"defaults (level epochs {level_epochs(SPARSITIES, MAX_EPOCHS, None)}); epochs per fold: path "
        f"{per_fold_path}, grid {per_fold_grid} (ratio {per_fold_path / per_fold_grid:.2f}); refit "
        "included; n_jobs=1, 1 torch thread.\n"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    summary = table.groupby("dataset", sort=False).agg(
        path_s=("path_s", "sum"),
        grid_s=("grid_s", "sum"),
        path_cpu_s=("path_cpu_s", "sum"),
        grid_cpu_s=("grid_cpu_s", "sum"),
        path_test_score=("path_test_score", "mean"),
        grid_test_score=("grid_test_score", "mean"),
        tolerance=("tolerance", "first"),
    )
    summary["wall_ratio"] = summary["path_s"] / summary["grid_s"]
    summary["cpu_ratio"] = summary["path_cpu_s"] / summary["grid_cpu_s"]
    summary["diff_points"] = 100 * (summary["path_test_score"] - summary["grid_test_score"])
    print(f"\nTotals over seeds {args.seeds} (times) and means (held-out score):")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary.round(3).to_string())
    ok_wall = (summary["wall_ratio"] <= 0.35).all()
    ok_cpu = (summary["cpu_ratio"] <= 0.35).all()
    ok_acc = (summary["diff_points"] >= -summary["tolerance"]).all()
    print(
        f"\ntime ratio <= 0.35: wall {'yes' if ok_wall else 'NO'} (max {summary['wall_ratio'].max():.3f}), "
        f"CPU {'yes' if ok_cpu else 'NO'} (max {summary['cpu_ratio'].max():.3f})"
    )
    print(
        f"held-out score within 1 point (0.02 R²) of grid search or better: {'yes' if ok_acc else 'NO'} "
        f"(worst diff {summary['diff_points'].min():+.2f} points)"
    )


if __name__ == "__main__":
    main()
