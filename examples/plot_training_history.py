"""
Training history and per-layer sparsity of one fit
==================================================

A single :class:`~skprune.PrunedNetClassifier` fit with gradual magnitude
pruning to 90% sparsity and a 20% validation split. The fitted network
records, per epoch, the losses, the validation accuracy and the sparsity
measured from exact zeros in the weights; :func:`~skprune.plot_history`
draws them, and :func:`~skprune.plot_layer_sparsity` shows how the global
ranking spread the pruned weights over the layers. A few seconds.
"""

# %%
# Fit with a validation split
# ---------------------------
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from skorch.dataset import ValidSplit

from skprune import MagnitudePruning, PrunedNetClassifier, plot_history, plot_layer_sparsity

torch.set_num_threads(1)

X, y = load_digits(return_X_y=True)
net = PrunedNetClassifier(
    pruner=MagnitudePruning(sparsity=0.9),  # default schedule: Polynomial, from 10% to 70% of the epochs
    max_epochs=20,
    lr=0.01,
    train_split=ValidSplit(5),  # a validation loss and accuracy per epoch
    random_state=0,
).fit(X / 16, y)

# %%
# The history as a DataFrame, one row per epoch:
print(net.history_frame().round(4).to_string())

# %%
# Losses and sparsity per epoch
# -----------------------------
# The shaded area (right axis) is the sparsity after each epoch: the
# polynomial schedule prunes quickly at first, then more and more gently,
# and the last epochs fine-tune the sparse network.
fig, ax = plt.subplots(figsize=(7, 3.5))
plot_history(net, ax=ax)
fig.tight_layout()

# %%
# Sparsity of each layer
# ----------------------
# The global ranking (the default ``scope="global"``) need not prune every
# layer equally; the labels give the nonzero and total weights of each layer.
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_layer_sparsity(net, ax=ax)
fig.tight_layout()
print(net.pruning_report().to_string(index=False))
plt.show()
