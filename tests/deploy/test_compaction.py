"""net.compact(): the compacted copy predicts the same and goes on training like the original."""

import numpy as np
import torch
from skorch.callbacks import LRScheduler
from torch import nn

from skprune import (
    MLP,
    BlockPruning,
    CombinedPruning,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PrunedNetClassifier,
    compact_module,
)


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


# ------------------------------------------------------------------ residual blocks and dead layers
def _residual_data():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 6).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_compact_deletes_removed_blocks_renames_the_masks_of_later_ones_and_reports_the_layers():
    X, y = _residual_data()
    pruner = CombinedPruning(
        [
            ("blocks", BlockPruning(1, importance="random", schedule=OneShot(at=0.5))),
            ("weights", MagnitudePruning(0.5, layers="layers.blocks.*", schedule=OneShot(at=0.5))),
        ]
    )
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(8,), module__n_blocks=3, pruner=pruner, max_epochs=3, random_state=1
    ).fit(X, y)
    compacted = net.compact()
    assert compacted.module_.n_blocks == 2
    removed = {name.split(".branch")[0] for name in compacted.removed_layers_}
    assert len(removed) == 1 and all("outputs zero" in why for why in compacted.removed_layers_.values())
    np.testing.assert_allclose(compacted.predict_proba(X), net.predict_proba(X), atol=1e-6)
    # every mask left is the zeros of the weight it names (later blocks were renumbered)
    params = dict(compacted.module_.named_parameters())
    assert len(compacted.masks_) == 4
    for name, pruned in compacted.masks_.state_dict().items():
        assert torch.equal(pruned, params[name].detach().eq(0))
    compacted.partial_fit(X, y)  # the masks bind to the renamed parameters
    for name, pruned in compacted.masks_.state_dict().items():
        assert not params[name].detach()[pruned].any()


def test_zero_branch_in_the_networks_own_forward_is_kept_masked_with_the_same_predictions():
    class Inline(nn.Module):  # the add is in the network's forward: no submodule to drop
        def __init__(self):
            super().__init__()
            self.fc, self.a, self.b, self.out = (
                nn.Linear(4, 6),
                nn.Linear(6, 6),
                nn.Linear(6, 6),
                nn.Linear(6, 2),
            )

        def forward(self, x):
            h = torch.relu(self.fc(x))
            return self.out(h + self.b(torch.relu(self.a(h))))

    module = Inline()
    with torch.no_grad():
        for p in [*module.a.parameters(), *module.b.parameters()]:
            p.zero_()
    compacted, removed = compact_module(module, return_removed=True)
    assert removed == {}
    X = torch.randn(3, 4)
    torch.testing.assert_close(compacted(X), module(X))


def test_a_branch_whose_last_layer_lost_every_unit_is_a_layer_that_takes_no_part():
    mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(6,), n_blocks=2)
    with torch.no_grad():  # only the last layer of block 1's branch is zero: fc_a takes no part either
        mlp.layers.blocks[1].branch.fc_b.weight.zero_()
        mlp.layers.blocks[1].branch.fc_b.bias.zero_()
    compacted, removed = compact_module(mlp, return_removed=True)
    assert sorted(removed) == [f"layers.blocks.1.branch.{name}" for name in ("act", "fc_a", "fc_b")]
    assert compacted.n_blocks == 1
    X = torch.randn(5, 4)
    torch.testing.assert_close(compacted(X), mlp(X))


def test_compacted_residual_convnet_exports_to_onnx_with_the_same_predictions(tmp_path):
    from skprune import ConvNet, OnnxPredictor, to_onnx

    rng = np.random.RandomState(0)
    X = rng.randn(40, 1, 8, 8).astype(np.float32)
    y = (X.mean(axis=(1, 2, 3)) > 0).astype(int)
    net = PrunedNetClassifier(
        ConvNet,
        module__channels=(4, 4),
        module__n_blocks=2,
        module__hidden=0,
        pruner=BlockPruning(0.5, schedule=OneShot(at=0.5)),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact()
    left = compacted.module_.n_blocks  # one count per stage, or one for all (here: 2 stages)
    assert (2 * left if isinstance(left, int) else sum(left)) == 2
    to_onnx(compacted, X[:3], path=tmp_path / "m.onnx")
    served = OnnxPredictor.from_file(tmp_path / "m.onnx")
    np.testing.assert_allclose(served.predict_proba(X), net.predict_proba(X), atol=1e-5, rtol=0)
