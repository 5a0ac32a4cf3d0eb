"""Fit time on a GPU against 2 CPU threads, measured in the same run.

``make_classification(200000, 100)``, MLP (512, 256), 10 epochs, batch 512,
gradual magnitude pruning to 90% (and dense, for reference). Run on a machine
with a CUDA GPU: ``python benchmarks/gpu_fit.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import make_classification

from skprune import MagnitudePruning, PrunedNetClassifier


def fit_seconds(device: str, X, y, epochs: int, pruner) -> tuple[float, float]:
    net = PrunedNetClassifier(
        pruner=pruner,
        module__hidden_layer_sizes=(512, 256),
        max_epochs=epochs,
        batch_size=512,
        random_state=0,
        device=device,
    )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    net.fit(X, y)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return elapsed, net.score(X[:20000], y[:20000])


def plain_loop_seconds(device: str, X, y, epochs: int) -> float:
    """A hand-written PyTorch loop over the same network: the floor."""
    from skprune import MLP

    torch.manual_seed(0)
    Xt = torch.as_tensor(X, device=device)
    yt = torch.as_tensor(y, dtype=torch.long, device=device)
    model = MLP(X.shape[1], 2, hidden_layer_sizes=(512, 256)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt), device=device)
        for i in range(0, len(Xt), 512):
            idx = order[i : i + 512]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            loss.item()  # skorch records every batch loss, which syncs; so does this floor
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-samples", type=int, default=200_000)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: this benchmark compares a GPU with the CPU")
    X, y = make_classification(args.n_samples, 100, n_informative=40, random_state=0)
    X = X.astype(np.float32)
    torch.set_num_threads(2)
    fit_seconds("cuda", X[:5000], y[:5000], 1, None)  # CUDA context and kernels warm-up
    print(
        f"make_classification({args.n_samples}, 100), MLP (512, 256), batch 512, {args.epochs} epochs; "
        f"GPU: {torch.cuda.get_device_name()}, CPU: {torch.get_num_threads()} torch threads"
    )
    gpu_plain = plain_loop_seconds("cuda", X, y, args.epochs)
    cpu_plain = plain_loop_seconds("cpu", X, y, args.epochs)
    print(
        f"{'plain loop':14s} cpu {cpu_plain:7.1f} s              gpu {gpu_plain:6.1f} s              "
        f"gpu speed-up {cpu_plain / gpu_plain:5.1f}x"
    )
    for label, pruner in [("dense", None), ("magnitude 90%", MagnitudePruning(0.9))]:
        gpu_s, gpu_acc = fit_seconds("cuda", X, y, args.epochs, pruner)
        cpu_s, cpu_acc = fit_seconds("cpu", X, y, args.epochs, pruner)
        print(
            f"{label:14s} cpu {cpu_s:7.1f} s (acc {cpu_acc:.3f})   gpu {gpu_s:6.1f} s (acc {gpu_acc:.3f})   "
            f"gpu speed-up {cpu_s / gpu_s:5.1f}x"
        )


if __name__ == "__main__":
    main()
