"""Pruning against noise: dense against cross-validated sparsity under label noise and noise features.

Digits and breast cancer, each with

* label noise: 0 / 10 / 20 / 30% of the *training* labels replaced by
  another class drawn at random (the test labels stay clean);
* irrelevant features: 0 / 50 / 200 standard-normal columns appended.

Methods, all ``make_pipeline(StandardScaler(), PrunedNetClassifier(...))``
with the same network and budget:

* ``dense``: no pruner;
* ``PrunedNetCV``: ``MagnitudePruning`` along the path ``SPARSITIES``
  (3-fold, defaults otherwise: best mean score);
* ``GridSearchCV``: the same sparsities, each fitted from scratch with the
  default gradual schedule (3-fold);
* ``InputPruning`` (noise-feature rows only): ``PrunedNetCV`` over the
  share of input features removed, ``INPUT_SPARSITIES``.

Held-out accuracy, macro recall and macro F1 on a stratified 30% test
split, mean ± std over ``--seeds`` (split, noise and network seeds). A plot
of held-out accuracy against the noise level, one line per method, is
written to ``--out`` (default ``docs/noisy_data.png``).

    python benchmarks/noisy_data.py                  # full table and plot
    python benchmarks/noisy_data.py --quick          # smoke run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, recall_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skprune import InputPruning, MagnitudePruning, PrunedNetClassifier, PrunedNetCV  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95)
INPUT_SPARSITIES = (0.0, 0.5, 0.75, 0.9)
LABEL_NOISE = (0.0, 0.1, 0.2, 0.3)
NOISE_FEATURES = (0, 50, 200)


def load(name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        X, y = load_breast_cancer(return_X_y=True)
    return X.astype(np.float32), y


def noisy_split(name, label_noise, n_noise, seed):
    """Train/test split with noise features appended and a share of the training labels flipped."""
    X, y = load(name)
    rng = np.random.default_rng(seed)
    if n_noise:
        X = np.hstack([X, rng.standard_normal((len(X), n_noise)).astype(np.float32)])
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    y_train = y_train.copy()
    classes = np.unique(y)
    flip = rng.random(len(y_train)) < label_noise
    for i in np.flatnonzero(flip):
        y_train[i] = rng.choice(classes[classes != y_train[i]])
    return X_train, X_test, y_train, y_test


def make_method(method, seed, epochs):
    def net(pruner):
        return make_pipeline(
            StandardScaler(),
            PrunedNetClassifier(
                pruner=pruner,
                max_epochs=epochs,
                lr=3e-3,
                module__hidden_layer_sizes=(128,),
                random_state=seed,
            ),
        )

    cv = StratifiedKFold(3, shuffle=True, random_state=seed)
    if method == "dense":
        return net(None)
    if method == "PrunedNetCV":
        return PrunedNetCV(net(MagnitudePruning()), sparsities=SPARSITIES, cv=cv)
    if method == "GridSearchCV":
        grid = {"prunednetclassifier__pruner__sparsity": list(SPARSITIES)}
        return GridSearchCV(net(MagnitudePruning()), grid, cv=cv)
    return PrunedNetCV(net(InputPruning(sparsity=0.5)), sparsities=INPUT_SPARSITIES, cv=cv)


def chosen(model):
    if isinstance(model, PrunedNetCV):
        return model.sparsity_
    if isinstance(model, GridSearchCV):
        return model.best_params_["prunednetclassifier__pruner__sparsity"]
    return 0.0


def one_run(name, label_noise, n_noise, seed, method, epochs):
    torch.set_num_threads(1)
    X_train, X_test, y_train, y_test = noisy_split(name, label_noise, n_noise, seed)
    start = time.perf_counter()
    model = make_method(method, seed, epochs).fit(X_train, y_train)
    pred = model.predict(X_test)
    return {
        "dataset": name,
        "label_noise": label_noise,
        "noise_features": n_noise,
        "seed": seed,
        "method": method,
        "accuracy": accuracy_score(y_test, pred),
        "recall_macro": recall_score(y_test, pred, average="macro"),
        "f1_macro": f1_score(y_test, pred, average="macro"),
        "chosen_sparsity": chosen(model),
        "seconds": time.perf_counter() - start,
    }


def tasks(datasets, seeds, epochs):
    conditions = [(noise, 0) for noise in LABEL_NOISE] + [(0.0, n) for n in NOISE_FEATURES[1:]]
    for name in datasets:
        for label_noise, n_noise in conditions:
            methods = ["dense", "PrunedNetCV", "GridSearchCV"] + (["InputPruning"] if n_noise else [])
            for seed in seeds:
                for method in methods:
                    yield name, label_noise, n_noise, seed, method, epochs


def plot(df, out: Path):
    datasets = list(df.dataset.unique())
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10, 3.6 * len(datasets)), squeeze=False)
    for row, name in enumerate(datasets):
        part = df[df.dataset == name]
        for col, (axis, label) in enumerate(
            [("label_noise", "training labels flipped"), ("noise_features", "irrelevant features added")]
        ):
            other = "noise_features" if axis == "label_noise" else "label_noise"
            sub = part[part[other] == 0]
            ax = axes[row, col]
            for method, m in sub.groupby("method", sort=False):
                stats = m.groupby(axis).accuracy.agg(["mean", "std"])
                ax.errorbar(
                    stats.index, stats["mean"], yerr=stats["std"], marker="o", capsize=3, label=method
                )
            ax.set_xlabel(label)
            ax.set_ylabel("held-out accuracy")
            ax.set_title(name)
            ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"figure written to {out}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/noisy_data.png"))
    args = parser.parse_args()
    datasets = ["breast_cancer"] if args.quick else ["digits", "breast_cancer"]
    epochs = 3 if args.quick else args.epochs
    start = time.perf_counter()
    rows = Parallel(n_jobs=args.n_jobs)(
        delayed(one_run)(*task) for task in tasks(datasets, args.seeds, epochs)
    )
    df = pd.DataFrame(rows)
    print(
        f"MLP (128,), {epochs} epochs, lr 3e-3, 3-fold searches over {SPARSITIES} "
        f"(InputPruning: {INPUT_SPARSITIES}); seeds {args.seeds}; mean ± std over seeds, in %\n"
    )
    fmt = lambda v: f"{100 * v.mean():.1f} ± {100 * v.std(ddof=0):.1f}"  # noqa: E731
    table = df.groupby(["dataset", "label_noise", "noise_features", "method"], sort=False).agg(
        accuracy=("accuracy", fmt),
        recall_macro=("recall_macro", fmt),
        f1_macro=("f1_macro", fmt),
        chosen_sparsity=("chosen_sparsity", lambda v: "/".join(f"{s:g}" for s in v)),
    )
    print(table.to_markdown())
    print(f"\n{len(df)} runs, {time.perf_counter() - start:.0f} s wall, n_jobs={args.n_jobs}")
    plot(df, args.out)


if __name__ == "__main__":
    main()
