"""ONNX export: ONNX Runtime predicts like skprune (1e-5) for dense, masked, compacted and CSR nets."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

pytest.importorskip("onnxruntime", reason="ONNX export is optional: pip install 'skprune[onnx]'")
pytest.importorskip("skl2onnx", reason="ONNX export is optional: pip install 'skprune[onnx]'")

import skprune  # noqa: E402
from skprune import (  # noqa: E402
    ChannelPruning,
    ConvNet,
    NeuronPruning,
    OneShot,
    OnnxPredictor,
    PrunedNetClassifier,
    PrunedNetRegressor,
    to_onnx,
)

FAST = dict(max_epochs=2, batch_size=64, lr=0.01, random_state=0)


def _parity(est, X, tmp_path):
    path = tmp_path / "m.onnx"
    model = to_onnx(est, X[:3], path=path)
    assert path.stat().st_size == len(model.SerializeToString())
    served = OnnxPredictor.from_file(path)
    if hasattr(est, "classes_"):
        np.testing.assert_allclose(served.predict_proba(X), est.predict_proba(X), atol=1e-5, rtol=0)
        np.testing.assert_array_equal(served.predict(X), est.predict(X))
        labels, proba = served.run(X)
        assert labels.shape == (len(X),) and proba.shape == (len(X), len(est.classes_))
    else:
        np.testing.assert_allclose(served.predict(X), est.predict(X), atol=1e-5, rtol=1e-5)
    return served


@pytest.fixture(scope="module")
def digits_mlp(digits):
    X, y = digits
    labels = np.array(list("abcdefghij"))[y]
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()), module__hidden_layer_sizes=(32, 16),
        compact_during_fit=False, **FAST  # masked, then compacted by hand
    ).fit(X, labels)
    return net, X


def test_mlp_dense_masked_compacted_and_csr(digits_mlp, digits, tmp_path):
    net, X = digits_mlp
    dense = PrunedNetClassifier(module__hidden_layer_sizes=(32, 16), **FAST).fit(*digits)
    for est in (dense, net, net.compact(), skprune.to_sparse(net)):
        served = _parity(est, X, tmp_path)
    assert served.kind == "classifier"
    compact_size = len(to_onnx(net.compact(), X[:3]).SerializeToString())
    assert compact_size < 0.7 * len(to_onnx(net, X[:3]).SerializeToString())


def test_conv_net_dense_masked_and_compacted(digits, tmp_path):
    X, y = digits
    images = X[:400].reshape(-1, 1, 8, 8)
    net = PrunedNetClassifier(
        ConvNet,
        module__channels=(6, 8),
        module__hidden=16,
        pruner=ChannelPruning(0.5, schedule=OneShot()),
        **FAST,
    ).fit(images, y[:400])
    for est in (net, net.compact()):
        _parity(est, images, tmp_path)
    flat = PrunedNetClassifier(ConvNet, module__input_shape=(1, 8, 8), module__channels=(4,), **FAST)
    _parity(flat.fit(X[:300], y[:300]), X[:300], tmp_path)


def test_regressor_and_pipeline(reg_data, clf_data, tmp_path):
    X, y = reg_data
    pruner = NeuronPruning(0.5, schedule=OneShot())
    # the default normalize_y=True: the graph maps standardized outputs back with y_scale_/y_mean_
    for normalize_y in (True, False):
        reg = PrunedNetRegressor(pruner=pruner, normalize_y=normalize_y, **FAST).fit(X, 10 * y + 100)
        _parity(reg, X, tmp_path)
        _parity(reg.compact(), X, tmp_path)
    Xc, yc = clf_data
    pipe = make_pipeline(StandardScaler(), PrunedNetClassifier(**FAST)).fit(Xc.astype(np.float64), yc)
    _parity(pipe, Xc.astype(np.float64), tmp_path)


class _Odd(nn.Module):
    """A forward the direct translation does not know (a mean over features)."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.fc = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.fc(X - X.mean(dim=1, keepdim=True))


def test_other_modules_go_through_torch_onnx_export(clf_data, tmp_path):
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    X, y = clf_data
    net = PrunedNetClassifier(module=_Odd, **FAST).fit(X, y)
    model = to_onnx(net, X[:3])
    assert {p.key: p.value for p in model.metadata_props}["skprune.exporter"] == "torch.onnx.export"
    _parity(net, X, tmp_path)


