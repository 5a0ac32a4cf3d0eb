"""
Choose depth and width together: blocks and channels in one grid search
=======================================================================

A residual network can be made cheaper in two ways: remove whole residual
blocks (depth: :class:`~skprune.BlockPruning`) or remove channels from every
convolution (width: :class:`~skprune.ChannelPruning`). Removing a block
deletes whole kernels; removing channels makes each kernel cheaper.
:class:`~skprune.CombinedPruning` applies both in one fit, so
``GridSearchCV`` can choose the number of blocks removed and the channel
share together, like any two hyperparameters.

The network is skprune's :class:`~skprune.ConvNet` in its residual form
(``module__n_blocks=2``: two residual blocks after each of its two
stages, four in all), on digits as 1x8x8 images. About a minute on two
CPU cores.

Run ``python examples/plot_depth_and_width.py OUTPUT.png`` to also save the
figure (nothing is written otherwise).
"""

# %%
# The search
# ----------
# Blocks are ranked by their first-order Taylor importance (how much the
# loss moves when a block's weights are zeroed) and removed a third of the
# way through the fit, leaving the rest to fine-tune; channels the same
# way. The grid crosses the number of blocks removed with the share of
# channels removed. The best mean score usually belongs to the largest
# network, so ``refit`` takes the *cheapest* combination within two points
# of it: cost is the share of the blocks' multiply-accumulates kept,
# ``(1 - blocks / 4) * (1 - channels) ** 2``.
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skprune import BlockPruning, ChannelPruning, CombinedPruning, ConvNet, OneShot, PrunedNetClassifier

torch.set_num_threads(1)  # a network this small trains fastest on one thread

X, y = load_digits(return_X_y=True)
images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(images, y, test_size=0.25, stratify=y, random_state=0)

pruner = CombinedPruning(
    [
        ("blocks", BlockPruning(0, schedule=OneShot(at=0.3))),
        ("channels", ChannelPruning(0.0, importance="taylor", schedule=OneShot(at=0.3))),
    ]
)
net = PrunedNetClassifier(
    ConvNet,
    module__channels=(8, 16),
    module__n_blocks=2,
    module__hidden=0,
    pruner=pruner,
    max_epochs=6,
    lr=0.01,
    batch_size=64,
    random_state=0,
)
grid = {
    "pruner__blocks__n_blocks_to_remove": [0, 2, 3],
    "pruner__channels__sparsity": [0.0, 0.5],
}


def cheapest_within_two_points(cv_results) -> int:
    scores = np.asarray(cv_results["mean_test_score"], dtype=float)
    blocks = np.asarray(cv_results["param_pruner__blocks__n_blocks_to_remove"], dtype=float)
    channels = np.asarray(cv_results["param_pruner__channels__sparsity"], dtype=float)
    cost = (1 - blocks / 4) * (1 - channels) ** 2
    close = np.flatnonzero(scores >= scores.max() - 0.02)
    return int(close[np.argmin(cost[close])])


search = GridSearchCV(net, grid, cv=3, refit=cheapest_within_two_points).fit(X_train, y_train)
print("chosen:", search.best_params_)

# %%
# What each combination costs
# ---------------------------
# ``fit`` compacts the network right after the pruning step
# (``compact_during_fit=True``, the default) and fine-tunes the smaller one,
# so the removed blocks and channels are already deleted (``removed_layers_``
# names the layers deleted whole) and ``compact()`` returns a copy; the
# parameter count below is the network that would be deployed, and
# ``compacted_during_fit_`` keeps the count before. The scores are the
# 3-fold means.
results = pd.DataFrame(search.cv_results_)
table = results.pivot(
    index="param_pruner__blocks__n_blocks_to_remove",
    columns="param_pruner__channels__sparsity",
    values="mean_test_score",
)
print(table.round(3))

best = search.best_estimator_.compact()
print(f"held-out accuracy of the compacted best network: {best.score(X_test, y_test):.3f}")
print(f"blocks left per stage: {best.module_.n_blocks}, channels: {best.module_.channels}")
before = (search.best_estimator_.compacted_during_fit_ or {}).get("n_params_before", best.n_params_)
print(f"parameters: {before} before compaction, {best.n_params_} after")
deleted_blocks = sorted({name.rsplit(".branch", 1)[0] for name in best.removed_layers_})
print(f"{len(best.removed_layers_)} layers deleted, in the blocks {deleted_blocks}")

# %%
# The grid as a picture
# ---------------------
fig, ax = plt.subplots(figsize=(5, 3.5))
image = ax.imshow(table.to_numpy(dtype=float), cmap="viridis", aspect="auto")
ax.set_xticks(range(len(table.columns)), [f"{c:.0%}" for c in table.columns])
ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
ax.set_xlabel("share of channels removed")
ax.set_ylabel("blocks removed (of 4)")
for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
    ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white")
fig.colorbar(image, label="mean CV accuracy")
ax.set_title("Depth and width chosen together")
fig.tight_layout()
if len(sys.argv) > 1:
    fig.savefig(sys.argv[1], dpi=120)
