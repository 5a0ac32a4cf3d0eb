import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from skprune import (
    ChannelPruning,
    CompactionError,
    Iterative,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PrunedNet,
    PrunedNetClassifier,
    PrunedNetRegressor,
    compact_module,
)
from skprune.nn import removed_units

FAST = dict(max_epochs=6, batch_size=32, lr=0.01, random_state=0, compact_during_fit=False)  # masks tested


def _max_diff(a, b, X):
    method = "predict_proba" if hasattr(a, "predict_proba") else "predict"
    return float(np.abs(getattr(a, method)(X) - getattr(b, method)(X)).max())


@pytest.mark.parametrize(
    "importance, activation", [("l2", "relu"), ("l1", "logistic"), ("taylor", "tanh"), ("taylor", "relu")]
)
def test_neuron_pruning_removes_units_and_compaction_keeps_predictions(clf_data, importance, activation):
    X, y = clf_data
    pruner = NeuronPruning(0.5, importance=importance, schedule=Iterative(n_steps=2, start=0.3, end=0.6))
    net = PrunedNetClassifier(
        pruner=pruner, module__hidden_layer_sizes=(20, 10), module__activation=activation, **FAST
    ).fit(X, y)
    fc0, fc1 = net.module_.layers.fc0, net.module_.layers.fc1
    assert int(removed_units(fc0).sum()) == 10 and int(removed_units(fc1).sum()) == 5
    assert torch.all(fc0.bias[removed_units(fc0)] == 0)
    # the next layer's inputs from removed units are masked too
    assert torch.all(fc1.weight[:, removed_units(fc0)] == 0)
    compact = net.compact()
    assert compact.module_.hidden_layer_sizes == (10, 5)
    assert compact.module_.layers.fc1.weight.shape == (5, 10)
    assert _max_diff(net, compact, X) <= 1e-5
    # removed units are really gone: parameters = nonzero of the masked model
    assert compact.n_params_ == net.n_nonzero_params_
    assert compact.n_params_ < net.n_params_
    assert len(compact.masks_) == 0
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(compact)).predict(X), net.predict(X))
    # the original estimator is untouched
    assert net.module_.layers.fc0.weight.shape == (20, 10)


def test_compaction_folds_constant_of_removed_sigmoid_units():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(5, 10), nn.Sigmoid(), nn.Linear(10, 7), nn.BatchNorm1d(7), nn.Tanh(), nn.Linear(7, 2)
    )
    module[3].running_mean.normal_()
    module[3].running_var.uniform_(0.5, 2)
    with torch.no_grad():  # rows zeroed by hand; the next layer's inputs are NOT zero
        module[0].weight[:4] = 0
        module[2].weight[2] = 0
    module.eval()
    compact = compact_module(module)
    assert compact[0].out_features == 6 and compact[2].in_features == 6
    assert compact[2].out_features == 6 and compact[3].num_features == 6 and compact[5].in_features == 6
    X = torch.randn(50, 5)
    with torch.no_grad():
        assert float((compact(X) - module(X)).abs().max()) <= 1e-5


class _ConvNet(nn.Module):
    def __init__(self, n_outputs=3):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.b1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 12, 3, padding=1)
        self.b2 = nn.BatchNorm2d(12)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(12 * 4 * 4, 16)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(16, n_outputs)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x.unflatten(1, (1, 8, 8)))))
        x = self.pool(torch.relu(self.b2(self.c2(x))))
        x = torch.flatten(x, 1)
        return self.out(self.drop(F.relu(self.fc(x))))


@pytest.fixture(scope="module")
def image_data():
    rng = np.random.RandomState(0)
    X = rng.rand(160, 64).astype(np.float32)
    y = (X[:, :32].mean(1) > X[:, 32:].mean(1)).astype(int) + (X.mean(1) > 0.5)
    return X, y


