"""Regression out of the box: an unscaled target, and 80% sparsity against dense.

Diabetes (442 x 10, target 25-346), 5-fold cross-validated R² (mean ± std),
``make_pipeline(StandardScaler(), PrunedNetRegressor(...))`` with default
parameters except those named, against ``RidgeCV``:

* ``normalize_y=True`` (the default: the target is standardized inside the
  regressor) against ``normalize_y=False`` (the target as given, what a
  user without a ``TransformedTargetRegressor`` got before), and against
  the ``TransformedTargetRegressor(..., transformer=StandardScaler())``
  recipe;
* dense against ``MagnitudePruning(0.8)`` (default scope and schedule).

    python benchmarks/regression.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import MagnitudePruning, PrunedNetRegressor


def one_fold(model, X, y, train, test):
    torch.set_num_threads(1)
    model = clone(model).fit(X[train], y[train])
    pred = model.predict(X[test])
    return r2_score(y[test], pred), len(np.unique(np.round(pred, 6)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    params = dict(max_epochs=args.epochs, lr=args.lr, random_state=0)

    def net(**extra):
        return make_pipeline(StandardScaler(), PrunedNetRegressor(**{**params, **extra}))

    models = {
        "RidgeCV": make_pipeline(StandardScaler(), RidgeCV()),
        "dense, normalize_y=True (default)": net(),
        "dense, normalize_y=False": net(normalize_y=False),
        "80%, normalize_y=True (default)": net(pruner=MagnitudePruning(0.8)),
        "80%, normalize_y=False": net(pruner=MagnitudePruning(0.8), normalize_y=False),
        "80%, TransformedTargetRegressor recipe": TransformedTargetRegressor(
            net(pruner=MagnitudePruning(0.8), normalize_y=False), transformer=StandardScaler()
        ),
        "80%, scope='global' (raw ranking)": net(pruner=MagnitudePruning(0.8, scope="global")),
        "90%, normalize_y=True (default)": net(pruner=MagnitudePruning(0.9)),
    }
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    start = time.perf_counter()
    jobs = [(name, model, train, test) for name, model in models.items() for train, test in folds]
    results = Parallel(n_jobs=args.n_jobs)(delayed(one_fold)(m, X, y, tr, te) for _, m, tr, te in jobs)
    scores: dict[str, list] = {}
    for (name, *_), result in zip(jobs, results):
        scores.setdefault(name, []).append(result)
    print(f"diabetes, 5-fold R², {args.epochs} epochs, lr={args.lr}, batch 64, MLP (100,)")
    print("| model | R² (mean ± std) | distinct predictions (min over folds) |")
    print("|---|---|---|")
    for name, values in scores.items():
        r2 = np.array([v[0] for v in values])
        distinct = min(v[1] for v in values)
        print(f"| {name} | {r2.mean():.3f} ± {r2.std():.3f} | {distinct} |")
    dense = np.mean([v[0] for v in scores["dense, normalize_y=True (default)"]])
    pruned = np.mean([v[0] for v in scores["80%, normalize_y=True (default)"]])
    print(f"80% minus dense (defaults): {pruned - dense:+.3f} R² (goal: within 0.03)")
    print(f"{len(jobs)} fits, {time.perf_counter() - start:.0f} s wall")


if __name__ == "__main__":
    main()