def test_nets_with_skprune_dropout_are_translated_directly(clf_data, digits, tmp_path):
    X, y = clf_data
    mlp = PrunedNetClassifier(module__dropout=0.3, **FAST).fit(X, y)
    Xd, yd = digits
    images = Xd[:200].reshape(-1, 1, 8, 8)
    conv = PrunedNetClassifier(ConvNet, module__channels=(4,), module__dropout=0.3, **FAST)
    conv.fit(images, yd[:200])
    for net, data in ((mlp, X), (conv, images)):
        model = to_onnx(net, data[:3])
        # skprune.nn.Dropout was traced into, and its F.dropout sent the export to torch.onnx.export
        assert {p.key: p.value for p in model.metadata_props}["skprune.exporter"] == "fx"
        _parity(net, data, tmp_path)


def test_onnx_input_must_be_fitted(clf_data):
    with pytest.raises(Exception, match="not initialized|fit"):
        to_onnx(PrunedNetClassifier(), clf_data[0][:2])
    with pytest.raises(TypeError, match=r"from_file\('model.onnx'\)"):  # was AttributeError
        OnnxPredictor("model.onnx")
    assert torch.get_num_threads() >= 1


def test_served_session_computes_only_the_output_it_reads(digits_mlp):
    import onnx

    from skprune.deploy._onnx_runtime import _keep_outputs

    net, X = digits_mlp
    served = OnnxPredictor(to_onnx(net, X[:3]))
    assert [o.name for o in served.session.get_outputs()] == ["probabilities"]
    cut = onnx.load_from_string(_keep_outputs(served.model_bytes, ["probabilities"]))
    ops = [node.op_type for node in cut.graph.node]
    assert "ArgMax" not in ops and "Gather" not in ops and ops[-1] == "Softmax"
    assert "classes" not in {t.name for t in cut.graph.initializer}
    # the saved model keeps both outputs, and run() still returns them
    saved_outputs = [o.name for o in onnx.load_from_string(served.model_bytes).graph.output]
    assert saved_outputs == ["label", "probabilities"]
    labels, proba = served.run(X[:5])
    np.testing.assert_array_equal(labels, net.predict(X[:5]))
    np.testing.assert_array_equal(proba, served.predict_proba(X[:5]))
    # the compiled-session fast path and the public InferenceSession.run agree exactly
    public = served.session.run(["probabilities"], {"X": X[:7].astype(np.float32)})[0]
    np.testing.assert_array_equal(served.predict_proba(X[:7]), public)


def test_worker_threads_stop_spinning_between_calls_when_asked(digits_mlp):
    net, X = digits_mlp
    model = to_onnx(net, X[:3])
    entry = "session.intra_op.allow_spinning"
    quiet = OnnxPredictor(model, n_threads=2, allow_spinning=False)
    assert quiet.session.get_session_options().get_session_config_entry(entry) == "0"
    default = OnnxPredictor(model, n_threads=2).session.get_session_options()
    with pytest.raises(Exception, match="allow_spinning"):  # not set: ONNX Runtime's default (spin)
        default.get_session_config_entry(entry)
    np.testing.assert_array_equal(quiet.predict(X), net.predict(X))


def _mixed_frame(n=120, seed=0):
    import pandas as pd

    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(
        {
            "num": rng.randn(n),
            "num2": rng.randn(n),
            "cat": np.array(["u", "v", "w"])[rng.randint(0, 3, n)],
        }
    )
    labels = np.where(frame["num"] + (frame["cat"] == "u") > 0.5, "yes", "no")
    return frame, labels


def test_pipeline_with_column_transformer_is_served_from_its_columns(tmp_path):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    frame, labels = _mixed_frame()
    pipe = make_pipeline(
        ColumnTransformer([("n", StandardScaler(), ["num", "num2"]), ("c", OneHotEncoder(), ["cat"])]),
        PrunedNetClassifier(**FAST),
    ).fit(frame, labels)
    model = to_onnx(pipe, frame.iloc[:3])
    # the graph's inputs are the DataFrame's columns, named as skl2onnx names them
    assert [i.name for i in model.graph.input] == ["num", "num2", "cat"]
    served = _parity(pipe, frame, tmp_path)
    assert served.score(frame, labels) == pipe.score(frame, labels)
    int8 = skprune.quantize_int8(pipe, frame.iloc[:3])
    assert np.mean(int8.predict(frame) == pipe.predict(frame)) > 0.9
    with pytest.raises(ValueError, match="pass X_sample"):  # was skl2onnx's "Unable to find column name"
        skprune.quantize_int8(pipe)
    with pytest.raises(ValueError, match="DataFrame with the columns"):
        served.predict(frame.to_numpy())
    with pytest.raises(ValueError, match="cat"):
        served.predict(frame.drop(columns="cat"))


