"""Ordinary-but-unusual workflows of the estimators: array layouts, incremental learning, callbacks."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit

from skprune import MagnitudePruning, OneShot, PrunedNetClassifier, PrunedNetRegressor
from skprune.exceptions import TrainingDivergedError
from skprune.nn import MLP


@pytest.fixture(scope="module")
def iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def small(cls=PrunedNetClassifier, **params):
    defaults = dict(max_epochs=2, random_state=0, module__hidden_layer_sizes=(8,))
    return cls(**{**defaults, **params})


# ------------------------------------------------------------ array layouts
def test_reversed_views_of_X_and_y_fit_and_predict_like_their_copies(iris):
    X, y = iris
    Xr, yr = X[::-1], y[::-1]  # views with negative strides, e.g. from np.flip
    net = small().fit(Xr, yr)
    expected = small().fit(Xr.copy(), yr.copy()).predict_proba(X)
    np.testing.assert_array_equal(net.predict_proba(X), expected)
    np.testing.assert_array_equal(net.predict_proba(X[::-1]), net.predict_proba(X.copy()[::-1].copy()))
    np.testing.assert_array_equal(net.predict(X[:, ::-1][:, ::-1]), net.predict(X))
    target = X[:, 0][::-1]  # float32 target view with a negative stride
    reg = small(PrunedNetRegressor).fit(Xr, target)
    np.testing.assert_array_equal(reg.predict(X), small(PrunedNetRegressor).fit(Xr, target.copy()).predict(X))


# ------------------------------------------------------- incremental learning
def test_partial_fit_honours_classes_given_on_the_first_call(iris):
    X, y = iris
    net = small(max_epochs=1)
    net.partial_fit(X[y < 2], y[y < 2], classes=np.array([0, 1, 2]))  # first batch lacks class 2
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])
    assert net.predict_proba(X).shape == (len(X), 3)
    net.partial_fit(X[y == 2], y[y == 2], classes=[0, 1, 2])
    net.partial_fit(X, y)
    assert set(net.predict(X)) <= {0, 1, 2}


def test_partial_fit_refuses_labels_outside_classes_and_a_changed_classes(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"not in classes"):
        small(max_epochs=1).partial_fit(X, y, classes=[0, 1])
    net = small(max_epochs=1).partial_fit(X, y, classes=[0, 1, 2])
    before = net.predict_proba(X)
    with pytest.raises(ValueError, match=r"classes=.*not the same"):
        net.partial_fit(X, y, classes=[0, 1, 2, 3])
    np.testing.assert_array_equal(net.predict_proba(X), before)
    with pytest.raises(ValueError, match="at least 2 classes"):
        small(max_epochs=1).partial_fit(X[y == 0], y[y == 0], classes=[0])


def test_partial_fit_of_an_initialized_net_learns_the_data(iris):
    # skorch's workflow: initialize() (e.g. to load weights), then partial_fit
    X, y = iris
    net = small(max_epochs=1, module=MLP, module__n_features_in=4, module__n_outputs=3).initialize()
    net.partial_fit(X, y)
    np.testing.assert_array_equal(net.classes_, [0, 1, 2])
    assert net.n_features_in_ == 4
    net.partial_fit(X, y)
    assert len(net.history) == 2


# ------------------------------------------------------------------ callbacks
def test_validation_split_with_sample_or_class_weights_scores_plain_targets(iris):
    X, y = iris
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    seen = []

    def recall_of_class_0(net, X_valid, y_valid):
        seen.append(np.asarray(y_valid).shape)
        return float(np.mean(net.predict(X_valid)[y_valid == 0] == 0))

    scoring = EpochScoring(recall_of_class_0, name="valid_recall0", lower_is_better=False)
    net = small(train_split=ValidSplit(5), callbacks=[("recall0", scoring)]).fit(X, y, sample_weight=weight)
    assert 0.0 <= net.history[-1]["valid_acc"] <= 1.0
    assert seen == [(30,), (30,)]  # the validation targets, without the weights
    balanced = small(train_split=ValidSplit(5), class_weight="balanced").fit(X, y)
    assert 0.0 <= balanced.history[-1]["valid_acc"] <= 1.0


def test_early_stopping_that_loads_a_dense_best_epoch_keeps_the_pruned_weights_zero(iris):
    # valid_loss is best before a 95% one-shot step; load_best puts those dense weights back
    X, y = iris
    stop = EarlyStopping(patience=100, load_best=True, monitor="valid_loss")
    net = small(
        max_epochs=6,
        lr=0.02,
        pruner=MagnitudePruning(0.95, schedule=OneShot(at=0.5)),
        train_split=ValidSplit(0.3, random_state=0),
        callbacks=[("stop", stop)],
    )
    with pytest.warns(UserWarning, match="not fine-tuned after"):
        net.fit(X, y)
    assert not net.history[-1]["valid_loss_best"]  # the best epoch was before the pruning step
    assert net.sparsity_ > 0.9
    for name, pruned in net.masks_.pruned.items():
        assert (dict(net.module_.named_parameters())[name].detach()[pruned] == 0).all()


def test_a_pruned_fit_without_callbacks_that_load_weights_does_not_warn(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small(pruner=MagnitudePruning(0.5), train_split=ValidSplit(5)).fit(X, y)


# ------------------------------------------------------------- parameters
def test_get_params_of_a_fitted_net_lists_the_same_parameters_as_before_fit(iris):
    X, y = iris
    net = small(verbose=0)
    before = set(net.get_params())
    net.fit(X, y)
    assert set(net.get_params()) == before
    assert not [key for key in net.get_params() if "___" in key]  # no private callback state
    fresh = small().set_params(**net.get_params(deep=False))
    assert set(fresh.get_params()) == before


def test_clone_of_a_fitted_net_with_its_own_training_log_callback(iris):
    # clone rebuilds callbacks from get_params: TrainingLog(_printed_sparsity=...) raised a TypeError
    from sklearn.base import clone

    from skprune import TrainingLog

    X, y = iris
    lines = []
    net = small(callbacks=[("log", TrainingLog(sink=lines.append))]).fit(X, y)
    clone(net).fit(X, y)
    assert len(lines) > 2


# ------------------------------------------------------------------ targets
def test_normalize_y_standardizes_a_target_with_a_large_offset_before_rounding_to_float32():
    # float32 spaces values near 1e9 by 64: casting before standardizing would quantize the target
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    y = X @ np.array([3.0, -2.0, 1.0]) * 10
    net = small(PrunedNetRegressor, max_epochs=3, batch_size=-1)
    shifted = small(PrunedNetRegressor, max_epochs=3, batch_size=-1).fit(X, y + 1e9)
    np.testing.assert_allclose(shifted.predict(X) - 1e9, net.fit(X, y).predict(X), atol=1e-3)
    huge = small(PrunedNetRegressor, max_epochs=3, batch_size=-1).fit(X, y * 1e37)  # beyond float32
    np.testing.assert_allclose(huge.predict(X) / 1e37, net.predict(X), rtol=1e-4, atol=1e-3)


def test_a_multilabel_or_multi_output_y_for_the_classifier_gets_a_clear_error(iris):
    X, y = iris
    for Y in (np.c_[y == 0, y == 1].astype(int), np.c_[y, y]):
        with pytest.raises(ValueError, match=r"one label per sample.*MultiOutputClassifier"):
            small().fit(X, Y)
    from sklearn.multioutput import MultiOutputClassifier

    both = MultiOutputClassifier(small()).fit(X, np.c_[y, y == 0])
    assert both.predict(X).shape == (len(X), 2)


# ---------------------------------------------------------------- criteria
def test_a_binary_cross_entropy_criterion_for_the_classifier_gets_a_clear_error(iris):
    X, y = iris
    for criterion in (torch.nn.BCEWithLogitsLoss, torch.nn.BCELoss):
        with pytest.raises(ValueError, match="CrossEntropyLoss"):
            small(criterion=criterion).fit(X[:100], y[:100])


def test_nll_loss_on_logits_names_the_criterion_not_the_data(iris):
    # skorch's classifier takes the log of the outputs for NLLLoss: logits give NaN at once
    X, y = iris
    with pytest.raises(TrainingDivergedError, match="NLLLoss.*probabilities"):
        small(criterion=torch.nn.NLLLoss).fit(X, y)


# ------------------------------------------------------------ module outputs
def test_a_classifier_module_whose_outputs_are_not_the_classes_gets_a_clear_error(iris):
    # trained silently before, with predict_proba columns that were not the classes
    X, y = iris
    for params in (dict(module=MLP(4, 10, (8,))), dict(module=MLP(4, 2, (8,))), dict(module__n_outputs=5)):
        net = PrunedNetClassifier(max_epochs=1, random_state=0, **params)
        with pytest.raises(ValueError, match=r"outputs? \d+ values per sample, but y has 3 classes"):
            net.fit(X, y)


def test_a_regression_module_whose_outputs_do_not_match_the_targets_gets_a_clear_error(iris):
    # MSELoss broadcast (n, 3) against (n, 1) before: a wrong model and predictions of the wrong shape
    X, y = iris
    cases = [(MLP(4, 3, (8,)), y), (MLP(4, 1, (8,)), np.c_[y, y])]
    for module, target in cases:
        with pytest.raises(ValueError, match=r"target\(s\) per sample"):
            PrunedNetRegressor(max_epochs=1, module=module).fit(X, target)
    net = PrunedNetRegressor(max_epochs=1, module=MLP(4, 2, (8,))).fit(X, np.c_[y, y])
    assert net.predict(X).shape == (150, 2)


# ------------------------------------------------------------ reproducibility
def test_a_fractional_validation_split_follows_random_state(iris):
    # ValidSplit(0.2) shuffles with numpy's global generator: another split, another model, at every fit
    X, y = iris
    split = ValidSplit(0.2)
    models = [small(train_split=split).fit(X, y) for _ in range(2)]
    np.testing.assert_array_equal(models[0].predict_proba(X), models[1].predict_proba(X))
    assert models[0].history[-1]["valid_loss"] == models[1].history[-1]["valid_loss"]
    assert split.random_state is None  # the caller's splitter is not modified
    other = small(train_split=split, random_state=1).fit(X, y)
    assert other.history[-1]["valid_loss"] != models[0].history[-1]["valid_loss"]


# ------------------------------------------------------------- skorch inputs
def test_skorch_style_dict_or_dataset_inputs_get_a_clear_error(iris):
    from skorch.dataset import Dataset

    X, y = iris
    with pytest.raises(TypeError, match="got a dict"):
        small().fit({"a": X[:, :2], "b": X[:, 2:]}, y)
    with pytest.raises(TypeError, match="got a Dataset"):
        small().fit(Dataset(X, y), y)
    with pytest.raises(TypeError, match="got a Dataset"):
        small().fit(Dataset(X, y))
    net = small().fit(X, y)
    with pytest.raises(TypeError, match="got a dict"):
        net.predict({"a": X})


def test_a_training_iterator_that_gives_no_batch_raises_instead_of_logging_a_zero_loss(iris):
    # batch_size > n with drop_last: nothing trained, yet train_loss 0.0 was recorded
    X, y = iris
    net = small(batch_size=200, iterator_train__drop_last=True)
    with pytest.raises(ValueError, match="no training batch.*150 training samples.*batch_size=200"):
        net.fit(X, y)
    assert not hasattr(net, "module_")


def test_class_weight_with_a_negative_or_non_numeric_weight_is_refused(iris):
    # a negative class weight was accepted and trained the network to get that class wrong
    X, y = iris
    for class_weight in ({0: -1.0}, {0: float("nan")}, {1: "x"}, {2: True}):
        with pytest.raises(ValueError, match="finite numbers >= 0"):
            small(class_weight=class_weight).fit(X, y)
    small(class_weight={0: 0.0, 1: np.float32(2), 2: np.int64(1)}).fit(X, y)


def test_predict_proba_rows_sum_to_one_in_float64(iris):
    # the float32 softmax is off by up to a few 1e-8, above scikit-learn's log-loss check (~1.5e-8)
    X, y = iris
    net = small(max_epochs=3).fit(X, y)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=4 * np.finfo(np.float64).eps)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_loss(y, proba)
