import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skprune import (
    MLP,
    CombinedPruning,
    InputPruning,
    MagnitudePruning,
    MaskStore,
    OneShot,
    PrunedNetClassifier,
    PrunedNetRegressor,
    PruningContext,
)

FAST = dict(max_epochs=12, batch_size=32, lr=0.01, random_state=0)


@pytest.fixture(scope="module")
def wide():
    """20 columns, the first 4 informative (shuffle=False), standardized."""
    X, y = make_classification(
        n_samples=300, n_features=20, n_informative=4, n_redundant=0, shuffle=False, random_state=0
    )
    return StandardScaler().fit_transform(X).astype(np.float32), y


def first_weight(net):
    return net.module_.layers.fc0.weight.detach()


def test_keeps_exactly_n_features_and_finds_informative(wide):
    X, y = wide
    net = PrunedNetClassifier(pruner=InputPruning(n_features=4), **FAST).fit(X, y)
    importances = net.feature_importances_
    assert importances.shape == (20,)
    assert np.count_nonzero(importances) == 4
    np.testing.assert_allclose(importances.sum(), 1.0, rtol=1e-6)
    kept = np.flatnonzero(importances)
    assert (kept < 4).sum() >= 3
    # removed features are whole zero columns of the first layer, nothing else there
    w = first_weight(net)
    removed = np.setdiff1d(np.arange(20), kept)
    assert torch.count_nonzero(w[:, removed]) == 0
    assert torch.count_nonzero(w[:, kept]) == w.shape[0] * 4
    # other layers untouched
    assert net.layer_sparsity_["layers.output"] == 0.0
    assert list(net.selected_features_) == [f"x{i}" for i in kept]
    assert net.score(X, y) > 0.7


def test_sparsity_rounds_to_a_count(wide):
    X, y = wide
    net = PrunedNetClassifier(pruner=InputPruning(sparsity=0.73, schedule=OneShot(at=0.5)), **FAST)
    net.fit(X, y)
    assert np.count_nonzero(net.feature_importances_) == round(0.27 * 20)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "both are None"),
        ({"n_features": 3, "sparsity": 0.5}, "pass only one"),
        ({"n_features": 0}, r"'n_features' parameter of InputPruning must be an int in the range \[1, inf\)"),
        ({"sparsity": 1.0}, r"'sparsity' parameter of InputPruning must be a float in the range \[0.0, 1"),
        ({"sparsity": -0.5}, r"'sparsity' parameter"),
        ({"n_features": 3, "strength": -1.0}, "strength"),
        ({"n_features": 3, "strength": float("nan")}, "strength"),
    ],
)
def test_bad_parameters_raise_at_fit(wide, kwargs, match):
    X, y = wide
    pruner = InputPruning(**kwargs)  # constructing never raises
    with pytest.raises(ValueError, match=match):
        PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)


def test_bad_types_raise_at_fit(wide):
    X, y = wide
    with pytest.raises(TypeError, match="'n_features' parameter of InputPruning must be an int"):
        PrunedNetClassifier(pruner=InputPruning(n_features=2.5), **FAST).fit(X, y)
    with pytest.raises(TypeError, match="'schedule' parameter of InputPruning must be an object"):
        PrunedNetClassifier(pruner=InputPruning(3, schedule="oneshot"), **FAST).fit(X, y)


def test_too_many_features_raises_before_fitted_state_is_lost(wide):
    X, y = wide
    net = PrunedNetClassifier(pruner=InputPruning(n_features=3), **FAST).fit(X, y)
    before = net.predict_proba(X)
    module = net.module_
    net.set_params(pruner__n_features=21)
    with pytest.raises(ValueError, match=r"n_features=21.*more features than the data has \(20\)"):
        net.fit(X, y)
    assert net.module_ is module
    assert net.n_features_in_ == 20
    np.testing.assert_array_equal(net.predict_proba(X), before)
    # data without a shape (a list) is caught when the network is built
    with pytest.raises(ValueError, match="more features than the data has"):
        clone(net).fit(X.tolist(), y)