def test_onnx_predictor_refuses_a_dataframe_with_other_columns_like_the_net(tmp_path):
    import pandas as pd

    rng = np.random.RandomState(0)
    frame = pd.DataFrame(rng.randn(80, 4), columns=["a", "b", "c", "d"])
    net = PrunedNetClassifier(**FAST).fit(frame, (frame["a"] > frame["d"]).to_numpy())
    served = _parity(net, frame, tmp_path)
    assert list(served.feature_names_in_) == ["a", "b", "c", "d"]
    swapped = frame[["d", "b", "c", "a"]]
    with pytest.raises(ValueError, match="feature names"):
        net.predict(swapped)
    with pytest.raises(ValueError, match="feature names"):  # silently swapped features before
        served.predict(swapped)
    np.testing.assert_array_equal(served.predict(frame.to_numpy()), net.predict(frame))


def test_quantize_int8_accepts_a_pipeline(clf_data, reg_data):
    X, y = clf_data
    pipe = make_pipeline(StandardScaler(), PrunedNetClassifier(**FAST)).fit(X.astype(np.float64), y)
    served = skprune.quantize_int8(pipe, X[:3].astype(np.float64))
    assert np.mean(served.predict(X.astype(np.float64)) == pipe.predict(X.astype(np.float64))) > 0.9
    Xr, yr = reg_data
    reg = make_pipeline(StandardScaler(), PrunedNetRegressor(**FAST)).fit(Xr, yr)
    served = skprune.quantize_int8(reg)  # a sample shaped like the training input
    assert np.corrcoef(served.predict(Xr), reg.predict(Xr))[0, 1] > 0.95


class _WeightedSum(nn.Module):
    """Two branches added with ``torch.add(..., alpha=3)``, then a constant: not a plain residual add."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.a = nn.Linear(n_features_in, n_outputs)
        self.b = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return torch.add(self.a(X), self.b(X), alpha=3.0) + 1.0


@pytest.mark.parametrize(
    "module",
    [
        nn.Sequential(nn.Linear(10, 8), nn.Softplus(beta=3.0), nn.Linear(8, 3)),
        nn.Sequential(nn.Linear(10, 8), nn.Softplus(threshold=0.5), nn.Linear(8, 3)),
        _WeightedSum,
    ],
    ids=["softplus_beta", "softplus_threshold", "add_alpha_and_constant"],
)
def test_operations_the_direct_translation_cannot_express_are_exported_exactly(module, clf_data, tmp_path):
    pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs onnxscript")
    X, y = clf_data
    # inputs large enough that Softplus' beta and threshold matter; the translation ignored them
    # (and alpha), giving probabilities off by 0.1 or more; a Python constant raised KeyError
    net = PrunedNetClassifier(module=module, **FAST).fit(3 * X, y)
    model = to_onnx(net, 3 * X[:3])
    assert {p.key: p.value for p in model.metadata_props}["skprune.exporter"] == "torch.onnx.export"
    _parity(net, 3 * X, tmp_path)


def test_fitted_searches_export_their_best_estimator(clf_data, tmp_path):
    from sklearn.model_selection import GridSearchCV

    from skprune import MagnitudePruning, PrunedNetCV

    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **FAST)
    path_search = PrunedNetCV(net, sparsities=(0.0, 0.5), cv=2).fit(X, y)
    grid = GridSearchCV(make_pipeline(StandardScaler(), net), {"prunednetclassifier__alpha": [1e-4]}, cv=2)
    in_pipeline = make_pipeline(StandardScaler(), PrunedNetCV(net, sparsities=(0.5,), cv=2))
    for search in (path_search, grid.fit(X, y), in_pipeline.fit(X, y)):
        _parity(search, X, tmp_path)  # AttributeError: no attribute 'check_is_fitted'
    with pytest.raises(TypeError, match="PrunedNet.*best_estimator_"):
        skprune.to_sparse(path_search)


def test_a_regressors_predictor_has_no_predict_proba_and_scores_with_sample_weight(reg_data, digits_mlp):
    from sklearn.metrics import accuracy_score, r2_score

    X, y = reg_data
    reg = PrunedNetRegressor(**FAST).fit(X, y)
    served = OnnxPredictor(to_onnx(reg, X[:3]))
    assert not hasattr(served, "predict_proba")
    weights = np.linspace(0.0, 2.0, len(y))
    assert served.score(X, y, sample_weight=weights) == pytest.approx(
        r2_score(y, served.predict(X), sample_weight=weights)
    )
    assert served.score(X, y, sample_weight=weights) != pytest.approx(served.score(X, y))
    net, Xd = digits_mlp
    classifier = OnnxPredictor(to_onnx(net, Xd[:3]))
    assert hasattr(classifier, "predict_proba")
    labels = net.predict(Xd)
    weights = np.arange(len(Xd)) % 3
    assert classifier.score(Xd, labels, sample_weight=weights) == accuracy_score(
        labels, classifier.predict(Xd), sample_weight=weights
    )
