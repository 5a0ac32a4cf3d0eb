"""Neuron importance by weights, gradients or activations: test accuracy and fit time at the same sparsity.

NeuronPruning removes the same share of hidden units with each importance
(``l2``, ``l1``, ``taylor``, ``apoz``, ``activation``); the schedule, network,
data split and seeds are the same, so the rows differ only in which units go.
Fit times are reported as a ratio to ``l2`` measured in the same run
(interleaved), i.e. the cost of recording gradients or activations.

Usage::

    PYTHONPATH=. python benchmarks/activation_importance.py [--seeds 3] [--epochs 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skprune import NeuronPruning, PrunedNetClassifier

IMPORTANCES = ["l2", "l1", "taylor", "apoz", "activation"]
DATASETS = {"digits": load_digits, "breast_cancer": load_breast_cancer, "wine": load_wine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.5, 0.8])
    args = parser.parse_args()
    torch.set_num_threads(1)
    warm = load_wine(return_X_y=True)  # one discarded fit: first-call costs are not charged to a row
    PrunedNetClassifier(max_epochs=2, random_state=0).fit(warm[0].astype(np.float32), warm[1])
    rows = []
    for data_name, loader in DATASETS.items():
        X, y = loader(return_X_y=True)
        for seed in range(args.seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr).astype(np.float32), scaler.transform(X_te).astype(np.float32)
            for sparsity in args.sparsities:
                shift = (seed + int(sparsity * 10)) % len(IMPORTANCES)  # rotated, so none always runs first
                for importance in IMPORTANCES[shift:] + IMPORTANCES[:shift]:
                    net = PrunedNetClassifier(
                        pruner=NeuronPruning(sparsity, importance=importance),
                        module__hidden_layer_sizes=(64, 64),
                        max_epochs=args.epochs,
                        lr=0.01,
                        random_state=seed,
                    )
                    start = time.perf_counter()
                    net.fit(X_tr, y_tr)
                    seconds = time.perf_counter() - start
                    rows.append(
                        dict(
                            data=data_name,
                            sparsity=sparsity,
                            importance=importance,
                            seed=seed,
                            accuracy=net.score(X_te, y_te),
                            seconds=seconds,
                        )
                    )
    frame = pd.DataFrame(rows)
    l2_time = frame[frame.importance == "l2"].set_index(["data", "sparsity", "seed"])["seconds"]
    frame["time_ratio_to_l2"] = [
        r.seconds / l2_time[(r.data, r.sparsity, r.seed)] for r in frame.itertuples(index=False)
    ]
    table = frame.groupby(["data", "sparsity", "importance"], sort=False).agg(
        accuracy=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        time_ratio_to_l2=("time_ratio_to_l2", "median"),
    )
    print(
        f"NeuronPruning, MLP (64, 64), {args.epochs} epochs, Polynomial schedule, 30% test split, "
        f"{args.seeds} seeds (mean accuracy, median fit-time ratio to l2), 1 torch thread"
    )
    with pd.option_context("display.width", 120, "display.max_rows", 200):
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
