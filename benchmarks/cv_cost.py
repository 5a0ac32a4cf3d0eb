"""Cost of choosing sparsity by cross-validation: PrunedNetCV against GridSearchCV.

Both searches evaluate the same sparsities on the same 5 stratified folds,
score with accuracy, pick the best mean score and refit on the whole
training split; the chosen models are then scored on a held-out test split.

"Same per-candidate epochs" means every candidate gets ``DENSE`` dense
epochs, one one-shot magnitude pruning step to its sparsity, then
``FINETUNE`` fine-tuning epochs:

* GridSearchCV trains each candidate from scratch with
  ``max_epochs = DENSE + FINETUNE`` and ``OneShot(at=DENSE / (DENSE + FINETUNE))``:
  ``n_sparsities * (DENSE + FINETUNE)`` epochs per fold.
* PrunedNetCV trains densely once for ``DENSE`` epochs, then walks the
  sparsities in increasing order, pruning one-shot and fine-tuning
  ``FINETUNE`` epochs at each, warm-started from the previous level:
  ``DENSE + n_sparsities * FINETUNE`` epochs per fold. (A candidate on the
  path has also seen the fine-tunes of the lower sparsities before it;
  that is the point of a path.)

Refit time is included in both times; a short warm-up fit precedes the
timed ones. Everything runs in one process (``n_jobs=1``, one torch
thread) so the ratio compares work, not parallelism. Both wall time and
the process's CPU time are reported: on a machine shared with other jobs
the CPU-time ratio is the steadier figure. Each dataset is run with
several seeds (train/test split, folds and network initialization);
times are summed and held-out accuracies averaged over the seeds, since
a single 143-sample breast-cancer test set moves 0.7 points per sample.
Run: ``python benchmarks/cv_cost.py`` (about 4 minutes on 2 idle cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import MagnitudePruning, OneShot, PrunedNetClassifier, PrunedNetCV
from skprune.model_selection._rules import one_standard_error_index

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
DENSE = 20
FINETUNE = 2


def datasets():
    X, y = load_digits(return_X_y=True)
    yield "digits (1797 x 64, 10 classes)", (X / 16.0).astype(np.float32), y, False
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer (569 x 30, 2 classes)", X.astype(np.float32), y, True


def make_estimator(scale: bool, seed: int):
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(),
        lr=0.01,
        batch_size=64,
        max_epochs=DENSE,
        random_state=seed,
    )
    return make_pipeline(StandardScaler(), net) if scale else net


def timed_fit(search, X, y):
    """Fit; return the search, its wall time and the CPU time of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    search.fit(X, y)
    return search, time.perf_counter() - wall, time.process_time() - cpu


def run(name, X, y, scale, seed):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    estimator = make_estimator(scale, seed)
    prefix = "prunednetclassifier__" if scale else ""

    path = PrunedNetCV(
        estimator,
        sparsities=SPARSITIES,
        cv=cv,
        scoring="accuracy",
        dense_epochs=DENSE,
        finetune_epochs=FINETUNE,
        n_jobs=1,
    )
    grid_estimator = clone(estimator).set_params(
        **{
            f"{prefix}max_epochs": DENSE + FINETUNE,
            f"{prefix}pruner__schedule": OneShot(at=DENSE / (DENSE + FINETUNE)),
        }
    )
    grid = GridSearchCV(
        grid_estimator, {f"{prefix}pruner__sparsity": list(SPARSITIES)}, cv=cv, scoring="accuracy", n_jobs=1
    )
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
        "path_sparsity": path.sparsity_,
        "grid_sparsity": grid_sparsity,
        "path_1se": SPARSITIES[one_standard_error_index(path.cv_results_)],
        "grid_1se": SPARSITIES[one_standard_error_index(grid.cv_results_)],
        "path_cv_acc": path.best_score_,
        "grid_cv_acc": grid.best_score_,
        "path_test_acc": path_acc,
        "grid_test_acc": grid_acc,
        "diff_points": 100 * (path_acc - grid_acc),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the train/test split and the nets"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [run(name, X, y, scale, seed) for seed in args.seeds for name, X, y, scale in datasets()]
    table = pd.DataFrame(rows)
    per_fold_path = DENSE + len(SPARSITIES) * FINETUNE
    per_fold_grid = len(SPARSITIES) * (DENSE + FINETUNE)
    print(
        f"{len(SPARSITIES)} sparsities {SPARSITIES} x 5 folds; per candidate {DENSE} dense + "
        f"{FINETUNE} fine-tune epochs; epochs per fold: path {per_fold_path}, grid {per_fold_grid} "
        f"(ratio {per_fold_path / per_fold_grid:.2f}); refit included; n_jobs=1, 1 torch thread.\n"
    )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    summary = table.groupby("dataset", sort=False).agg(
        path_s=("path_s", "sum"),
        grid_s=("grid_s", "sum"),
        path_cpu_s=("path_cpu_s", "sum"),
        grid_cpu_s=("grid_cpu_s", "sum"),
        path_test_acc=("path_test_acc", "mean"),
        grid_test_acc=("grid_test_acc", "mean"),
    )
    summary["wall_ratio"] = summary["path_s"] / summary["grid_s"]
    summary["cpu_ratio"] = summary["path_cpu_s"] / summary["grid_cpu_s"]
    summary["diff_points"] = 100 * (summary["path_test_acc"] - summary["grid_test_acc"])
    print(f"\nTotals over seeds {args.seeds} (times) and means (held-out accuracy):")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary.round(3).to_string())
    ok_wall = (summary["wall_ratio"] <= 0.35).all()
    ok_cpu = (summary["cpu_ratio"] <= 0.35).all()
    ok_acc = (summary["diff_points"].abs() <= 1.0).all()
    print(
        f"\ntime ratio <= 0.35: wall {'yes' if ok_wall else 'NO'} (max {summary['wall_ratio'].max():.3f}), "
        f"CPU {'yes' if ok_cpu else 'NO'} (max {summary['cpu_ratio'].max():.3f})"
    )
    print(
        f"mean held-out accuracy within 1 point of grid search: {'yes' if ok_acc else 'NO'} "
        f"(max |diff| {summary['diff_points'].abs().max():.2f} points)"
    )


if __name__ == "__main__":
    main()
