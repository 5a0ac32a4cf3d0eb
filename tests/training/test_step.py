"""The training step (skprune/_training/_step.py) and the direct prediction path."""

import numpy as np
import pytest
import torch
import torch._dynamo.utils
from skorch import NeuralNet
from skorch.callbacks import Callback

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor, TrainingDivergedError
from skprune._training import _predict

FAST = dict(module__hidden_layer_sizes=(16,), max_epochs=4, batch_size=64, lr=0.01, random_state=0)


class SkorchStepClassifier(PrunedNetClassifier):
    """Overrides train_step, which sends training through skorch's own loop (L2 in the loss)."""

    def train_step(self, batch, **fit_params):
        return super().train_step(batch, **fit_params)


class BatchListener(Callback):
    def initialize(self):
        self.n_batches = 0
        return self

    def on_batch_end(self, net, batch=None, training=None, **kwargs):
        self.n_batches += int(bool(training))


def _weights(net):
    return [p.detach().clone() for p in net.module_.parameters()]


def test_l2_as_gradient_term_trains_like_l2_in_the_loss(clf_data):
    X, y = clf_data
    kwargs = dict(FAST, alpha=0.5, pruner=MagnitudePruning(0.5))
    fast = PrunedNetClassifier(**kwargs).fit(X, y)
    skorch_loop = SkorchStepClassifier(**kwargs).fit(X, y)
    for a, b in zip(_weights(fast), _weights(skorch_loop)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for name, pruned in skorch_loop.masks_.pruned.items():
        assert torch.equal(fast.masks_.pruned[name], pruned)


def test_batch_entries_are_written_with_one_loss_read_per_epoch_on_the_fast_path(clf_data, monkeypatch):
    X, y = clf_data
    reads = []
    item = torch.Tensor.item

    def counted_item(self):
        reads.append(1)
        return item(self)

    monkeypatch.setattr(torch.Tensor, "item", counted_item)
    net = PrunedNetClassifier(**FAST).fit(X, y)
    monkeypatch.undo()
    assert len(reads) <= FAST["max_epochs"]  # not one per batch (5 per epoch)
    for row in net.history:
        sizes = [b["train_batch_size"] for b in row["batches"]]
        assert sizes == [64, 64, 64, 64, 44]  # 300 rows / 64
        mean = np.average([b["train_loss"] for b in row["batches"]], weights=sizes)
        assert row["train_loss"] == pytest.approx(mean, rel=1e-5)
    losses = net.history[:, "train_loss"]
    assert len(losses) == FAST["max_epochs"] and all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert net.history[:, "train_batch_count"] == [5] * FAST["max_epochs"]
    assert "train_loss_best" in net.history[-1]


def test_a_batch_callback_gets_every_batch_and_the_epoch_loss_is_their_weighted_mean(clf_data):
    X, y = clf_data
    listener = BatchListener()
    net = PrunedNetClassifier(callbacks=[("listen", listener)], **FAST).fit(X, y)
    assert dict(net.callbacks_)["listen"].n_batches == 5 * FAST["max_epochs"]
    row = net.history[-1]
    sizes = [b["train_batch_size"] for b in row["batches"]]
    assert sizes == [64, 64, 64, 64, 44]
    mean = np.average([b["train_loss"] for b in row["batches"]], weights=sizes)
    assert row["train_loss"] == pytest.approx(mean, rel=1e-5)


def test_non_finite_loss_raises_naming_the_epoch(reg_data):
    X, _ = reg_data
    y = np.linspace(0, 1e30, len(X)).astype(np.float32)
    with pytest.raises(TrainingDivergedError, match=r"loss of epoch 1 became (nan|inf)"):
        PrunedNetRegressor(lr=10.0, max_epochs=3, normalize_y=False, random_state=0).fit(X * 1e18, y)


def test_adam_is_fused_unless_an_implementation_is_chosen(clf_data):
    X, y = clf_data
    default = PrunedNetClassifier(**dict(FAST, max_epochs=1)).fit(X, y)
    assert default.optimizer_.defaults["fused"] is True
    chosen = PrunedNetClassifier(optimizer__foreach=True, **dict(FAST, max_epochs=1)).fit(X, y)
    assert not chosen.optimizer_.defaults["fused"]


@pytest.mark.parametrize("value", ["graph", 1, None])
def test_compile_is_validated(clf_data, value):
    X, y = clf_data
    with pytest.raises(ValueError, match='compile must be "auto" .* False .* True .* or "step"'):
        PrunedNetClassifier(compile=value, **FAST).fit(X, y)


def test_compile_defaults_to_auto_which_trains_exactly_as_eager_on_the_cpu(clf_data, capsys):
    X, y = clf_data
    kwargs = dict(FAST, pruner=MagnitudePruning(0.6), max_epochs=4)
    auto = PrunedNetClassifier(verbose=1, **kwargs).fit(X, y)
    eager = PrunedNetClassifier(compile=False, **kwargs).fit(X, y)
    assert PrunedNetClassifier().compile == "auto"
    assert auto.training_step_ == eager.training_step_ == "eager"
    assert auto.training_step_reason_ == "the device is 'cpu', not CUDA"
    assert eager.training_step_reason_ == "compile=False"
    np.testing.assert_array_equal(auto.history[:, "train_loss"], eager.history[:, "train_loss"])
    np.testing.assert_array_equal(auto.predict_proba(X), eager.predict_proba(X))
    assert "training step" not in capsys.readouterr().out  # no choice on the CPU: the log says nothing


def test_compiled_step_is_named_in_the_fitted_attribute_and_the_log(clf_data, capsys):
    X, y = clf_data
    net = PrunedNetClassifier(compile="step", compile__backend="eager", verbose=1, **FAST).fit(X, y)
    assert (net.training_step_, net.training_step_reason_) == ("compiled", None)
    assert "training step (compile='step'): torch.compile" in capsys.readouterr().out


def test_compiled_step_matches_eager_with_few_compilations(clf_data):
    # aot_eager: Dynamo and AOTAutograd as in the default backend, without
    # Inductor's C++ build (a minute on a busy CPU); tests/test_gpu.py runs Inductor.
    X, y = clf_data
    kwargs = dict(FAST, pruner=MagnitudePruning(0.6), max_epochs=5)  # pruning steps between epochs
    eager = PrunedNetClassifier(**kwargs).fit(X, y)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = PrunedNetClassifier(compile="step", compile__backend="aot_eager", **kwargs).fit(X, y)
    counters = torch._dynamo.utils.counters
    assert counters["stats"]["unique_graphs"] == 1  # one graph for every full batch of every epoch
    assert sum(counters["recompiles"].values()) == 0
    assert len(eager.pruner_.get_schedule().steps(5)) > 1
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-5)
    assert set(compiled.masks_.pruned) == set(eager.masks_.pruned)
    for name, pruned in eager.masks_.pruned.items():
        assert torch.equal(compiled.masks_.pruned[name], pruned)
    np.testing.assert_allclose(compiled.history[:, "train_loss"], eager.history[:, "train_loss"], rtol=1e-5)


def test_direct_prediction_matches_skorchs_path_in_chunks(clf_data, monkeypatch):
    X, y = clf_data
    net = PrunedNetClassifier(**FAST).fit(X, y)
    via_skorch = NeuralNet.predict_proba(net, torch.as_tensor(X))
    direct = net.predict_proba(X)
    np.testing.assert_allclose(direct, via_skorch, rtol=1e-6)
    monkeypatch.setattr(_predict, "CHUNK_ELEMENTS", 7 * X.shape[1])  # 7 rows a chunk
    np.testing.assert_allclose(net.predict_proba(X), direct, rtol=1e-6)
    assert net.predict_proba(X[:1]).shape == (1, 3)
