"""The torch.fx walkers (unit chains, channel groups, residual blocks, ONNX) read one set of op tables."""

import torch
from torch import fx, nn

from skprune.deploy import _onnx_fx
from skprune.nn import _graph, _groups, _units


def test_unit_chains_channel_groups_and_onnx_share_the_op_tables_of_the_graph_module():
    assert _units.ELEMENTWISE_MODULES is _graph.ELEMENTWISE_MODULES
    assert _units.POOL_FUNCTIONS is _graph.POOL_FUNCTIONS
    assert _groups.ELEMENTWISE_FUNCTIONS is _graph.ELEMENTWISE_FUNCTIONS
    assert _groups._ADD is _graph.ADD_FUNCTIONS
    assert _groups._ZERO_PRESERVING_MODULES is _graph.ZERO_PRESERVING_MODULES
    assert _onnx_fx._IDENTITY is _graph.IDENTITY_MODULES
    assert _onnx_fx._FUNCTIONS is _graph.ONNX_ACTIVATION_FUNCTIONS


def test_zero_preserving_ops_are_those_with_f_of_zero_equal_to_zero():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu, self.sigmoid, self.bn = nn.ReLU(), nn.Sigmoid(), nn.BatchNorm1d(3)

        def forward(self, x):
            return torch.tanh(self.sigmoid(self.relu(self.bn(x)))) + torch.sigmoid(x)

    traced = fx.symbolic_trace(Net())
    modules = dict(traced.named_modules())
    verdict = {node.name: _graph.is_zero_preserving(node, modules) for node in traced.graph.nodes}
    assert verdict == {
        "x": False,
        "bn": False,
        "relu": True,
        "sigmoid": False,
        "tanh": True,
        "sigmoid_1": False,
        "add": False,
        "output": False,
    }
