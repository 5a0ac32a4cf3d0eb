"""Data people have: numpy, pandas, scipy.sparse, torch; labels of any kind."""

import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor

FAST = dict(max_epochs=8, lr=0.01, batch_size=32, random_state=0)


@pytest.fixture(scope="module")
def binary():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 6).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


def test_dataframe_feature_names_and_mismatch_warning(binary):
    X, y = binary
    frame = pd.DataFrame(X, columns=list("abcdef"))
    net = PrunedNetClassifier(**FAST).fit(frame, y)
    np.testing.assert_array_equal(net.feature_names_in_, list("abcdef"))
    with pytest.warns(UserWarning, match="feature names"):
        net.predict(X)  # fitted with names, predicting without
    renamed = frame.rename(columns={"a": "z"})
    with pytest.raises(ValueError, match="feature names"):
        net.predict(renamed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.predict(frame)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(binary, fmt):
    X, y = binary
    Xs = sp.random(120, 40, density=0.1, format=fmt, random_state=0, dtype=np.float64)
    dense = PrunedNetClassifier(**FAST).fit(Xs.toarray(), y)
    sparse = PrunedNetClassifier(**FAST).fit(Xs, y)
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(Xs.toarray()), atol=1e-5)


def test_sparse_fit_does_not_densify_the_whole_matrix():
    """20,000 x 50,000 CSR at 0.1% density: the dense matrix would be 4 GB."""
    script = textwrap.dedent(
        """
        import resource, numpy as np, scipy.sparse as sp, torch
        torch.set_num_threads(1)
        from skprune import PrunedNetClassifier
        rng = np.random.RandomState(0)
        n, d, per_row = 20000, 50000, 50  # 0.1% density
        indices = np.sort(rng.randint(0, d, size=(n, per_row)), axis=1).ravel()
        X = sp.csr_matrix((rng.rand(n * per_row).astype(np.float32), indices,
                           np.arange(0, n * per_row + 1, per_row)), shape=(n, d))
        y = np.asarray(X[:, :2000].sum(axis=1)).ravel() > 1.0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        net = PrunedNetClassifier(module__hidden_layer_sizes=(16,), max_epochs=1, batch_size=256,
                                  random_state=0).fit(X, y)
        assert net.predict(X[:100]).shape == (100,)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before // 1024, peak // 1024, X.nnz / (n * d))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    before_mb, peak_mb, density = out.stdout.split()
    before_mb, peak_mb = int(before_mb), int(peak_mb)
    assert abs(float(density) - 0.001) < 1e-4
    dense_mb = 20000 * 50000 * 4 / 2**20
    # torch itself takes a few hundred MB; what fit adds must be far below dense
    assert peak_mb - before_mb < dense_mb / 10, (before_mb, peak_mb, dense_mb)


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog"]),
        np.array([True, False]),
        np.array([-3, 7]),
    ],
)
def test_binary_labels_of_any_type(binary, labels):
    X, y = binary
    y_labels = labels[y]
    net = PrunedNetClassifier(**FAST).fit(X, y_labels)
    np.testing.assert_array_equal(net.classes_, np.sort(labels))
    pred = net.predict(X)
    assert set(pred) <= set(labels)
    assert pred.dtype == y_labels.dtype
    assert net.score(X, y_labels) > 0.8
    proba = net.predict_proba(X)
    # columns in classes_ order: column argmax maps to the predicted label
    np.testing.assert_array_equal(net.classes_[proba.argmax(axis=1)], pred)


def test_pandas_series_and_categorical_targets(binary):
    X, y = binary
    series = pd.Series(np.where(y == 1, "yes", "no"))
    net = PrunedNetClassifier(**FAST).fit(X, series)
    assert list(net.classes_) == ["no", "yes"]
    categorical = pd.Series(pd.Categorical(series, categories=["yes", "no"]))
    net2 = PrunedNetClassifier(**FAST).fit(X, categorical)
    assert set(net2.predict(X)) <= {"yes", "no"}
    np.testing.assert_array_equal(net2.predict(X), net.predict(X))


def test_multiclass_string_labels(clf_data):
    X, y = clf_data
    names = np.array(["setosa", "versicolor", "virginica"])
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, names[y])
    assert net.predict_proba(X).shape == (len(X), 3)
    assert net.score(X, names[y]) > 0.7


def test_multi_output_regression(reg_data):
    X, y = reg_data
    Y = np.column_stack([y, 2 * y, -y])
    reg = PrunedNetRegressor(**{**FAST, "max_epochs": 30}).fit(X, Y)
    assert reg.predict(X).shape == (len(X), 3)
    assert reg.n_outputs_ == 3
    assert reg.score(X, Y) > 0.5


def test_torch_tensor_inputs(binary):
    X, y = binary
    net = PrunedNetClassifier(**FAST).fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_array_equal(net.predict(torch.from_numpy(X)), net.predict(X))


@pytest.mark.parametrize("fitted", [False, True])
@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(binary, tmp_path, fitted, dump):
    X, y = binary
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.6), **FAST)
    if fitted:
        net.fit(X, y)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(net))
    else:
        joblib.dump(net, tmp_path / "net.joblib")
        loaded = joblib.load(tmp_path / "net.joblib")
    assert loaded.get_params()["pruner__sparsity"] == 0.6
    if fitted:
        np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
        np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    else:
        with pytest.raises(NotFittedError):
            loaded.predict(X)
        loaded.fit(X, y)


def test_clone_of_fitted_is_unfitted(binary):
    X, y = binary
    net = PrunedNetClassifier(**FAST).fit(X, y)
    fresh = clone(net)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    assert not hasattr(fresh, "classes_")


def _torch_threads(estimator, X, y):
    return torch.get_num_threads()


def test_parallel_search_uses_one_thread_per_worker_and_writes_no_files(binary, tmp_path, monkeypatch):
    X, y = binary
    monkeypatch.chdir(tmp_path)
    search = GridSearchCV(
        PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=2, random_state=0),
        {"pruner__sparsity": [0.3, 0.6]},
        cv=2,
        n_jobs=2,
        scoring={"acc": "accuracy", "threads": _torch_threads},
        refit="acc",
    ).fit(X, y)
    n_cpus = os.cpu_count() or 1
    assert set(search.cv_results_["mean_test_threads"]) == {max(1, n_cpus // 2)}
    assert list(tmp_path.iterdir()) == []
