import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import (
    MagnitudePruning,
    OneShot,
    PrunedNetClassifier,
    PrunedNetCV,
    PrunedNetRegressor,
    sparsity_scorer,
)
from skprune.model_selection._rules import one_standard_error_index

NET = dict(module__hidden_layer_sizes=(16,), batch_size=32, lr=0.02, random_state=0)
SPARSITIES = [0.0, 0.5, 0.8, 0.9]


def make_net(**kwargs):
    return PrunedNetClassifier(pruner=MagnitudePruning(layers="layers.*"), **{**NET, **kwargs})


@pytest.fixture(scope="module")
def fitted(clf_data):
    X, y = clf_data
    search = PrunedNetCV(make_net(), sparsities=SPARSITIES, cv=3, dense_epochs=5, finetune_epochs=2)
    return search.fit(X, y)


def test_attributes_and_cv_results(fitted, clf_data):
    X, y = clf_data
    n_s, n_folds = len(SPARSITIES), 3
    np.testing.assert_array_equal(fitted.sparsities_, SPARSITIES)
    assert fitted.scores_path_.shape == (n_s, n_folds)
    assert fitted.n_splits_ == n_folds
    assert fitted.dense_fit_times_.shape == (n_folds,)
    # every fold's network reached exactly the target sparsity at every level
    np.testing.assert_allclose(fitted.fitted_sparsity_path_, np.tile(SPARSITIES, (n_folds, 1)).T, atol=1e-2)
    results = fitted.cv_results_
    assert isinstance(results, pd.DataFrame) and len(results) == n_s
    for k in range(n_folds):
        np.testing.assert_array_equal(results[f"split{k}_test_score"], fitted.scores_path_[:, k])
    np.testing.assert_allclose(results["mean_test_score"], fitted.scores_path_.mean(axis=1))
    np.testing.assert_allclose(results["std_test_score"], fitted.scores_path_.std(axis=1))
    np.testing.assert_allclose(
        results["se_test_score"], fitted.scores_path_.std(axis=1, ddof=1) / np.sqrt(n_folds)
    )
    assert list(results["params"]) == [{"pruner__sparsity": s} for s in SPARSITIES]
    assert results["rank_test_score"].min() == 1
    # "best": highest mean score
    assert fitted.best_index_ == int(np.argmax(results["mean_test_score"]))
    assert fitted.best_sparsity_ == SPARSITIES[fitted.best_index_]
    assert fitted.best_score_ == results["mean_test_score"].max()
    assert fitted.best_params_ == {"pruner__sparsity": fitted.best_sparsity_}
    assert fitted.scores_path_.min() > 0.5  # the nets learned something


def test_refit_estimator_delegation(fitted, clf_data):
    X, y = clf_data
    best = fitted.best_estimator_
    assert best.sparsity_ == pytest.approx(fitted.best_sparsity_, abs=1e-2)
    # the refit model shows the user's settings, with the chosen sparsity
    assert best.max_epochs == NET.get("max_epochs", PrunedNetClassifier().max_epochs)
    assert best.warm_start is False
    assert best.pruner.sparsity == fitted.best_sparsity_ and best.pruner.layers == "layers.*"
    np.testing.assert_array_equal(fitted.predict(X), best.predict(X))
    np.testing.assert_allclose(fitted.predict_proba(X), best.predict_proba(X))
    assert fitted.score(X, y) == pytest.approx(np.mean(best.predict(X) == y))
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2])
    assert fitted.n_features_in_ == X.shape[1]
    assert fitted.refit_time_ > 0
    # the user's estimator is never fitted or modified
    assert fitted.estimator.pruner.sparsity == 0.9 and fitted.estimator.pruner.schedule is None
    assert not hasattr(fitted.estimator, "module_")


def test_fold_scores_are_the_warm_started_path(fitted, clf_data):
    """Reproduce fold 0 and the refit by hand: dense fit, then one-shot prune + fine-tune per level."""
    X, y = clf_data
    train, test = next(StratifiedKFold(3).split(X, y))

    def manual_path(X_fit, y_fit, levels):
        net = make_net().set_params(max_epochs=5, pruner__sparsity=0.0, pruner__schedule=OneShot(at=1.0))
        net.fit(X_fit, y_fit)
        net.set_params(warm_start=True, max_epochs=2)
        scores, modules = [], []
        for s in levels:
            net.set_params(pruner__sparsity=s, pruner__schedule=OneShot(at=0.0)).fit(X_fit, y_fit)
            scores.append(net.score(X[test], y[test]))
            modules.append(net.module_)
        assert all(m is modules[0] for m in modules)  # one network along the path
        return net, scores

    _, scores = manual_path(X[train], y[train], SPARSITIES)
    np.testing.assert_allclose(fitted.scores_path_[:, 0], scores)
    refit, _ = manual_path(X, y, SPARSITIES[: fitted.best_index_ + 1])
    np.testing.assert_allclose(fitted.best_estimator_.predict_proba(X), refit.predict_proba(X), atol=1e-6)


