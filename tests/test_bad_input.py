"""Every bad input gets a clear error (type and a phrase of the message)."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor, TrainingDivergedError

FAST = dict(max_epochs=2, random_state=0)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 5).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    return X, y


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_X(data, bad):
    X, y = data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match="Input X contains (NaN|infinity)"):
        PrunedNetClassifier(**FAST).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_y(data, bad):
    X, _ = data
    y = np.linspace(0, 1, len(X))
    y[5] = bad
    with pytest.raises(ValueError, match="Input y contains (NaN|infinity)"):
        PrunedNetRegressor(**FAST).fit(X, y)


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        PrunedNetClassifier(**FAST).fit(np.empty((0, 3)), np.empty(0))


def test_1d_X(data):
    X, y = data
    with pytest.raises(ValueError, match="expected a 2-D X.*reshape"):
        PrunedNetClassifier(**FAST).fit(X[:, 0], y)


def test_string_X(data):
    _, y = data
    X = np.array([["a", "b"]] * len(y), dtype=object)
    with pytest.raises(ValueError, match="needs numeric features, but column 0 of X holds 'a'"):
        PrunedNetClassifier(**FAST).fit(X, y)


def test_wrong_feature_count_at_predict(data):
    X, y = data
    net = PrunedNetClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features.*expecting 5 features"):
        net.predict(X[:, :4])


def test_predict_before_fit(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        PrunedNetClassifier().predict(X)
    with pytest.raises(NotFittedError):
        PrunedNetRegressor().predict(X)
    assert not hasattr(PrunedNetRegressor(), "predict_proba")


def test_continuous_target_for_classifier(data):
    X, _ = data
    with pytest.raises(ValueError, match="Unknown label type"):
        PrunedNetClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))


def test_single_class(data):
    X, _ = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        PrunedNetClassifier(**FAST).fit(X, np.zeros(len(X), dtype=int))


def test_inconsistent_lengths(data):
    X, y = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        PrunedNetClassifier(**FAST).fit(X, y[:-3])


@pytest.mark.parametrize("pruner", ["magnitude", 0.9, MagnitudePruning])
def test_pruner_that_is_not_a_pruner(data, pruner):
    X, y = data
    with pytest.raises(TypeError, match="pruner must be a pruning strategy"):
        PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)


@pytest.mark.parametrize("sparsity", [1.0, 1.5, -0.1])
def test_impossible_sparsity(data, sparsity):
    X, y = data
    with pytest.raises(ValueError, match=r"'sparsity' parameter of MagnitudePruning must be a float"):
        PrunedNetClassifier(pruner=MagnitudePruning(sparsity), **FAST).fit(X, y)


def test_pruner_selecting_no_layer(data):
    X, y = data
    with pytest.raises(ValueError, match="selects no layer"):
        PrunedNetClassifier(pruner=MagnitudePruning(0.5, layers="nope*"), **FAST).fit(X, y)


def test_divergence_on_extreme_data_blames_the_data_not_lr(data):
    X, _ = data
    y = np.linspace(0, 1e30, len(X)).astype(np.float32)
    with pytest.raises(TrainingDivergedError, match=r"not the learning rate.*targets reach \|y\| = 1e\+30"):
        # raw targets (normalize_y=False): the guard names them
        PrunedNetRegressor(lr=10.0, max_epochs=20, normalize_y=False, random_state=0).fit(X * 1e18, y)


def test_unknown_device(data):
    X, y = data
    if torch.cuda.is_available():
        pytest.skip("a GPU exists here")
    with pytest.raises(ValueError, match="no CUDA GPU is available"):
        PrunedNetClassifier(device="cuda", **FAST).fit(X, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "alpha must be >= 0"),
        ({"max_epochs": -1}, "max_epochs"),
        ({"max_epochs": 0, "pruner": MagnitudePruning(0.5)}, "max_epochs=0 .* no epoch to prune"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -0.1}, "lr must be a positive"),
        ({"module__hidden_layer_sizes": (0,)}, "hidden_layer_sizes"),
        ({"module__activation": "swish"}, "activation"),
    ],
)
def test_bad_parameters(data, params, match):
    X, y = data
    with pytest.raises((ValueError, TypeError), match=match):
        PrunedNetClassifier(**{**FAST, **params}).fit(X, y)


def test_failed_fit_loses_nothing(data):
    X, y = data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    before = net.predict_proba(X)
    module = net.module_
    with pytest.raises(ValueError):
        net.fit(X[:, :3] * np.nan, y)
    assert net.module_ is module
    assert net.n_features_in_ == 5
    np.testing.assert_array_equal(net.predict_proba(X), before)
    with pytest.raises(ValueError, match=r"'sparsity' parameter of MagnitudePruning must be a float"):
        net.set_params(pruner__sparsity=2.0).fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(X), before)


def test_unexpected_keyword_is_caught_at_fit(data):
    X, y = data
    with pytest.raises(ValueError, match="unexpected argument"):
        PrunedNetClassifier(hiden_layer_sizes=(3,), **FAST).fit(X, y)


def test_failed_refit_after_initialization_keeps_the_previous_model(data):
    X, y = data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    before = net.predict_proba(X)
    module = net.module_
    with pytest.raises(ValueError, match="selects no layer"):
        net.set_params(pruner__layers="missing").fit(X, y)
    assert net.module_ is module
    np.testing.assert_array_equal(net.predict_proba(X), before)
    assert net.sparsity_ == pytest.approx(0.5, abs=0.01)
