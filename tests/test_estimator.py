import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import (
    MLP,
    Iterative,
    MagnitudePruning,
    OneShot,
    Polynomial,
    PrunedNet,
    PrunedNetClassifier,
    PrunedNetRegressor,
)
from skprune._training._data import ArrayDataset

FAST = dict(max_epochs=6, batch_size=32, lr=0.01, random_state=0)


def test_defaults_are_sensible():
    net = PrunedNetClassifier()
    assert net.module is MLP
    assert net.criterion is torch.nn.CrossEntropyLoss
    assert net.optimizer is torch.optim.Adam
    assert net.lr == 1e-3
    assert net.train_split is None
    assert net.verbose == 0
    assert net.pruner is None
    assert PrunedNetRegressor().criterion is torch.nn.MSELoss
    assert isinstance(PrunedNetClassifier(), PrunedNet)


def test_dense_fit_predict_score(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(max_epochs=30, lr=0.01, random_state=0).fit(X, y)
    assert net.score(X, y) > 0.9
    assert net.sparsity_ == 0.0
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert net.n_features_in_ == X.shape[1]


def test_set_params_routes_to_pruner():
    est = PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.9))
    cloned = clone(est).set_params(pruner__sparsity=0.3)
    assert cloned.pruner.sparsity == 0.3
    assert est.pruner.sparsity == 0.9  # the original is untouched
    assert "pruner__sparsity" not in vars(cloned)
    cloned.set_params(pruner__schedule=OneShot(at=0.2), pruner__schedule__at=0.4)
    assert cloned.pruner.schedule.at == 0.4
    assert cloned.get_params()["pruner__sparsity"] == 0.3


def test_set_pruner_param_without_pruner_is_clear():
    with pytest.raises(ValueError, match="Set a pruner first"):
        PrunedNetClassifier().set_params(pruner__sparsity=0.5)


def test_grid_search_reaches_the_pruner(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.9, schedule=OneShot(at=0.5)), **FAST)
    search = GridSearchCV(net, {"pruner__sparsity": [0.0, 0.5, 0.9]}, cv=2, refit=False)
    search.fit(X, y)
    # refit each candidate to read its fitted sparsity
    fitted = [clone(net).set_params(**p).fit(X, y) for p in search.cv_results_["params"]]
    assert [round(f.sparsity_, 3) for f in fitted] == [0.0, 0.5, 0.9]


def test_fit_does_not_mutate_user_pruner(clf_data):
    X, y = clf_data
    pruner = MagnitudePruning(sparsity=0.7)
    before = pickle.dumps(pruner)
    net = PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)
    assert pickle.dumps(pruner) == before
    assert net.pruner_ is not pruner
    assert net.pruner_.get_params() == pruner.get_params()


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("schedule", [OneShot(), Iterative(n_steps=3), Polynomial()])
def test_exact_target_sparsity(clf_data, scope, schedule):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.8, scope=scope, schedule=schedule),
        module__hidden_layer_sizes=(32, 16),
        **FAST,
    ).fit(X, y)
    n_weights = sum(r.weight_params for r in net.pruning_report().itertuples())
    assert net.sparsity_ == pytest.approx(0.8, abs=1.5 / n_weights * 3)
    if scope == "layer":
        for value in net.layer_sparsity_.values():
            assert value == pytest.approx(0.8, abs=0.01)


def test_global_scope_gives_uneven_layers(digits):
    X, y = digits
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.9, scope="global", schedule=OneShot(at=0.5)),
        module__hidden_layer_sizes=(64, 32),
        **FAST,
    ).fit(X, y)
    values = list(net.layer_sparsity_.values())
    assert max(values) - min(values) > 0.05
    assert net.sparsity_ == pytest.approx(0.9, abs=1e-3)


def test_output_layer_can_stay_dense(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.8, scope="layer", prune_output_layer=False),
        module__hidden_layer_sizes=(16,),
        **FAST,
    ).fit(X, y)
    report = net.pruning_report().set_index("layer")
    assert report.loc["layers.output", "sparsity"] == 0.0
    assert not report.loc["layers.output", "pruned"]
    assert report.loc["layers.fc0", "sparsity"] == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    "optimizer, kwargs",
    [
        (torch.optim.Adam, {"lr": 0.01}),
        (torch.optim.SGD, {"optimizer__momentum": 0.9, "lr": 0.1}),
        (torch.optim.AdamW, {"lr": 0.01}),
    ],
)
def test_masks_hold_through_fine_tuning(clf_data, optimizer, kwargs):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(sparsity=0.75, schedule=OneShot(at=0.25)),
        optimizer=optimizer,
        max_epochs=12,
        batch_size=32,
        random_state=0,
        **kwargs,
    ).fit(X, y)
    history_sparsity = net.history[:, "sparsity"]
    # from the pruning step on, every epoch ends at exactly the target
    after = history_sparsity[3:]
    assert all(s == pytest.approx(0.75, abs=1e-3) for s in after)
    for name, pruned in net.masks_.pruned.items():
        weight = dict(net.module_.named_parameters())[name]
        assert torch.all(weight[pruned] == 0)
    # the network still learned while sparse
    assert net.score(X, y) > 0.6


def test_no_hooks_or_reparametrization(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    for module in net.module_.modules():
        assert not module._forward_pre_hooks and not module._forward_hooks
        assert not hasattr(module, "weight_orig")
    clone(net)  # deepcopy-based clone works


def test_fitted_figures_count_exact_zeros(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.6), module__hidden_layer_sizes=(20,), **FAST).fit(
        X, y
    )
    params = list(net.module_.parameters())
    assert net.n_params_ == sum(p.numel() for p in params)
    assert net.n_nonzero_params_ == sum(int((p != 0).sum()) for p in params)
    # a weight zeroed by hand is counted: sparsity is read from the weights
    with torch.no_grad():
        net.module_.layers.output.weight.zero_()
    report = net.pruning_report()
    assert report.set_index("layer").loc["layers.output", "sparsity"] == 1.0
    assert list(report.columns[:8]) == [
        "layer",
        "type",
        "shape",
        "params",
        "nonzero",
        "weight_params",
        "weight_nonzero",
        "sparsity",
    ]
    assert isinstance(net.layer_sparsity_, dict)


