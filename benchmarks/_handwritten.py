"""The hand-written PyTorch training loop that the speed benchmarks compare against.

What a user writes: ``torch.optim.Adam`` with its defaults (or, with
``fused=True``, its fused kernel: what a user who read the PyTorch docs on
speed writes), the data on the device once, a shuffled index per epoch, and (``alpha > 0``) the L2 penalty of
scikit-learn's ``MLPClassifier``, ``0.5 * alpha * ||W||^2 / batch``, added to
the loss through autograd. No ``loss.item()`` per step.
"""

from __future__ import annotations

import torch

from skprune.nn._layers import iter_prunable_weights


def handwritten_fit(model, X, y, *, epochs, batch_size, alpha, lr=1e-3, seed=0, fused=False):
    """Train ``model`` in place on tensors ``X``, ``y`` (on the model's device); return the model."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, **({"fused": True} if fused else {}))
    loss_fn = torch.nn.CrossEntropyLoss()
    weights = [layer.weight for _, _, layer in iter_prunable_weights(model)]
    gen = torch.Generator().manual_seed(seed)
    n = len(X)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(X.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            if alpha > 0:
                loss = loss + 0.5 * alpha * sum(w.pow(2).sum() for w in weights) / len(idx)
            loss.backward()
            opt.step()
    return model


def stock_skorch_fit(X, y, *, hidden, n_classes, epochs, batch_size, seed=0, device="cpu"):
    """Stock skorch's ``NeuralNetClassifier`` on skprune's ``MLP``: Adam lr 1e-3, shuffled batches, no L2."""
    import numpy as np
    from skorch import NeuralNetClassifier

    from skprune import MLP

    torch.manual_seed(seed)
    return NeuralNetClassifier(
        MLP,
        module__n_features_in=X.shape[1],
        module__n_outputs=n_classes,
        module__hidden_layer_sizes=hidden,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        device=device,
    ).fit(X, y.astype(np.int64))
