"""How the target sparsity is shared between layers: LAMP, plain global, ERK, per-layer.

Held-out score (accuracy, or R² for diabetes), mean and standard deviation
over 3-fold cross-validation, of ``MagnitudePruning(s, scope=...)`` at
80/90/95/98% sparsity, on small classification sets (iris, wine, breast
cancer, digits) and a one-output regression (diabetes), each standardized
in a pipeline (the regression target too). The dense network is the
reference. Every fitted model is also checked for the connectivity floor:
each output unit keeps an incoming weight and no layer is empty.

    python benchmarks/layer_allocation.py            # full table
    python benchmarks/layer_allocation.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor

SPARSITIES = (0.8, 0.9, 0.95, 0.98)
SCOPES = ("lamp", "global", "erk", "layer")


def datasets(quick: bool):
    for load in (load_iris, load_wine, load_breast_cancer):
        X, y = load(return_X_y=True)
        yield load.__name__[5:], X, y, "classification", (100,)
    X, y = load_digits(return_X_y=True)
    yield "digits", X, y, "classification", (256, 128)
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", X, y, "regression", (100,)


def make_model(task, hidden, pruner, epochs):
    if task == "classification":
        net = PrunedNetClassifier(
            pruner=pruner, max_epochs=epochs, lr=3e-3, module__hidden_layer_sizes=hidden, random_state=0
        )
        return make_pipeline(StandardScaler(), net)
    net = PrunedNetRegressor(
        pruner=pruner, max_epochs=2 * epochs, lr=3e-3, module__hidden_layer_sizes=hidden, random_state=0
    )
    return TransformedTargetRegressor(make_pipeline(StandardScaler(), net), transformer=StandardScaler())


def connected(model) -> bool:
    """Every output unit keeps an incoming weight, and no Linear layer is empty."""
    net = model.regressor_[-1] if isinstance(model, TransformedTargetRegressor) else model[-1]
    weights = [m.weight.detach() for m in net.module_.modules() if isinstance(m, torch.nn.Linear)]
    return all(bool(w.any()) for w in weights) and bool((weights[-1] != 0).any(dim=1).all())


def one_fit(model, task, X, y, train, test):
    torch.set_num_threads(1)
    model = clone(model).fit(X[train], y[train])
    pred = model.predict(X[test])
    score = accuracy_score(y[test], pred) if task == "classification" else r2_score(y[test], pred)
    return score, connected(model)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    sparsities = (0.9,) if args.quick else SPARSITIES
    epochs = 5 if args.quick else args.epochs
    start = time.perf_counter()
    rows = []
    for name, X, y, task, hidden in datasets(args.quick):
        X = X.astype(np.float32)
        splitter = (StratifiedKFold if task == "classification" else KFold)(
            args.folds, shuffle=True, random_state=0
        )
        folds = list(splitter.split(X, y))
        configs = [("dense", None, None)] + [
            (scope, s, MagnitudePruning(s, scope=scope)) for s in sparsities for scope in SCOPES
        ]
        jobs = [
            (label, s, make_model(task, hidden, pruner, epochs), train, test)
            for label, s, pruner in configs
            for train, test in folds
        ]
        results = Parallel(n_jobs=args.n_jobs)(
            delayed(one_fit)(model, task, X, y, train, test) for _, _, model, train, test in jobs
        )
        for (label, s, *_), (score, ok) in zip(jobs, results):
            rows.append({"dataset": name, "scope": label, "sparsity": s, "score": score, "connected": ok})
    df = pd.DataFrame(rows)
    for name, part in df.groupby("dataset", sort=False):
        dense = part[part.scope == "dense"].score
        print(f"\n{name}: dense {100 * dense.mean():.1f} ± {100 * dense.std():.1f}")
        table = (
            part[part.scope != "dense"]
            .groupby(["scope", "sparsity"], sort=False)
            .score.agg(lambda v: f"{100 * v.mean():.1f} ± {100 * v.std():.1f}")
            .unstack("sparsity")
        )
        print(table.to_markdown())
    pruned = df[df.scope != "dense"]
    dense_means = df[df.scope == "dense"].groupby("dataset").score.mean()
    mean_drop = (
        pruned.groupby(["scope", "dataset"])
        .score.mean()
        .sub(dense_means, level="dataset")
        .groupby("scope")
        .mean()
    )
    print("\nmean score change vs dense over datasets and sparsities (points):")
    print((100 * mean_drop).round(2).to_string())
    print("\nfits with a disconnected output unit or an empty layer:")
    print((~pruned.connected).groupby(pruned.scope).sum().to_string())
    print(f"\n{len(df)} fits, {time.perf_counter() - start:.0f} s wall, {args.folds}-fold, {epochs} epochs")


if __name__ == "__main__":
    main()
