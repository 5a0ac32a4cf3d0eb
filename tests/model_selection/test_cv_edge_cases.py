"""PrunedNetCV edge cases found by review: failures after the folds, odd but legitimate inputs."""

import copy

import numpy as np
import pytest
from sklearn.base import clone
from skorch.callbacks import Callback

from skprune import InputPruning, Iterative, MagnitudePruning, NeuronPruning, PrunedNetClassifier, PrunedNetCV

NET = dict(module__hidden_layer_sizes=(8,), batch_size=32, lr=0.02, random_state=0)


@pytest.fixture(scope="module")
def small_data(clf_data):
    X, y = clf_data
    return X[:120], y[:120]


@pytest.fixture(scope="module")
def fitted(small_data):
    X, y = small_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **NET)
    return PrunedNetCV(net, sparsities=[0.0, 0.5], cv=2, dense_epochs=2, finetune_epochs=1).fit(X, y)


def _failing_selection(cv_results):
    raise RuntimeError("selection failed")


class FailOnAllData(Callback):
    """Interrupts a fit on all ``n`` rows (the refit), not on a fold's training part."""

    def __init__(self, n=120):
        self.n = n

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if len(X) == self.n:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "params, error",
    [
        ({"selection": lambda cv_results: 99}, IndexError),
        ({"selection": _failing_selection}, RuntimeError),
        ({"estimator__callbacks": [FailOnAllData()]}, KeyboardInterrupt),  # the refit is interrupted
    ],
)
def test_a_refit_of_a_fitted_search_failing_after_the_folds_keeps_the_old_results(
    fitted, small_data, params, error
):
    X, y = small_data
    search = copy.deepcopy(fitted).set_params(sparsities=[0.0, 0.5, 0.8], **params)
    before = {k: copy.deepcopy(v) for k, v in vars(fitted).items() if k.endswith("_")}
    with pytest.raises(error):
        search.fit(X, y)
    after = {k: v for k, v in vars(search).items() if k.endswith("_")}
    assert sorted(after) == sorted(before)
    np.testing.assert_array_equal(search.sparsities_, [0.0, 0.5])
    np.testing.assert_array_equal(search.scores_path_, fitted.scores_path_)
    assert len(search.cv_results_) == 2
    assert search.best_sparsity_ == fitted.best_sparsity_ and search.best_index_ == fitted.best_index_
    np.testing.assert_allclose(search.predict_proba(X), fitted.predict_proba(X))


def test_a_refit_false_fit_of_a_refitted_search_drops_the_old_best_estimator(fitted, small_data):
    X, y = small_data
    search = copy.deepcopy(fitted).set_params(refit=False, sparsities=[0.0, 0.8])
    search.fit(X, y)
    assert not hasattr(search, "best_estimator_") and not hasattr(search, "refit_time_")
    np.testing.assert_array_equal(search.sparsities_, [0.0, 0.8])


def test_the_refit_input_pruning_path_model_keeps_a_valid_pruner(small_data):
    """The refit model's pruner is the user's at the chosen level: refitting it (or a clone) works."""
    X, y = small_data
    schedule = Iterative(n_steps=2)
    net = PrunedNetClassifier(pruner=InputPruning(n_features=5, schedule=schedule), **NET)
    search = PrunedNetCV(net, sparsities=[0.3, 0.6], cv=2, dense_epochs=2, finetune_epochs=1).fit(X, y)
    pruner = search.best_estimator_.pruner
    assert pruner.n_features is None and pruner.sparsity == search.best_sparsity_
    assert pruner.schedule.get_params() == schedule.get_params() and pruner.schedule is not schedule
    refit = clone(search.best_estimator_).set_params(max_epochs=2).fit(X, y)
    assert len(refit.selected_features_) == round((1 - search.best_sparsity_) * X.shape[1])


def test_path_levels_override_a_deprecated_fraction(small_data):
    X, y = small_data
    with pytest.warns(FutureWarning, match="fraction"):
        NeuronPruning(fraction=0.25).check_params()
    net = PrunedNetClassifier(pruner=NeuronPruning(fraction=0.25), **NET)
    search = PrunedNetCV(net, sparsities=[0.25, 0.5], cv=2, dense_epochs=2, finetune_epochs=1).fit(X, y)
    # the hidden layer lost a quarter, then half of its units: the second level is sparser
    assert np.all(search.fitted_sparsity_path_[1] > search.fitted_sparsity_path_[0])
    assert search.best_estimator_.pruner.get_params()["fraction"] == "deprecated"


def _nan_when_sparse(estimator, X, y):
    """A scorer that cannot score the sparse levels (as a metric undefined on a fold would)."""
    return float("nan") if estimator.sparsity_ > 0.4 else float(np.mean(estimator.predict(X) == y))


def test_nan_scores_rank_last_as_in_grid_search(small_data):
    X, y = small_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **NET)
    search = PrunedNetCV(net, sparsities=[0.0, 0.3, 0.5], cv=2, dense_epochs=2, finetune_epochs=1)
    search.set_params(scoring=_nan_when_sparse, refit=False).fit(X, y)
    results = search.cv_results_
    assert np.isnan(results["mean_test_score"].iloc[2])
    assert results["rank_test_score"].iloc[2] == 3
    assert sorted(results["rank_test_score"].iloc[:2]) in ([1, 2], [1, 1])
    assert search.best_index_ in (0, 1)


def test_best_sparsity_is_the_chosen_level_and_sparsity_is_its_deprecated_alias(fitted):
    assert fitted.best_sparsity_ in list(fitted.sparsities_)
    with pytest.warns(FutureWarning, match="renamed best_sparsity_"):
        assert fitted.sparsity_ == fitted.best_sparsity_
    assert not hasattr(PrunedNetCV(fitted.estimator), "sparsity_")  # not fitted: no alias either
