"""A fitted model predicting one constant while the training targets vary warns, naming the cause."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skprune import PrunedNetClassifier, PrunedNetRegressor, RandomPruning
from skprune._training._guards import ConstantModelWarning


class _IgnoresInputs(nn.Module):
    def __init__(self, n_features_in=4, n_outputs=1):
        super().__init__()
        self.layer = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.layer(X * 0.0)


def test_wine_at_99_percent_random_pruning_predicting_one_class_warns_naming_sparsity_epochs_and_scale():
    X, y = load_wine(return_X_y=True)
    net = PrunedNetClassifier(pruner=RandomPruning(0.99), module__hidden_layer_sizes=(52,), random_state=0)
    with pytest.warns(ConstantModelWarning, match=r"predicts one class for all 178 training rows") as record:
        net.fit(X, y)
    assert len(np.unique(net.predict(X))) == 1
    message = str(record[0].message)
    assert "too high a sparsity (0.99" in message and "max_epochs=50" in message
    assert "StandardScaler" in message


def test_a_dense_classifier_that_ignores_its_inputs_warns_without_naming_sparsity():
    X, y = load_iris(return_X_y=True)
    net = PrunedNetClassifier(module=_IgnoresInputs, max_epochs=2, random_state=0)
    with pytest.warns(ConstantModelWarning, match="predicts one class") as record:
        net.fit(X, y)
    assert "sparsity" not in str(record[0].message)


def test_a_regressor_predicting_one_value_for_varying_targets_warns():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConstantModelWarning, match="same value for all 150 training rows"):
        PrunedNetRegressor(module=_IgnoresInputs, max_epochs=2, random_state=0).fit(X, y.astype(float))


@pytest.mark.parametrize("estimator", [PrunedNetClassifier, PrunedNetRegressor])
def test_a_model_that_learned_gives_no_constant_model_warning(estimator):
    X, y = load_iris(return_X_y=True)
    y = y if estimator is PrunedNetClassifier else X[:, 3] + 0.1 * X[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantModelWarning)
        make_pipeline(StandardScaler(), estimator(max_epochs=5, random_state=0)).fit(X, y)


def test_constant_targets_give_no_constant_model_warning():
    X, _ = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantModelWarning)
        PrunedNetRegressor(module=_IgnoresInputs, max_epochs=1, random_state=0).fit(X, np.ones(len(X)))


def test_constant_model_warning_is_public_in_skprune_and_skprune_exceptions_so_a_user_can_filter_it():
    import skprune
    import skprune.exceptions

    assert skprune.ConstantModelWarning is ConstantModelWarning
    assert skprune.exceptions.ConstantModelWarning is ConstantModelWarning
    assert "ConstantModelWarning" in skprune.__all__
    assert ConstantModelWarning.__module__ == "skprune.exceptions"
    X, y = load_wine(return_X_y=True)
    net = PrunedNetClassifier(pruner=RandomPruning(0.99), module__hidden_layer_sizes=(52,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=skprune.ConstantModelWarning)
        net.fit(X, y)


def test_a_fit_of_zero_epochs_builds_the_network_without_warning_about_what_it_learned():
    # max_epochs=0 only builds the network (PrunedNetCV's batched folds start each fold so);
    # the same network after one epoch does warn
    X, y = load_iris(return_X_y=True)
    net = PrunedNetClassifier(module=_IgnoresInputs, max_epochs=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConstantModelWarning)
        net.fit(X, y)
    assert net.n_epochs_completed_ == 0 and hasattr(net, "module_")
    with pytest.warns(ConstantModelWarning, match="predicts one class"):
        net.set_params(max_epochs=1).fit(X, y)
