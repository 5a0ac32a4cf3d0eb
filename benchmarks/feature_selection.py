"""Feature selection by input pruning vs L1 logistic regression vs mutual information.

Data: ``make_classification(n_samples=3000, n_features=100, n_informative=10,
n_redundant=0, shuffle=False, random_state=0)``, so the informative columns
are the first 10 and the other 90 are noise. For each of 5 seeds the data is
split 2/3 train, 1/3 test (stratified, ``random_state=seed``); every method
selects 10 features on the training part only, inside a Pipeline
``StandardScaler -> selector -> HistGradientBoostingClassifier``, and the
downstream accuracy is that pipeline's accuracy on the test part.

Selectors:

- ``InputPruning``: ``SelectFromModel(PrunedNetClassifier(pruner=InputPruning(n_features=10)),
  threshold=1e-5)`` (removed features have importance exactly 0);
- ``InputPruning(strength=0)``: the same without the group-lasso penalty (ablation);
- ``L1 logistic``: ``SelectFromModel(LogisticRegression(l1_ratio=1, C=0.1), threshold=1e-5,
  max_features=10)``: the 10 largest nonzero ``|coef_|`` (``l1_ratio=1`` is ``penalty="l1"``,
  whose spelling scikit-learn 1.8 deprecated). With ``C <= 0.01`` fewer than 10 coefficients
  are nonzero; a zero threshold would then fill the 10 with tied zeros, which ``shuffle=False``
  turns into the first (informative) columns, so a positive threshold keeps the count honest;
- ``mutual information``: ``SelectKBest(mutual_info_classif, k=10)``;
- references: all 100 features, and the 10 informative ones (oracle).

A second table varies the group-lasso ``strength`` on a harder version of
the data (600 samples), where the penalty makes a difference.

Run: ``PYTHONPATH=. python benchmarks/feature_selection.py`` (about 1.5 minutes on
2 cores). Timings are wall-clock on a machine shared with other jobs.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_selection import SelectFromModel, SelectKBest, mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skprune import InputPruning, PrunedNetClassifier

N_INFORMATIVE = 10
SEEDS = range(5)


def make_selectors(seed: int) -> dict:
    """The selectors compared, each choosing 10 features."""

    def net(strength):
        return PrunedNetClassifier(
            pruner=InputPruning(n_features=N_INFORMATIVE, strength=strength),
            max_epochs=30,
            lr=1e-3,
            random_state=seed,
        )

    return {
        "InputPruning": SelectFromModel(net(1e-3), threshold=1e-5),
        "InputPruning(strength=0)": SelectFromModel(net(0.0), threshold=1e-5),
        "L1 logistic": SelectFromModel(
            LogisticRegression(l1_ratio=1.0, C=0.1, solver="liblinear", random_state=seed),
            max_features=N_INFORMATIVE,
            threshold=1e-5,
        ),
        "mutual information": SelectKBest(partial(mutual_info_classif, random_state=seed), k=N_INFORMATIVE),
        "all 100 features": FunctionTransformer(),
        "oracle (10 informative)": FunctionTransformer(lambda X: X[:, :N_INFORMATIVE]),
    }


def main() -> pd.DataFrame:
    torch.set_num_threads(1)
    X, y = make_classification(
        n_samples=3000, n_features=100, n_informative=10, n_redundant=0, shuffle=False, random_state=0
    )
    X = X.astype(np.float32)
    rows = []
    for seed in SEEDS:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=1 / 3, stratify=y, random_state=seed
        )
        for name, selector in make_selectors(seed).items():
            pipe = make_pipeline(
                StandardScaler(), selector, HistGradientBoostingClassifier(random_state=seed)
            )
            start = time.perf_counter()
            pipe.fit(X_train, y_train)
            seconds = time.perf_counter() - start
            if hasattr(selector, "get_support"):
                support = selector.get_support()
                n_selected, n_informative = int(support.sum()), int(support[:N_INFORMATIVE].sum())
            else:
                n_selected = n_informative = None
            rows.append(
                {
                    "seed": seed,
                    "method": name,
                    "selected": n_selected,
                    "informative": n_informative,
                    "test_acc": pipe.score(X_test, y_test),
                    "fit_s": seconds,
                }
            )
    results = pd.DataFrame(rows)
    results[["selected", "informative"]] = results[["selected", "informative"]].astype("Int64")
    per_seed = results.pivot(index="method", columns="seed", values="informative")
    per_seed.columns = [f"inf@seed{s}" for s in per_seed.columns]
    summary = results.groupby("method", sort=False).agg(
        min_informative=("informative", "min"),
        mean_test_acc=("test_acc", "mean"),
        std_test_acc=("test_acc", "std"),
        mean_fit_s=("fit_s", "mean"),
    )
    table = summary.join(per_seed)
    pd.set_option("display.width", 200)
    print("informative columns among the 10 selected, per seed, and downstream test accuracy")
    print(
        "(test_acc: HistGradientBoostingClassifier on the selected columns; "
        "fit_s: whole pipeline, shared 2-core machine)"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    ok = results.loc[results["method"] == "InputPruning", "informative"].min()
    print(f"\nInputPruning(n_features=10): at least {ok} of 10 informative columns selected on every seed")
    print(
        "\nablation of the group-lasso strength on harder data (n_samples=600, same generator; "
        "selection on all rows):"
    )
    print(strength_ablation().to_string())
    return results


def strength_ablation(n_samples: int = 600, strengths=(0.0, 1e-3, 1e-2)) -> pd.DataFrame:
    """Informative columns among the 10 kept, per seed, for several penalty strengths."""
    X, y = make_classification(
        n_samples=n_samples, n_features=100, n_informative=10, n_redundant=0, shuffle=False, random_state=0
    )
    X = StandardScaler().fit_transform(X).astype(np.float32)
    rows = {}
    for strength in strengths:
        found = []
        for seed in SEEDS:
            net = PrunedNetClassifier(
                pruner=InputPruning(n_features=N_INFORMATIVE, strength=strength),
                max_epochs=30,
                random_state=seed,
            ).fit(X, y)
            found.append(int((np.flatnonzero(net.feature_importances_) < N_INFORMATIVE).sum()))
        rows[f"strength={strength:g}"] = {
            **{f"inf@seed{s}": f for s, f in zip(SEEDS, found)},
            "total": sum(found),
        }
    return pd.DataFrame(rows).T


if __name__ == "__main__":
    main()
