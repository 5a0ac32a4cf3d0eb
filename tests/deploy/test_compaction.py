"""net.compact(): the compacted copy predicts the same and goes on training like the original."""

import numpy as np
import torch
from skorch.callbacks import LRScheduler

from skprune import NeuronPruning, OneShot, PrunedNetClassifier


def test_compacted_net_continues_its_learning_rate_schedule():
    X, y = np.random.RandomState(0).randn(80, 5).astype(np.float32), np.arange(80) % 2
    schedule = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()),
        module__hidden_layer_sizes=(16,),
        callbacks=[("lr", schedule)],
        max_epochs=3,
        lr=0.1,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact()
    assert compacted.module_.layers.fc0.out_features == 8
    np.testing.assert_allclose(compacted.predict_proba(X), net.predict_proba(X), atol=1e-5)
    assert compacted.optimizer_.param_groups[0]["lr"] == 0.05
    compacted.partial_fit(X, y)  # raised KeyError 'initial_lr' (a fresh optimizer under a resumed schedule)
    net.partial_fit(X, y)
    assert compacted.optimizer_.param_groups[0]["lr"] == net.optimizer_.param_groups[0]["lr"] == 0.0125


def test_compiled_net_compacts_and_exports_like_an_uncompiled_one(tmp_path):
    import pytest

    import skprune

    X, y = np.random.RandomState(0).randn(80, 5).astype(np.float32), np.arange(80) % 2
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()),
        module__hidden_layer_sizes=(16,),
        compile=True,  # module_ is torch.compile's OptimizedModule wrapper
        compile__backend="eager",
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    # an unstructured mask on a kept unit's input to the output layer must survive compaction
    kept = (net.module_.layers.fc0.weight != 0).any(dim=1).nonzero().flatten()
    output = net.module_.layers.output.weight
    with torch.no_grad():
        output[:, kept[1]] = 0.0
    mask = torch.zeros_like(output, dtype=torch.bool)
    mask[:, kept[1]] = True
    net.masks_.pruned["_orig_mod.layers.output.weight"] = mask
    compacted = net.compact()  # raised CompactionError: OptimizedModule has no forward to trace
    assert compacted.module_._orig_mod.layers.fc0.out_features == len(kept) == 8
    np.testing.assert_allclose(compacted.predict_proba(X), net.predict_proba(X), atol=1e-5)
    sliced = compacted.masks_.pruned["_orig_mod.layers.output.weight"]
    assert sliced.shape == (2, 8) and sliced[:, 1].all() and not sliced[:, [0, *range(2, 8)]].any()
    compacted.partial_fit(X, y)
    loaded = skprune.load(skprune.save(compacted, tmp_path / "c.skp") or tmp_path / "c.skp")
    np.testing.assert_array_equal(loaded.predict_proba(X), compacted.predict_proba(X))
    pytest.importorskip("onnxruntime")
    served = skprune.OnnxPredictor(skprune.to_onnx(net, X[:3]))  # raised TorchExportError
    np.testing.assert_allclose(served.predict_proba(X), net.predict_proba(X), atol=1e-5)
