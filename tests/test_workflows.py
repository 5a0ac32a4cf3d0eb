"""Ordinary-but-unusual workflows of the estimators: array layouts, incremental learning, callbacks."""

import warnings

import numpy as np
import pytest
from skorch.callbacks import EarlyStopping, EpochScoring
from skorch.dataset import ValidSplit

from skprune import MagnitudePruning, OneShot, PrunedNetClassifier, PrunedNetRegressor
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
