"""The torch.fx op tables that every graph walker of skprune shares.

Three walkers read a traced network: the unit chains of structured pruning
and compaction (:mod:`skprune.nn._units`), the channel groups tied by
residual adds and concatenations (:mod:`skprune.nn._groups`), the residual
blocks of depth pruning (:mod:`skprune.nn._residual`), and the direct ONNX
translation (:mod:`skprune.deploy._onnx_fx`). What an operation *is* (a
layer whose units can be removed, a normalization, an element-wise
activation, a pooling, an add, a flatten) is written down here once, so
the walkers cannot disagree about it.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = [
    "ADD_FUNCTIONS",
    "CHANNEL_DROPOUT",
    "ELEMENTWISE_FUNCTIONS",
    "ELEMENTWISE_METHODS",
    "ELEMENTWISE_MODULES",
    "IDENTITY_MODULES",
    "NORM_TYPES",
    "ONNX_ACTIVATION_FUNCTIONS",
    "ONNX_ACTIVATION_MODULES",
    "POOL_FUNCTIONS",
    "POOL_MODULES",
    "PRODUCER_TYPES",
    "ZERO_PRESERVING_MODULES",
    "describe_node",
    "flatten_start",
    "is_add",
    "is_zero_preserving",
]

#: Layers whose output units can be removed.
PRODUCER_TYPES = (nn.Linear, nn.Conv2d)
#: Normalizations whose features are the units of the layer before.
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
#: Modules that are the identity at inference (Dropout subclasses included).
IDENTITY_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
#: Element-wise modules (``f(0)`` is computed, not assumed).
ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Softplus,
    nn.Identity,
    nn.Dropout,
    nn.AlphaDropout,
)
#: Dropout of whole channels (element-wise only on feature maps).
CHANNEL_DROPOUT = (nn.Dropout1d, nn.Dropout2d)
POOL_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
ELEMENTWISE_FUNCTIONS = {
    torch.relu,
    torch.tanh,
    torch.sigmoid,
    F.relu,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.gelu,
    F.silu,
    F.mish,
    F.tanh,
    F.sigmoid,
    F.hardtanh,
    F.hardswish,
    F.hardsigmoid,
    F.softplus,
    F.dropout,
}
ELEMENTWISE_METHODS = {"relu", "tanh", "sigmoid"}
POOL_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d}
#: Element-wise modules with ``f(0) == 0``: an all-zero channel stays zero through them.
ZERO_PRESERVING_MODULES = tuple(
    m for m in ELEMENTWISE_MODULES if m not in (nn.Sigmoid, nn.Hardsigmoid, nn.Softplus)
) + (nn.PReLU,)
#: Element-wise functions and methods whose ``f(0) != 0``.
_NONZERO_AT_ZERO = {"sigmoid", "softplus", "hardsigmoid"}
#: Residual adds as torch.fx records them (``x + y``, ``torch.add(x, y)``, ``x += y``).
ADD_FUNCTIONS = (operator.add, torch.add, operator.iadd)
#: ONNX operators of the activation modules translated directly.
ONNX_ACTIVATION_MODULES = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid"}
#: ONNX operators of the activation functions translated directly.
ONNX_ACTIVATION_FUNCTIONS = {
    torch.relu: "Relu",
    F.relu: "Relu",
    torch.tanh: "Tanh",
    F.tanh: "Tanh",
    torch.sigmoid: "Sigmoid",
    F.sigmoid: "Sigmoid",
}


def is_add(node: fx.Node) -> bool:
    """Whether ``node`` adds two graph values (a residual connection), without ``alpha``."""
    return (
        node.op == "call_function"
        and node.target in ADD_FUNCTIONS
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(arg, fx.Node) for arg in node.args)
    )


def is_zero_preserving(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Whether ``node`` maps an all-zero input to an all-zero output, whatever its parameters.

    Element-wise activations with ``f(0) == 0``, Dropout, pooling and
    flattening; not BatchNorm, Linear or Conv (their output depends on
    their parameters).
    """
    if node.op == "call_module":
        module = modules.get(node.target)
        if isinstance(module, ZERO_PRESERVING_MODULES + CHANNEL_DROPOUT):
            return True
        return isinstance(module, POOL_MODULES + (nn.Flatten,))
    if node.op == "call_function":
        if node.target in POOL_FUNCTIONS or node.target is torch.flatten:
            return True
        name = getattr(node.target, "__name__", "")
        return node.target in ELEMENTWISE_FUNCTIONS and name not in _NONZERO_AT_ZERO
    if node.op == "call_method":
        return node.target == "flatten" or (
            node.target in ELEMENTWISE_METHODS and node.target not in _NONZERO_AT_ZERO
        )
    return False


def describe_node(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """A node in words, for error messages (``layer 'fc0' (Linear)``, ``operation 'add' ...``)."""
    if node.op == "call_module":
        return f"layer {node.target!r} ({type(modules[node.target]).__name__})"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        hint = " (a residual connection)" if node.target in (operator.add, torch.add) else ""
        return f"operation {name!r} at node {node.name!r}{hint}"
    if node.op == "call_method":
        return f"method '.{node.target}()' at node {node.name!r}"
    return f"{node.op} node {node.name!r}"


def flatten_start(node: fx.Node, modules: dict[str, nn.Module]) -> int | None:
    """Start dimension if ``node`` flattens all but the batch dimension, else ``None``."""
    if node.op == "call_module" and isinstance(modules[node.target], nn.Flatten):
        m = modules[node.target]
        return 1 if (m.start_dim == 1 and m.end_dim == -1) else None
    if (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    ):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return 1 if (start == 1 and end == -1) else None
    return None
