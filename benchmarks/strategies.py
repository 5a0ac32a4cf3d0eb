"""Every pruning strategy at 80/90/95/98/99% sparsity against the dense network.

Held-out accuracy, mean and standard deviation over stratified 5-fold
cross-validation, on digits (MLP 256-128) and on breast cancer (the same
MLP), each standardized by ``StandardScaler`` inside the pipeline. All
strategies get the same training budget (``--epochs``, pruning and
fine-tuning included; a lottery ticket spends it on its rounds).

    python benchmarks/strategies.py              # full table (~3 min on 2 free cores)
    python benchmarks/strategies.py --quick      # smoke run
    python benchmarks/strategies.py --strategies magnitude --datasets digits   # the 99% row

Expected shape from the literature (Blalock et al. 2020; Frankle & Carbin
2019): magnitude and Taylor clearly above random at 95%+, a lottery ticket
within 1 point of dense at 90%. The script prints whether that holds here.
Global and layer-wise ranking are both shown for magnitude pruning and
lottery tickets (Blalock et al. ask for both).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import (
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    PrunedNetClassifier,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)

SPARSITIES = (0.8, 0.9, 0.95, 0.98, 0.99)
STRATEGIES = {
    "magnitude": lambda s: MagnitudePruning(s),
    "magnitude-layer": lambda s: MagnitudePruning(s, scope="layer"),
    "random": lambda s: RandomPruning(s),
    "taylor": lambda s: TaylorPruning(s),
    "snip": lambda s: SNIPPruning(s),
    "l1": lambda s: L1Pruning(s, strength=1e-4),
    "lottery": lambda s: LotteryTicket(s, n_rounds=3),
    "lottery-layer": lambda s: LotteryTicket(s, n_rounds=3, scope="layer"),
}


def datasets():
    X, y = load_digits(return_X_y=True)
    yield "digits", X.astype(np.float32), y
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast_cancer", X.astype(np.float32), y


def fit_score(X, y, train, test, pruner, epochs, lr, seed):
    torch.set_num_threads(1)
    cpu = time.process_time()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(256, 128),
        pruner=pruner,
        max_epochs=epochs,
        lr=lr,
        batch_size=128,
        random_state=seed,
    )
    model = make_pipeline(StandardScaler(), net).fit(X[train], y[train])
    return model.score(X[test], y[test]), model[-1].sparsity_, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 folds, 10 epochs, 2 sparsities")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--datasets", default="digits,breast_cancer")
    parser.add_argument("--sparsities", type=float, nargs="+", default=list(SPARSITIES))
    args = parser.parse_args(argv)
    sparsities = tuple(args.sparsities)
    if args.quick:
        args.folds, args.epochs, sparsities = 2, 10, (0.9, 0.98)
    names = args.strategies.split(",")

    start = time.perf_counter()
    rows = []
    for data_name, X, y in datasets():
        if data_name not in args.datasets.split(","):
            continue
        folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y))
        jobs = [("dense", 0.0, None)] + [(n, s, STRATEGIES[n](s)) for n in names for s in sparsities]
        tasks = [
            (name, s, k, pruner, train, test)
            for name, s, pruner in jobs
            for k, (train, test) in enumerate(folds)
        ]
        results = Parallel(n_jobs=args.n_jobs)(
            delayed(fit_score)(X, y, train, test, p and clone(p), args.epochs, args.lr, k)
            for _, _, k, p, train, test in tasks
        )
        for (name, s, k, _, _, _), (acc, measured, cpu) in zip(tasks, results):
            row = {"data": data_name, "strategy": name, "sparsity": s, "fold": k}
            rows.append({**row, "acc": acc, "measured": measured, "cpu": cpu})
    elapsed = time.perf_counter() - start

    df = pd.DataFrame(rows)
    bad = df[(df.strategy != "dense") & ((df.measured - df.sparsity).abs() > 1e-3)]
    assert bad.empty, f"fitted sparsity differs from the target:\n{bad}"
    summary = df.groupby(["data", "strategy", "sparsity"])["acc"].agg(["mean", "std"]).reset_index()
    print(
        f"Held-out accuracy (%), mean ± std over {args.folds} folds; MLP 256-128, {args.epochs} epochs, "
        f"lr={args.lr}, Adam, batch 128, StandardScaler.\n"
    )
    for data_name, part in summary.groupby("data", sort=False):
        dense = part[part.strategy == "dense"].iloc[0]
        print(f"{data_name}: dense {100 * dense['mean']:.1f} ± {100 * dense['std']:.1f}")
        cells = part[part.strategy != "dense"].assign(
            cell=lambda d: [f"{100 * m:5.1f} ± {100 * s:4.1f}" for m, s in zip(d["mean"], d["std"])]
        )
        table = cells.pivot(index="strategy", columns="sparsity", values="cell").reindex(names)
        table.columns = [f"{int(round(100 * c))}%" for c in table.columns]
        print(table.to_string(), "\n")

    print("Expected shape (literature) -> here:")
    mean = summary.set_index(["data", "strategy", "sparsity"])["mean"]
    for data_name in summary.data.unique():
        for s in (x for x in sparsities if x >= 0.95):
            for name in ("magnitude", "taylor"):
                if name in names and "random" in names:
                    gap = 100 * (mean[data_name, name, s] - mean[data_name, "random", s])
                    print(f"  {data_name:13s} {name:9s} - random at {s:.0%}: {gap:+5.1f} points")
        if "lottery" in names and 0.9 in sparsities:
            gap = 100 * (mean[data_name, "lottery", 0.9] - mean[data_name, "dense", 0.0])
            verdict = "within 1 point" if gap >= -1 else "NOT within 1 point"
            print(f"  {data_name:13s} lottery - dense at 90%: {gap:+5.1f} points ({verdict})")
    print(
        f"\n{len(df)} fits: {df.cpu.sum():.0f} CPU-seconds in the fits (one thread each), "
        f"{elapsed:.0f} s wall clock with n_jobs={args.n_jobs} (the machine may be shared)."
    )


if __name__ == "__main__":
    main()
