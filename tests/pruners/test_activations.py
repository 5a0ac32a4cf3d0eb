"""Activation statistics on request: APoZ and mean-activation importance, hooks the engine owns.

The networks are built so the answer is known: units whose weights are all
negative, with a negative bias, never fire on non-negative inputs (APoZ 1),
though their weight norm is the largest; units that read the difference of
two identical columns have a large weight norm but a tiny activation.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from torch import nn

import skprune
from skprune import (
    ChannelPruning,
    CombinedPruning,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PrunedNetClassifier,
)
from skprune.pruners import ActivationRequest

FAST = dict(max_epochs=4, batch_size=32, random_state=0, compact_during_fit=False)  # the masks are tested


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.rand(160, 8).astype(np.float32)  # non-negative inputs
    X[:, 1] = X[:, 0]  # two identical columns: w0 * x0 - w0 * x1 == 0
    y = (X[:, 2] + X[:, 3] > 1.0).astype(np.int64)
    return X, y


def _dead_units_module() -> nn.Sequential:
    """Units 0-7 never fire on non-negative inputs, yet have the largest weights."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        module[0].weight[:8] = -1.0
        module[0].bias[:8] = -1.0
    return module


def _quiet_units_module() -> nn.Sequential:
    """Units 0-7 read x0 - x1 == 0 (large weights, activation 0.01); units 8-15 fire more, small weights."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        module[0].weight.zero_()
        module[0].weight[:8, 0], module[0].weight[:8, 1] = 5.0, -5.0
        module[0].bias[:8] = 0.01
        module[0].weight[8:, 2:] = 0.3
        module[0].bias[8:] = 0.0
    return module


def _removed(layer: nn.Module) -> list[int]:
    rows = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    return (rows.abs().sum(dim=1) == 0).nonzero().flatten().tolist()


def _hooks_on(module: nn.Module) -> int:
    """Every forward/backward hook on the module and its submodules."""
    count = 0
    for sub in module.modules():
        for attr in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_forward_hooks_with_kwargs",
            "_forward_hooks_always_called",
            "_forward_pre_hooks_with_kwargs",
        ):
            count += len(getattr(sub, attr, {}))
    return count


@pytest.mark.parametrize("importance", ["apoz", "activation"])
@pytest.mark.parametrize("at", [0.0, 0.5], ids=["at-initialization", "after-training"])
def test_apoz_prunes_the_units_that_never_fire_and_l2_does_not(data, importance, at):
    X, y = data
    pruner = NeuronPruning(0.5, importance=importance, schedule=OneShot(at=at))
    net = PrunedNetClassifier(module=_dead_units_module(), pruner=pruner, **FAST).fit(X, y)
    assert _removed(net.module_[0]) == list(range(8))
    l2 = PrunedNetClassifier(module=_dead_units_module(), pruner=NeuronPruning(0.5), **FAST).fit(X, y)
    assert _removed(l2.module_[0]) == list(range(8, 16))


def test_activation_importance_prunes_the_smallest_mean_activation_not_the_smallest_weights(data):
    X, y = data
    pruner = NeuronPruning(0.5, importance="activation", schedule=OneShot(at=0.0))
    net = PrunedNetClassifier(module=_quiet_units_module(), pruner=pruner, **FAST).fit(X, y)
    assert _removed(net.module_[0]) == list(range(8))
    l2 = PrunedNetClassifier(module=_quiet_units_module(), pruner=NeuronPruning(0.5), **FAST).fit(X, y)
    assert _removed(l2.module_[0]) == list(range(8, 16))


class _FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc0 = _dead_units_module()[0]
        self.fc1 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc1(F.relu(self.fc0(x)))


def test_a_functional_activation_is_measured_at_the_next_layers_input(data):
    X, y = data
    pruner = NeuronPruning(0.5, importance="apoz", schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(module=_FunctionalRelu(), pruner=pruner, **FAST).fit(X, y)
    assert _removed(net.module_.fc0) == list(range(8))


def test_a_layer_without_a_locatable_activation_is_refused_with_the_way_out(data):
    X, y = data
    module = nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 2))
    net = PrunedNetClassifier(module=module, pruner=NeuronPruning(0.5, importance="apoz"), **FAST)
    with pytest.raises(ValueError, match=r"layer '0' reaches no activation module.*importance='l2'"):
        net.fit(X, y)


def _dead_channels_module() -> nn.Sequential:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 2)
    )
    with torch.no_grad():  # the BatchNorm shift makes channels 0-3 negative whatever the batch
        module[1].bias[:4] = -100.0
        module[0].weight[4:] *= 0.01  # the others have the smallest filters
    return module


def test_channel_pruning_by_apoz_removes_the_channels_that_never_fire_and_compacts(data):
    X, y = data
    images = np.random.RandomState(1).rand(160, 1, 8, 8).astype(np.float32)
    pruner = ChannelPruning(0.5, importance="apoz", schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(module=_dead_channels_module(), pruner=pruner, **FAST).fit(images, y)
    assert _removed(net.module_[0]) == [0, 1, 2, 3]
    small = net.compact()
    assert small.module_[0].out_channels == 4
    np.testing.assert_allclose(small.predict_proba(images), net.predict_proba(images), atol=1e-5)


class _Capture(Callback):
    """Counts the hooks on the network while training, and raises ``error`` after epoch ``at``."""

    def __init__(self, error=None, at=2):
        self.error = error
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        self.module = net.module_
        self.hooks_while_training = max(getattr(self, "hooks_while_training", 0), _hooks_on(net.module_))
        if self.error is not None and len(net.history) == self.at:
            raise self.error


@pytest.mark.parametrize("how", ["fit", "partial_fit", "error", "interrupt"])
def test_no_hook_stays_on_the_module_after_a_fit_however_it_ends(data, how):
    X, y = data
    error = {"error": RuntimeError("callback failed"), "interrupt": KeyboardInterrupt()}.get(how)
    capture = _Capture(error)
    pruner = NeuronPruning(0.5, importance="apoz", schedule=OneShot(at=0.75))  # a step after epoch 2
    net = PrunedNetClassifier(
        module=_dead_units_module(), pruner=pruner, callbacks=[("capture", capture)], **FAST
    )
    if how == "partial_fit":
        net.fit(X, y)
        net.partial_fit(X, y)
    elif how == "error":
        with pytest.raises(RuntimeError, match="callback failed"):
            net.fit(X, y)
    elif how == "interrupt":
        with pytest.warns(UserWarning, match="Training stopped after epoch 2 of 4"):
            net.fit(X, y)
    else:
        net.fit(X, y)
    assert capture.hooks_while_training >= 1  # the engine did record (the test can fail)
    assert _hooks_on(capture.module) == 0  # the module that was trained
    assert not torch.nn.modules.module._global_forward_hooks
    if how != "error":
        assert _hooks_on(net.module_) == 0
        assert not {k for k in vars(net.pruner_) if k.endswith("_") and not k.startswith("_")}
        pickle.loads(pickle.dumps(net))


def test_a_net_pruned_by_activations_pickles_and_saves_with_the_same_predictions(data, tmp_path):
    X, y = data
    pruner = NeuronPruning(0.5, importance="activation", schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(pruner=pruner, module__hidden_layer_sizes=(16,), **FAST).fit(X, y)
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict_proba(X), net.predict_proba(X))
    skprune.save(net, tmp_path / "net.skp")
    loaded = skprune.load(tmp_path / "net.skp")
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), atol=1e-6)
    assert loaded.pruner.importance == "activation"


def test_grid_search_chooses_among_weight_and_activation_importances(data):
    X, y = data
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot(at=0.5)), module__hidden_layer_sizes=(16,), **FAST
    )
    grid = {"pruner__importance": ["l2", "apoz", "activation"]}
    search = GridSearchCV(net, grid, cv=2, error_score="raise").fit(X, y)
    assert search.best_params_["pruner__importance"] in grid["pruner__importance"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert _hooks_on(search.best_estimator_.module_) == 0


@pytest.mark.parametrize("cls", [NeuronPruning, ChannelPruning])
def test_an_unknown_importance_is_refused_with_the_choices(data, cls):
    X, y = data
    with pytest.raises(ValueError, match=r"'importance' parameter .* must be a str among") as info:
        PrunedNetClassifier(pruner=cls(0.5, importance="apoZ"), **FAST).fit(X, y)
    assert "'apoz'" in str(info.value) and "'activation'" in str(info.value)


def test_an_apoz_part_of_combined_pruning_gets_its_own_activations(data):
    X, y = data
    pruner = CombinedPruning(
        [
            ("units", NeuronPruning(0.5, importance="apoz", schedule=OneShot(at=0.5))),
            ("weights", MagnitudePruning(0.5, layers=["2"], schedule=OneShot(at=0.25))),
        ]
    )
    net = PrunedNetClassifier(module=_dead_units_module(), pruner=pruner, **FAST).fit(X, y)
    assert _removed(net.module_[0]) == list(range(8))


def test_activations_are_refused_for_a_compiled_fit_before_training(data):
    X, y = data
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5, importance="apoz"), compile=True, **FAST)
    with pytest.raises(ValueError, match="compile=False"):
        net.fit(X, y)


class _MeanInput(MagnitudePruning):
    """A rule on |w| x mean |input|: asks for each selected layer's input."""

    def requires_activation_statistics(self, *, module, **kwargs):
        return {
            param: ActivationRequest(layer_name, where="input", dim=-1, statistics=("mean_abs", "mean"))
            for param, layer_name, _ in self.select_layers(module)
        }

    def score(self, weights, context):
        _MeanInput.seen.append({k: set(v) for k, v in context.activations.items()})
        return {name: w.abs() * context.activations[name]["mean_abs"] for name, w in weights.items()}


