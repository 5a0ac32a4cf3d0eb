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

Refit time is included in both wall times; a short warm-up fit precedes
the timed ones. Everything runs in one process
(``n_jobs=1``, one torch thread) so the ratio compares work, not
parallelism. Run: ``python benchmarks/cv_cost.py`` (about 2 minutes on 2
cores).
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
from skprune.selection import one_standard_error_index

SPARSITIES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)
DENSE = 30
FINETUNE = 3


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
    start = time.perf_counter()
    search.fit(X, y)
    return search, time.perf_counter() - start


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
    path, path_time = timed_fit(path, X_train, y_train)
    grid, grid_time = timed_fit(grid, X_train, y_train)
    grid_sparsity = grid.best_params_[f"{prefix}pruner__sparsity"]
    path_acc = path.score(X_test, y_test)
    grid_acc = grid.score(X_test, y_test)
    return {
        "dataset": name,
        "seed": seed,
        "path_s": path_time,
        "grid_s": grid_time,
        "ratio": path_time / grid_time,
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="split and network seeds")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [run(name, X, y, scale, seed) for seed in args.seeds for name, X, y, scale in datasets()]
    table = pd.DataFrame(rows)
    per_fold_path = DENSE + len(SPARSITIES) * FINETUNE
    per_fold_grid = len(SPARSITIES) * (DENSE + FINETUNE)
    print(
        f"{len(SPARSITIES)} sparsities {SPARSITIES} x 5 folds; per candidate {DENSE} dense + "
        f"{FINETUNE} fine-tune epochs; epochs per fold: path {per_fold_path}, grid {per_fold_grid} "
        f"(ratio {per_fold_path / per_fold_grid:.2f}); refit included; n_jobs=1, 1 torch thread."
    )
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    ok_time = (table["ratio"] <= 0.35).all()
    ok_acc = (table["diff_points"].abs() <= 1.0).all()
    print(f"\nwall-time ratio <= 0.35: {'yes' if ok_time else 'NO'} (max {table['ratio'].max():.3f})")
    print(
        f"held-out accuracy within 1 point of grid search: {'yes' if ok_acc else 'NO'} "
        f"(max |diff| {table['diff_points'].abs().max():.2f} points)"
    )


if __name__ == "__main__":
    main()
