"""Choose the sparsity of a digits classifier by cross-validation and plot the trade-off.

Runs ``PrunedNetCV`` with the one-standard-error rule on scikit-learn's
digits and writes ``docs/sparsity_path.png``: the accuracy-versus-sparsity
path (mean ± 1 SE over 5 folds, the 1-SE threshold and the chosen point)
and the per-layer sparsity of the refit network. About a minute on
2 shared cores.

Run: ``python examples/plot_sparsity_path.py [output.png]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from skprune import (  # noqa: E402
    MagnitudePruning,
    PrunedNetClassifier,
    PrunedNetCV,
    plot_layer_sparsity,
    plot_sparsity_path,
)


def main(output: str = "docs/sparsity_path.png") -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)

    net = PrunedNetClassifier(pruner=MagnitudePruning(), lr=0.01, batch_size=64, random_state=0)
    search = PrunedNetCV(
        net,
        sparsities=[0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98],
        cv=5,
        dense_epochs=30,
        finetune_epochs=3,
        selection="1se",
    ).fit(X_train, y_train)
    print(search.cv_results_[["param_pruner__sparsity", "mean_test_score", "se_test_score"]].round(4))
    print(f"chosen sparsity {search.sparsity_}, held-out accuracy {search.score(X_test, y_test):.4f}")

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    plot_sparsity_path(search, ax=left)
    left.set_title("PrunedNetCV on digits (5 folds, 1-SE rule)", fontsize="medium")
    plot_layer_sparsity(search, ax=right)
    right.set_title(f"refit network: {search.sparsity_:.0%} of weights pruned", fontsize="medium")
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=80)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(*sys.argv[1:])