def test_a_custom_rule_gets_the_statistics_it_asked_for_once_per_step(data):
    X, y = data
    _MeanInput.seen = []
    pruner = _MeanInput(0.5, schedule=OneShot(at=0.5))
    net = PrunedNetClassifier(pruner=pruner, module__hidden_layer_sizes=(16,), **FAST).fit(X, y)
    names = ("layers.fc0.weight", "layers.output.weight")
    assert _MeanInput.seen == [{name: {"mean_abs", "mean"} for name in names}]
    assert net.sparsity_ == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    "request_, message",
    [
        ({"x": ActivationRequest("layers.nope")}, r"asks for module 'layers.nope'.*layers.fc0"),
        ({"x": "layers.fc0"}, "ActivationRequest"),
        ({"x": ActivationRequest("layers.fc0", dim=3)}, r"dim=3 .* shape \(32, 16\)"),
    ],
    ids=["unknown-module", "not-a-request", "bad-dim"],
)
def test_a_bad_activation_request_is_refused_with_the_reason(data, request_, message):
    X, y = data

    class Asks(MagnitudePruning):
        def requires_activation_statistics(self, *, module, **kwargs):
            return request_

    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), module__hidden_layer_sizes=(16,), **FAST)
    net.fit(X, y)
    trained = net.module_
    net.set_params(pruner=Asks(0.5))
    with pytest.raises((ValueError, TypeError), match=message):
        net.partial_fit(X, y)
    assert _hooks_on(trained) == 0 and _hooks_on(net.module_) == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(where="inside"), "'output' or 'input'"),
        (dict(statistics=("median",)), "choose one or more of"),
        (dict(dim=1.5), "int or None"),
    ],
)
def test_activation_request_validates_its_fields(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ActivationRequest("layers.fc0", **kwargs)


def test_the_recorder_averages_every_statistic_over_training_passes_only():
    from skprune._training._activations import ActivationRecorder

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    requests = {
        "units": ActivationRequest("1", statistics=("mean", "mean_abs", "mean_square", "zero_fraction")),
        "whole": ActivationRequest("1", dim=None, statistics=("mean_square",)),
        "inputs": ActivationRequest("0", where="input", dim=-1, statistics=("mean_abs",)),
    }
    recorder = ActivationRecorder(module, requests, "Test")
    batches = [torch.randn(5, 4), torch.randn(7, 4)]
    for batch in batches:
        module(batch)
    module.eval()
    module(torch.full((3, 4), 100.0))  # an evaluation pass is not recorded
    taken = recorder.take()
    with torch.no_grad():
        out = torch.relu(module[0](torch.cat(batches)))
    units = taken["units"]
    torch.testing.assert_close(units["mean"], out.mean(dim=0))
    torch.testing.assert_close(units["mean_abs"], out.abs().mean(dim=0))
    torch.testing.assert_close(units["mean_square"], out.square().mean(dim=0))
    torch.testing.assert_close(units["zero_fraction"], (out == 0).float().mean(dim=0))
    torch.testing.assert_close(taken["whole"]["mean_square"], out.square().mean())
    torch.testing.assert_close(taken["inputs"]["mean_abs"], torch.cat(batches).abs().mean(dim=0))
    assert recorder.take() == {} and recorder.empty  # taken: the next step starts afresh
    recorder.remove()
    assert _hooks_on(module) == 0


@pytest.mark.parametrize("importance", ["apoz", "activation"])
def test_activation_importance_on_a_residual_mlp_names_the_branch_layers_to_select_and_they_fit(
    data, importance
):
    X, y = data
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, importance=importance),
        module__n_blocks=2,
        module__hidden_layer_sizes=(16,),
        **FAST,
    )
    with pytest.raises(ValueError, match="tied by a residual add") as info:
        net.fit(X, y)
    branch = ["layers.blocks.0.branch.fc_a", "layers.blocks.1.branch.fc_a"]
    assert f"layers={branch!r}" in str(info.value)
    net.set_params(pruner=NeuronPruning(0.5, importance=importance, layers=branch)).fit(X, y)
    np.testing.assert_allclose(net.compact().predict_proba(X), net.predict_proba(X), atol=1e-5)


def test_channel_activation_importance_on_a_residual_convnet_names_the_branch_convs_to_select():
    rng = np.random.RandomState(0)
    X, y = rng.rand(64, 1, 8, 8).astype(np.float32), rng.randint(0, 2, 64)
    net = PrunedNetClassifier(
        module=skprune.ConvNet, module__channels=(4, 8), module__hidden=8, module__n_blocks=1,
        pruner=ChannelPruning(0.5, importance="apoz"), **FAST,
    )
    branch = r"layers=\['layers.res0.0.branch.conv_a', 'layers.res1.0.branch.conv_a'\]"
    with pytest.raises(ValueError, match=branch):
        net.fit(X, y)
