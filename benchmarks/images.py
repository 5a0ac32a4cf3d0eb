"""Digits as 1x8x8 images: dense ConvNet, 80% unstructured sparsity, 50% of channels removed.

Data: scikit-learn's digits (1797 samples) scaled to [0, 1] and reshaped to
``(n_samples, 1, 8, 8)``. 5-fold stratified cross-validation
(``StratifiedKFold(5, shuffle=True, random_state=0)``); in each fold

- **dense**: ``PrunedNetClassifier(ConvNet)`` (default ``channels=(32, 64)``,
  ``hidden=128``, BatchNorm) trained for ``DENSE_EPOCHS`` epochs;
- **80% unstructured**: the fold's trained dense module is passed as
  ``module=`` (an instance: its weights are kept), pruned at once with
  ``MagnitudePruning(0.8, schedule=OneShot(at=0))`` (global magnitude over
  the conv and hidden layers, output layer included) and fine-tuned for
  ``TUNE_EPOCHS`` epochs at ``lr=3e-4``;
- **50% channels**: the same dense module, ``ChannelPruning(0.5,
  schedule=OneShot(at=0))`` (half the channels of each Conv2d, L2 norm of the
  filter, BatchNorm aware), fine-tuned ``TUNE_EPOCHS`` epochs, then
  ``compact()``-ed; accuracy is that of the compacted (physically smaller)
  network, checked to predict like the masked one to 1e-5;
- **from scratch** (reference): the same two pruners applied during one
  training run of ``DENSE_EPOCHS`` epochs with the default gradual
  ``Polynomial`` schedule, no pretrained weights.

Run: ``PYTHONPATH=. python benchmarks/images.py`` (about 4 minutes on 2
shared cores). Timings are wall-clock on a machine shared with other jobs.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold

from skprune import ChannelPruning, ConvNet, MagnitudePruning, OneShot, PrunedNetClassifier

DENSE_EPOCHS = 20
TUNE_EPOCHS = 8
COMMON = dict(batch_size=64, alpha=1e-4, random_state=0)


def main() -> None:
    torch.set_num_threads(1)  # faster than 2 threads for this small network on a shared machine
    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    rows = []
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(images, y)
    for fold, (train, test) in enumerate(folds):
        Xtr, Xte, ytr, yte = images[train], images[test], y[train], y[test]

        def record(name, net, seconds, fold=fold, Xte=Xte, yte=yte):
            rows.append(
                {
                    "fold": fold,
                    "model": name,
                    "accuracy": net.score(Xte, yte),
                    "sparsity": net.sparsity_,
                    "params": net.n_params_,
                    "nonzero params": net.n_nonzero_params_,
                    "seconds": seconds,
                }
            )

        t = time.perf_counter()
        dense = PrunedNetClassifier(ConvNet, max_epochs=DENSE_EPOCHS, **COMMON).fit(Xtr, ytr)
        record("dense ConvNet", dense, time.perf_counter() - t)

        t = time.perf_counter()
        unstructured = PrunedNetClassifier(
            dense.module_,
            pruner=MagnitudePruning(0.8, scope="global", schedule=OneShot(at=0)),
            max_epochs=TUNE_EPOCHS,
            lr=3e-4,
            **COMMON,
        ).fit(Xtr, ytr)
        record("80% unstructured (from dense)", unstructured, time.perf_counter() - t)

        t = time.perf_counter()
        channels = PrunedNetClassifier(
            dense.module_,
            pruner=ChannelPruning(0.5, schedule=OneShot(at=0)),
            max_epochs=TUNE_EPOCHS,
            lr=3e-4,
            **COMMON,
        ).fit(Xtr, ytr)
        compact = channels.compact()
        seconds = time.perf_counter() - t
        gap = np.abs(compact.predict_proba(Xte) - channels.predict_proba(Xte)).max()
        assert gap <= 1e-5, gap
        assert compact.module_.channels == (16, 32), compact.module_.channels
        record("50% channels, compacted (from dense)", compact, seconds)

        for name, pruner in [
            ("80% unstructured (from scratch)", MagnitudePruning(0.8, scope="global")),
            ("50% channels, compacted (from scratch)", ChannelPruning(0.5)),
        ]:
            t = time.perf_counter()
            net = PrunedNetClassifier(ConvNet, pruner=pruner, max_epochs=DENSE_EPOCHS, **COMMON).fit(Xtr, ytr)
            if isinstance(pruner, ChannelPruning):
                net = net.compact()
            record(name, net, time.perf_counter() - t)
        print(f"fold {fold} done", flush=True)

    table = pd.DataFrame(rows)
    summary = table.groupby("model", sort=False).agg(
        accuracy_mean=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        accuracy_min=("accuracy", "min"),
        sparsity=("sparsity", "mean"),
        params=("params", "mean"),
        nonzero_params=("nonzero params", "mean"),
        seconds=("seconds", "mean"),
    )
    dense_acc = summary.loc["dense ConvNet", "accuracy_mean"]
    summary["points vs dense"] = 100 * (summary["accuracy_mean"] - dense_acc)
    pd.set_option("display.width", 160)
    print("\nDigits as 1x8x8 images, 5-fold CV (accuracy in %, params and seconds are fold means)")
    shown = summary.copy()
    for col in ("accuracy_mean", "accuracy_std", "accuracy_min"):
        shown[col] = 100 * shown[col]
    print(shown.round(2).to_string())
    print("\nPer fold accuracy (%):")
    print((100 * table.pivot(index="fold", columns="model", values="accuracy")).round(2).to_string())


if __name__ == "__main__":
    main()