def test_channel_pruning_is_batchnorm_aware_and_compacts(image_data):
    X, y = image_data
    net = PrunedNetClassifier(module=_ConvNet, pruner=ChannelPruning(0.5, schedule=OneShot(0.5)), **FAST).fit(
        X, y
    )
    removed = removed_units(net.module_.c1)
    assert int(removed.sum()) == 4
    assert torch.all(net.module_.b1.weight[removed] == 0) and torch.all(net.module_.b1.bias[removed] == 0)
    compact = net.compact()
    m = compact.module_
    assert (m.c1.out_channels, m.b1.num_features, m.c2.in_channels) == (4, 4, 4)
    assert (m.c2.out_channels, m.b2.num_features, m.fc.in_features) == (6, 6, 6 * 16)
    assert _max_diff(net, compact, X) <= 1e-5
    assert compact.n_params_ == net.n_nonzero_params_


def test_neuron_pruning_after_flatten_of_a_conv_net(image_data):
    X, y = image_data
    net = PrunedNetClassifier(module=_ConvNet, pruner=NeuronPruning(0.5, schedule=OneShot(0.5)), **FAST)
    net.fit(X, y)
    assert net.pruner_.select_layers(net.module_)[0][1] == "fc"
    compact = net.compact()
    assert compact.module_.fc.out_features == 8 and compact.module_.out.in_features == 8
    assert _max_diff(net, compact, X) <= 1e-5


def test_sparsity_removing_every_unit_is_refused(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=NeuronPruning(0.95), module__hidden_layer_sizes=(10,), **FAST)
    with pytest.raises(ValueError, match="remove every unit of layer 'layers.fc0'"):
        net.fit(X, y)
    with pytest.raises(ValueError, match=r"'sparsity' parameter of NeuronPruning must be a float"):
        PrunedNetClassifier(pruner=NeuronPruning(1.0), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="'importance' parameter of NeuronPruning must be a str among"):
        PrunedNetClassifier(pruner=NeuronPruning(0.5, importance="l3"), **FAST).fit(X, y)


def test_output_layer_units_are_never_pruned(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5, layers="layers.output"), **FAST)
    with pytest.raises(ValueError, match="output layer 'layers.output'"):
        net.fit(X, y)
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5), module__hidden_layer_sizes=(8,), **FAST).fit(X, y)
    assert int(removed_units(net.module_.layers.output).sum()) == 0


def test_global_scope_and_grid_search_over_sparsity(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, scope="global", schedule=OneShot()),
        module__hidden_layer_sizes=(16, 16),
        **FAST,
    ).fit(X, y)
    removed = [int(removed_units(layer).sum()) for layer in (net.module_.layers.fc0, net.module_.layers.fc1)]
    assert sum(removed) == 16 and all(r < 16 for r in removed)
    search = GridSearchCV(
        clone(net), {"pruner__sparsity": [0.25, 0.5], "pruner__importance": ["l1", "l2"]}, cv=2
    )
    search.fit(X, y)
    assert search.best_estimator_.pruner_.sparsity in (0.25, 0.5)


def test_regressor_and_generic_sequential_compact(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=NeuronPruning(0.5, schedule=OneShot()), **FAST).fit(X, y)
    assert _max_diff(net, net.compact(), X) <= 1e-5
    module = nn.Sequential(nn.Linear(8, 12), nn.GELU(), nn.Dropout(0.2), nn.Linear(12, 1))
    generic = PrunedNet(module=module, pruner=NeuronPruning(0.5, schedule=OneShot()), **FAST).fit(
        X, y[:, None]
    )
    compact = generic.compact()
    assert compact.module_[0].out_features == 6
    assert _max_diff(generic, compact, X) <= 1e-5


def _zero(layer):
    if isinstance(layer, nn.Conv2d):
        layer.weight[0] = 0


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.out(h + self.b(h))


class _DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 1)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else -self.a(x)


def test_unsupported_graphs_raise_an_error_naming_the_layer():
    module = _Residual()
    assert compact_module(module).a.out_features == 4  # nothing removed: nothing to follow
    with torch.no_grad():
        module.a.weight[0] = 0
    with pytest.raises(CompactionError, match=r"layer 'a' has 1 removed units.*'add'.*residual"):
        compact_module(module)
    with pytest.raises(CompactionError, match="torch.fx could not trace"):
        compact_module(_DataDependent())
    flat = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2))
    with torch.no_grad():
        flat[1].weight[0] = 0
    assert compact_module(flat)[1].out_features == 2  # zero output rows are outputs: kept
    with torch.no_grad():
        flat[0].weight[0] = 0
    assert compact_module(flat)[0].out_features == 5
    with pytest.raises(CompactionError, match="layer '0' has 1 removed units.*'1' .Linear. reads an unflat"):
        compact_module(nn.Sequential(nn.Conv2d(1, 2, 1), nn.Linear(6, 2)).requires_grad_(False).apply(_zero))


