"""Training time of skprune against baselines measured in the same run.

Compares, on scikit-learn's digits with an MLP (256, 128), Adam, batch 64,
the same number of epochs for every contender:

* a plain PyTorch loop over pre-converted tensors (the floor),
* stock skorch ``NeuralNetClassifier`` (per-sample Dataset + collate),
* scikit-learn's ``MLPClassifier`` (numpy, same architecture and epochs),
* skprune dense (``pruner=None``) and skprune with gradual magnitude pruning.

Prints the median of several interleaved repeats and ratios to the plain
loop. Run: ``python benchmarks/training_speed.py``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier

from skprune import MLP, MagnitudePruning, PrunedNetClassifier

HIDDEN = (256, 128)


def plain_torch(X, y, epochs, batch_size, seed):
    torch.manual_seed(seed)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    model = MLP(X.shape[1], 10, hidden_layer_sizes=HIDDEN)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(Xt), generator=gen)
        for start in range(0, len(Xt), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model


class _SoftmaxMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = MLP(64, 10, hidden_layer_sizes=HIDDEN)

    def forward(self, X):
        return torch.softmax(self.mlp(X), dim=-1)


def stock_skorch(X, y, epochs, batch_size, seed):
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        _SoftmaxMLP,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    return net.fit(X, y.astype(np.int64))


def sklearn_mlp(X, y, epochs, batch_size, seed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(
            HIDDEN,
            batch_size=batch_size,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
            tol=0,
            random_state=seed,
        ).fit(X, y)


def skprune_dense(X, y, epochs, batch_size, seed):
    return PrunedNetClassifier(
        module__hidden_layer_sizes=HIDDEN,
        max_epochs=epochs,
        batch_size=batch_size,
        random_state=seed,
        alpha=0.0,
    ).fit(X, y)


def skprune_pruned(X, y, epochs, batch_size, seed):
    return PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.9),
        module__hidden_layer_sizes=HIDDEN,
        max_epochs=epochs,
        batch_size=batch_size,
        random_state=seed,
        alpha=0.0,
    ).fit(X, y)


CONTENDERS = {
    "plain PyTorch loop": plain_torch,
    "stock skorch": stock_skorch,
    "sklearn MLPClassifier": sklearn_mlp,
    "skprune dense": skprune_dense,
    "skprune magnitude 90%": skprune_pruned,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    times = {name: [] for name in CONTENDERS}
    for fn in CONTENDERS.values():  # warm-up
        fn(X[:200], y[:200], 1, args.batch_size, 0)
    for rep in range(args.repeats):
        for name, fn in CONTENDERS.items():
            start = time.perf_counter()
            fn(X, y, args.epochs, args.batch_size, rep)
            times[name].append(time.perf_counter() - start)
    base = np.median(times["plain PyTorch loop"])
    table = pd.DataFrame(
        {
            "median_s": [np.median(t) for t in times.values()],
            "ratio_to_plain_torch": [np.median(t) / base for t in times.values()],
        },
        index=list(times),
    )
    table["ratio_to_stock_skorch"] = table["median_s"] / table.loc["stock skorch", "median_s"]
    print(
        f"digits {X.shape}, MLP {HIDDEN}, Adam, batch {args.batch_size}, {args.epochs} epochs, "
        f"{args.threads} torch thread(s), median of {args.repeats} interleaved repeats"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    return table


if __name__ == "__main__":
    main()
