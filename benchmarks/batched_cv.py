"""Cost of ``PrunedNetCV(cv=5)`` with batched and with sequential folds, against one fit of the same net.

"One fit" is one sparsity path of the same estimator on the whole training
set (:func:`skprune.model_selection._path.run_path`: the dense fit, then
every level with its fine-tune), which is exactly what ``PrunedNetCV``'s
refit costs when the last sparsity is chosen. The searches run with
``refit=False``, so their time is the cross-validation alone: 5 paths, each
on 4/5 of the rows. The issue's goals (issue 27): batched ``PrunedNetCV(cv=5)``
at most 1.5 times one fit on a GPU, at most 3 times on 2 CPU threads
(sequential: about 5 times).

The network is the issue's hand measurement: a 64-256-128-10 MLP at batch
256, on synthetic 64-feature, 10-class data. The batched and sequential
searches must give the same ``cv_results_`` (scores to float rounding, the
same chosen sparsity): the script prints the largest score difference and
fails if the chosen sparsities differ.

Run: ``python benchmarks/batched_cv.py`` (CPU, 2 torch threads) or
``python benchmarks/batched_cv.py --device cuda``. Times are the best of
``--repeats`` interleaved rounds after a warm-up; wall and process CPU time are printed
(on a shared machine the CPU-time ratio is the steadier figure on CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetCV
from skprune.model_selection._path import run_path

GOALS = {"cpu": 3.0, "cuda": 1.5}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _interleaved(functions: dict, device: str, repeats: int) -> tuple[dict, dict, dict]:
    """Best wall and process CPU seconds of each function over ``repeats`` interleaved rounds."""
    wall = {name: float("inf") for name in functions}
    cpu = dict(wall)
    results = {}
    for _ in range(repeats):
        for name, function in functions.items():
            _sync(device)
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            results[name] = function()
            _sync(device)
            wall[name] = min(wall[name], time.perf_counter() - start_wall)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    return wall, cpu, results


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (CPU)")
    parser.add_argument("--n-samples", type=int, default=6000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dense-epochs", type=int, default=8)
    parser.add_argument("--sparsities", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = args.device

    X, y = make_classification(
        n_samples=args.n_samples, n_features=64, n_informative=32, n_classes=10, random_state=0
    )
    X = X.astype(np.float32)
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(),
        module__hidden_layer_sizes=tuple(args.hidden),
        batch_size=args.batch_size,
        max_epochs=args.dense_epochs,
        lr=1e-3,
        random_state=0,
        device=device,
    )
    sparsities = args.sparsities

    def one_fit():
        run_path(clone(net), X, y, sparsities, args.dense_epochs, None)

    def search(batch_folds):
        return lambda: PrunedNetCV(
            net, sparsities=sparsities, cv=args.cv, batch_folds=batch_folds, refit=False
        ).fit(X, y)

    # warm-up: the first fits pay for allocations, kernels and lazy imports
    PrunedNetCV(
        clone(net).set_params(max_epochs=1), sparsities=sparsities[:2], cv=2, finetune_epochs=1, refit=False
    ).fit(X[:512], y[:512])
    wall, cpu, results = _interleaved(
        {"one": one_fit, "batched": search(True), "sequential": search(False)}, device, args.repeats
    )
    one_wall, batched_wall, seq_wall = wall["one"], wall["batched"], wall["sequential"]
    one_cpu, batched_cpu, seq_cpu = cpu["one"], cpu["batched"], cpu["sequential"]
    batched, sequential = results["batched"], results["sequential"]
    assert batched.batched_ and not sequential.batched_
    if batched.best_sparsity_ != sequential.best_sparsity_:
        raise AssertionError(
            f"batched chose {batched.best_sparsity_}, sequential {sequential.best_sparsity_}: "
            "not the same search"
        )
    diff = float(np.abs(batched.scores_path_ - sequential.scores_path_).max())

    goal = GOALS["cuda" if device.startswith("cuda") else "cpu"]
    rows = [
        ("one fit (run_path on all rows)", one_wall, one_cpu, 1.0, 1.0, ""),
        (
            f"PrunedNetCV(cv={args.cv}) batched",
            batched_wall,
            batched_cpu,
            batched_wall / one_wall,
            batched_cpu / one_cpu,
            f"<= {goal:g}x",
        ),
        (
            f"PrunedNetCV(cv={args.cv}) sequential",
            seq_wall,
            seq_cpu,
            seq_wall / one_wall,
            seq_cpu / one_cpu,
            "(now ~5x)",
        ),
    ]
    table = pd.DataFrame(rows, columns=["measure", "wall s", "cpu s", "wall ratio", "cpu ratio", "goal"])
    where = f"CPU, {args.threads} torch threads"
    if device.startswith("cuda"):
        where = torch.cuda.get_device_name()
    print(
        f"{where}; {args.n_samples} x 64, 10 classes; MLP 64-{'-'.join(map(str, args.hidden))}-10, "
        f"batch {args.batch_size}; dense {args.dense_epochs} epochs, sparsities {sparsities} "
        f"(fine-tune epochs per level: PrunedNetCV's default); best of {args.repeats}"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"batched vs sequential: largest score difference {diff:.2e}, chosen sparsity "
        f"{batched.best_sparsity_} in both; batched / sequential wall {batched_wall / seq_wall:.2f}x"
    )
    return table


if __name__ == "__main__":
    main()
