"""
Choose the sparsity by cross-validation
=======================================

:class:`~skprune.PrunedNetCV` does for sparsity what ``LassoCV`` does for a
penalty: in each fold it trains the network densely once, then walks up a
path of sparsities, pruning one step further and fine-tuning briefly at each
level, and scores the held-out fold. With ``selection="1se"`` it keeps the
**largest sparsity whose mean score is within one standard error of the best
mean**, and refits on all the training data along the same path.

The figure shows the accuracy-versus-sparsity path (mean ± 1 standard error
over 5 folds, the 1-SE threshold and the chosen point) and the per-layer
sparsity of the refit network; the README's picture is this figure.
About a minute on two CPU cores.

Run ``python examples/plot_sparsity_path.py OUTPUT.png`` to also save the
figure (nothing is written otherwise).
"""

# %%
# Data and search
# ---------------
# Digits scaled to [0, 1]; a quarter is held out to check the chosen model.
import sys

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skprune import (
    MagnitudePruning,
    PrunedNetClassifier,
    PrunedNetCV,
    plot_layer_sparsity,
    plot_sparsity_path,
)

torch.set_num_threads(1)  # a network this small trains fastest on one thread

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

# %%
# The path, as a table laid out like ``GridSearchCV.cv_results_``:
print(search.cv_results_[["param_pruner__sparsity", "mean_test_score", "se_test_score"]].round(4))
print(f"chosen sparsity {search.best_sparsity_}, held-out accuracy {search.score(X_test, y_test):.4f}")

# %%
# The plots
# ---------
# :func:`~skprune.plot_sparsity_path` draws the path with the 1-SE threshold
# and the chosen point; :func:`~skprune.plot_layer_sparsity` the sparsity of
# each layer of the refit network, counted from exact zeros.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 2]})
plot_sparsity_path(search, ax=left)
left.set_title("PrunedNetCV on digits (5 folds, 1-SE rule)", fontsize="medium")
plot_layer_sparsity(search, ax=right)
right.set_title(
    f"refit network: {search.best_sparsity_:.0%} of weights pruned\n(bar labels: nonzero / total weights)",
    fontsize="medium",
)
fig.tight_layout()

if __name__ == "__main__" and len(sys.argv) > 1:  # an explicit output path only
    fig.savefig(sys.argv[1], dpi=80)
    print(f"wrote {sys.argv[1]}")
plt.show()
