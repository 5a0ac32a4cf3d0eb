"""Channel groups: residual adds (ResNet BasicBlock) and concatenations (DenseNet) compact exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from skprune import ChannelPruning, OneShot, PrunedNetClassifier, compact_module
from skprune.nn._groups import trace_channel_groups


class BasicBlock(nn.Module):
    """As torchvision's BasicBlock: conv-bn-relu-conv-bn, plus the (downsampled) input, relu."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetTiny(nn.Module):
    def __init__(self, n_features_in=64, n_outputs=10):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = BasicBlock(8, 8)  # identity shortcut
        self.layer2 = BasicBlock(8, 16, stride=2)  # downsample shortcut
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, n_outputs)

    def forward(self, X):
        x = self.relu(self.bn(self.stem(X.reshape(-1, 1, 8, 8))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class DenseTiny(nn.Module):
    """A DenseNet-style block: each layer reads the concatenation of all earlier outputs."""

    def __init__(self, n_features_in=64, n_outputs=10, growth=6):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.norm0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, growth, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(growth)
        self.conv2 = nn.Conv2d(8 + growth, growth, 3, padding=1)
        self.norm_out = nn.BatchNorm2d(8 + 2 * growth)
        self.fc = nn.Linear((8 + 2 * growth) * 4 * 4, n_outputs)

    def forward(self, X):
        x0 = torch.relu(self.norm0(self.stem(X.reshape(-1, 1, 8, 8))))
        x1 = torch.relu(self.norm1(self.conv1(x0)))
        x01 = torch.cat([x0, x1], 1)
        x2 = torch.relu(self.conv2(x01))
        out = torch.relu(self.norm_out(torch.cat([x0, x1, x2], 1)))
        return self.fc(torch.flatten(torch.nn.functional.max_pool2d(out, 2), 1))


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_groups_found_by_tracing():
    groups = {tuple(sorted(g.producers)): g for g in trace_channel_groups(ResNetTiny().eval())}
    assert groups[("layer1.conv2", "stem")].blocked is None
    assert groups[("layer2.conv2", "layer2.downsample.0")].blocked is None
    dense = {tuple(g.producers): g for g in trace_channel_groups(DenseTiny().eval())}
    stem = dense[("stem",)]
    assert ("fc", 0, 16) in stem.consumers and ("conv2", 0, 1) in stem.consumers
    assert ("conv2", 8, 1) in dense[("conv1",)].consumers and ("norm_out", 8) in dense[("conv1",)].norms


@pytest.mark.parametrize("network", [ResNetTiny, DenseTiny])
def test_channel_pruning_half_then_compact_is_exact(network, digits):
    X, y = digits
    net = PrunedNetClassifier(
        module=network, pruner=ChannelPruning(0.5, schedule=OneShot()), max_epochs=2, random_state=0
    ).fit(X[:600], y[:600])
    module = net.module_.eval()
    compact = compact_module(module).eval()
    with torch.no_grad():
        Xt = torch.as_tensor(X[:300])
        np.testing.assert_allclose(compact(Xt).numpy(), module(Xt).numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(net.compact().predict_proba(X), net.predict_proba(X), atol=1e-5, rtol=0)
    if network is ResNetTiny:
        # every group halved: 8 -> 4 channels (stem + block 1), 16 -> 8 (block 2), inner convs halved too
        expected = ResNetTiny.__new__(ResNetTiny)
        nn.Module.__init__(expected)
        expected.stem, expected.bn = nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4)
        expected.layer1, expected.layer2 = BasicBlock(4, 4), BasicBlock(4, 8, stride=2)
        expected.fc = nn.Linear(8, 10)
        assert compact.stem.out_channels == 4 and compact.layer2.conv2.out_channels == 8
        assert compact.layer2.downsample[0].out_channels == 8 and compact.fc.in_features == 8
    else:
        expected = DenseTiny.__new__(DenseTiny)
        nn.Module.__init__(expected)
        expected.stem, expected.norm0 = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        expected.conv1, expected.norm1 = nn.Conv2d(4, 3, 3), nn.BatchNorm2d(3)
        expected.conv2, expected.norm_out = nn.Conv2d(7, 3, 3), nn.BatchNorm2d(10)
        expected.fc = nn.Linear(10 * 16, 10)
        assert compact.norm_out.num_features == 10 and compact.fc.in_features == 160
    assert _n_params(compact) == _n_params(expected)
