import pickle
import warnings

import numpy as np
import pytest
import torch

from skprune import (
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    OnnxPredictor,
    PrunedNetClassifier,
    compression_report,
    quantize_int8,
    to_sparse,
)
from skprune.deploy._sparse_linear import SparseLinear

FAST = dict(max_epochs=8, batch_size=32, lr=0.01, random_state=0)


@pytest.fixture(scope="module")
def sparse_net(clf_data):
    X, y = clf_data
    pruner = MagnitudePruning(0.9, schedule=OneShot())
    return PrunedNetClassifier(pruner=pruner, module__hidden_layer_sizes=(32,), **FAST).fit(X, y)


def test_to_sparse_stores_only_nonzeros_and_predicts_the_same(sparse_net, clf_data):
    X, _ = clf_data
    sparse = to_sparse(sparse_net)
    layers = [m for m in sparse.module_.modules() if isinstance(m, SparseLinear)]
    assert len(layers) == 2
    nnz = sum(layer.weight.values().numel() for layer in layers)
    assert nnz == sum(
        int(torch.count_nonzero(p)) for n, p in sparse_net.module_.named_parameters() if "weight" in n
    )
    np.testing.assert_allclose(sparse.predict_proba(X), sparse_net.predict_proba(X), atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = pickle.loads(pickle.dumps(sparse))
    np.testing.assert_array_equal(restored.predict(X), sparse_net.predict(X))
    # denser layers stay dense
    assert not any(
        isinstance(m, SparseLinear) for m in to_sparse(sparse_net, min_sparsity=0.99).module_.modules()
    )
    assert isinstance(sparse_net.module_.layers.fc0, torch.nn.Linear)  # original untouched


def test_int8_quantization_is_close_and_smaller(sparse_net, clf_data, tmp_path):
    pytest.importorskip("onnxruntime", reason="int8 runs in ONNX Runtime: pip install 'skprune[onnx]'")
    X, y = clf_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # a maintained path: no deprecated API
        q = quantize_int8(sparse_net)
    assert abs(q.score(X, y) - sparse_net.score(X, y)) <= 0.05
    pickle.loads(pickle.dumps(q)).predict(X)
    q.save(tmp_path / "q.onnx")  # the int8 model round-trips through its ONNX file
    again = OnnxPredictor.from_file(tmp_path / "q.onnx")
    np.testing.assert_array_equal(again.predict_proba(X), q.predict_proba(X))


def test_compression_report_lists_every_variant(clf_data):
    pytest.importorskip("onnxruntime", reason="int8 runs in ONNX Runtime: pip install 'skprune[onnx]'")
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()), module__hidden_layer_sizes=(64, 32),
        compact_during_fit=False, **FAST
    ).fit(X, y)
    report = compression_report(net, X, y).set_index("variant")
    assert list(report.index) == ["masked", "compacted", "sparse", "int8", "compacted+int8"]
    assert report.loc["compacted", "stored_values"] == net.n_nonzero_params_
    assert report.loc["compacted", "score_change"] == 0
    assert report.loc["compacted", "bytes"] < 0.5 * report.loc["masked", "bytes"]
    assert report.loc["compacted+int8", "bytes"] < report.loc["compacted", "bytes"]
    assert report.loc["masked", "size_ratio"] == 1
    assert (report["note"] == "").all()


def test_csr_copy_deep_copies_and_refuses_compaction_clearly(sparse_net, clf_data):
    import copy

    from skprune import CompactionError

    X, _ = clf_data
    sparse = to_sparse(sparse_net)
    # torch cannot deep-copy a CSR tensor: copy.deepcopy, to_sparse and compact() raised
    # NotImplementedError "Cannot access storage of SparseCsrTensorImpl"
    copied = copy.deepcopy(sparse)
    np.testing.assert_array_equal(copied.predict_proba(X), sparse.predict_proba(X))
    values = [net.module_.layers.fc0.weight.values() for net in (copied, sparse)]
    assert values[0].data_ptr() != values[1].data_ptr()
    np.testing.assert_array_equal(to_sparse(sparse).predict_proba(X), sparse.predict_proba(X))
    with pytest.raises(CompactionError, match="compact.*before to_sparse"):
        sparse.compact()
    compacted_then_sparse = to_sparse(sparse_net.compact())
    np.testing.assert_allclose(compacted_then_sparse.predict_proba(X), sparse.predict_proba(X), atol=1e-5)


def test_csr_copy_reports_the_same_sparsity_counts_and_layer_table_as_its_net(sparse_net):
    sparse = to_sparse(sparse_net)
    assert sparse.sparsity_ == pytest.approx(sparse_net.sparsity_) and sparse.sparsity_ > 0.8
    assert sparse.n_params_ == sparse_net.n_params_
    assert sparse.n_nonzero_params_ == sparse_net.n_nonzero_params_
    # every count column ("pruned" says whether a mask exists: the CSR copy has no masks)
    columns = ["layer", "shape", "params", "nonzero", "weight_params", "weight_nonzero", "sparsity"]
    dense_report, csr_report = sparse_net.pruning_report(), sparse.pruning_report()
    assert csr_report["type"].tolist() == ["SparseLinear", "SparseLinear"]
    assert csr_report[columns].equals(dense_report[columns])


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_continuing_to_train_a_csr_copy_is_refused_and_the_copy_still_predicts(sparse_net, clf_data, how):
    X, y = clf_data
    sparse = to_sparse(sparse_net)
    before = sparse.predict_proba(X)
    with pytest.raises(ValueError, match="prediction only.*Continue training the network it was made from"):
        if how == "partial_fit":
            sparse.partial_fit(X, y)
        else:
            sparse.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(sparse.predict_proba(X), before)
