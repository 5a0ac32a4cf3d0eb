"""PrunedNetCV(batch_folds=...): the fold networks trained as one batched model equal the sequential path."""

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from skprune import (
    MLP,
    ConvNet,
    L1Pruning,
    MagnitudePruning,
    NeuronPruning,
    PrunedNetClassifier,
    PrunedNetCV,
    PrunedNetRegressor,
    RandomPruning,
    TaylorPruning,
)


@pytest.fixture(scope="module")
def clf_data():
    # 203 rows in 3 stratified folds: training folds of 135/135/136 rows, so with batch_size=45 one fold
    # has a fourth, 1-row batch at each epoch while the others are idle
    X, y = make_classification(n_samples=203, n_features=8, n_informative=5, n_classes=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def reg_data():
    X, y = make_regression(n_samples=130, n_features=6, noise=5.0, random_state=0)
    return X, y * 10 + 300  # an unscaled target: the regressor standardizes it per fold


def _both(estimator, X, y, **params):
    """The search fitted with sequential folds, then with batched folds."""
    sequential = PrunedNetCV(estimator, batch_folds=False, **params).fit(X, y)
    batched = PrunedNetCV(estimator, batch_folds=True, **params).fit(X, y)
    return sequential, batched


def _assert_same_path(sequential, batched, atol=1e-4):
    assert not sequential.batched_ and sequential.batched_reason_ == "batch_folds=False"
    assert batched.batched_, batched.batched_reason_
    np.testing.assert_allclose(batched.scores_path_, sequential.scores_path_, atol=atol)
    np.testing.assert_array_equal(batched.fitted_sparsity_path_, sequential.fitted_sparsity_path_)
    assert batched.best_sparsity_ == sequential.best_sparsity_
    assert batched.best_index_ == sequential.best_index_
    assert list(batched.cv_results_.columns) == list(sequential.cv_results_.columns)


def test_batched_classifier_equals_sequential_with_uneven_folds_and_batches(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(),
        module__hidden_layer_sizes=(16,),
        max_epochs=4,
        batch_size=45,
        lr=0.01,
        random_state=0,
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    sequential, batched = _both(net, X, y, sparsities=[0.0, 0.5, 0.9], cv=cv, scoring="neg_log_loss")
    _assert_same_path(sequential, batched)
    assert batched.batched_reason_ == "3 folds trained as one batched model"
    assert (batched.cv_results_["mean_fit_time"] >= 0).all()
    assert np.all(batched.dense_fit_times_ > 0)


def test_batched_regressor_in_a_pipeline_equals_sequential(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(
        pruner=MagnitudePruning(scope="layer"),
        module__hidden_layer_sizes=(12,),
        module__n_blocks=1,
        max_epochs=3,
        batch_size=32,
        alpha=1e-2,
        random_state=3,
    )
    pipe = make_pipeline(StandardScaler(), net)
    sequential, batched = _both(pipe, X, y, sparsities=[0.5, 0.8], cv=KFold(4, shuffle=True, random_state=1))
    _assert_same_path(sequential, batched)


@pytest.mark.parametrize(
    "pruner, params",
    [
        (RandomPruning(), {}),
        (TaylorPruning(), {"finetune_epochs": 1}),  # statistics from a pass before the step
        (TaylorPruning(), {"finetune_epochs": 2}),  # statistics gathered in the first epoch
        (NeuronPruning(), {}),
    ],
    ids=["random", "taylor-sensitivity-pass", "taylor-observed", "neuron"],
)
@pytest.mark.parametrize("optimizer", [torch.optim.AdamW, torch.optim.SGD], ids=["AdamW", "SGD"])
def test_batched_pruners_and_optimizers_equal_sequential(reg_data, pruner, params, optimizer):
    X, y = reg_data
    net = PrunedNetRegressor(
        pruner=pruner,
        module__hidden_layer_sizes=(10,),
        max_epochs=2,
        batch_size=40,
        random_state=np.random.RandomState(5),  # the fold clones draw the seed of each fit in turn
        optimizer=optimizer,
        optimizer__weight_decay=0.05,
    )
    sequential = PrunedNetCV(net, sparsities=[0.5, 0.75], cv=3, batch_folds=False, **params).fit(X, y)
    batched = PrunedNetCV(net, sparsities=[0.5, 0.75], cv=3, **params).fit(X, y)
    np.testing.assert_allclose(batched.scores_path_, sequential.scores_path_, atol=1e-4)
    np.testing.assert_array_equal(batched.fitted_sparsity_path_, sequential.fitted_sparsity_path_)
    assert batched.best_sparsity_ == sequential.best_sparsity_


def test_full_batch_training_is_batched_per_fold(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=3, batch_size=-1, random_state=0)
    sequential, batched = _both(net, X[:101], y[:101], sparsities=[0.5], cv=3)
    _assert_same_path(sequential, batched)


class _Noop(Callback):
    pass


class _MyNet(PrunedNetRegressor):
    pass


class _Tanh2(torch.nn.Module):
    """A module of the user's own: stacked through torch.func.vmap."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.a = torch.nn.Linear(n_features_in, 12)
        self.b = torch.nn.Linear(12, n_outputs)

    def forward(self, X):
        return self.b(torch.tanh(self.a(X)) * 2)


def test_a_users_module_is_batched_through_vmap_and_convnet_falls_back(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(module=_Tanh2, pruner=MagnitudePruning(), max_epochs=2, random_state=0)
    sequential, batched = _both(net, X, y, sparsities=[0.5], cv=3)
    _assert_same_path(sequential, batched)
    images = np.random.default_rng(0).normal(size=(40, 1, 4, 4)).astype(np.float32)
    net = PrunedNetRegressor(module=ConvNet, pruner=MagnitudePruning(), max_epochs=1, random_state=0)
    search = PrunedNetCV(net, sparsities=[0.5], cv=2).fit(images, y[:40])
    assert not search.batched_ and "BatchNorm" in search.batched_reason_


class _Rewinding(MagnitudePruning):
    def rewind(self, module, context):
        return None


FALLBACKS = [
    ("callbacks", {"callbacks": [_Noop()]}, "callbacks"),
    ("train_split", {"train_split": ValidSplit(3)}, "train_split"),
    ("verbose", {"verbose": 1}, "verbose=1"),
    ("optimizer", {"optimizer": torch.optim.LBFGS}, "not an element-wise"),
    ("criterion", {"criterion": torch.nn.PoissonNLLLoss}, "criterion"),
    ("reduction", {"criterion__reduction": "sum"}, "reduction"),
    ("dropout", {"module__dropout": 0.2}, "MLP draws random numbers in its forward pass (e.g. dropout)"),
    ("rewind", {"pruner": _Rewinding()}, "rewind"),
    ("penalty", {"pruner": L1Pruning(strength=1e-3)}, "penalty"),
    ("activations", {"pruner": NeuronPruning(importance="apoz")}, "records activations"),
]


@pytest.mark.parametrize("name, params, reason", FALLBACKS, ids=[f[0] for f in FALLBACKS])
def test_auto_falls_back_to_sequential_with_the_reason(reg_data, name, params, reason, capsys):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=1, random_state=0, module=MLP)
    net.set_params(**params)
    search = PrunedNetCV(net, sparsities=[0.5], cv=2, verbose=1).fit(X[:60], y[:60])
    assert not search.batched_
    assert reason in search.batched_reason_
    assert "folds trained one after another" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"batch_folds=True, but the folds cannot be trained as one batched"):
        PrunedNetCV(net, sparsities=[0.5], cv=2, batch_folds=True).fit(X[:60], y[:60])


def test_subclass_class_weight_sparse_input_and_n_jobs_fall_back(clf_data):
    X, y = clf_data
    X, y = X[:90], y[:90]
    fast = dict(pruner=MagnitudePruning(), max_epochs=1, random_state=0)
    cases = [
        (_MyNet(**fast), X, y.astype(float), {}, "_MyNet subclasses"),
        (PrunedNetClassifier(class_weight="balanced", **fast), X, y, {}, "class_weight"),
        (PrunedNetClassifier(**fast), sp.csr_matrix(X), y, {}, "sparse"),
        (PrunedNetClassifier(**fast), X, y, {"n_jobs": 2}, "n_jobs=2"),
    ]
    for net, X_, y_, params, reason in cases:
        with joblib.parallel_config(backend="threading"):  # n_jobs=2 without starting processes
            search = PrunedNetCV(net, sparsities=[0.5], cv=2, **params).fit(X_, y_)
        assert not search.batched_ and reason in search.batched_reason_, search.batched_reason_


def test_batch_folds_is_validated_and_true_refuses_before_fitting(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=1)
    with pytest.raises(ValueError, match='batch_folds must be "auto", True or False, got 1'):
        PrunedNetCV(net, batch_folds=1).fit(X, y)
    search = PrunedNetCV(net.set_params(compile=True), batch_folds=True)
    with pytest.raises(ValueError, match="compile=True wraps each fold's module in torch.compile"):
        search.fit(X, y)
    assert not hasattr(search, "cv_results_")


def test_verbose_says_the_folds_were_batched(reg_data, capsys):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=1, random_state=0)
    search = PrunedNetCV(net, sparsities=[0.5], cv=2, verbose=1).fit(X, y)
    assert search.batched_
    assert "PrunedNetCV: 2 folds trained as one batched model." in capsys.readouterr().out


def test_unseeded_batched_search_fits(reg_data):
    X, y = reg_data
    net = PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=1)  # random_state=None
    search = PrunedNetCV(net, sparsities=[0.5], cv=2).fit(X, y)
    assert search.batched_ and np.isfinite(search.scores_path_).all()


def test_batched_search_refits_a_normal_estimator_that_pickles_and_clones(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=2, random_state=0)
    search = PrunedNetCV(make_pipeline(StandardScaler(), net), sparsities=[0.5, 0.8], cv=2).fit(X, y)
    assert search.batched_
    best = search.best_estimator_[-1]
    assert type(best) is PrunedNetClassifier
    assert best.pruner.sparsity == search.best_sparsity_ and best.max_epochs == 2
    assert abs(best.sparsity_ - search.best_sparsity_) < 0.05
    restored = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(restored.predict(X), search.predict(X))
    assert restored.batched_ and restored.batched_reason_ == search.batched_reason_
    assert clone(search).get_params()["batch_folds"] == "auto"


def test_folds_whose_networks_differ_in_shape_fall_back_to_sequential_and_equal_it():
    # unshuffled KFold: the last fold's training rows hold 2 of the 3 classes, so its network has a
    # 2-wide output layer and the others 3; a VarianceThreshold in a pipeline narrows one fold's input
    rng = np.random.RandomState(0)
    X = rng.randn(90, 5).astype(np.float32)
    y = np.r_[np.zeros(40, int), np.ones(45, int), np.full(5, 2)]
    X[:, 0] += y
    net = PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=1, lr=0.01, random_state=0)
    params = dict(sparsities=[0.5], cv=KFold(3), dense_epochs=2)
    search = PrunedNetCV(net, **params).fit(X, y)
    assert not search.batched_ and "differ in shape" in search.batched_reason_, search.batched_reason_
    sequential = PrunedNetCV(net, batch_folds=False, **params).fit(X, y)
    np.testing.assert_allclose(search.scores_path_, sequential.scores_path_)

    from sklearn.feature_selection import VarianceThreshold

    X2 = X.copy()
    X2[30:, 4] = 0.0  # varies in the first fold's test rows only: that fold's training rows drop it
    pipe = make_pipeline(VarianceThreshold(), PrunedNetClassifier(pruner=MagnitudePruning(), max_epochs=1))
    search = PrunedNetCV(pipe, sparsities=[0.5], cv=KFold(3), dense_epochs=1).fit(X2, y % 2)
    assert not search.batched_ and "differ in shape" in search.batched_reason_, search.batched_reason_


def _first_layer_frozen(n_features_in, n_outputs):
    module = torch.nn.Sequential(
        torch.nn.Linear(n_features_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_outputs)
    )
    module[0].requires_grad_(False)
    return module


def test_a_module_with_a_frozen_layer_falls_back_to_the_sequential_scores(clf_data):
    # the stacked parameters all required gradients: the batched folds trained the frozen layer, and
    # the pruner (which skips frozen layers unless named) pruned it: fitted sparsity 0.5 instead of 0.29
    X, y = clf_data
    net = PrunedNetClassifier(
        module=_first_layer_frozen, pruner=MagnitudePruning(), max_epochs=2, random_state=0
    )
    params = dict(sparsities=[0.5, 0.9], cv=3, refit=False)
    search = PrunedNetCV(net, **params).fit(X, y)
    sequential = PrunedNetCV(net, batch_folds=False, **params).fit(X, y)
    assert not search.batched_ and "requires_grad=False" in search.batched_reason_, search.batched_reason_
    np.testing.assert_array_equal(search.fitted_sparsity_path_, sequential.fitted_sparsity_path_)
    np.testing.assert_allclose(search.scores_path_, sequential.scores_path_)


def test_a_criterion_ignoring_a_class_falls_back_to_the_sequential_scores(clf_data):
    # CrossEntropyLoss(ignore_index=...) averages over the rows it does not ignore; the batched loss
    # averages over every row of the batch, so its scores differed from the sequential ones by ~4e-3
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), random_state=0, criterion__ignore_index=1)
    params = dict(sparsities=[0.5, 0.8], cv=3, dense_epochs=2, finetune_epochs=1, scoring="neg_log_loss")
    search = PrunedNetCV(net, **params).fit(X, y)
    sequential = PrunedNetCV(net, batch_folds=False, **params).fit(X, y)
    assert not search.batched_ and "ignore_index=1" in search.batched_reason_, search.batched_reason_
    np.testing.assert_allclose(search.scores_path_, sequential.scores_path_)


class _FocalLoss(torch.nn.CrossEntropyLoss):
    """A CrossEntropyLoss subclass whose forward returns a scalar whatever its reduction."""

    def forward(self, input, target):
        ce = torch.nn.functional.cross_entropy(input, target, reduction="none")
        return ((1 - torch.exp(-ce)) ** 2 * ce).mean()


def test_a_criterion_subclass_with_its_own_forward_falls_back_to_sequential(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), random_state=0, criterion=_FocalLoss)
    params = dict(sparsities=[0.5], cv=3, dense_epochs=2, scoring="neg_log_loss")
    search = PrunedNetCV(net, **params).fit(X, y)  # raised RuntimeError from the batched loss's reshape
    sequential = PrunedNetCV(net, batch_folds=False, **params).fit(X, y)
    assert not search.batched_ and "_FocalLoss" in search.batched_reason_, search.batched_reason_
    np.testing.assert_allclose(search.scores_path_, sequential.scores_path_)


@pytest.mark.parametrize(
    "pruner",
    [MagnitudePruning(), MagnitudePruning(scope="erk"), RandomPruning(scope="global"), TaylorPruning()],
)
def test_every_folds_pruning_step_is_one_batched_pass_with_the_sequential_masks(
    clf_data, pruner, monkeypatch
):
    from skprune.model_selection import _batched

    passes = []
    batched_masks = _batched.compute_masks_of_folds

    def counted(*args):
        masks = batched_masks(*args)
        passes.append(masks is not None)
        return masks

    monkeypatch.setattr(_batched, "compute_masks_of_folds", counted)
    X, y = clf_data
    net = PrunedNetClassifier(pruner=pruner, module__hidden_layer_sizes=(16, 8), max_epochs=3, random_state=0)
    sequential, batched = _both(net, X, y, sparsities=[0.5, 0.9], cv=3, refit=False)
    assert batched.batched_ and passes == [True] * 3  # the dense fit's step and one per level, all batched
    np.testing.assert_array_equal(batched.scores_path_, sequential.scores_path_)
    np.testing.assert_array_equal(batched.fitted_sparsity_path_, sequential.fitted_sparsity_path_)
