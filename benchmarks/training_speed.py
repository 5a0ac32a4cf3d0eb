"""Training and prediction time of skprune against baselines measured in the same run (CPU).

Training: ``make_classification(--n-samples, --n-features)`` with 10
classes, an MLP with ``--hidden`` layers, Adam (lr 1e-3), ``--batch-size``,
``--epochs`` for every contender, ``--threads`` torch threads (2). Defaults:
30000 x 64, MLP (256, 128), batch 256, 5 epochs (issue 16's setting); other
shapes of interest: ``--n-features 20 --hidden 100 --batch-size 200`` (the
shape of ``MLPClassifier``'s defaults) and ``--batch-size 32`` (where the
per-step Python dominates). Contenders:

* hand-written PyTorch loops (``benchmarks/_handwritten.py``): with
  ``torch.optim.Adam`` defaults and with ``Adam(fused=True)``, each with the
  L2 penalty (``alpha=1e-4``, scaled as in scikit-learn) through autograd
  and without it;
* stock skorch ``NeuralNetClassifier`` (no L2);
* scikit-learn's ``MLPClassifier`` (``alpha=1e-4``, same architecture,
  batch, epochs);
* skprune dense (``alpha=1e-4``, the default), skprune dense with
  ``alpha=0``, skprune with ``MagnitudePruning(0.9)``, and (with
  ``--compiled``) skprune dense with ``compile="step"`` (its fit includes
  compiling).

skprune with L2 is compared with the loops with L2, skprune with
``alpha=0`` with the loops without; each ratio is printed next to issue
27's goal.

Prediction: ``predict_proba`` and ``predict`` of one row on digits with an
MLP (256, 128) and 1 thread: skprune, ``MLPClassifier`` and the bare module
forward (``torch.no_grad``), median of many rounds.

Prints medians of interleaved repeats and ratios measured in this run. Run:
``PYTHONPATH=. OMP_NUM_THREADS=2 taskset -c 0,1 python benchmarks/training_speed.py``
(``--no-prediction`` / ``--no-training`` run one half).
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

from skprune import MLP, MagnitudePruning, PrunedNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handwritten import handwritten_fit, stock_skorch_fit  # noqa: E402

ALPHA = 1e-4
N_CLASSES = 10
#: issue 27's goals: (skprune contender, baseline, goal)
GOALS = [
    ("skprune dense", "hand-written, Adam, L2", 0.85),
    ("skprune dense", "hand-written, Adam(fused), L2", 1.0),
    ("skprune dense", "sklearn MLPClassifier", 0.7),
    ("skprune dense, alpha=0", "hand-written, Adam, no L2", 0.85),
    ("skprune dense, alpha=0", "hand-written, Adam(fused), no L2", 1.0),
]


def handwritten(alpha, hidden, fused=False):
    def fit(X, y, epochs, batch_size, seed):
        model = MLP(X.shape[1], N_CLASSES, hidden_layer_sizes=hidden)
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y, dtype=torch.long)
        return handwritten_fit(
            model, Xt, yt, epochs=epochs, batch_size=batch_size, alpha=alpha, seed=seed, fused=fused
        )

    return fit


def stock_skorch(hidden):
    def fit(X, y, epochs, batch_size, seed):
        return stock_skorch_fit(
            X, y, hidden=hidden, n_classes=N_CLASSES, epochs=epochs, batch_size=batch_size, seed=seed
        )

    return fit


def sklearn_mlp(hidden):
    def fit(X, y, epochs, batch_size, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return MLPClassifier(
                hidden,
                alpha=ALPHA,
                batch_size=batch_size,
                max_iter=epochs,
                n_iter_no_change=epochs + 1,
                tol=0,
                random_state=seed,
            ).fit(X, y)

    return fit


def skprune(hidden, **extra):
    def fit(X, y, epochs, batch_size, seed):
        params = {"alpha": ALPHA, **extra}
        return PrunedNetClassifier(
            module__hidden_layer_sizes=hidden,
            max_epochs=epochs,
            batch_size=batch_size,
            random_state=seed,
            **params,
        ).fit(X, y)

    return fit


def time_training(args) -> None:
    torch.set_num_threads(args.threads)
    hidden = tuple(args.hidden)
    n_informative = max(5, min(32, args.n_features // 2))
    X, y = make_classification(
        args.n_samples, args.n_features, n_informative=n_informative, n_classes=N_CLASSES, random_state=0
    )
    X = X.astype(np.float32)
    contenders = {
        "hand-written, Adam, L2": handwritten(ALPHA, hidden),
        "hand-written, Adam, no L2": handwritten(0.0, hidden),
        "hand-written, Adam(fused), L2": handwritten(ALPHA, hidden, fused=True),
        "hand-written, Adam(fused), no L2": handwritten(0.0, hidden, fused=True),
        "stock skorch (no L2)": stock_skorch(hidden),
        "sklearn MLPClassifier": sklearn_mlp(hidden),
        "skprune dense": skprune(hidden),
        "skprune dense, alpha=0": skprune(hidden, alpha=0.0),
        "skprune magnitude 90%": skprune(hidden, pruner=MagnitudePruning(0.9)),
    }
    if args.compiled:
        contenders['skprune dense, compile="step"'] = skprune(hidden, compile="step")
    for fn in contenders.values():  # warm-up (and the compiled step's compilation)
        fn(X[:2000], y[:2000], 1, args.batch_size, 0)
    times = {name: [] for name in contenders}
    for rep in range(args.repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn(X, y, args.epochs, args.batch_size, rep)
            times[name].append(time.perf_counter() - start)
    med = {name: float(np.median(t)) for name, t in times.items()}
    base = med["hand-written, Adam, L2"]
    steps = args.epochs * -(-args.n_samples // args.batch_size)
    print(
        f"\nTRAINING: make_classification({args.n_samples}, {args.n_features}), {N_CLASSES} classes, "
        f"MLP {hidden}, Adam, batch {args.batch_size}, {args.epochs} epochs ({steps} steps), "
        f"{args.threads} torch thread(s), median of {args.repeats} interleaved repeats"
    )
    print(f"{'':34s} {'median s':>9s} {'ms/step':>8s} {'vs Adam L2 loop':>16s} {'vs MLPClassifier':>17s}")
    for name, value in med.items():
        print(
            f"{name:34s} {value:9.3f} {1e3 * value / steps:8.3f} {value / base:16.3f} "
            f"{value / med['sklearn MLPClassifier']:17.3f}"
        )
    fastest = {name: float(np.min(t)) for name, t in times.items()}
    print(
        "\nissue 27's goals (ratio of medians; ratio of the fastest repeats, which load from other "
        "processes disturbs least; per-repeat ratios: min-max):"
    )
    for ours, baseline, goal in GOALS:
        per_repeat = np.array(times[ours]) / np.array(times[baseline])
        ratio = med[ours] / med[baseline]
        verdict = "met" if ratio <= goal else "NOT met"
        print(
            f"  {ours} / {baseline}: {ratio:.3f} (goal <= {goal}, {verdict}; fastest "
            f"{fastest[ours] / fastest[baseline]:.3f}; {per_repeat.min():.3f}-{per_repeat.max():.3f})"
        )
    print(f"  pruned / dense (skprune): {med['skprune magnitude 90%'] / med['skprune dense']:.3f}")
    print(f"  skprune dense / stock skorch: {med['skprune dense'] / med['stock skorch (no L2)']:.3f}")


def time_prediction(args) -> None:
    torch.set_num_threads(1)
    hidden = (256, 128)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    net = PrunedNetClassifier(module__hidden_layer_sizes=hidden, max_epochs=2, random_state=0).fit(X, y)
    mlp = sklearn_mlp(hidden)(X, y, 2, 64, 0)
    module = net.module_.eval()
    row = X[:1]
    row_t = torch.as_tensor(row)

    def forward():
        with torch.no_grad():
            return module(row_t)

    calls = {
        "skprune predict_proba": lambda: net.predict_proba(row),
        "skprune predict": lambda: net.predict(row),
        "MLPClassifier.predict_proba": lambda: mlp.predict_proba(row),
        "module forward (no_grad)": forward,
    }
    for fn in calls.values():
        fn()
    times = {name: [] for name in calls}
    for _ in range(args.predict_rounds):
        for name, fn in calls.items():
            start = time.perf_counter()
            for _ in range(100):
                fn()
            times[name].append((time.perf_counter() - start) / 100)
    med = {name: float(np.median(t)) * 1e6 for name, t in times.items()}
    print(
        f"\nPREDICTION of one row: digits, MLP {hidden}, 1 torch thread, "
        f"median of {args.predict_rounds} rounds of 100 calls"
    )
    for name, value in med.items():
        print(f"{name:30s} {value:8.1f} us")
    forward_us = med["module forward (no_grad)"]
    for name in ("skprune predict_proba", "skprune predict"):
        ratio = med[name] / forward_us
        verdict = "met" if ratio <= 1.5 else "NOT met"
        print(f"{name} / module forward: {ratio:.2f} (goal <= 1.5, {verdict})")
    versus_mlp = med["skprune predict_proba"] / med["MLPClassifier.predict_proba"]
    print(f"skprune predict_proba / MLPClassifier: {versus_mlp:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=30_000)
    parser.add_argument("--n-features", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128], help="hidden layer sizes")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compiled", action="store_true", help='also time compile="step" (CPU)')
    parser.add_argument("--predict-rounds", type=int, default=100)
    parser.add_argument("--no-training", action="store_true", help="only the prediction part")
    parser.add_argument("--no-prediction", action="store_true", help="only the training part")
    args = parser.parse_args(argv)
    if not args.no_training:
        time_training(args)
    if not args.no_prediction:
        time_prediction(args)


if __name__ == "__main__":
    main()
