"""Compaction during fit (``compact_during_fit=True``, the default): fine-tuning runs on the small network.

The promise: after the pruner's last step the network is compacted (optimizer
state sliced to match), and the fitted net predicts what the masked fit
(``compact_during_fit=False``) compacted at the end predicts.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skprune
from skprune import (
    BlockPruning,
    ChannelPruning,
    CombinedPruning,
    ConvNet,
    InputPruning,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    Polynomial,
    PrunedNetClassifier,
)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X[:600] / 16).astype(np.float32)
    return X, y[:600]


def _pair(X, y, **params):
    """The net fitted with compaction during fit, and the masked fit compacted afterwards."""
    on = PrunedNetClassifier(random_state=0, **params).fit(X, y)
    off = PrunedNetClassifier(random_state=0, compact_during_fit=False, **params).fit(X, y)
    return on, off.compact()



def _half_neurons_at_epoch_1(**params):
    """A 32-unit MLP whose NeuronPruning(0.5) step comes after the first of 2 epochs."""
    return PrunedNetClassifier(
        module__hidden_layer_sizes=(32,), pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)),
        max_epochs=2, random_state=0, **params,
    )

def test_neuron_pruning_compacted_during_fit_predicts_as_the_masked_fit_compacted_at_the_end(digits):
    X, y = digits
    on, compacted = _pair(
        X, y, module__hidden_layer_sizes=(64, 32), pruner=NeuronPruning(0.5, schedule=Polynomial(end=0.5)),
        max_epochs=6,
    )
    assert on.compacted_during_fit_["after_epoch"] == 3
    assert on.module_.hidden_layer_sizes == compacted.module_.hidden_layer_sizes == (32, 16)
    np.testing.assert_allclose(on.predict_proba(X), compacted.predict_proba(X), atol=1e-5, rtol=0)
    assert on.n_params_ == compacted.n_params_ == on.compacted_during_fit_["n_params_after"]
    assert on.sparsity_ == pytest.approx(compacted.sparsity_)
    assert on.pruning_report()["shape"].tolist() == compacted.pruning_report()["shape"].tolist()


def test_channel_pruning_of_a_residual_convnet_compacted_during_fit_predicts_as_compacted_at_the_end(digits):
    # SGD with momentum: sliced momentum buffers must carry on exactly. (With Adam, a conv bias
    # followed by BatchNorm has a gradient of pure rounding noise that Adam scales to full steps,
    # so two equal computations in different layer widths drift apart by ~1e-3 in eval mode.)
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    on, compacted = _pair(
        images, y, module=ConvNet, module__channels=(8, 8), module__n_blocks=1, module__hidden=16,
        pruner=ChannelPruning(0.5, schedule=OneShot(at=0.5)), max_epochs=4,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, lr=0.05,
    )
    assert "n_params_after" in on.compacted_during_fit_
    assert on.module_.channels == compacted.module_.channels == (4, 4)
    np.testing.assert_allclose(on.predict_proba(images), compacted.predict_proba(images), atol=1e-5, rtol=0)


def test_block_pruning_deletes_the_blocks_during_fit_and_predicts_as_compacted_at_the_end(digits):
    X, y = digits
    on, compacted = _pair(
        X, y, module__hidden_layer_sizes=(16,), module__n_blocks=3,
        pruner=BlockPruning(2, schedule=OneShot(at=0.5)), max_epochs=4,
    )
    assert on.module_.n_blocks == compacted.module_.n_blocks == 1
    assert sorted(on.removed_layers_) == sorted(compacted.removed_layers_)
    assert on.compacted_during_fit_["removed_layers"] == sorted(on.removed_layers_)
    np.testing.assert_allclose(on.predict_proba(X), compacted.predict_proba(X), atol=1e-5, rtol=0)


def test_combined_neuron_and_magnitude_pruning_keeps_the_unstructured_masks_exact_after_compaction(digits):
    X, y = digits
    pruner = CombinedPruning(
        [("units", NeuronPruning(0.5, schedule=OneShot(at=0.25))),
         ("weights", MagnitudePruning(0.8, schedule=OneShot(at=0.5)))]
    )
    on, compacted = _pair(X, y, module__hidden_layer_sizes=(32,), pruner=pruner, max_epochs=4)
    assert on.module_.hidden_layer_sizes == (16,)
    params = dict(on.module_.named_parameters())
    assert len(on.masks_) > 0
    for name, pruned in on.masks_.state_dict().items():
        assert pruned.shape == params[name].shape
        assert not params[name].detach()[pruned].any()
    np.testing.assert_allclose(on.predict_proba(X), compacted.predict_proba(X), atol=1e-5, rtol=0)


def test_unstructured_and_input_pruning_keep_the_masked_network(digits):
    X, y = digits
    at_half = OneShot(at=0.5)
    for pruner in (MagnitudePruning(0.5, schedule=at_half), InputPruning(20, schedule=at_half)):
        net = PrunedNetClassifier(pruner=pruner, max_epochs=2, random_state=0).fit(X, y)
        assert net.compacted_during_fit_ is None
        assert net.module_.layers[0].in_features == 64
        assert net.sparsity_ > 0.1


def test_a_schedule_that_ends_with_the_fit_is_not_compacted_and_compact_false_keeps_the_masks(digits):
    X, y = digits
    params = dict(module__hidden_layer_sizes=(32,), max_epochs=2, random_state=0)
    at_end = PrunedNetClassifier(pruner=NeuronPruning(0.5, schedule=OneShot(at=1.0)), **params).fit(X, y)
    kept = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)), compact_during_fit=False, **params
    ).fit(X, y)
    for net in (at_end, kept):
        assert net.compacted_during_fit_ is None
        assert net.module_.hidden_layer_sizes == (32,)
        assert net.compact().module_.hidden_layer_sizes == (16,)


def test_lbfgs_state_cannot_be_sliced_so_the_masked_network_is_kept_with_the_reason(digits, capsys):
    X, y = digits
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), optimizer=torch.optim.LBFGS, lr=0.1, batch_size=-1,
        pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)), max_epochs=2, random_state=0, verbose=1,
    ).fit(X, y)
    assert "LBFGS" in net.compacted_during_fit_["skipped"]
    assert net.module_.hidden_layer_sizes == (16,)
    assert "Kept the masked network" in capsys.readouterr().out


def test_early_stopping_that_restores_the_best_weights_keeps_the_masked_network(digits):
    from skorch.callbacks import EarlyStopping
    from skorch.dataset import ValidSplit

    X, y = digits
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)),
        max_epochs=2, random_state=0, train_split=ValidSplit(0.2),
        callbacks=[EarlyStopping(load_best=True, patience=5)],
    ).fit(X, y)
    assert "load_best=True" in net.compacted_during_fit_["skipped"]
    assert net.module_.hidden_layer_sizes == (16,)


def test_the_verbose_log_says_when_and_how_much_the_network_shrank(digits, capsys):
    X, y = digits
    _half_neurons_at_epoch_1(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "Compacted the network after epoch 1" in out and "2,410 -> 1,210 parameters" in out


def test_adam_state_is_sliced_not_reset(digits):
    X, y = digits
    net = _half_neurons_at_epoch_1().fit(X, y)
    optimizer = net.optimizer_
    params = list(net.module_.parameters())
    assert [p for g in optimizer.param_groups for p in g["params"]] == params
    for param in params:
        state = optimizer.state[param]
        assert state["exp_avg"].shape == param.shape and float(state["step"]) == 2 * 10  # 600 rows / 64


def test_compact_on_a_net_compacted_during_fit_is_a_copy_with_the_same_predictions(digits):
    X, y = digits
    net = _half_neurons_at_epoch_1().fit(X, y)
    again = net.compact()
    assert again.module_ is not net.module_ and again.n_params_ == net.n_params_
    np.testing.assert_array_equal(again.predict_proba(X), net.predict_proba(X))


def test_partial_fit_and_warm_start_of_a_compacted_net_fine_tune_without_pruning_again(digits):
    X, y = digits
    net = _half_neurons_at_epoch_1().fit(X, y)
    before = net.predict_proba(X)
    net.partial_fit(X, y)
    assert net.module_.hidden_layer_sizes == (16,)
    assert not np.allclose(net.predict_proba(X), before)  # it trained
    net.set_params(warm_start=True).fit(X, y)
    assert net.module_.hidden_layer_sizes == (16,)
    # a new fit builds the full network again, with the new parameters
    net.set_params(warm_start=False, pruner__sparsity=0.25).fit(X, y)
    assert net.module_.hidden_layer_sizes == (24,)
    assert net.compacted_during_fit_["n_params_before"] == 2410


def test_clone_pickle_save_and_load_of_a_compacted_net_round_trip(digits, tmp_path):
    X, y = digits
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), module__n_blocks=2,
        pruner=CombinedPruning([("blocks", BlockPruning(1, schedule=OneShot(at=0.5))),
                                ("units", NeuronPruning(0.5, schedule=OneShot(at=0.5)))]),
        max_epochs=2, random_state=0,
    ).fit(X, y)
    assert net.module_.n_blocks == 1 and net.removed_layers_
    expected = net.predict_proba(X)
    assert clone(net).get_params()["compact_during_fit"] is True
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).predict_proba(X), expected)
    path = tmp_path / "net.skp"
    skprune.save(net, path)
    loaded = skprune.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.compacted_during_fit_ == net.compacted_during_fit_
    loaded.partial_fit(X, y)  # the loaded optimizer trains the compacted network
    assert loaded.module_.n_blocks == 1


def test_grid_search_in_a_pipeline_compacts_every_candidate(digits):
    X, y = digits
    net = _half_neurons_at_epoch_1()
    search = GridSearchCV(
        make_pipeline(StandardScaler(), net),
        {"prunednetclassifier__pruner__sparsity": [0.25, 0.5]},
        cv=2,
    ).fit(X, y)
    best = search.best_estimator_[-1]
    assert best.module_.hidden_layer_sizes == ({0.25: 24, 0.5: 16}[best.pruner.sparsity],)
    assert search.best_estimator_.predict(X[:5]).shape == (5,)


def test_compact_during_fit_must_be_a_bool(digits):
    X, y = digits
    with pytest.raises(ValueError, match="compact_during_fit must be True"):
        PrunedNetClassifier(compact_during_fit="yes", max_epochs=1).fit(X, y)


def test_compile_true_compacts_inside_the_torch_compile_wrapper(digits):
    pytest.importorskip("torch._dynamo")
    X, y = digits
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)),
        max_epochs=2, random_state=0, compile=True,
    )
    try:
        net.fit(X, y)
    except Exception as exc:  # no working compiler on this machine
        pytest.skip(f"torch.compile unavailable: {exc}")
    assert net.module_._orig_mod.hidden_layer_sizes == (8,)
    assert net.predict(X[:3]).shape == (3,)


def test_a_warm_start_with_a_new_pruning_target_on_a_compacted_net_warns_that_it_is_not_applied(digits):
    X, y = digits
    net = _half_neurons_at_epoch_1().fit(X, y)
    assert "n_params_after" in net.compacted_during_fit_
    width = net.module_.hidden_layer_sizes
    net.set_params(warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same pruner: fine-tuning, nothing to say
        net.fit(X, y)
        net.partial_fit(X, y)
    net.set_params(pruner__sparsity=0.8)
    with pytest.warns(UserWarning, match=r"compacted during fit.*not pruned again.*compact_during_fit=False"):
        net.fit(X, y)
    assert net.module_.hidden_layer_sizes == width
