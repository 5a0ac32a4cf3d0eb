"""
Prune a network you already trained
===================================

Train dense, save, load, then prune and fine-tune from the trained weights.

A common workflow: a network was trained (here by us, with plain PyTorch,
as a colleague might hand one over) and saved. We load it and pass the
*instance* as ``module=``: skprune copies it at ``fit`` and keeps its
weights, so pruning starts from the trained network rather than from a new
random one; the object we pass is never modified. The fine-tuned pruned
network is then saved with :func:`skprune.save` (no pickle) and loaded back.

(To re-train from scratch instead, pass the class, ``module=ConvNet``. Giving
``module__*`` parameters together with an instance rebuilds the network
from those parameters, as in skorch, and so drops the trained weights.)
Under a minute; files go to a temporary directory.
"""

import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import skprune
from skprune import ConvNet, MagnitudePruning, OneShot, PrunedNetClassifier

torch.set_num_threads(1)
torch.manual_seed(0)

X, y = load_digits(return_X_y=True)
images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(images, y, test_size=0.25, stratify=y, random_state=0)


def accuracy(module: nn.Module) -> float:
    module.eval()
    with torch.no_grad():
        return float((module(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean())


# %%
# Train a dense network in PyTorch
# --------------------------------
# 1. Train a dense network with plain PyTorch, and save its weights.
module = ConvNet(n_features_in=64, n_outputs=10, input_shape=(1, 8, 8))
optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
X_t, y_t = torch.as_tensor(X_train), torch.as_tensor(y_train)
for _ in range(15):
    module.train()
    for batch in torch.randperm(len(X_t)).split(64):
        optimizer.zero_grad()
        nn.functional.cross_entropy(module(X_t[batch]), y_t[batch]).backward()
        optimizer.step()
print(f"dense, trained in PyTorch:        accuracy {accuracy(module):.3f}")

workdir = Path(tempfile.mkdtemp())
torch.save(module.state_dict(), workdir / "dense.pt")

# %%
# Load it back
# ------------
# 2. Later: rebuild the architecture and load the trained weights.
pretrained = ConvNet(n_features_in=64, n_outputs=10, input_shape=(1, 8, 8))
pretrained.load_state_dict(torch.load(workdir / "dense.pt", weights_only=True))
dense_accuracy = accuracy(pretrained)
print(f"dense, loaded:                    accuracy {dense_accuracy:.3f}")

# %%
# Prune and fine-tune
# -------------------
# 3. Prune 80% of the weights at once and fine-tune for a few epochs.
net = PrunedNetClassifier(
    module=pretrained,  # an instance: its trained weights are the starting point
    pruner=MagnitudePruning(sparsity=0.8, schedule=OneShot(at=0)),  # prune before the first epoch
    max_epochs=8,
    lr=3e-4,
    random_state=0,
).fit(X_train, y_train)
score = net.score(X_test, y_test)
print(f"80% pruned, fine-tuned 8 epochs:  accuracy {score:.3f} (sparsity {net.sparsity_:.2f})")
print(f"the loaded module is unchanged:   accuracy {accuracy(pretrained):.3f}")

# %%
# Save and load safely
# --------------------
# 4. Save the pruned estimator safely and load it back.
skprune.save(net, workdir / "pruned.skp")
loaded = skprune.load(workdir / "pruned.skp")
assert np.array_equal(loaded.predict(X_test), net.predict(X_test))
print(f"saved and loaded:                 accuracy {loaded.score(X_test, y_test):.3f}")

# %%
# What pruning kept
# -----------------
# Left: accuracy of the trained dense network and of the 80%-pruned,
# fine-tuned one. Right: the magnitudes of the weights that survived; the
# pruned ones are exactly zero and not drawn.
fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.8), gridspec_kw={"width_ratios": [2, 3]})
labels = ["dense, loaded", "80% pruned,\nfine-tuned"]
bars = left.bar(labels, [dense_accuracy, score], color=["0.6", "tab:blue"])
left.bar_label(bars, fmt="%.3f")
left.set_ylim(0, 1.15)
left.set_ylabel("test accuracy")
layers = [m for m in net.module_.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
weights = np.concatenate([m.weight.detach().abs().flatten().numpy() for m in layers])
right.hist(np.log10(weights[weights > 0]), bins=40, color="tab:blue")
right.set_xlabel("log10 |weight| of the kept weights")
right.set_ylabel("weights")
fig.tight_layout()
plt.show()