def test_compaction_also_drops_rows_emptied_by_unstructured_pruning(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.97, schedule=OneShot()), **FAST).fit(X, y)
    compact = net.compact()
    assert compact.n_params_ < net.n_params_
    assert _max_diff(net, compact, X) <= 1e-5
    # remaining unstructured zeros keep their masks (fine-tuning keeps them at zero)
    assert len(compact.masks_) > 0
    assert compact.sparsity_ > 0
    compact.set_params(warm_start=True, max_epochs=1, pruner=None).fit(X, y)
    for name, pruned in compact.masks_.pruned.items():
        assert torch.all(dict(compact.module_.named_parameters())[name][pruned] == 0)


def test_taylor_scores_come_from_gradient_statistics():
    from skprune import MaskStore, PruningContext

    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    stats = torch.ones(4, 3)
    stats[[1, 3]] = 1e-3  # units 1 and 3 matter least to the loss, whatever their norms
    context = PruningContext(0, 1, 0, 0.5, torch.Generator(), {"0.weight": stats})
    pruner = NeuronPruning(0.5, importance="taylor")
    assert pruner.requires_gradient_statistics and not NeuronPruning().requires_gradient_statistics
    keep = pruner.compute_masks(module, MaskStore(), context)
    assert keep["0.weight"].all(dim=1).tolist() == [True, False, True, False]
    assert keep["0.bias"].tolist() == [True, False, True, False]
    assert keep["2.weight"].all(dim=0).tolist() == [True, False, True, False]
    context.statistics = {}
    with pytest.warns(UserWarning, match="no gradient statistics"):
        pruner.compute_masks(module, MaskStore(), context)


def test_half_the_hidden_units_keep_digits_accuracy_within_one_point(digits):
    from sklearn.model_selection import train_test_split

    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    kwargs = dict(max_epochs=30, lr=3e-3, batch_size=64, random_state=0, module__hidden_layer_sizes=(128,))
    dense = PrunedNetClassifier(**kwargs).fit(X_train, y_train)
    pruned = PrunedNetClassifier(pruner=NeuronPruning(0.5), **kwargs).fit(X_train, y_train)
    compact = pruned.compact()
    assert compact.module_.hidden_layer_sizes == (64,)
    assert compact.score(X_test, y_test) >= dense.score(X_test, y_test) - 0.01


class _ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResNetTiny(nn.Module):
    """A stem and one identity-shortcut block: the stem's and conv2's channels are one group."""

    def __init__(self, n_features_in=64, n_outputs=10):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.layer1 = _ResBlock()
        self.fc = nn.Linear(8, n_outputs)

    def forward(self, X):
        x = self.layer1(torch.relu(self.bn(self.stem(X.reshape(-1, 1, 8, 8)))))
        return self.fc(x.mean(dim=(2, 3)))


def test_channel_pruning_of_one_member_of_a_residual_group_is_refused_at_fit_naming_the_group(digits):
    X, y = digits
    one = PrunedNetClassifier(
        module=ResNetTiny,
        pruner=ChannelPruning(0.5, layers="layer1.conv2", schedule=OneShot()),
        max_epochs=4,
        lr=0.01,
    )
    match = r"selects \['layer1.conv2'\] but not \['stem'\].*layers=\['layer1.conv2', 'stem'\]"
    with pytest.raises(ValueError, match=match):
        one.fit(X[:200], y[:200])
    whole = (
        clone(one).set_params(pruner__layers=["stem", "layer1.conv2"], random_state=0).fit(X[:200], y[:200])
    )
    compact = whole.compact()  # the group went together: compaction shrinks it, no error
    assert compact.module_.stem.out_channels == compact.module_.layer1.conv2.out_channels == 4
    np.testing.assert_allclose(compact.predict_proba(X[:50]), whole.predict_proba(X[:50]), atol=1e-5)
