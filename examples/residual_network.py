"""
Prune your own network: a small ResNet
======================================

Prune a small residual network written here, with any ``nn.Module``.

skprune is not limited to its built-in modules: any ``nn.Module`` class
whose ``__init__`` takes ``n_outputs`` (and, if it wants them,
``n_features_in`` and ``input_shape``) gets those filled in at ``fit``.
Here a two-block residual network classifies digits as 1x8x8 images. We
prune 85% of its convolution and linear weights (magnitude, global) and
compare with the dense network and with random pruning, the baseline
Blalock et al. (2020) recommend always reporting.

Whole channels can be removed too. Those of the first convolution of a
block feed only the second one, so :meth:`~skprune.PrunedNet.compact`
deletes them. Channels that flow into a skip connection are added to the
channels of the stem and of every block's last convolution: ChannelPruning
scores such a group as one unit and removes channel ``c`` from all of them
at once, so ``compact()`` can delete it everywhere, as shown at the end.
About a minute.
"""

# %%
# The network
# -----------

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skprune import BasePruner, ChannelPruning, CompactionError, MagnitudePruning, PrunedNetClassifier

torch.set_num_threads(1)


class ResidualBlock(nn.Module):
    """conv-bn-relu-conv-bn, plus the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(out)))


class ResNet(nn.Module):
    """Stem, residual blocks, global average pooling, linear classifier."""

    def __init__(self, n_outputs: int, input_shape=(1, 8, 8), width: int = 32, n_blocks: int = 2):
        super().__init__()
        self.input_shape = tuple(input_shape)  # stored: skprune checks images against it
        self.width = width
        self.n_blocks = n_blocks
        self.stem = nn.Sequential(
            nn.Conv2d(self.input_shape[0], width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(n_blocks)))
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(x.mean(dim=(2, 3)))


# %%
# A random baseline as a pruner
# -----------------------------
class RandomPruning(BasePruner):
    """Random scores: the baseline every pruning result should beat."""

    def score(self, weights, context):
        return {name: torch.rand(w.shape, generator=context.generator) for name, w in weights.items()}


# %%
# Dense, magnitude and random pruning
# -----------------------------------
X, y = load_digits(return_X_y=True)
images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(images, y, test_size=0.25, stratify=y, random_state=0)

base = PrunedNetClassifier(ResNet, module__width=16, max_epochs=10, lr=3e-3, random_state=0)
print(f"{'network':<34}{'accuracy':>9}{'sparsity':>9}")
compared = []
for name, pruner in [
    ("dense ResNet", None),
    ("85% magnitude pruning (global)", MagnitudePruning(0.85)),
    ("85% random pruning", RandomPruning(0.85)),
]:
    net = clone(base).set_params(pruner=pruner).fit(X_train, y_train)
    print(f"{name:<34}{net.score(X_test, y_test):9.3f}{net.sparsity_:9.2f}")
    compared.append((name, net.score(X_test, y_test), net.sparsity_))

# %%
# Removing channels
# -----------------
# Channels inside a block (conv1 -> bn1 -> relu -> conv2) can be removed and
# physically deleted; so can channels that meet at residual adds (as groups).
# ``compact_during_fit=False`` keeps the masked network so that it can be
# compared with its compacted copy (by default fit compacts it right after
# the last pruning step and fine-tunes the smaller network).
masked = dict(compact_during_fit=False)
inner = clone(base).set_params(pruner=ChannelPruning(0.5, layers="*conv1"), **masked).fit(X_train, y_train)
small = inner.compact()
gap = np.abs(small.predict_proba(X_test) - inner.predict_proba(X_test)).max()
print(f"{'50% of channels of each conv1':<34}{inner.score(X_test, y_test):9.3f}{inner.sparsity_:9.2f}")
print(
    f"compacted: {inner.n_params_} -> {small.n_params_} parameters, blocks.0.conv1 now has "
    f"{small.module_.blocks[0].conv1.out_channels} channels, predictions differ by {gap:.1e}"
)
every = clone(base).set_params(pruner=ChannelPruning(0.5), **masked).fit(X_train, y_train)
try:
    whole = every.compact()
    gap = np.abs(whole.predict_proba(X_test) - every.predict_proba(X_test)).max()
    print(
        f"50% of every conv's channels (residual groups removed together): accuracy "
        f"{every.score(X_test, y_test):.3f}, {every.n_params_} -> {whole.n_params_} parameters, "
        f"stem now {whole.module_.stem[0].out_channels} channels, predictions differ by {gap:.1e}"
    )
except CompactionError as exc:
    print(f"ChannelPruning on every conv, compact(): CompactionError: {str(exc)[:150]}...")

# %%
# The comparison as a figure
# --------------------------
# Magnitude pruning keeps the dense network's accuracy at 85% sparsity;
# random pruning, the baseline every pruning result should beat, does not.
fig, ax = plt.subplots(figsize=(7.5, 2.8))
names = [name for name, _, _ in compared]
bars = ax.barh(names, [acc for _, acc, _ in compared], color=["0.6", "tab:blue", "tab:orange"])
labels = [f"{acc:.3f} (sparsity {s:.2f})" for _, acc, s in compared]
ax.bar_label(bars, labels=labels, label_type="center", color="white")
ax.set_xlim(0, 1)
ax.invert_yaxis()
ax.set_xlabel("test accuracy (digits as 1x8x8 images)")
ax.set_title("A small ResNet, dense and 85% pruned")
fig.tight_layout()
plt.show()
