import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_classification, make_regression

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture(scope="session")
def clf_data():
    X, y = make_classification(n_samples=300, n_features=10, n_informative=6, n_classes=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def reg_data():
    X, y = make_regression(n_samples=200, n_features=8, noise=0.1, random_state=0)
    return X.astype(np.float32), (y / y.std()).astype(np.float32)