def test_random_state_makes_fit_reproducible(clf_data):
    X, y = clf_data
    kwargs = dict(pruner=MagnitudePruning(0.5), module__dropout=0.2, max_epochs=4, random_state=3)
    a = PrunedNetClassifier(**kwargs).fit(X, y).predict_proba(X)
    b = PrunedNetClassifier(**kwargs).fit(X, y).predict_proba(X)
    c = PrunedNetClassifier(**{**kwargs, "random_state": 4}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_does_not_disturb_global_torch_rng(clf_data):
    X, y = clf_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PrunedNetClassifier(max_epochs=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_fast_path_never_touches_single_samples(clf_data, monkeypatch):
    X, y = clf_data

    def forbidden(self, i):
        raise AssertionError("per-sample access on the fast path")

    monkeypatch.setattr(ArrayDataset, "__getitem__", forbidden)
    import skorch.dataset

    monkeypatch.setattr(skorch.dataset.Dataset, "__getitem__", forbidden)
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    net.predict(X)
    assert isinstance(net.get_dataset(torch.as_tensor(X)), ArrayDataset)


def test_alpha_shrinks_weights(clf_data):
    X, y = clf_data
    norms = []
    for alpha in [0.0, 10.0]:
        net = PrunedNetClassifier(alpha=alpha, **FAST).fit(X, y)
        norms.append(
            sum(float(p.detach().pow(2).sum()) for n, p in net.module_.named_parameters() if "weight" in n)
        )
    assert norms[1] < 0.8 * norms[0]


def test_module_hidden_layer_sizes_in_grid(clf_data):
    X, y = clf_data
    search = GridSearchCV(
        PrunedNetClassifier(max_epochs=2, random_state=0),
        {"module__hidden_layer_sizes": [(8,), (16, 8)]},
        cv=2,
    ).fit(X, y)
    assert search.best_estimator_.module_.layers.fc0.out_features in (8, 16)


def test_regressor_single_and_multi_output(reg_data):
    X, y = reg_data
    reg = PrunedNetRegressor(pruner=MagnitudePruning(0.5), max_epochs=40, lr=0.01, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (len(X),)
    assert reg.score(X, y) > 0.5
    Y = np.column_stack([y, -y])
    multi = PrunedNetRegressor(max_epochs=5, random_state=0).fit(X, Y)
    assert multi.predict(X).shape == (len(X), 2)


def test_pipeline_with_pandas_and_tensor_inputs(clf_data):
    X, y = clf_data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    pipe = make_pipeline(StandardScaler(), PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST))
    pipe.fit(frame, pd.Series(y))
    assert pipe.predict(frame).shape == (len(X),)
    net = PrunedNetClassifier(**FAST).fit(torch.as_tensor(X), torch.as_tensor(y))
    np.testing.assert_array_equal(net.predict(torch.as_tensor(X)), net.predict(X))
    named = PrunedNetClassifier(**FAST).fit(frame, y)
    assert list(named.feature_names_in_) == list(frame.columns)


def test_pickle_round_trip_keeps_masks(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.7), **FAST).fit(X, y)
    loaded = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert loaded.sparsity_ == net.sparsity_
    # the masks still bind to the loaded module and keep it sparse
    loaded.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert loaded.sparsity_ >= 0.7 - 1e-3


def test_warm_start_continues_to_higher_sparsity(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5, schedule=OneShot(at=0.0)), warm_start=True, **FAST)
    net.fit(X, y)
    first = net.module_
    net.set_params(pruner__sparsity=0.8).fit(X, y)
    assert net.module_ is first
    assert net.sparsity_ == pytest.approx(0.8, abs=0.01)


def test_verbose_prints_sparsity_column(clf_data, capsys):
    X, y = clf_data
    PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=2, verbose=1, random_state=0).fit(X, y)
    out = capsys.readouterr().out
    assert "sparsity" in out
    PrunedNetClassifier(max_epochs=2, random_state=0).fit(X, y)
    assert capsys.readouterr().out == ""


def test_module_instance_is_copied_not_mutated(clf_data):
    X, y = clf_data
    module = MLP(n_features_in=X.shape[1], n_outputs=3, hidden_layer_sizes=(8,))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    net = PrunedNetClassifier(module=module, pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])
    assert net.module_ is not module


def test_generic_base_with_custom_module(reg_data):
    X, y = reg_data

    class Tiny(torch.nn.Module):
        def __init__(self, n_features_in, n_outputs, width=4):
            super().__init__()
            self.lin = torch.nn.Linear(n_features_in, width)
            self.out = torch.nn.Linear(width, n_outputs)

        def forward(self, X):
            return self.out(torch.relu(self.lin(X)))

    net = PrunedNet(module=Tiny, module__width=6, pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    assert net.module_.lin.out_features == 6
    assert net.sparsity_ == pytest.approx(0.5, abs=0.02)


def test_module_instance_can_be_set_in_a_grid(clf_data):
    X, y = clf_data
    small = MLP(n_features_in=X.shape[1], n_outputs=3, hidden_layer_sizes=(4,))
    net = clone(PrunedNetClassifier(**FAST)).set_params(module=small)
    assert net.module is small
    net.fit(X, y)
    assert net.module_.layers.fc0.out_features == 4
