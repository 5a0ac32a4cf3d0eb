"""Time of one pruning step (mask computation, path check, mask update) of a built-in pruner.

The network is a trained 64-256-128-10 MLP (10-class synthetic data); each
step is a fresh :class:`~skprune._training._engine.PruningEngine` taking the
step of ``MagnitudePruning`` (LAMP allocation, the default) at the given
sparsity on a copy of the fitted masks, as every pruning step of a fit and of
each fold of ``PrunedNetCV`` does. Prints the best time of ``--repeats``
steps per sparsity, in milliseconds.

Run: ``python benchmarks/pruning_step.py`` (CPU, 2 torch threads) or
``python benchmarks/pruning_step.py --device cuda``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from sklearn.datasets import make_classification

from skprune import MagnitudePruning, PrunedNetClassifier
from skprune._training._engine import PruningEngine
from skprune.model_selection._path import _path_pruner


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.6, 0.9])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = make_classification(600, 64, n_informative=32, n_classes=10, random_state=0)
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.5),
        module__hidden_layer_sizes=(256, 128),
        max_epochs=1,
        random_state=0,
        device=args.device,
    ).fit(X.astype(np.float32), y)

    def step(sparsity: float) -> float:
        pruner = _path_pruner(MagnitudePruning(), sparsity, at=0.0)
        engine = PruningEngine(
            pruner,
            net.module_,
            copy.deepcopy(net.masks_),
            n_epochs=1,
            generator=torch.Generator().manual_seed(0),
            optimizer=None,
            compiled=False,
        )
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        engine.begin_epoch(None, None)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for sparsity in args.sparsities:  # warm-up
        step(sparsity)
    best = {s: min(step(s) for _ in range(args.repeats)) for s in args.sparsities}
    print(
        f"{args.device}: one MagnitudePruning step of a 64-256-128-10 MLP, best of {args.repeats}: "
        + ", ".join(f"sparsity {s:g}: {t * 1e3:.2f} ms" for s, t in best.items())
    )
    return best


if __name__ == "__main__":
    main()
