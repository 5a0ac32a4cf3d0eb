"""Round trips of every kind of object skprune.save accepts, with identical predictions."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

import skprune
from skprune import (
    ConvNet,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PersistenceError,
    PrunedNetClassifier,
    PrunedNetCV,
    PrunedNetRegressor,
)

DATA = Path(__file__).parent / "data"
FAST = dict(max_epochs=2, batch_size=64, lr=0.01, random_state=0)


def _same(a, b, X, proba=True):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    if proba:
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def _round_trip(obj, tmp_path, name="m.skp"):
    skprune.save(obj, tmp_path / name)
    return skprune.load(tmp_path / name)


@pytest.mark.parametrize("stem", ["v0_1_classifier", "v0_1_classifier_compacted"])
def test_files_of_skprune_0_1_still_load_with_identical_predictions(stem):
    X = np.load(DATA / "v0_1_input.npy")
    expected = np.load(DATA / ("v0_1_proba_compacted.npy" if "compacted" in stem else "v0_1_proba.npy"))
    loaded = skprune.load(DATA / f"{stem}.skp")
    # the stored probabilities are the float32 softmax of skprune 0.1; predict_proba now
    # rescales each row in float64 to sum to 1, the same arithmetic on the same float32 values
    expected = expected.astype(np.float64)
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert loaded.predict(X).tolist() == json.loads((DATA / "v0_1_labels.json").read_text())
    assert list(loaded.classes_) == ["ant", "bee", "cat"]


def test_a_refused_file_of_skprune_0_1_says_how_to_save_it_again(tmp_path):
    import struct

    blob = (DATA / "v0_1_classifier.skp").read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    config = json.loads(header["__metadata__"]["config"])
    # files of 0.1 could name any torch.nn module: a recurrent one is no longer built from a file
    config["estimator"]["params"]["module"] = {"__ref__": "torch.nn.modules.rnn.RNN"}
    header["__metadata__"]["config"] = json.dumps(config)
    text = json.dumps(header).encode()
    (tmp_path / "old.skp").write_bytes(struct.pack("<Q", len(text)) + text + blob[8 + n :])
    how = r"written by skprune 0\.1\.0.*pip install skprune==0\.1\.0.*save"
    with pytest.raises(PersistenceError, match=how):
        skprune.load(tmp_path / "old.skp")


def test_pipeline_with_column_transformer_round_trips(tmp_path):
    rng = np.random.RandomState(0)
    frame = pd.DataFrame(
        {
            "a": rng.randn(200),
            "b": rng.rand(200) * 10,
            "colour": rng.choice(["red", "green", "blue"], 200),
            "c": np.where(rng.rand(200) < 0.1, np.nan, rng.randn(200)),
        }
    )
    y = np.where(frame["a"] + (frame["colour"] == "red") > 0.5, "yes", "no")
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "c"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
            ("mm", MinMaxScaler(), ["b"]),
        ],
        remainder="drop",
    )
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5, schedule=OneShot()), **FAST)
    pipe = Pipeline([("pre", pre), ("net", net)]).fit(frame, y)
    loaded = _round_trip(pipe, tmp_path)
    _same(pipe, loaded, frame)
    assert isinstance(loaded.named_steps["pre"], ColumnTransformer)
    np.testing.assert_array_equal(loaded[:-1].transform(frame), pipe[:-1].transform(frame))


def test_grid_search_best_estimator_round_trips_and_the_search_is_refused(clf_data, tmp_path):
    X, y = clf_data
    search = GridSearchCV(
        make_pipeline(
            StandardScaler(), PrunedNetClassifier(pruner=MagnitudePruning(schedule=OneShot()), **FAST)
        ),
        {"prunednetclassifier__pruner__sparsity": [0.5, 0.8]},
        cv=2,
    ).fit(X, y)
    loaded = _round_trip(search.best_estimator_, tmp_path)
    _same(search.best_estimator_, loaded, X)
    with pytest.raises(PersistenceError, match="best_estimator_"):
        skprune.save(search, tmp_path / "s.skp")


def test_fitted_pruned_net_cv_round_trips(clf_data, tmp_path):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **FAST)
    search = PrunedNetCV(net, sparsities=(0.0, 0.5, 0.8), cv=2, dense_epochs=2, finetune_epochs=1).fit(X, y)
    loaded = _round_trip(search, tmp_path)
    _same(search, loaded, X)
    pd.testing.assert_frame_equal(loaded.cv_results_, search.cv_results_)
    np.testing.assert_array_equal(loaded.scores_path_, search.scores_path_)
    np.testing.assert_array_equal(loaded.fitted_sparsity_path_, search.fitted_sparsity_path_)
    assert loaded.best_sparsity_ == search.best_sparsity_ and loaded.best_params_ == search.best_params_
    assert loaded.score(X, y) == search.score(X, y)
    # unfitted: stays unfitted, never a silently different object
    unfitted = _round_trip(PrunedNetCV(net, sparsities=(0.5,)), tmp_path, "u.skp")
    assert not hasattr(unfitted, "cv_results_") and unfitted.sparsities == (0.5,)


def test_pruned_net_cv_with_skprune_selection_rule_and_scorer_round_trips(clf_data, tmp_path):
    from skprune import OneStandardErrorRule, one_standard_error_index, sparsity_scorer

    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **FAST)
    for options in (
        dict(selection=OneStandardErrorRule()),  # public skprune classes and functions were refused
        dict(selection=one_standard_error_index),
        dict(scoring=sparsity_scorer),
    ):
        search = PrunedNetCV(net, sparsities=(0.0, 0.5), cv=2, dense_epochs=1, finetune_epochs=1, **options)
        search.fit(X, y)
        loaded = _round_trip(search, tmp_path)
        _same(search, loaded, X)
        assert repr(loaded.selection) == repr(search.selection)
        assert loaded.best_sparsity_ == search.best_sparsity_


def test_fitted_arrays_with_nan_and_inf_round_trip(tmp_path):
    X = np.random.RandomState(0).randn(60, 4)
    X[:, 2] = np.nan  # SimpleImputer's statistics_ is NaN for an all-missing column
    y = (X[:, 0] > 0).astype(int)
    pipe = make_pipeline(SimpleImputer(), PrunedNetClassifier(**FAST)).fit(X, y)
    pipe[0].inf_check_ = np.array([[np.inf, -np.inf], [1.5, np.nan]], dtype=np.float32)
    loaded = _round_trip(pipe, tmp_path)  # raised ValueError: Out of range float values (JSON)
    np.testing.assert_array_equal(loaded[0].statistics_, pipe[0].statistics_)
    np.testing.assert_array_equal(loaded[0].inf_check_, pipe[0].inf_check_)
    assert loaded[0].inf_check_.dtype == np.float32
    _same(pipe, loaded, X)


def test_function_transformer_with_numpy_ufuncs_round_trips(tmp_path):
    from sklearn.preprocessing import FunctionTransformer

    X = np.abs(np.random.RandomState(0).randn(60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    log = FunctionTransformer(np.log1p, inverse_func=np.expm1, feature_names_out="one-to-one")
    pipe = make_pipeline(log, StandardScaler(), PrunedNetClassifier(**FAST)).fit(X, y)
    loaded = _round_trip(pipe, tmp_path)  # refused before: "register_serializable(ufunc)"
    assert loaded[0].func is np.log1p and loaded[0].inverse_func is np.expm1
    _same(pipe, loaded, X)


def test_regressor_and_conv_net_round_trip(reg_data, digits, tmp_path):
    X, y = reg_data
    reg = PrunedNetRegressor(pruner=NeuronPruning(0.5, schedule=OneShot()), **FAST).fit(X, y)
    for est in (reg, reg.compact()):
        loaded = _round_trip(est, tmp_path)
        np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    Xd, yd = digits
    images = Xd[:300].reshape(-1, 1, 8, 8)
    conv = PrunedNetClassifier(
        ConvNet,
        module__channels=(4, 8),
        module__hidden=16,
        pruner=skprune.ChannelPruning(0.5, schedule=OneShot()),
        **FAST,
    ).fit(images, yd[:300])
    for est in (conv, conv.compact()):
        _same(est, _round_trip(est, tmp_path), images)


def test_save_refuses_what_it_cannot_restore(tmp_path):
    from torch import nn

    with pytest.raises(PersistenceError, match="stores estimators"):
        skprune.save(nn.Linear(2, 2), tmp_path / "x.skp")
    from sklearn.preprocessing import FunctionTransformer

    pipe = make_pipeline(FunctionTransformer(lambda X: X + 1), PrunedNetClassifier())
    with pytest.raises(PersistenceError, match="register_serializable"):
        skprune.save(pipe, tmp_path / "x.skp")
    assert not (tmp_path / "x.skp").exists()


def test_ordinary_scikit_learn_estimators_in_a_pipeline_round_trip_through_skops(clf_data, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier
    from sklearn.linear_model import LogisticRegression

    X, y = clf_data
    plain = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    # was refused: "LogisticRegression is not in skprune's allow-list"
    _same(plain, _round_trip(plain, tmp_path, "lr.skp"), X)
    assert skprune.get_untrusted_types(tmp_path / "lr.skp") == []
    stack = make_pipeline(
        StandardScaler(),
        StackingClassifier(
            [
                ("lr", LogisticRegression()),
                ("hgb", HistGradientBoostingClassifier(max_iter=5, random_state=0)),
            ]
        ),
    ).fit(X, y)
    skprune.save(stack, tmp_path / "stack.skp")
    untrusted = skprune.get_untrusted_types(tmp_path / "stack.skp")
    # skops does not trust HistGradientBoosting's tree predictors by default (unchecked node indices)
    assert any("TreePredictor" in name for name in untrusted)
    with pytest.raises(PersistenceError, match=r"does not trust.*trusted="):
        skprune.load(tmp_path / "stack.skp")
    _same(stack, skprune.load(tmp_path / "stack.skp", trusted=untrusted), X)


def test_skops_entries_keep_no_runtime_parameters_and_a_net_inside_one_is_refused(clf_data, tmp_path):
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression

    from skprune.deploy import RuntimeParametersNotSaved

    X, y = clf_data
    stack = StackingClassifier([("a", LogisticRegression()), ("b", LogisticRegression(C=0.1))], n_jobs=2)
    pipe = make_pipeline(StandardScaler(), stack).fit(X, y)
    with pytest.warns(RuntimeParametersNotSaved, match="n_jobs"):
        skprune.save(pipe, tmp_path / "s.skp")
    loaded = skprune.load(tmp_path / "s.skp")
    assert loaded[-1].n_jobs is None
    _same(pipe, loaded, X)
    inside = StackingClassifier([("net", PrunedNetClassifier(**FAST))])
    with pytest.raises(PersistenceError, match="Put the net in a Pipeline"):
        skprune.save(inside, tmp_path / "n.skp")
