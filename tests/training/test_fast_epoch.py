"""The fast training epoch: the same batches in the same order, and the losses of the per-step path."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification, make_regression
from skorch.callbacks import Callback
from torch.utils.data import Subset

from skprune import L1Pruning, MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor
from skprune._training import _data
from skprune._training._data import ArrayDataset, BatchIterator

FAST = dict(module__hidden_layer_sizes=(16,), max_epochs=3, batch_size=32, random_state=0, verbose=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(203, 5, n_informative=3, n_classes=3, random_state=0)
    return X.astype(np.float32), y


def _expected_batches(X, y, order, size, drop_last):
    stop = len(order) - len(order) % size if drop_last else len(order)
    return [(X[order[s : s + size]], y[order[s : s + size]]) for s in range(0, stop, size)]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("gather_bytes", [1, 3 * 32 * 5 * 4, 1 << 22])  # a batch, 3 batches, all rows
def test_shuffled_batches_are_the_rows_of_the_epochs_permutation_in_order(
    data, monkeypatch, drop_last, gather_bytes
):
    monkeypatch.setattr(_data, "GATHER_BYTES", gather_bytes)
    X, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
    iterator = BatchIterator(
        ArrayDataset(X, y),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(3),
        drop_last=drop_last,
    )
    reference = torch.Generator().manual_seed(3)
    for _ in range(2):  # a new permutation each epoch
        expected = _expected_batches(X, y, torch.randperm(len(X), generator=reference), 32, drop_last)
        got = list(iterator)
        assert len(got) == len(expected) == len(iterator)
        for (Xb, yb), (Xe, ye) in zip(got, expected):
            assert torch.equal(Xb, Xe) and torch.equal(yb, ye)


def test_batches_of_a_subset_with_sample_weights_keep_rows_targets_and_weights_together(data, monkeypatch):
    monkeypatch.setattr(_data, "GATHER_BYTES", 2 * 10 * 5 * 4)  # two batches a block
    X, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
    weights = torch.arange(len(X), dtype=torch.float32)
    indices = list(range(0, len(X), 2))
    iterator = BatchIterator(
        Subset(ArrayDataset(X, y, sample_weight=weights), indices),
        batch_size=10,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    order = torch.as_tensor(indices)[torch.randperm(len(indices), generator=torch.Generator().manual_seed(0))]
    seen = []
    for Xb, (yb, wb) in iterator:
        rows = wb.long()  # the weight of row i is i
        assert torch.equal(Xb, X[rows]) and torch.equal(yb, y[rows])
        seen.append(rows)
    assert torch.equal(torch.cat(seen), order)


class BatchLosses(Callback):
    """A user's batch listener: training takes the per-step path (one loss read per batch)."""

    def initialize(self):
        self.losses = []
        return self

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if training:
            self.losses.append(loss.item())


def _batch_losses(net):
    return [b["train_loss"] for row in net.history for b in row["batches"] if "train_loss" in b]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"alpha": 0.0},
        {"pruner": MagnitudePruning(0.6)},
        {"pruner": L1Pruning(0.5)},  # a penalty in the loss
        {"optimizer": torch.optim.SGD, "lr": 0.05},
        {"module__dropout": 0.3},
    ],
    ids=["dense", "no-l2", "magnitude", "l1-penalty", "sgd", "dropout"],
)
def test_the_fast_path_records_the_losses_of_the_per_step_path(data, params):
    X, y = data
    fast = PrunedNetClassifier(**FAST, **params).fit(X, y)
    per_step = PrunedNetClassifier(**FAST, **params, callbacks=[("losses", BatchLosses())]).fit(X, y)
    assert _batch_losses(fast) == _batch_losses(per_step) == dict(per_step.callbacks_)["losses"].losses
    np.testing.assert_allclose(fast.history[:, "train_loss"], per_step.history[:, "train_loss"], rtol=1e-6)
    np.testing.assert_array_equal(fast.predict_proba(X), per_step.predict_proba(X))


def test_sample_weights_and_the_regressor_record_the_losses_of_the_per_step_path():
    X, y = make_regression(150, 4, random_state=0)
    weight = np.random.RandomState(0).rand(len(X))
    fast = PrunedNetRegressor(**FAST).fit(X, y, sample_weight=weight)
    per_step = PrunedNetRegressor(**FAST, callbacks=[("losses", BatchLosses())]).fit(
        X, y, sample_weight=weight
    )
    assert _batch_losses(fast) == _batch_losses(per_step)
    np.testing.assert_allclose(fast.history[:, "train_loss"], per_step.history[:, "train_loss"], rtol=1e-6)


class PassThroughLoss(PrunedNetClassifier):
    """skorch's custom-loss pattern: get_loss overridden (training takes the per-step path)."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return super().get_loss(y_pred, y_true, X=X, training=training)


def test_the_direct_loss_of_the_fast_path_equals_get_loss(data):
    X, y = data
    fast = PrunedNetClassifier(**FAST, pruner=L1Pruning(0.5)).fit(X, y)
    through_get_loss = PassThroughLoss(**FAST, pruner=L1Pruning(0.5)).fit(X, y)
    assert _batch_losses(fast) == _batch_losses(through_get_loss)
    for a, b in zip(fast.module_.parameters(), through_get_loss.module_.parameters()):
        assert torch.equal(a, b)
