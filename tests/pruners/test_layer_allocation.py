"""No pruner disconnects a layer: the layer-aware allocation and its connectivity floor."""

import numpy as np
import pytest
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skprune import (
    LotteryTicket,
    MagnitudePruning,
    PrunedNetClassifier,
    PrunedNetRegressor,
    RandomPruning,
    TaylorPruning,
)
from skprune.pruners._allocation import ALLOCATIONS, allocate


def linear_weights(net):
    return [m.weight.detach() for m in net.module_.modules() if isinstance(m, torch.nn.Linear)]


def assert_connected(net):
    weights = linear_weights(net)
    for w in weights:
        assert w.any(), "a layer was emptied"
    disconnected = int((~(weights[-1] != 0).any(dim=1)).sum())
    assert disconnected == 0, f"{disconnected} output units lost every incoming weight"


@pytest.mark.parametrize("scope", ALLOCATIONS)
def test_every_scope_keeps_one_weight_per_output_unit_and_per_layer(scope):
    # the output layer's scores are all below the hidden layers': raw global
    # ranking alone would remove it entirely
    generator = torch.Generator().manual_seed(0)
    shapes = {"fc0.weight": (64, 8), "fc1.weight": (64, 64), "out.weight": (3, 64)}
    scores = {
        n: torch.rand(s, generator=generator) + (0.0 if n == "out.weight" else 10.0)
        for n, s in shapes.items()
    }
    keep = {n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()}
    masks = allocate(scope, list(shapes), scores, keep, 0.99, "out.weight")
    assert masks["out.weight"].any(dim=1).all()
    assert all(m.any() for m in masks.values())
    n_total = sum(m.numel() for m in masks.values())
    n_pruned = sum(int((~m).sum()) for m in masks.values())
    assert n_pruned >= round(0.99 * n_total) - 3 - len(shapes)  # only the floor is spared


def test_lamp_keeps_pruned_weights_pruned():
    shapes = {"a": (10, 5), "b": (2, 10)}
    scores = {n: torch.arange(np.prod(s), dtype=torch.float32).reshape(s) for n, s in shapes.items()}
    keep = {n: torch.rand(s, generator=torch.Generator().manual_seed(1)) > 0.3 for n, s in shapes.items()}
    masks = allocate("lamp", list(shapes), scores, keep, 0.5, "b")
    for n in shapes:
        assert not (masks[n] & ~keep[n]).any()


@pytest.fixture(scope="module")
def iris_wine():
    return [load(return_X_y=True) for load in (load_iris, load_wine)]


@pytest.mark.parametrize("sparsity", [0.8, 0.98])
def test_classifier_at_high_sparsity_on_iris_and_wine_stays_connected_and_accurate(iris_wine, sparsity):
    for X, y in iris_wine:
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        model = make_pipeline(
            StandardScaler(),
            PrunedNetClassifier(pruner=MagnitudePruning(sparsity), max_epochs=30, lr=0.01, random_state=0),
        ).fit(X_train, y_train)
        assert_connected(model[-1])
        majority = np.bincount(y_test).max() / len(y_test)
        assert model.score(X_test, y_test) > majority + 0.3


@pytest.mark.parametrize(
    "pruner", [RandomPruning(0.95), TaylorPruning(0.95), LotteryTicket(0.95, n_rounds=2)]
)
def test_other_strategies_keep_every_output_unit_connected(iris_wine, pruner):
    X, y = iris_wine[0]
    net = PrunedNetClassifier(pruner=pruner, max_epochs=6, random_state=0).fit(
        StandardScaler().fit_transform(X), y
    )
    assert_connected(net)


def test_layer_scope_keeps_every_output_unit_connected(iris_wine):
    X, y = iris_wine[1]
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.98, scope="layer"), max_epochs=6, random_state=0)
    assert_connected(net.fit(StandardScaler().fit_transform(X), y))


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0)


@pytest.mark.parametrize("sparsity", [0.8, 0.98])
def test_one_output_regressor_at_high_sparsity_keeps_its_output_weights(diabetes, sparsity):
    X_train, X_test, y_train, y_test = diabetes
    model = make_pipeline(
        StandardScaler(), PrunedNetRegressor(pruner=MagnitudePruning(sparsity), max_epochs=30, random_state=0)
    ).fit(X_train, y_train)
    assert_connected(model[-1])
    assert r2_score(y_test, model.predict(X_test)) > 0.1  # a constant model scores <= 0


def test_transformed_target_pipeline_on_diabetes_is_not_a_constant_model(diabetes):
    X_train, X_test, y_train, y_test = diabetes
    model = TransformedTargetRegressor(
        make_pipeline(StandardScaler(), PrunedNetRegressor(pruner=MagnitudePruning(0.8), random_state=0)),
        transformer=StandardScaler(),
    ).fit(X_train, y_train)
    prediction = model.predict(X_test)
    assert len(np.unique(prediction)) > 1
    assert r2_score(y_test, prediction) > 0
