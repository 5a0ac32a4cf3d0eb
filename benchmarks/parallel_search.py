"""Parallel search speed-up: GridSearchCV with n_jobs=2 over n_jobs=1.

A 5-fold search over 4 sparsities on ``make_classification(10000, 50)``,
timed with ``n_jobs=1`` and ``n_jobs=2`` in the same run (joblib's default
loky backend; each worker limits torch to one thread, so two workers do not
oversubscribe two cores). Run: ``python benchmarks/parallel_search.py``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skprune import MagnitudePruning, PrunedNetClassifier


def run(n_jobs: int, X, y, epochs: int) -> tuple[float, np.ndarray]:
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.5),
        module__hidden_layer_sizes=(128, 64),
        max_epochs=epochs,
        batch_size=128,
        lr=3e-3,
        random_state=0,
    )
    search = GridSearchCV(
        net,
        {"pruner__sparsity": [0.5, 0.8, 0.9, 0.95]},
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        n_jobs=n_jobs,
    )
    start = time.perf_counter()
    search.fit(X, y)
    return time.perf_counter() - start, search.cv_results_["mean_test_score"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    # one thread in this process too, so n_jobs=1 is the single-core baseline
    torch.set_num_threads(1)
    X, y = make_classification(10000, 50, n_informative=20, random_state=0)
    X = X.astype(np.float32)
    run(2, X[:500], y[:500], 1)  # start the worker pool once before timing
    t1, scores1 = run(1, X, y, args.epochs)
    t2, scores2 = run(2, X, y, args.epochs)
    print(
        f"make_classification(10000, 50), MLP (128, 64), {args.epochs} epochs, "
        f"5 folds x 4 sparsities = 20 fits, {os.cpu_count()} CPUs"
    )
    print(f"n_jobs=1: {t1:7.1f} s   mean accuracy per sparsity {np.round(scores1, 4)}")
    print(f"n_jobs=2: {t2:7.1f} s   mean accuracy per sparsity {np.round(scores2, 4)}")
    same = np.allclose(scores1, scores2)
    print(f"speed-up n_jobs=2 over n_jobs=1: {t1 / t2:.2f}x  (identical scores: {same})")


if __name__ == "__main__":
    main()
