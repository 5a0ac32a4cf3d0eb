"""Architecture parameters of the default networks given as numpy scalars, as grids produce them."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skprune import MLP, ConvNet, PrunedNetClassifier


def test_mlp_takes_a_numpy_integer_width_from_a_grid(clf_data):
    X, y = clf_data
    grid = {"module__hidden_layer_sizes": np.arange(4, 12, 4)}  # numpy int64 values
    search = GridSearchCV(PrunedNetClassifier(max_epochs=1, random_state=0), grid, cv=2, error_score="raise")
    search.fit(X[:60], y[:60])
    sizes = search.best_estimator_.module_.hidden_layer_sizes
    assert sizes in [(4,), (8,)] and all(type(size) is int for size in sizes)


@pytest.mark.parametrize("sizes", [np.int64(6), np.array([6, 3]), (np.int32(6), 3)])
def test_mlp_hidden_sizes_are_python_ints(sizes):
    mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=sizes)
    assert all(type(size) is int for size in mlp.hidden_layer_sizes)
    assert mlp.layers.fc0.out_features == 6


@pytest.mark.parametrize("bad", [np.float64(2.5), (0,), (-1, 4), ("8",)])
def test_mlp_bad_hidden_sizes_are_a_clear_error(bad):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=bad)


def test_convnet_takes_numpy_integer_channels():
    shape = (1, 8, 8)
    net = ConvNet(n_features_in=64, n_outputs=2, input_shape=shape, channels=np.int64(3), hidden=np.int64(5))
    assert net.channels == (3,) and net.hidden == 5
    assert net.layers.conv0.out_channels == 3
