"""net.compact(): the compacted copy predicts the same and goes on training like the original."""

import numpy as np
import torch
from skorch.callbacks import LRScheduler

from skprune import NeuronPruning, OneShot, PrunedNetClassifier


def test_compacted_net_continues_its_learning_rate_schedule():
    X, y = np.random.RandomState(0).randn(80, 5).astype(np.float32), np.arange(80) % 2
    schedule = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()),
        module__hidden_layer_sizes=(16,),
        callbacks=[("lr", schedule)],
        max_epochs=3,
        lr=0.1,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact()
    assert compacted.module_.layers.fc0.out_features == 8
    np.testing.assert_allclose(compacted.predict_proba(X), net.predict_proba(X), atol=1e-5)
    assert compacted.optimizer_.param_groups[0]["lr"] == 0.05
    compacted.partial_fit(X, y)  # raised KeyError 'initial_lr' (a fresh optimizer under a resumed schedule)
    net.partial_fit(X, y)
    assert compacted.optimizer_.param_groups[0]["lr"] == net.optimizer_.param_groups[0]["lr"] == 0.0125
