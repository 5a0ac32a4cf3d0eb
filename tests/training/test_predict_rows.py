"""Plain rows (a float ndarray of the fitted width) skip the full validation but predict the same."""

import copy
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression

from skprune import PrunedNetClassifier, PrunedNetRegressor
from skprune._training import _predict

FAST = dict(module__hidden_layer_sizes=(16,), max_epochs=2, random_state=0)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(120, 6, n_informative=4, n_classes=3, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture
def net(data):
    return PrunedNetClassifier(**FAST).fit(*data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_row_gives_the_outputs_of_the_batch_and_of_the_full_validation(net, data, dtype):
    X = data[0].astype(dtype)
    batch = net.predict_proba(X)
    for i in (0, 7, len(X) - 1):
        row = np.ascontiguousarray(X[i : i + 1])
        # the same forward as the validated path; against the batch, up to the matrix product's rounding
        np.testing.assert_array_equal(net.predict_proba(row), net.predict_proba(row.tolist()))
        np.testing.assert_allclose(net.predict_proba(row), batch[i : i + 1], rtol=1e-6)
        assert net.predict(row)[0] == net.predict(X)[i]
    assert net.predict_proba(X[:1]).dtype == np.float64


def test_the_regressor_predicts_one_row_as_in_the_batch():
    X, y = make_regression(80, 5, random_state=0)
    net = PrunedNetRegressor(**FAST).fit(X, y)
    batch = net.predict(X)
    for i in (0, 41):
        row = np.ascontiguousarray(X[i : i + 1])
        np.testing.assert_array_equal(net.predict(row), net.predict(row.tolist()))
        np.testing.assert_allclose(net.predict(row), batch[i : i + 1], rtol=1e-6)
    assert net.predict(X[:1]).shape == (1,)


def test_plain_rows_take_the_direct_path_and_a_dataframe_does_not(net, data):
    X = data[0]
    net.predict_proba(pd.DataFrame(X[:1]))
    assert net not in _predict._PLANS
    net.predict_proba(X[:1])
    assert _predict._PLANS[net].module is net.module_


def _rows(kind, X):
    """``kind`` of input holding ``X[:3]`` (for the strided view, rows 0, 2 and 4)."""
    return {
        "fortran": lambda: np.asfortranarray(X[:3]),
        "strided": lambda: X[:6:2],
        "big-endian": lambda: X[:3].astype(">f4"),
        "float16": lambda: X[:3].astype(np.float16),
        "int64": lambda: np.round(X[:3] * 10).astype(np.int64),
        "sparse": lambda: sp.csr_matrix(X[:3]),
        "list": lambda: X[:3].tolist(),
        "dataframe": lambda: pd.DataFrame(X[:3]),
    }[kind]()


@pytest.mark.parametrize(
    "kind", ["fortran", "strided", "big-endian", "float16", "int64", "sparse", "list", "dataframe"]
)
def test_other_layouts_and_types_predict_what_the_same_values_as_plain_rows_do(net, data, kind):
    given = _rows(kind, data[0])
    values = given.toarray() if sp.issparse(given) else np.asarray(given)
    plain = np.ascontiguousarray(values, dtype=np.float32)
    np.testing.assert_allclose(net.predict_proba(given), net.predict_proba(plain), rtol=1e-6)


def test_a_read_only_row_is_predicted_without_a_warning(net, data):
    row = data[0][:1].copy()
    row.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = net.predict_proba(row)
    np.testing.assert_array_equal(proba, net.predict_proba(data[0][:1].copy()))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_non_finite_row_gets_the_full_validations_error(net, data, value, dtype):
    row = data[0][:1].astype(dtype)
    row[0, 2] = value
    with pytest.raises(ValueError, match="NaN|infinity") as from_rows:
        net.predict_proba(row)
    with pytest.raises(ValueError) as from_list:
        net.predict_proba(row.tolist())
    assert str(from_rows.value) == str(from_list.value)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 5), "X has 5 features, but PrunedNetClassifier is expecting 6"),
        ((1, 7), "X has 7 features, but PrunedNetClassifier is expecting 6"),
        ((6,), "got a 1-D array. Reshape your data"),
        ((1, 2, 3), "3"),
        ((0, 6), "0 sample"),
    ],
)
def test_a_row_of_the_wrong_shape_gets_the_full_validations_error(net, shape, message):
    with pytest.raises(ValueError, match=message.replace(".", "\\.")):
        net.predict_proba(np.zeros(shape, dtype=np.float32))


def test_a_new_fit_set_params_and_a_new_module_are_seen_by_the_next_row(net, data):
    X, y = data
    before = net.predict_proba(X[:1])
    net.set_params(max_epochs=1, random_state=1).fit(X, y)  # a new module_
    refit = net.predict_proba(X[:1])
    assert not np.array_equal(refit, before)
    np.testing.assert_allclose(refit, net.predict_proba(X)[:1], rtol=1e-6)
    net.set_params(predict_nonlinearity=None)  # no softmax, at once (as in skorch)
    without_softmax = net.predict_proba(X[:1])
    assert not np.allclose(without_softmax, refit)
    np.testing.assert_array_equal(without_softmax, net.predict_proba(X[:1].tolist()))


def test_a_net_fitted_on_named_columns_still_checks_the_names(data):
    X, y = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    net = PrunedNetClassifier(**FAST).fit(frame, y)
    with pytest.warns(UserWarning, match="feature names"):
        net.predict_proba(X[:1])  # scikit-learn's warning: fitted with names, given none
    assert net not in _predict._PLANS


def test_a_module_left_in_training_mode_predicts_in_eval_mode(data):
    X, y = data
    net = PrunedNetClassifier(module__dropout=0.5, **FAST).fit(X, y)
    expected = net.predict_proba(X[:1])
    net.module_.train()
    np.testing.assert_array_equal(net.predict_proba(X[:1]), expected)
    assert not net.module_.training


def test_copies_of_a_net_that_predicted_rows_predict_the_same_and_carry_no_plan(net, data):
    X = data[0]
    expected = net.predict_proba(X[:1])
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert other not in _predict._PLANS
        np.testing.assert_array_equal(other.predict_proba(X[:1]), expected)
        assert _predict._PLANS[other].module is other.module_ is not net.module_


class _ZeroInputInfer(PrunedNetClassifier):
    """A skorch-style subclass whose ``infer`` changes the input (every row predicts the same)."""

    def infer(self, x, **fit_params):
        return super().infer(x * 0, **fit_params)


class _ScaledEvaluationStep(PrunedNetClassifier):
    """A subclass whose ``evaluation_step`` changes the module's outputs."""

    def evaluation_step(self, batch, training=False):
        return super().evaluation_step(batch, training) * 0


@pytest.mark.parametrize("kind", ["rows", "list"])
def test_a_subclass_overriding_infer_or_evaluation_step_is_used_at_predict(data, kind):
    X, y = data
    rows = X[:3] if kind == "rows" else X[:3].tolist()
    proba = _ZeroInputInfer(**FAST).fit(X, y).predict_proba(rows)
    np.testing.assert_allclose(proba, np.repeat(proba[:1], 3, axis=0))  # infer saw only zeros
    proba = _ScaledEvaluationStep(**FAST).fit(X, y).predict_proba(rows)
    np.testing.assert_allclose(proba, 1 / 3)  # softmax of zero outputs
