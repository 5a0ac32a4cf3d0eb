"""skorch's contract on PrunedNet: callbacks, history, set_params, load_params, closures (issue 23)."""

from unittest.mock import Mock

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from skorch.callbacks import (
    BatchScoring,
    Callback,
    Checkpoint,
    EpochScoring,
    Freezer,
    InputShapeSetter,
    LoadInitState,
    TrainEndCheckpoint,
)
from skorch.dataset import ValidSplit

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor

FAST = dict(module__hidden_layer_sizes=(16,), max_epochs=3, batch_size=64, lr=0.01, random_state=0)


def test_a_callback_whose_hooks_are_instance_attributes_hears_every_batch(clf_data):
    X, y = clf_data  # 300 rows: 5 batches an epoch
    callback = Mock(spec=Callback)
    net = PrunedNetClassifier(callbacks=[("mock", callback)], **FAST).fit(X, y)
    assert callback.on_batch_begin.call_count == 5 * FAST["max_epochs"]
    assert callback.on_batch_end.call_count == 5 * FAST["max_epochs"]
    assert callback.on_grad_computed.call_count == 5 * FAST["max_epochs"]
    assert len(net.history[-1]["batches"]) == 5


def test_history_has_valid_batch_entries_with_a_validation_split(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(train_split=ValidSplit(5), **FAST).fit(X, y)
    batches = net.history[-1]["batches"]
    train = [b for b in batches if "train_loss" in b]
    valid = [b for b in batches if "valid_loss" in b]
    assert sum(b["train_batch_size"] for b in train) == 240
    assert sum(b["valid_batch_size"] for b in valid) == 60


def test_checkpoints_and_load_init_state_work_without_a_validation_split(clf_data, tmp_path):
    X, y = clf_data
    checkpoint = Checkpoint(dirname=str(tmp_path / "cp"), monitor="train_loss_best")
    net = PrunedNetClassifier(
        callbacks=[checkpoint, TrainEndCheckpoint(dirname=str(tmp_path / "end"))], **FAST
    ).fit(X, y)
    assert (tmp_path / "cp" / "params.pt").exists()
    assert (tmp_path / "end" / "train_end_params.pt").exists()
    resumed = PrunedNetClassifier(
        callbacks=[LoadInitState(Checkpoint(dirname=str(tmp_path / "cp"), monitor="train_loss_best"))],
        **dict(FAST, max_epochs=1),
    ).fit(X, y)
    assert len(resumed.history) == len(net.history) + 1  # the history went on from the checkpoint


@pytest.mark.parametrize("where", ["callback", "net"])
def test_scoring_without_caching_gets_the_users_X_and_y(clf_data, where):
    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    seen = []

    def scorer(net, X_score, y_score):
        seen.append((X_score, y_score))
        return float(np.mean(net.predict(X_score) == y_score))

    caching = dict(use_caching=False) if where == "callback" else {}
    net_caching = dict(use_caching=False) if where == "net" else {}
    net = PrunedNetClassifier(
        callbacks=[EpochScoring(scorer, on_train=True, name="train_acc", **caching)], **FAST, **net_caching
    ).fit(X, labels)
    X_score, y_score = seen[-1]
    np.testing.assert_array_equal(X_score, X)
    np.testing.assert_array_equal(y_score, labels)
    assert 0.0 <= net.history[-1, "train_acc"] <= 1.0


def test_batch_scoring_records_a_score_for_every_batch(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        callbacks=[BatchScoring("accuracy", on_train=True, name="batch_acc")], **FAST
    ).fit(X, y)
    assert all("batch_acc" in b for b in net.history[-1]["batches"])
    assert 0.0 <= net.history[-1, "batch_acc"] <= 1.0


def test_set_params_of_the_module_after_initialize_takes_effect(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(module__hidden_layer_sizes=(16,), module__n_features_in=4,
                              module__n_outputs=3, max_epochs=1, random_state=0)
    net.initialize()
    net.set_params(module__n_features_in=10)
    first = next(p for p in net.module_.parameters() if p.ndim == 2)
    assert first.shape[1] == 10
    net.partial_fit(X, y)  # 10 features: the new size is the one trained


def test_input_shape_setter_sets_the_module_input_size_during_fit(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), module__n_features_in=3, max_epochs=2, random_state=0,
        callbacks=[InputShapeSetter(param_name="n_features_in")],
    ).fit(X, y)
    first = next(p for p in net.module_.parameters() if p.ndim == 2)
    assert first.shape[1] == X.shape[1]
    assert net.predict(X).shape == (len(X),)


def test_set_params_device_on_a_fitted_net_waits_for_the_next_fit(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(**FAST).fit(X, y)
    before = net.predict_proba(X)
    net.set_params(device="meta")  # a device nothing can predict on: taking effect would break predict
    np.testing.assert_array_equal(net.predict_proba(X), before)
    assert next(net.module_.parameters()).device.type == "cpu"
    assert net.get_params()["device"] == "meta"  # reported, and taken by clone and the next fit
    assert clone(net).device == "meta"
    with pytest.raises(ValueError, match="device was set to 'meta' after the network was fitted"):
        net.partial_fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(X), before)
    net.set_params(device="cpu")  # set back: nothing pending
    net.partial_fit(X, y)


def test_load_params_after_initialize_restores_a_classifier_given_its_classes(clf_data, tmp_path):
    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    kwargs = dict(FAST, pruner=MagnitudePruning(0.5), classes=["ant", "bee", "cat"], module__n_features_in=10)
    net = PrunedNetClassifier(**kwargs).fit(X, labels)
    net.save_params(f_params=str(tmp_path / "p.pt"))
    new = PrunedNetClassifier(**kwargs).initialize()
    new.load_params(f_params=str(tmp_path / "p.pt"))
    np.testing.assert_array_equal(new.predict(X), net.predict(X))
    np.testing.assert_allclose(new.predict_proba(X), net.predict_proba(X), rtol=1e-6)


def test_load_params_after_initialize_without_classes_says_to_use_skprune_load(clf_data, tmp_path):
    X, y = clf_data
    kwargs = dict(FAST, module__n_features_in=10, module__n_outputs=3)
    net = PrunedNetClassifier(**kwargs).fit(X, y)
    net.save_params(f_params=str(tmp_path / "p.pt"))
    new = PrunedNetClassifier(**kwargs).initialize()
    new.load_params(f_params=str(tmp_path / "p.pt"))
    with pytest.raises(NotFittedError, match=r"classes=\[\.\.\.\].*skprune\.save / skprune\.load"):
        new.predict(X)


def test_load_params_after_initialize_never_returns_standardized_regression_numbers(reg_data, tmp_path):
    X, y = reg_data
    y = y * 30 + 95
    kwargs = dict(FAST, module__n_features_in=8, module__n_outputs=1)
    net = PrunedNetRegressor(**kwargs).fit(X, y)
    net.save_params(f_params=str(tmp_path / "p.pt"))
    new = PrunedNetRegressor(**kwargs).initialize()
    new.load_params(f_params=str(tmp_path / "p.pt"))
    with pytest.raises(NotFittedError, match=r"y_mean_.*skprune\.load"):
        new.predict(X)
    raw = PrunedNetRegressor(normalize_y=False, **kwargs).fit(X, y)  # no target scaling to restore
    raw.save_params(f_params=str(tmp_path / "raw.pt"))
    new = PrunedNetRegressor(normalize_y=False, **kwargs).initialize()
    new.load_params(f_params=str(tmp_path / "raw.pt"))
    np.testing.assert_allclose(new.predict(X).ravel(), raw.predict(X), rtol=1e-5)


class ClosureOnly(torch.optim.SGD):
    """An optimizer that, like LBFGS, needs the closure (it evaluates the loss itself)."""

    def step(self, closure):
        loss = closure()
        super().step()
        return loss


def test_optimizer_step_gets_skorchs_closure(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(optimizer=ClosureOnly, pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    assert np.isfinite(net.history[-1, "train_loss"])
    assert net.history[-1, "train_loss"] < net.history[0, "train_loss"]


class RecordsBatchValues(PrunedNetClassifier):
    """skorch's custom-loss pattern: a get_loss override that records batch values."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        self.history.record_batch("custom_loss", float(loss))
        return loss


def test_history_record_batch_works_inside_a_get_loss_override(clf_data):
    X, y = clf_data
    net = RecordsBatchValues(**FAST).fit(X, y)
    batches = net.history[-1]["batches"]
    assert len(batches) == 5 and all("custom_loss" in b and "train_loss" in b for b in batches)
    assert batches[0]["custom_loss"] == pytest.approx(batches[0]["train_loss"], rel=1e-5)


def test_skorchs_classes_parameter_fixes_the_classes(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(classes=[0, 1, 2, 3], **FAST).fit(X, y)
    np.testing.assert_array_equal(net.classes_, [0, 1, 2, 3])
    assert net.predict_proba(X).shape == (len(X), 4)
    assert net.get_params()["classes"] == [0, 1, 2, 3]


def test_frozen_parameters_are_not_pruned(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.5),
        callbacks=[Freezer("layers.fc0.*")],
        **{**FAST, "max_epochs": 4, "module__hidden_layer_sizes": (16, 16)},
    ).fit(X, y)
    assert net.layer_sparsity_["layers.fc0"] == 0.0
    assert net.layer_sparsity_["layers.fc1"] > 0.0


def test_a_frozen_layer_is_pruned_when_named_in_layers(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.5, layers=["layers.fc0"]),
        callbacks=[Freezer("layers.fc0.*")],
        **{**FAST, "max_epochs": 4, "module__hidden_layer_sizes": (16, 16)},
    ).fit(X, y)
    assert net.layer_sparsity_["layers.fc0"] > 0.0


def test_skorchs_loss_scoring_gets_a_dataset_of_tensors_from_raw_data(clf_data):
    from skorch.scoring import loss_scoring

    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    net = PrunedNetClassifier(**FAST).fit(X, labels)
    loss = loss_scoring(net, X, labels)
    assert np.isfinite(loss) and loss > 0


def test_a_user_predict_nonlinearity_is_called_per_batch_as_in_skorch(clf_data):
    X, y = clf_data
    calls = []

    def nonlinearity(logits):
        calls.append(len(logits))
        return np.zeros((len(logits), 3))  # numpy, not a tensor: skorch accepts it

    net = PrunedNetClassifier(predict_nonlinearity=nonlinearity, **FAST).fit(X, y)
    proba = net.predict_proba(X)
    assert calls == [64, 64, 64, 64, 44] and proba.shape == (300, 3)


def test_max_epochs_zero_builds_the_network_for_the_data_without_training(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(**{**FAST, "max_epochs": 0}).fit(X, y)
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])
    assert len(net.history) == 0 and net.predict_proba(X).shape == (len(X), 3)


def test_the_loss_a_batch_callback_sees_carries_its_graph_as_in_skorch(clf_data):
    X, y = clf_data
    seen = []
    callback = Mock(spec=Callback)
    callback.on_batch_end.side_effect = lambda net, loss=None, training=None, **kw: seen.append(
        (training, loss.requires_grad)
    )
    PrunedNetClassifier(callbacks=[callback], train_split=ValidSplit(5), **FAST).fit(X, y)
    assert {grad for training, grad in seen if training} == {True}
    assert {grad for training, grad in seen if not training} == {False}


def test_a_criterion_parameter_set_on_a_fitted_net_applies_to_loss_scoring_at_once(clf_data):
    from skorch.scoring import loss_scoring

    X, y = clf_data
    net = PrunedNetClassifier(**FAST).fit(X, y)
    before = net.predict_proba(X)
    mean = loss_scoring(net, X, y)
    net.set_params(criterion__reduction="none")
    per_sample = loss_scoring(net, X, y)
    assert per_sample.shape == (len(X),)
    np.testing.assert_allclose(per_sample.mean(), mean, rtol=1e-5)
    np.testing.assert_array_equal(net.predict_proba(X), before)



def test_module_rebuilt_by_a_callback_mid_fit_is_pruned_to_the_target_in_the_epochs_left(clf_data):
    import warnings

    class Narrow(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                net.set_params(module__hidden_layer_sizes=(8,))

    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.8), module__hidden_layer_sizes=(16,), max_epochs=5, random_state=0,
        callbacks=[Narrow()],
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Training stopped")  # no stop happened
        net.fit(X, y)
    assert net.module_.layers.fc0.weight.shape[0] == 8
    assert not net.stopped_early_
    assert net.sparsity_ == pytest.approx(0.8, abs=0.02)
    assert len(net.history) == 5
