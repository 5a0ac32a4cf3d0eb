"""
Write your own pruning rule
===========================

Compare pruning strategies and write your own rule in a few lines:

1. A rule as a plain function, through ``FunctionPruner``: prune the weights
   whose gradient changed least between pruning steps.
2. A rule as a class on the documented base class ``BasePruner``: Optimal
   Brain Damage with the empirical Fisher, which watches gradients through
   ``observe`` and scores in ``score``.
3. Both go into a ``GridSearchCV`` beside the built-in strategies, with the
   random baseline that every pruning comparison needs.

A small network on 900 digits keeps it under a minute; the ranking at 95%
sparsity is what to look at, not the absolute accuracies.
"""

# %%
# Imports
# -------

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import (
    BasePruner,
    FunctionPruner,
    LotteryTicket,
    MagnitudePruning,
    PrunedNetClassifier,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)

torch.set_num_threads(1)  # a network this small trains fastest on one thread


# %%
# A rule as a function
# --------------------
# 1. A rule is a function of one layer's weight and the statistics of its
#    gradients since the previous pruning step; higher score = keep.
#    Define it at module level so that the fitted model can be pickled.
def gradient_changed_most(weight, stats):
    """Keep the weights whose gradient changed most: prune those that changed least."""
    return (stats.last_grad - stats.first_grad).abs()


# %%
# A rule as a class
# -----------------
# 2. A rule as a class: observe() sees every gradient during training,
#    score() ranks the weights. Per-fit state goes in attributes ending in "_"
#    (the estimator works on a clone, so every fit starts fresh).
class FisherPruning(BasePruner):
    """Optimal Brain Damage saliency ``w**2 * E[g**2]`` (diagonal empirical Fisher as the Hessian)."""

    requires_gradient_statistics = True

    def observe(self, name, weight, grad, **kwargs):
        sums = self.__dict__.setdefault("grad_sq_", {})
        counts = self.__dict__.setdefault("n_batches_", {})
        sums[name] = sums[name] + grad.pow(2) if name in sums else grad.pow(2)
        counts[name] = counts.get(name, 0) + 1

    def score(self, weights, context):
        scores = {n: w.pow(2) * self.grad_sq_[n] / self.n_batches_[n] for n, w in weights.items()}
        self.grad_sq_, self.n_batches_ = {}, {}  # the next step uses the gradients seen after this one
        return scores


# %%
# Every strategy in one search
# ----------------------------
def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=900, stratify=y, random_state=0)
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(128,), max_epochs=12, lr=0.01, random_state=0, pruner=RandomPruning()
    )
    model = make_pipeline(StandardScaler(), net)
    strategies = [
        RandomPruning(),
        MagnitudePruning(),
        TaylorPruning(),
        SNIPPruning(),
        LotteryTicket(n_rounds=2),
        FunctionPruner(gradient_changed_most),
        FisherPruning(),
    ]
    search = GridSearchCV(
        model,
        {"prunednetclassifier__pruner": strategies, "prunednetclassifier__pruner__sparsity": [0.95]},
        cv=3,
        n_jobs=1,
    )
    search.fit(X_train, y_train)

    results = pd.DataFrame(search.cv_results_)
    results["strategy"] = [type(p).__name__ for p in results["param_prunednetclassifier__pruner"]]
    print("3-fold CV accuracy at 95% sparsity (900 digits, MLP 128):")
    print(
        results.sort_values("rank_test_score")[["strategy", "mean_test_score", "std_test_score"]].to_string(
            index=False
        )
    )

    best = search.best_estimator_[-1]
    print(
        f"\nbest: {type(best.pruner_).__name__}, test accuracy {search.score(X_test, y_test):.3f}, "
        f"sparsity {best.sparsity_:.3f}"
    )
    print(
        best.pruning_report()[["layer", "weight_params", "weight_nonzero", "sparsity"]].to_string(index=False)
    )
    assert np.isclose(best.sparsity_, 0.95, atol=1e-3)

    # the comparison as a figure: mean CV accuracy of each rule, with its standard deviation
    ranked = results.sort_values("mean_test_score")
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(ranked) + 1.2))
    ax.barh(ranked["strategy"], ranked["mean_test_score"], xerr=ranked["std_test_score"], color="tab:blue")
    ax.set_xlim(max(0.0, ranked["mean_test_score"].min() - 0.15), 1.0)
    ax.set_xlabel("3-fold CV accuracy at 95% sparsity (digits, MLP 128)")
    ax.set_title("Built-in and home-made pruning rules")
    fig.tight_layout()
    plt.show()


if __name__ == "__main__":
    main()
