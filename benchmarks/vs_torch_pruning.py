"""skprune against Torch-Pruning: 50% of the channels of a trained residual ConvNet, then fine-tuning.

Data: scikit-learn's digits scaled to [0, 1] and upsampled to 1x16x16 (each
pixel repeated 2x2, as in ``benchmarks/depth.py``), split 70/30
(``train_test_split(stratify=y, random_state=0)``).

Network: ``ConvNet(channels=(16, 32), n_blocks=2, hidden=0)``, two stages of
``conv -> BatchNorm -> ReLU -> 2 residual blocks -> max-pool`` and the output
layer, trained dense for ``--dense-epochs`` epochs (Adam, lr 1e-3, batch 64)
once; both tools start from a deep copy of these trained weights.

The two rows do the same work:

- **skprune**: ``PrunedNetClassifier(module=<the trained ConvNet>,
  pruner=ChannelPruning(0.5, importance="l2", schedule=OneShot(at=0)))``,
  ``fit`` for ``--tune-epochs`` epochs. The whole ``fit`` is timed: input
  validation, the pruning step, the compaction right after it
  (``compact_during_fit=True``, the default) and fine-tuning the small
  network.
- **Torch-Pruning**: ``MagnitudePruner`` with ``GroupMagnitudeImportance(p=2)``
  (the L2 norm of each channel group, Torch-Pruning's ``GroupNormImportance``),
  ``pruning_ratio=0.5``, the output layer ignored; ``step()`` removes the
  channels physically, then a hand-written loop fine-tunes for the same
  epochs (Adam, lr 1e-3, batch 64, shuffled each epoch, train mode). Timed
  from building the pruner (dependency graph) to the end of the loop.

Both use no weight decay (skprune's ``alpha=0``) so the optimizer work is the
same. A third row, ``skprune masked``, is the previous behaviour
(``compact_during_fit=False``: fine-tune the full-size masked network, then
``compact()``), for reference. Each tool runs ``--repeats`` times,
interleaved; the table shows the median wall time and the ratio to
Torch-Pruning next to the goal (<= 1.1x). Parameters and MACs are counted
by Torch-Pruning's ``count_ops_and_params`` on one sample; accuracy on the
held-out 30%.

Run (CPU): ``PYTHONPATH=. python benchmarks/vs_torch_pruning.py --threads 2``
GPU: ``PYTHONPATH=. python benchmarks/vs_torch_pruning.py --device cuda``.
Needs ``pip install 'skprune[bench]'`` (torch-pruning).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skprune import ChannelPruning, ConvNet, OneShot, PrunedNetClassifier

GOAL = 1.1
ARCH = dict(channels=(16, 32), n_blocks=2, hidden=0)
LR, BATCH = 1e-3, 64


def load_data():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8).repeat(2, axis=2).repeat(2, axis=3)
    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_dense(X, y, epochs: int, device: str) -> nn.Module:
    net = PrunedNetClassifier(
        ConvNet, **{f"module__{k}": v for k, v in ARCH.items()}, max_epochs=epochs, lr=LR,
        batch_size=BATCH, random_state=0, device=device,
    ).fit(X, y)
    return net.module_.cpu()


def run_skprune(trained, X, y, epochs: int, device: str, compact_during_fit: bool):
    net = PrunedNetClassifier(
        copy.deepcopy(trained),
        pruner=ChannelPruning(0.5, importance="l2", schedule=OneShot(at=0)),
        max_epochs=epochs, lr=LR, batch_size=BATCH, alpha=0.0, random_state=0, device=device,
        compact_during_fit=compact_during_fit,
    )
    sync(device)
    start = time.perf_counter()
    net.fit(X, y)
    if not compact_during_fit:
        net = net.compact()
    sync(device)
    return time.perf_counter() - start, net.module_, net


def run_torch_pruning(trained, X, y, epochs: int, device: str):
    import torch_pruning as tp

    sync(device)
    start = time.perf_counter()
    model = copy.deepcopy(trained).to(device)
    X_t = torch.as_tensor(X, device=device)
    y_t = torch.as_tensor(y, device=device)
    pruner = tp.pruner.MagnitudePruner(
        model,
        X_t[:1],
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=0.5,
        ignored_layers=[model.layers.output],
    )
    pruner.step()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
    generator = torch.Generator(device="cpu").manual_seed(0)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X_t), generator=generator).to(device)
        for begin in range(0, len(order), BATCH):
            index = order[begin : begin + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
    sync(device)
    return time.perf_counter() - start, model


def accuracy(module: nn.Module, X, y, device: str) -> float:
    module = module.to(device).eval()
    with torch.no_grad():
        predicted = module(torch.as_tensor(X, device=device)).argmax(1).cpu().numpy()
    return float((predicted == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help='"cpu" or "cuda"')
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--dense-epochs", type=int, default=10)
    parser.add_argument("--tune-epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import torch_pruning as tp

    X_train, X_test, y_train, y_test = load_data()
    trained = train_dense(X_train, y_train, args.dense_epochs, args.device)
    sample = torch.as_tensor(X_test[:1])
    runs = {
        "skprune": lambda: run_skprune(trained, X_train, y_train, args.tune_epochs, args.device, True),
        "skprune masked + compact()": lambda: run_skprune(
            trained, X_train, y_train, args.tune_epochs, args.device, False
        ),
        "Torch-Pruning": lambda: run_torch_pruning(trained, X_train, y_train, args.tune_epochs, args.device),
    }
    for run in runs.values():  # warm up (allocators, kernels, imports)
        run()
    times = {name: [] for name in runs}
    models = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            seconds, module, *_ = run()
            times[name].append(seconds)
            models[name] = module
    rows = []
    reference = statistics.median(times["Torch-Pruning"])
    dense_macs, dense_params = tp.utils.count_ops_and_params(copy.deepcopy(trained).eval(), sample)
    rows.append(
        {"tool": "dense (trained, not pruned)", "params": int(dense_params), "MACs": int(dense_macs),
         "test_accuracy": accuracy(copy.deepcopy(trained), X_test, y_test, args.device),
         "wall_s": float("nan"), "ratio_to_torch_pruning": float("nan")}
    )
    for name, module in models.items():
        module = copy.deepcopy(module).cpu().eval()
        macs, params = tp.utils.count_ops_and_params(module, sample)
        seconds = statistics.median(times[name])
        rows.append(
            {"tool": name, "params": int(params), "MACs": int(macs),
             "test_accuracy": accuracy(module, X_test, y_test, args.device),
             "wall_s": seconds, "ratio_to_torch_pruning": seconds / reference}
        )
    table = pd.DataFrame(rows).set_index("tool")
    print(
        f"50% channels of ConvNet{ARCH} on digits 1x16x16, {args.tune_epochs} fine-tune epochs, "
        f"device={args.device}, threads={args.threads}, median of {args.repeats} runs "
        f"(torch {torch.__version__}, torch-pruning {tp.__version__})"
    )
    print(table.to_string(float_format="{:.4g}".format))
    ratio = table.loc["skprune", "ratio_to_torch_pruning"]
    print(f"\nskprune / Torch-Pruning wall time: {ratio:.2f}x (goal <= {GOAL}x): "
          f"{'met' if ratio <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