def test_one_se_and_callable_selection(clf_data):
    X, y = clf_data
    kwargs = dict(sparsities=[0.0, 0.7, 0.95], cv=2, dense_epochs=3, finetune_epochs=1, refit=False)
    search = PrunedNetCV(make_net(), selection="1se", **kwargs).fit(X, y)
    assert search.best_index_ == one_standard_error_index(search.cv_results_)
    assert not hasattr(search, "best_estimator_")
    assert not hasattr(search, "predict")
    with pytest.raises(AttributeError, match="refit=False"):
        search.score(X, y)
    sparsest = PrunedNetCV(make_net(), selection=lambda results: len(results) - 1, **kwargs).fit(X, y)
    assert sparsest.best_sparsity_ == 0.95
    np.testing.assert_array_equal(sparsest.scores_path_, search.scores_path_)  # same folds, same seeds
    with pytest.raises(IndexError, match="selection callable must return an index"):
        PrunedNetCV(make_net(), selection=lambda results: 99, **kwargs).fit(X, y)


def test_meta_estimator_conventions(clf_data):
    net = make_net()
    search = PrunedNetCV(net, sparsities=(0.5, 0.9), cv=4, selection="1se")
    assert is_classifier(search)
    assert is_regressor(PrunedNetCV(PrunedNetRegressor(pruner=MagnitudePruning())))
    params = search.get_params()
    assert params["cv"] == 4 and params["estimator__pruner__sparsity"] == 0.9
    cloned = clone(search)
    assert cloned.estimator is not net and cloned.get_params()["sparsities"] == (0.5, 0.9)
    cloned.set_params(estimator__lr=0.5, selection="best")
    assert cloned.estimator.lr == 0.5 and net.lr == NET["lr"]
    assert hasattr(search, "predict_proba")  # delegated to the estimator before fit


def test_pipeline_and_regressor(reg_data):
    X, y = reg_data
    pipe = make_pipeline(StandardScaler(), PrunedNetRegressor(pruner=MagnitudePruning(), max_epochs=6, **NET))
    search = PrunedNetCV(pipe, sparsities=[0.3, 0.6], cv=KFold(2), finetune_epochs=2).fit(X, y)
    assert "param_prunednetregressor__pruner__sparsity" in search.cv_results_
    assert search.best_params_ == {"prunednetregressor__pruner__sparsity": search.best_sparsity_}
    assert search.best_estimator_[-1].sparsity_ == pytest.approx(search.best_sparsity_, abs=1e-2)
    assert search.best_estimator_[0].mean_ is not None  # the scaler was fitted
    assert search.predict(X).shape == y.shape
    assert sparsity_scorer(search) == sparsity_scorer(search.best_estimator_, X, y)
    assert sparsity_scorer(search) == pytest.approx(search.best_sparsity_, abs=1e-2)
    # the default scorer of a regressor is R^2, as in GridSearchCV
    from sklearn.metrics import r2_score

    assert search.score(X, y) == pytest.approx(r2_score(y, search.predict(X)))
    # the user's pipeline is untouched
    assert pipe[-1].pruner.sparsity == 0.9 and not hasattr(pipe[-1], "module_")


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"sparsities": [0.5, 0.3]}, ValueError, "strictly increasing"),
        ({"sparsities": [0.5, 0.5]}, ValueError, "strictly increasing"),
        ({"sparsities": [0.5, 1.0]}, ValueError, r"in \[0, 1\).*\[1.0\]"),
        ({"sparsities": [-0.1, 0.5]}, ValueError, r"in \[0, 1\)"),
        ({"sparsities": []}, ValueError, "non-empty"),
        ({"sparsities": 0.5}, TypeError, "sequence of numbers"),
        ({"sparsities": ["a", "b"]}, TypeError, "hold numbers"),
        ({"cv": 1}, ValueError, "at least 2 folds"),
        ({"cv": [(np.arange(100), np.arange(100, 300))]}, ValueError, "yields 1 split"),
        ({"selection": "2se"}, ValueError, "selection must be one of"),
        ({"dense_epochs": 0}, ValueError, "dense_epochs must be an integer >= 1"),
        ({"finetune_epochs": 1.5}, ValueError, "finetune_epochs must be an integer >= 1"),
        ({"scoring": ["accuracy", "f1_macro"]}, ValueError, "single scoring"),
        ({"estimator": LogisticRegression()}, TypeError, "estimator.*must be a PrunedNetClassifier"),
        ({"estimator": make_pipeline(StandardScaler())}, TypeError, "Pipeline ending with one"),
        ({"estimator": PrunedNetClassifier()}, ValueError, "needs an estimator with a pruner"),
        ({"estimator": GridSearchCV(make_net(), {"lr": [0.1]})}, TypeError, "got GridSearchCV"),
    ],
)
def test_bad_input_is_clear_and_keeps_fitted_state(fitted, clf_data, params, error, match):
    X, y = clf_data
    search = clone(fitted).set_params(**params)
    with pytest.raises(error, match=match):
        search.fit(X, y)
    # a bad refit of an already fitted search loses nothing
    refitted = copy.deepcopy(fitted).set_params(**params)
    with pytest.raises(error, match=match):
        refitted.fit(X, y)
    np.testing.assert_array_equal(refitted.scores_path_, fitted.scores_path_)
    assert refitted.best_sparsity_ == fitted.best_sparsity_ and hasattr(refitted, "best_estimator_")
