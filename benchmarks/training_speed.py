"""Training and prediction time of skprune against baselines measured in the same run (CPU).

Training (issue 16's setting): ``make_classification(30000, 64)`` with 10
classes, an MLP with two hidden layers (256, 128), Adam (lr 1e-3), batch 256,
the same epochs for every contender, ``--threads`` torch threads (2):

* the baseline: a hand-written PyTorch loop with ``torch.optim.Adam``
  defaults and the L2 penalty (``alpha=1e-4``, scaled as in scikit-learn)
  through autograd (``benchmarks/_handwritten.py``), and the same loop
  without L2;
* stock skorch ``NeuralNetClassifier`` (no L2);
* scikit-learn's ``MLPClassifier`` (``alpha=1e-4``, same architecture,
  batch, epochs);
* skprune dense, skprune with ``MagnitudePruning(0.9)``, and (with
  ``--compiled``) skprune dense with ``compile="step"`` (its fit includes
  compiling).

Prediction: ``predict_proba`` of one row on digits with an MLP (256, 128)
and 1 thread: skprune, ``MLPClassifier`` and the bare module forward
(``torch.no_grad``).

Prints medians of interleaved repeats and ratios to the baseline measured
in this run. Run: ``PYTHONPATH=. python benchmarks/training_speed.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from skorch import NeuralNetClassifier

from skprune import MLP, MagnitudePruning, PrunedNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handwritten import handwritten_fit  # noqa: E402

HIDDEN = (256, 128)
ALPHA = 1e-4


def handwritten(alpha):
    def fit(X, y, epochs, batch_size, seed):
        model = MLP(X.shape[1], 10, hidden_layer_sizes=HIDDEN)
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.long)
        return handwritten_fit(model, Xt, yt, epochs=epochs, batch_size=batch_size, alpha=alpha, seed=seed)

    return fit


def stock_skorch(X, y, epochs, batch_size, seed):
    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        MLP,
        module__n_features_in=X.shape[1],
        module__n_outputs=10,
        module__hidden_layer_sizes=HIDDEN,
        criterion=torch.nn.CrossEntropyLoss,
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
            alpha=ALPHA,
            batch_size=batch_size,
            max_iter=epochs,
            n_iter_no_change=epochs + 1,
            tol=0,
            random_state=seed,
        ).fit(X, y)


def skprune(**extra):
    def fit(X, y, epochs, batch_size, seed):
        return PrunedNetClassifier(
            module__hidden_layer_sizes=HIDDEN,
            max_epochs=epochs,
            batch_size=batch_size,
            random_state=seed,
            alpha=ALPHA,
            **extra,
        ).fit(X, y)

    return fit


def time_training(args) -> None:
    torch.set_num_threads(args.threads)
    X, y = make_classification(args.n_samples, 64, n_informative=32, n_classes=10, random_state=0)
    X = X.astype(np.float32)
    contenders = {
        "hand-written loop, L2 (baseline)": handwritten(ALPHA),
        "hand-written loop, no L2": handwritten(0.0),
        "stock skorch (no L2)": stock_skorch,
        "sklearn MLPClassifier": sklearn_mlp,
        "skprune dense": skprune(),
        "skprune magnitude 90%": skprune(pruner=MagnitudePruning(0.9)),
    }
    if args.compiled:
        contenders['skprune dense, compile="step"'] = skprune(compile="step")
    for fn in contenders.values():  # warm-up (and the compiled step's compilation)
        fn(X[:2000], y[:2000], 1, args.batch_size, 0)
    times = {name: [] for name in contenders}
    for rep in range(args.repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn(X, y, args.epochs, args.batch_size, rep)
            times[name].append(time.perf_counter() - start)
    med = {name: float(np.median(t)) for name, t in times.items()}
    base = med["hand-written loop, L2 (baseline)"]
    steps = args.epochs * -(-args.n_samples // args.batch_size)
    print(
        f"\nTRAINING: make_classification({args.n_samples}, 64), 10 classes, MLP {HIDDEN}, Adam, "
        f"batch {args.batch_size}, {args.epochs} epochs ({steps} steps), {args.threads} torch thread(s), "
        f"median of {args.repeats} interleaved repeats"
    )
    print(f"{'':36s} {'median s':>9s} {'ms/step':>8s} {'vs baseline':>12s} {'vs MLPClassifier':>17s}")
    for name, value in med.items():
        print(
            f"{name:36s} {value:9.3f} {1e3 * value / steps:8.3f} {value / base:12.3f} "
            f"{value / med['sklearn MLPClassifier']:17.3f}"
        )
    print(f"pruned / dense (skprune): {med['skprune magnitude 90%'] / med['skprune dense']:.3f}")
    print(f"skprune dense / stock skorch: {med['skprune dense'] / med['stock skorch (no L2)']:.3f}")


def time_prediction(args) -> None:
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    net = PrunedNetClassifier(module__hidden_layer_sizes=HIDDEN, max_epochs=2, random_state=0).fit(X, y)
    mlp = sklearn_mlp(X, y, 2, 64, 0)
    module = net.module_.eval()
    row = X[:1]
    row_t = torch.as_tensor(row)

    def forward():
        with torch.no_grad():
            return module(row_t)

    calls = {
        "skprune predict_proba": lambda: net.predict_proba(row),
        "MLPClassifier.predict_proba": lambda: mlp.predict_proba(row),
        "module forward (no_grad)": forward,
    }
    times = {name: [] for name in calls}
    for _ in range(args.predict_rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(100):
                fn()
            times[name].append((time.perf_counter() - start) / 100)
    med = {name: float(np.median(t)) * 1e6 for name, t in times.items()}
    print(
        f"\nPREDICTION of one row: digits, MLP {HIDDEN}, 1 torch thread, "
        f"median of {args.predict_rounds} rounds"
    )
    for name, value in med.items():
        print(f"{name:30s} {value:8.1f} us")
    ours = med["skprune predict_proba"]
    print(
        f"skprune / MLPClassifier: {ours / med['MLPClassifier.predict_proba']:.2f}; "
        f"skprune / module forward: {ours / med['module forward (no_grad)']:.2f}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=30_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compiled", action="store_true", help='also time compile="step" (CPU)')
    parser.add_argument("--predict-rounds", type=int, default=50)
    args = parser.parse_args(argv)
    time_training(args)
    time_prediction(args)


if __name__ == "__main__":
    main()
