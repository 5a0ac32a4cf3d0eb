"""
Digits as images: a ConvNet, pruned weights, removed channels
=============================================================

scikit-learn's digits are 8x8 grey-scale images. Reshaped to
``(n_samples, 1, 8, 8)`` they train the built-in :class:`~skprune.ConvNet`
(its ``input_shape`` is read from the array). We compare a dense network,
80% of the weights pruned, and half of each convolution's channels removed
by :class:`~skprune.ChannelPruning` and then physically deleted with
``compact()``. A last part shows flat input: after a scikit-learn
transformer the rows are flat again, and ``module__input_shape=(1, 8, 8)``
tells the ConvNet how to read them. About a minute.
"""

# %%
# Images in, three networks out
# -----------------------------

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import ChannelPruning, ConvNet, MagnitudePruning, PrunedNetClassifier

torch.set_num_threads(1)  # a network this small trains fastest on one thread

X, y = load_digits(return_X_y=True)
images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # (N, C, H, W), channels first
X_train, X_test, y_train, y_test = train_test_split(images, y, test_size=0.25, stratify=y, random_state=0)

common = dict(module=ConvNet, max_epochs=15, random_state=0)
dense = PrunedNetClassifier(**common).fit(X_train, y_train)
sparse = PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.8), **common).fit(X_train, y_train)
channels = PrunedNetClassifier(pruner=ChannelPruning(sparsity=0.5), **common).fit(X_train, y_train)
small = channels.compact()  # a physically smaller ConvNet with the same predictions

# %%
# Accuracy and size
# -----------------
# ``compact()`` physically deletes the removed channels: fewer parameters,
# the same predictions as the masked network.
print(f"input_shape_ = {dense.input_shape_}")
print(f"{'model':<28}{'accuracy':>9}{'params':>9}{'nonzero':>9}")
for name, net in [
    ("dense", dense),
    ("80% of weights pruned", sparse),
    ("50% of channels, compacted", small),
]:
    print(f"{name:<28}{net.score(X_test, y_test):9.3f}{net.n_params_:9d}{net.n_nonzero_params_:9d}")
print(f"channels per block: {dense.module_.channels} -> {small.module_.channels}")
print(small.pruning_report()[["layer", "shape", "weight_nonzero", "sparsity"]].to_string(index=False))

# %%
# Flat rows in a Pipeline
# -----------------------
# Flat rows, e.g. after a scaler: tell the ConvNet the image shape.
flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
pipe = make_pipeline(
    StandardScaler(),
    PrunedNetClassifier(module__input_shape=(1, 8, 8), pruner=MagnitudePruning(0.8), **common),
).fit(flat_train, y_train)
print(f"StandardScaler -> ConvNet on flat rows: accuracy {pipe.score(flat_test, y_test):.3f}")

# %%
# Accuracy against nonzero parameters
# -----------------------------------
# Each bar is labelled with the parameters that are not exactly zero: what
# pruning removed, and what ``compact()`` physically deleted.
fig, ax = plt.subplots(figsize=(7.5, 2.8))
models = [("dense", dense), ("80% of weights pruned", sparse), ("50% of channels, compacted", small)]
scores = [net.score(X_test, y_test) for _, net in models]
bars = ax.barh([name for name, _ in models], scores, color=["0.6", "tab:blue", "tab:green"])
ax.bar_label(
    bars,
    labels=[f"{acc:.3f}, {net.n_nonzero_params_:,} of {net.n_params_:,} parameters nonzero"
            for acc, (_, net) in zip(scores, models)],
    label_type="center",
    color="white",
)
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_xlabel("test accuracy")
ax.set_title("ConvNet on digits as 1x8x8 images")
fig.tight_layout()
plt.show()
