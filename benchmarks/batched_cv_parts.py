"""Where the time of batched ``PrunedNetCV(cv=5)`` goes, part by part, against one fit of the same net.

The search and the one fit are those of ``benchmarks/batched_cv.py`` (a
64-256-128-10 MLP at batch 256, sparsities 0, 0.5, 0.8, 0.9). Each part is
wrapped in a timer that synchronizes the device before and after (so GPU work
is charged to the part that queued it): the pruning steps (one per fold and
level), the batched training epochs, each fold's set-up (its clone fitted for
0 epochs and its tensors), the stacking of the fold networks, the mask
updates and the scoring of each fold. "rest" is what no timer covers. Best of
3 runs after 2 warm-ups.

Run: ``python benchmarks/batched_cv_parts.py cuda 6000`` (device, rows).
"""

import collections
import sys
import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetCV
from skprune._training import _engine
from skprune.model_selection import _batched
from skprune.model_selection._path import run_path

SPARSITIES = [0.0, 0.5, 0.8, 0.9]
DENSE_EPOCHS = 8


def _timed(owner, attr: str, label: str, totals: collections.Counter, sync) -> None:
    """Wrap ``owner.attr`` so that its synchronized time adds to ``totals[label]`` (outermost call only)."""
    function = getattr(owner, attr)
    depth = [0]

    def wrapper(*args, **kwargs):
        if depth[0]:
            return function(*args, **kwargs)
        depth[0] += 1
        sync()
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            sync()
            totals[label] += time.perf_counter() - start
            depth[0] -= 1

    setattr(owner, attr, wrapper)


def main(device: str = "cuda", n_samples: int = 6000) -> None:
    torch.set_num_threads(2)
    X, y = make_classification(n_samples, 64, n_informative=32, n_classes=10, random_state=0)
    X = X.astype(np.float32)
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(),
        module__hidden_layer_sizes=(256, 128),
        batch_size=256,
        max_epochs=DENSE_EPOCHS,
        lr=1e-3,
        random_state=0,
        device=device,
    )

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    totals: collections.Counter = collections.Counter()
    for owner, attr, label in (
        (_engine.PruningEngine, "prune_if_scheduled", "pruning steps"),  # one fit's
        (_batched, "_take_steps", "pruning steps"),  # the folds' (each level's steps of every fold)
        (_batched._Fold, "__init__", "fold set-up"),
        (_batched._StackedTraining, "__init__", "stacking"),
        (_batched._StackedTraining, "run_epoch", "epochs"),
        (_batched._StackedTraining, "update_masks", "mask updates"),
        (PrunedNetClassifier, "score", "scoring"),
    ):
        _timed(owner, attr, label, totals, sync)
    runs = {
        "one fit": lambda: run_path(clone(net), X, y, SPARSITIES, DENSE_EPOCHS, None),
        "batched PrunedNetCV(cv=5)": lambda: PrunedNetCV(
            net, sparsities=SPARSITIES, cv=5, refit=False, batch_folds=True
        ).fit(X, y),
    }
    print(f"{device}; {n_samples} x 64, MLP 64-256-128-10, batch 256; milliseconds, best of 3")
    for name, run in runs.items():
        run(), run()  # warm-up
        best = None
        for _ in range(3):
            totals.clear()
            sync()
            start = time.perf_counter()
            run()
            sync()
            total = time.perf_counter() - start
            if best is None or total < best[0]:
                best = (total, dict(totals))
        total, parts = best
        shown = "; ".join(f"{k} {v * 1e3:.1f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        rest = total - sum(parts.values())
        print(f"{name}: {total * 1e3:.1f} = {shown}; rest {rest * 1e3:.1f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cuda", int(sys.argv[2]) if len(sys.argv) > 2 else 6000)