def test_penalty_is_group_lasso_on_input_columns():
    module = MLP(n_features_in=5, n_outputs=2, hidden_layer_sizes=(4,))
    pruner = InputPruning(n_features=2, strength=0.3)
    w = module.layers.fc0.weight
    expected = 0.3 * sum(float(torch.linalg.norm(w.detach()[:, j])) for j in range(5))
    assert float(pruner.penalty(module).detach()) == pytest.approx(expected, rel=1e-5)
    assert InputPruning(n_features=2, strength=0.0).penalty(module) is None
    # a removed (zero) column has a zero gradient, not NaN
    with torch.no_grad():
        w[:, 1] = 0.0
    pruner.penalty(module).backward()
    assert torch.isfinite(w.grad).all()
    assert torch.count_nonzero(w.grad[:, 1]) == 0


def test_compute_masks_is_monotone_and_follows_the_schedule_fraction():
    torch.manual_seed(0)
    module = MLP(n_features_in=10, n_outputs=2, hidden_layer_sizes=(6,))
    with torch.no_grad():
        module.layers.fc0.weight.mul_(torch.arange(1, 11, dtype=torch.float32))  # column j scaled by j+1
    pruner = InputPruning(n_features=2)
    masks = MaskStore()

    def step(target):
        context = PruningContext(epoch=0, n_epochs=1, step=0, target=target, generator=torch.Generator())
        keep = pruner.compute_masks(module, masks, context)
        assert set(keep) == {"layers.fc0.weight"}
        masks.update(keep)
        masks.apply(module)
        return keep["layers.fc0.weight"].all(dim=0)

    half = step(0.5)  # removes round(0.5 * 8) = 4 columns
    assert half.sum() == 6
    # make a removed column large: it must stay removed
    with torch.no_grad():
        module.layers.fc0.weight[:, 0] = 100.0
    final = step(1.0)
    assert final.sum() == 2
    assert not (final & ~half).any()
    assert not final[0]


def test_feature_importances_for_dense_and_regressor_nets(reg_data):
    X, y = reg_data
    with pytest.raises(NotFittedError):
        _ = PrunedNetRegressor().feature_importances_
    assert not hasattr(PrunedNetRegressor(), "feature_importances_")
    net = PrunedNetRegressor(**FAST).fit(X, y)
    importances = net.feature_importances_
    assert importances.shape == (X.shape[1],) and (importances > 0).all()
    np.testing.assert_allclose(importances.sum(), 1.0, rtol=1e-6)
    expected = torch.linalg.norm(net.module_.layers.fc0.weight.detach(), dim=0).numpy()
    np.testing.assert_allclose(importances, expected / expected.sum(), rtol=1e-5)


class ConvFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)
        self.out = nn.Linear(2 * 6, 2)

    def forward(self, X):
        return self.out(self.conv(X.unsqueeze(1)).flatten(1))


def test_first_layer_not_linear_is_clear(wide):
    X, y = wide
    X8 = X[:, :8]
    net = PrunedNetClassifier(module=ConvFirst, **FAST).fit(X8, y)
    with pytest.raises(AttributeError, match="first layer .* is torch.nn.Linear"):
        _ = net.feature_importances_
    assert not hasattr(net, "selected_features_")
    with pytest.raises(ValueError, match="InputPruning needs a network whose first layer"):
        PrunedNetClassifier(module=ConvFirst, pruner=InputPruning(2), **FAST).fit(X8, y)


def test_selected_feature_names_from_dataframe(wide):
    X, y = wide
    names = [f"col_{i}" for i in range(20)]
    df = pd.DataFrame(X, columns=names)
    net = PrunedNetClassifier(pruner=InputPruning(n_features=4), **FAST).fit(df, y)
    kept = np.flatnonzero(net.feature_importances_)
    assert list(net.selected_features_) == [names[i] for i in kept]
    selector = SelectFromModel(net, threshold=1e-5, prefit=True).fit(df, y)  # prefit: no refit
    assert selector.estimator_ is not net and selector.get_support().sum() == 4
    assert list(selector.get_feature_names_out()) == list(net.selected_features_)


