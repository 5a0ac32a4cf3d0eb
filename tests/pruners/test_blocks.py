"""BlockPruning: depth pruning of residual blocks, on skprune's networks and torchvision-style ResNets."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from torch import nn

from skprune import (
    MLP,
    BlockPruning,
    ChannelPruning,
    CombinedPruning,
    ConvNet,
    OneShot,
    PrunedNetClassifier,
    PrunedNetCV,
    PruningContext,
    compact_module,
)
from skprune.nn import trace_residual_blocks
from skprune.pruners._blocks import IMPORTANCES
from skprune.pruners._masks import MaskStore


# ---------------------------------------------------------------- torchvision-style ResNet (as written there)
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=3, width=8):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(1, width, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int64) + (X[:, 0, 4:].mean(axis=(1, 2)) > 0)
    return X, y


def _iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def _randomize_batchnorm(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


# ------------------------------------------------------------------------- detection
@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_trace_finds_every_torchvision_block_and_which_have_a_projection_shortcut(block):
    net = ResNet(block, [2, 2])
    found = trace_residual_blocks(net)
    expected = ["layer1.0", "layer1.1", "layer2.0", "layer2.1"]
    assert [b.name for b in found] == expected
    projection = {b.name: b.projection for b in found}
    # Bottleneck's first block widens the channels (expansion 4): it has a projection too
    assert projection == {
        "layer1.0": block is Bottleneck,
        "layer1.1": False,
        "layer2.0": True,
        "layer2.1": False,
    }
    assert found[2].shortcut == ["layer2.0.downsample.0", "layer2.0.downsample.1"]
    assert all(b.owner == b.name for b in found)
    n_convs = 2 if block is BasicBlock else 3
    assert all(len(b.weights) == n_convs for b in found)


def test_trace_skips_adds_that_are_not_removable_blocks():
    class Twins(nn.Module):  # two branches of equal depth: no shortcut to keep
        def __init__(self):
            super().__init__()
            self.a, self.b, self.out = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.a(x) + self.b(x))

    class SigmoidEnd(nn.Module):  # f(x) = sigmoid(fc(x)) is 0.5, not 0, when fc is zero
        def __init__(self):
            super().__init__()
            self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.out(x + torch.sigmoid(self.fc(x)))

    for module, reason in ((Twins(), "as many layers"), (SigmoidEnd(), "not zero")):
        blocks, skipped = trace_residual_blocks(module, return_skipped=True)
        assert blocks == []
        assert reason in next(iter(skipped.values()))


def test_mlp_and_convnet_residual_blocks_are_found():
    mlp = MLP(n_features_in=4, n_outputs=3, hidden_layer_sizes=(8,), n_blocks=3)
    assert [b.name for b in trace_residual_blocks(mlp)] == [f"layers.blocks.{i}" for i in range(3)]
    conv = ConvNet(n_features_in=64, n_outputs=3, input_shape=(1, 8, 8), channels=(4, 8), n_blocks=(1, 2))
    assert [b.name for b in trace_residual_blocks(conv)] == [
        "layers.res0.0",
        "layers.res1.0",
        "layers.res1.1",
    ]


# ---------------------------------------------------------------------------- pruning
def test_removed_blocks_have_every_branch_parameter_at_zero_and_others_untouched():
    X, y = _iris()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,),
        module__n_blocks=4,
        pruner=BlockPruning(n_blocks_to_remove=2, schedule=OneShot(at=0.5)),
        max_epochs=4,
        random_state=0,
        compact_during_fit=False,  # the masked blocks are inspected
    ).fit(X, y)
    zero = {
        b.name: all(not net.module_.get_parameter(p).any() for p in b.parameters)
        for b in trace_residual_blocks(net.module_)
    }
    assert sum(zero.values()) == 2
    alive = [
        p for n, p in net.module_.named_parameters() if not any(n.startswith(b) for b in zero if zero[b])
    ]
    assert all(p.detach().ne(0).all() for p in alive)


@pytest.mark.parametrize(
    ("n_blocks_to_remove", "expected"), [(0, 0), (1, 1), (3, 3), (0.5, 2), (0.25, 1), (1.0, 4)]
)
def test_n_blocks_to_remove_is_a_count_or_a_share_of_the_blocks(n_blocks_to_remove, expected):
    X, y = _iris()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(8,),
        module__n_blocks=4,
        pruner=BlockPruning(n_blocks_to_remove, importance="random", schedule=OneShot(at=0.5)),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    assert net.compact().module_.n_blocks == 4 - expected


def test_gradual_schedule_removes_blocks_a_few_at_a_time_and_keeps_them_removed():
    module = MLP(n_features_in=4, n_outputs=3, hidden_layer_sizes=(8,), n_blocks=4)
    pruner = BlockPruning(4, importance="random")
    masks = MaskStore()
    counts = []
    for step, target in enumerate((0.25, 0.5, 1.0)):
        context = PruningContext(
            epoch=step, n_epochs=3, step=step, target=target, generator=torch.Generator()
        )
        masks.update(pruner.compute_masks(module, masks, context))
        masks.apply(module)
        counts.append(
            sum(all(not module.get_parameter(p).any() for p in b.parameters) for b in pruner.blocks(module))
        )
    assert counts == [1, 2, 4]


def test_taylor_importance_removes_the_block_the_loss_depends_on_least():
    module = MLP(n_features_in=4, n_outputs=3, hidden_layer_sizes=(8,), n_blocks=3)
    pruner = BlockPruning(1, importance="taylor")
    blocks = pruner.blocks(module)
    # two batches; w * dL/dw sums to 5, 0.1 and 3 (in absolute value) for blocks 0, 1, 2
    for per_block in ((5.0, -0.1, 3.0), (-5.0, 0.1, -3.0)):
        for block, total in zip(blocks, per_block):
            for name in block.weights:
                weight = module.get_parameter(name).detach()
                pruner.observe(
                    name, weight, torch.full_like(weight, total / len(block.weights) / float(weight.sum()))
                )
    context = PruningContext(epoch=1, n_epochs=2, step=0, target=1.0, generator=torch.Generator())
    keep = pruner.compute_masks(module, MaskStore(), context)
    assert set(keep) == set(blocks[1].parameters)
    assert not hasattr(pruner, "batches_")  # statistics start afresh after a step


def test_random_importance_is_reproducible_with_random_state():
    X, y = _iris()

    def removed(seed):
        net = PrunedNetClassifier(
            module__hidden_layer_sizes=(8,),
            module__n_blocks=6,
            pruner=BlockPruning(3, importance="random", schedule=OneShot(at=0.5)),
            max_epochs=2,
            random_state=seed,
        ).fit(X, y)
        return sorted(net.compact().removed_layers_)

    assert removed(0) == removed(0)


def test_blockpruning_refuses_a_network_without_residual_blocks_and_too_many_blocks():
    X, y = _iris()
    net = PrunedNetClassifier(pruner=BlockPruning(1), max_epochs=1)
    with pytest.raises(ValueError, match="found no residual block.*module__n_blocks"):
        net.fit(X, y)
    net = PrunedNetClassifier(module__n_blocks=2, pruner=BlockPruning(3), max_epochs=1)
    with pytest.raises(ValueError, match="more blocks than the network has: 2"):
        net.fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {"n_blocks_to_remove": -1},
        {"n_blocks_to_remove": 1.5},
        {"n_blocks_to_remove": True},
        {"importance": "norm"},
        {"projection_blocks": "yes"},
    ],
)
def test_invalid_parameters_are_refused_at_fit_naming_the_parameter(params):
    X, y = _iris()
    net = PrunedNetClassifier(module__n_blocks=2, pruner=BlockPruning(**params), max_epochs=1)
    with pytest.raises(ValueError, match=next(iter(params))):
        net.fit(X, y)


def test_projection_blocks_false_keeps_the_downsampling_blocks():
    pruner = BlockPruning(1.0, projection_blocks=False)
    assert [b.name for b in pruner.blocks(ResNet(BasicBlock, [2, 2]))] == ["layer1.0", "layer1.1", "layer2.1"]
    assert sorted(IMPORTANCES) == ["random", "taylor"]


@pytest.mark.parametrize("block", [BasicBlock, Bottleneck])
def test_removed_torchvision_block_is_identity_or_its_projection_and_compacts_away(block):
    torch.manual_seed(0)
    module = ResNet(block, [2, 2]).eval()
    _randomize_batchnorm(module)
    pruner = BlockPruning(1.0, importance="random")
    context = PruningContext(
        epoch=0, n_epochs=1, step=0, target=0.5, generator=torch.Generator().manual_seed(0)
    )
    masks = MaskStore()
    masks.update(pruner.compute_masks(module, masks, context))
    masks.apply(module)
    x = torch.randn(5, 1, 8, 8)
    removed = [b for b in pruner.blocks(module) if not module.get_parameter(b.parameters[0]).any()]
    assert len(removed) == 2
    seen = {}
    hooks = [
        module.get_submodule(b.name).register_forward_hook(
            lambda m, i, o, name=b.name: seen.__setitem__(name, (i[0].clone(), o.clone()))
        )
        for b in removed
    ]
    expected = module(x)
    for hook in hooks:
        hook.remove()
    for b in removed:
        given, out = seen[b.name]
        if b.projection:
            shortcut = module.get_submodule(f"{b.name}.downsample")
            torch.testing.assert_close(out, torch.relu(shortcut(given)))
        else:
            torch.testing.assert_close(out, given)  # the input is a ReLU output: relu(x + 0) == x
    compacted, deleted = compact_module(module, return_removed=True)
    torch.testing.assert_close(compacted(x), expected, rtol=1e-5, atol=1e-6)
    n_params = sum(p.numel() for p in compacted.parameters())
    assert n_params < sum(p.numel() for p in module.parameters())
    for b in removed:
        assert all(name in deleted for name in b.branch)
        assert all(not n.startswith(f"{b.name}.conv") for n, _ in compacted.named_parameters())


def test_fitted_net_with_blockpruning_clones_and_pickles():
    X, y = _iris()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(8,),
        module__n_blocks=2,
        pruner=BlockPruning(1),
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    assert clone(net).pruner.get_params() == BlockPruning(1).get_params()
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(again.predict_proba(X), net.predict_proba(X))


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_combined_block_and_channel_pruning_removes_depth_and_width_in_one_fit(scope):
    X, y = _images()
    pruner = CombinedPruning(
        [
            ("blocks", BlockPruning(1, schedule=OneShot(at=0.5))),
            ("channels", ChannelPruning(0.5, scope=scope, schedule=OneShot(at=0.5))),
        ]
    )
    net = PrunedNetClassifier(
        ConvNet,
        module__channels=(8, 8),
        module__n_blocks=1,
        module__hidden=0,
        pruner=pruner,
        max_epochs=2,
        random_state=0,
    ).fit(X, y)
    compacted = net.compact()
    assert sum(compacted.module_.n_blocks) == 1
    assert max(compacted.module_.channels) <= 4
    np.testing.assert_allclose(compacted.predict_proba(X), net.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_grid_search_chooses_blocks_removed_and_channel_sparsity_together():
    X, y = _images(64)
    pruner = CombinedPruning(
        [
            ("blocks", BlockPruning(0, schedule=OneShot(at=0.5))),
            ("channels", ChannelPruning(0.0, schedule=OneShot(at=0.5))),
        ]
    )
    net = PrunedNetClassifier(
        ConvNet,
        module__channels=(4, 8),
        module__n_blocks=1,
        module__hidden=0,
        pruner=pruner,
        max_epochs=2,
        random_state=0,
    )
    grid = {"pruner__blocks__n_blocks_to_remove": [0, 1], "pruner__channels__sparsity": [0.0, 0.5]}
    search = GridSearchCV(net, grid, cv=2, error_score="raise").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    left = search.best_estimator_.compact().module_.n_blocks  # per stage, or one count for both
    left = 2 * left if isinstance(left, int) else sum(left)
    assert left == 2 - search.best_params_["pruner__blocks__n_blocks_to_remove"]


def test_sparsity_path_of_prunednetcv_varies_the_share_of_blocks_removed():
    X, y = _iris()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(8,),
        module__n_blocks=4,
        pruner=BlockPruning(),
        max_epochs=2,
        random_state=0,
    )
    cv = PrunedNetCV(net, sparsities=(0.0, 0.5, 0.75), cv=2, finetune_epochs=1).fit(X, y)
    assert "param_pruner__n_blocks_to_remove" in cv.cv_results_
    assert cv.best_estimator_.compact().module_.n_blocks == 4 - round(4 * cv.sparsity_)
