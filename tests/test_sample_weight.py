"""sample_weight in fit/partial_fit, metadata routing, and class_weight on the classifier."""

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from skprune import (
    MagnitudePruning,
    OneStandardErrorRule,
    PrunedNetClassifier,
    PrunedNetCV,
    PrunedNetRegressor,
    TaylorPruning,
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def full_batch(cls=PrunedNetClassifier, **params):
    defaults = dict(max_epochs=4, batch_size=-1, alpha=0.0, random_state=0, pruner=MagnitudePruning(0.5))
    return cls(**{**defaults, **params})


def test_weights_of_two_equal_duplicated_rows(iris):
    X, y = iris
    weighted = full_batch().fit(X, y, sample_weight=np.full(len(y), 2.0))
    duplicated = full_batch().fit(np.vstack([X, X]), np.concatenate([y, y]))
    np.testing.assert_allclose(weighted.predict_proba(X), duplicated.predict_proba(X), atol=1e-5)


def test_weights_of_two_equal_duplicated_rows_with_l2_and_taylor_statistics(iris):
    X, y = iris
    params = dict(alpha=1e-2, pruner=TaylorPruning(0.5))
    weighted = full_batch(**params).fit(X, y, sample_weight=np.full(len(y), 2.0))
    duplicated = full_batch(**params).fit(np.vstack([X, X]), np.concatenate([y, y]))
    np.testing.assert_allclose(weighted.predict_proba(X), duplicated.predict_proba(X), atol=1e-5)
    for a, b in zip(weighted.module_.parameters(), duplicated.module_.parameters()):
        np.testing.assert_array_equal(a.detach().numpy() == 0, b.detach().numpy() == 0)


def test_zero_weights_equal_dropping_rows(iris):
    X, y = iris
    weight = np.ones(len(y))
    weight[::3] = 0.0
    weighted = full_batch().fit(X, y, sample_weight=weight)
    dropped = full_batch().fit(X[weight > 0], y[weight > 0])
    np.testing.assert_allclose(weighted.predict_proba(X), dropped.predict_proba(X), atol=1e-5)


def test_regressor_zero_weights_equal_dropping_rows_in_partial_fit(iris):
    X, _ = iris
    target = X[:, 0] - 2 * X[:, 1]
    weight = np.ones(len(X))
    weight[1::4] = 0.0
    weighted = full_batch(PrunedNetRegressor).partial_fit(X, target, sample_weight=weight)
    dropped = full_batch(PrunedNetRegressor).partial_fit(X[weight > 0], target[weight > 0])
    np.testing.assert_allclose(weighted.predict(X), dropped.predict(X), atol=1e-5)


def test_sample_weight_changes_the_fit(iris):
    X, y = iris
    weight = np.where(y == 0, 10.0, 0.1)
    plain = full_batch().fit(X, y)
    weighted = full_batch().fit(X, y, sample_weight=weight)
    assert not np.allclose(plain.predict_proba(X), weighted.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize(
    "weight, message",
    [(np.ones(3), "sample_weight"), (-np.ones(150), "sample_weight"), (np.zeros(150), "sample_weight")],
)
def test_bad_sample_weight_is_refused_with_a_clear_error(iris, weight, message):
    X, y = iris
    with pytest.raises(ValueError, match=message):
        full_batch().fit(X, y, sample_weight=weight)


def test_sample_weight_is_routed_through_pipeline(iris):
    X, y = iris
    weight = np.where(y == 2, 3.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False),
            full_batch().set_fit_request(sample_weight=True),
        )
        pipe.fit(X, y, sample_weight=weight)
    direct = full_batch().fit(StandardScaler().fit_transform(X), y, sample_weight=weight)
    np.testing.assert_allclose(
        pipe.predict_proba(X), direct.predict_proba(StandardScaler().fit(X).transform(X))
    )
    unweighted = full_batch().fit(StandardScaler().fit_transform(X), y)
    assert not np.allclose(unweighted.predict_proba(X), direct.predict_proba(X), atol=1e-4)


def test_sample_weight_is_routed_through_grid_search(iris):
    X, y = iris
    weight = np.where(y == 2, 3.0, 1.0)
    with sklearn.config_context(enable_metadata_routing=True):
        net = full_batch().set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        search = GridSearchCV(net, {"pruner__sparsity": [0.5]}, cv=KFold(2, shuffle=True, random_state=0))
        search.fit(X, y, sample_weight=weight)
    direct = full_batch().fit(X, y, sample_weight=weight)
    np.testing.assert_allclose(search.best_estimator_.predict_proba(X), direct.predict_proba(X))


def test_class_weight_balanced_matches_compute_sample_weight(iris):
    X, y = iris
    X, y = X[20:], y[20:]  # imbalanced: 30 / 50 / 50
    balanced = full_batch(class_weight="balanced").fit(X, y)
    weighted = full_batch().fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_allclose(balanced.predict_proba(X), weighted.predict_proba(X), atol=1e-6)


def test_class_weight_dict_with_string_labels_matches_sample_weight(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    class_weight = {"setosa": 0.5, "virginica": 4.0}
    by_class = full_batch(class_weight=class_weight).fit(X, labels)
    weighted = full_batch().fit(X, labels, sample_weight=compute_sample_weight(class_weight, labels))
    np.testing.assert_allclose(by_class.predict_proba(X), weighted.predict_proba(X), atol=1e-6)


def test_class_weight_is_an_init_parameter_of_the_classifier_only():
    assert PrunedNetClassifier(class_weight="balanced").get_params()["class_weight"] == "balanced"
    assert "class_weight" not in PrunedNetRegressor().get_params()


@pytest.mark.parametrize("class_weight", ["auto", 3, {"unknown": 2.0}])
def test_bad_class_weight_is_refused_with_a_clear_error(iris, class_weight):
    X, y = iris
    with pytest.raises(ValueError, match="class_weight"):
        full_batch(class_weight=class_weight).fit(X, y)


def test_recall_and_f1_scoring_work_with_the_one_standard_error_rule(iris):
    X, y = iris
    X, y = X[30:], y[30:]  # imbalanced classes: 20 / 50 / 50
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(), max_epochs=4, class_weight="balanced", random_state=0
    )
    path = PrunedNetCV(net, sparsities=[0.0, 0.5, 0.8], cv=3, scoring="f1_macro", selection="1se").fit(X, y)
    assert path.best_sparsity_ in (0.0, 0.5, 0.8)
    assert 0.0 <= path.best_score_ <= 1.0
    grid = GridSearchCV(
        net,
        {"pruner__sparsity": [0.0, 0.5, 0.8]},
        cv=3,
        scoring={"recall": "recall_macro", "f1": "f1_macro"},
        refit=OneStandardErrorRule(metric="recall"),
    ).fit(X, y)
    assert grid.best_params_["pruner__sparsity"] in (0.0, 0.5, 0.8)
    assert "mean_test_f1" in grid.cv_results_