def test_select_from_model_in_pipeline_under_grid_search(wide):
    X, y = wide
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
    net = PrunedNetClassifier(pruner=InputPruning(n_features=3), max_epochs=8, batch_size=64, random_state=0)
    pipe = make_pipeline(StandardScaler(), SelectFromModel(net, threshold=1e-5), LogisticRegression())
    search = GridSearchCV(
        pipe,
        {"selectfrommodel__estimator__pruner__n_features": [2, 4]},
        cv=2,
    )
    search.fit(df, y)
    assert pipe[1].estimator.pruner.n_features == 3  # the template is untouched
    best_k = search.best_params_["selectfrommodel__estimator__pruner__n_features"]
    best = search.best_estimator_
    assert best[1].estimator_.pruner_.n_features == best_k
    assert best[:-1].transform(df).shape == (len(df), best_k)
    assert len(best[:-1].get_feature_names_out()) == best_k
    assert set(best[:-1].get_feature_names_out()) <= set(df.columns)
    assert set(search.cv_results_["param_selectfrommodel__estimator__pruner__n_features"]) == {2, 4}


def test_combined_with_weight_pruning_of_other_layers(wide):
    X, y = wide
    pruner = CombinedPruning(
        [
            ("inputs", InputPruning(n_features=5, schedule=OneShot(at=0.3))),
            ("weights", MagnitudePruning(0.75, layers=["layers.fc1", "layers.output"])),
        ]
    )
    net = PrunedNetClassifier(module__hidden_layer_sizes=(16, 8), pruner=pruner, **FAST)
    params = net.get_params()
    assert params["pruner__inputs__n_features"] == 5
    assert params["pruner__weights__sparsity"] == 0.75
    net = clone(net).set_params(pruner__inputs__n_features=4, pruner__weights__sparsity=0.5)
    assert pruner.pruners[0][1].n_features == 5  # the original is untouched
    net.fit(X, y)
    assert np.count_nonzero(net.feature_importances_) == 4
    fc1, out = net.module_.layers.fc1.weight, net.module_.layers.output.weight
    n_zero = (fc1 == 0).sum() + (out == 0).sum()
    assert int(n_zero) == round(0.5 * (fc1.numel() + out.numel()))
    assert (first_weight(net) == 0).sum() == 16 * 16  # only the 16 removed columns


def test_combined_on_a_shared_layer_keeps_both_masks():
    torch.manual_seed(0)  # unseeded, 6 initializations in 40 ended one weight over the target
    module = MLP(n_features_in=10, n_outputs=2, hidden_layer_sizes=(6,))
    pruner = CombinedPruning([("inputs", InputPruning(n_features=4)), ("weights", MagnitudePruning(0.8))])
    pruner._validate_params()
    masks = MaskStore()
    for epoch, _ in pruner.get_schedule().steps(10):
        context = PruningContext(epoch=epoch, n_epochs=10, step=0, target=1.0, generator=torch.Generator())
        masks.update(pruner.compute_masks(module, masks, context))
        masks.apply(module)
    w = module.layers.fc0.weight
    assert int((w.abs().sum(dim=0) > 0).sum()) <= 4
    n_zero = int((w == 0).sum() + (module.layers.output.weight == 0).sum())
    assert n_zero == round(0.8 * (w.numel() + module.layers.output.weight.numel()))


def test_combined_bad_input_is_clear(wide):
    X, y = wide
    with pytest.raises(TypeError, match="list of \\(name, pruner\\) tuples"):
        PrunedNetClassifier(pruner=CombinedPruning([InputPruning(3)]), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="repeated names"):
        CombinedPruning([("a", InputPruning(3)), ("a", MagnitudePruning())]).check_params()
    with pytest.raises(ValueError, match="pass only one"):
        PrunedNetClassifier(pruner=CombinedPruning([("a", InputPruning(3, 0.5))]), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="more features than the data has"):
        PrunedNetClassifier(pruner=CombinedPruning([("a", InputPruning(30))]), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="the parts are \\['a'\\]"):
        CombinedPruning([("a", InputPruning(3))]).set_params(b__n_features=2)
