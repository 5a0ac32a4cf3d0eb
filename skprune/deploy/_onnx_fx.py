"""Direct translation of a module's :mod:`torch.fx` graph to ONNX nodes (needs only ``onnx``).

Covers the standard layers (Linear, CSR Linear, Conv2d, BatchNorm,
activations, pooling, Flatten, Dropout, residual adds and channel
concatenations); anything else raises :class:`Unsupported`, and
:func:`~skprune.to_onnx` falls back to ``torch.onnx.export``.
"""

from __future__ import annotations

import operator

import numpy as np
import torch
from torch import fx, nn

from ..nn._graph import IDENTITY_MODULES, ONNX_ACTIVATION_FUNCTIONS, ONNX_ACTIVATION_MODULES, is_add
from ..nn._networks import as_images
from ._sparse_linear import SparseLinear

__all__ = ["GraphBuilder", "Unsupported", "translate"]


class Unsupported(Exception):
    """The direct translation does not know an operation (torch.onnx.export is used instead)."""


class GraphBuilder:
    def __init__(self, gemm: bool = True):
        self.nodes = []
        self.initializers = []
        self.n = 0
        self.gemm = gemm  # Linear as one Gemm (fast); MatMul + Add for ONNX Runtime's int8 quantizer

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint.replace('.', '_')}_{self.n}"

    def const(self, hint: str, array) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def initializer_list(self) -> list:
        return self.initializers


def _np(tensor: torch.Tensor) -> np.ndarray:
    if tensor.layout == torch.sparse_csr:
        tensor = tensor.to_dense()
    return tensor.detach().cpu().to(torch.float32).numpy()


_ACTIVATIONS = ONNX_ACTIVATION_MODULES
_IDENTITY = IDENTITY_MODULES
_FUNCTIONS = ONNX_ACTIVATION_FUNCTIONS


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


def _module_node(g: GraphBuilder, module: nn.Module, x: str, name: str, rank: int) -> tuple[str, int]:
    if isinstance(module, (nn.Linear, SparseLinear)) and g.gemm and rank == 2:
        inputs = [x, g.const(f"{name}.weight", _np(module.weight))]
        if getattr(module, "bias", None) is not None:
            inputs.append(g.const(f"{name}.bias", _np(module.bias)))
        return g.node("Gemm", inputs, name, transB=1), rank
    if isinstance(module, (nn.Linear, SparseLinear)):
        weight = _np(module.weight).T
        out = g.node("MatMul", [x, g.const(f"{name}.weight_t", weight)], name)
        bias = getattr(module, "bias", None)
        if bias is not None:
            out = g.node("Add", [out, g.const(f"{name}.bias", _np(bias))], name)
        return out, rank
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise Unsupported(f"padding_mode={module.padding_mode!r}")
        if isinstance(module.padding, str):
            if module.padding == "valid":
                pads = [0, 0, 0, 0]
            else:  # "same", stride 1
                total = [d * (k - 1) for d, k in zip(_pair(module.dilation), _pair(module.kernel_size))]
                pads = [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]
        else:
            p = _pair(module.padding)
            pads = [p[0], p[1], p[0], p[1]]
        inputs = [x, g.const(f"{name}.weight", _np(module.weight))]
        if module.bias is not None:
            inputs.append(g.const(f"{name}.bias", _np(module.bias)))
        out = g.node(
            "Conv",
            inputs,
            name,
            kernel_shape=_pair(module.kernel_size),
            strides=_pair(module.stride),
            dilations=_pair(module.dilation),
            pads=pads,
            group=module.groups,
        )
        return out, 4
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if module.running_mean is None or rank not in (2, 4):
            raise Unsupported("BatchNorm without running statistics")
        n = module.num_features
        weight = _np(module.weight) if module.weight is not None else np.ones(n, np.float32)
        bias = _np(module.bias) if module.bias is not None else np.zeros(n, np.float32)
        inputs = [
            x,
            g.const(f"{name}.weight", weight),
            g.const(f"{name}.bias", bias),
            g.const(f"{name}.mean", _np(module.running_mean)),
            g.const(f"{name}.var", _np(module.running_var)),
        ]
        return g.node("BatchNormalization", inputs, name, epsilon=float(module.eps)), rank
    for cls, op in _ACTIVATIONS.items():
        if type(module) is cls:
            return g.node(op, [x], name), rank
    if type(module) is nn.Softplus:
        # ONNX Softplus is log(1 + exp(x)): torch's beta=1, with the linear part above threshold >= 20
        # within float32 rounding; other beta/threshold go through torch.onnx.export
        if module.beta != 1 or module.threshold < 20:
            raise Unsupported(f"Softplus(beta={module.beta}, threshold={module.threshold})")
        return g.node("Softplus", [x], name), rank
    if isinstance(module, _IDENTITY):
        return x, rank
    if isinstance(module, nn.LeakyReLU):
        return g.node("LeakyRelu", [x], name, alpha=float(module.negative_slope)), rank
    if isinstance(module, nn.ELU):
        return g.node("Elu", [x], name, alpha=float(module.alpha)), rank
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise Unsupported("GELU(approximate='tanh')")
        # 0.5 * x * (1 + erf(x / sqrt(2)))
        scaled = g.node("Div", [x, g.const("sqrt2", np.array(np.sqrt(2.0), np.float32))], name)
        erf = g.node("Erf", [scaled], name)
        one = g.node("Add", [erf, g.const("one", np.array(1.0, np.float32))], name)
        half = g.node("Mul", [x, g.const("half", np.array(0.5, np.float32))], name)
        return g.node("Mul", [half, one], name), rank
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise Unsupported("Flatten of other dimensions")
        return g.node("Flatten", [x], name, axis=1), 2
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        p = _pair(module.padding)
        attrs = dict(kernel_shape=kernel, strides=stride, pads=[p[0], p[1], p[0], p[1]])
        attrs["ceil_mode"] = int(module.ceil_mode)
        if isinstance(module, nn.MaxPool2d):
            if _pair(module.dilation) != [1, 1] or module.return_indices:
                raise Unsupported("dilated max pooling")
            return g.node("MaxPool", [x], name, **attrs), 4
        if module.divisor_override is not None:
            raise Unsupported("divisor_override")
        return g.node("AveragePool", [x], name, count_include_pad=int(module.count_include_pad), **attrs), 4
    if isinstance(module, nn.AdaptiveAvgPool2d) and _pair(module.output_size) == [1, 1]:
        return g.node("GlobalAveragePool", [x], name), 4
    raise Unsupported(type(module).__name__)


def translate(module: nn.Module, sample: torch.Tensor, gemm: bool = True):
    """ONNX nodes computing ``module(X)`` (as ``logits``) from its fx graph; raises Unsupported."""

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            # Dropout subclasses (skprune.nn.Dropout) are identities at inference, like nn.Dropout
            return isinstance(m, (SparseLinear, *_IDENTITY)) or super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(module)
    except Exception as exc:  # fx raises many types
        raise Unsupported(f"not traceable: {exc}") from exc
    traced = fx.GraphModule(module, graph)
    modules = dict(traced.named_modules())
    g = GraphBuilder(gemm)
    values: dict[fx.Node, tuple[str, int]] = {}
    output = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if values:
                raise Unsupported("more than one input")
            values[node] = ("X", sample.dim())
        elif node.op == "call_module":
            x, rank = values[node.args[0]]
            if len(node.args) != 1 or node.kwargs:
                raise Unsupported("a layer called with several arguments")
            values[node] = _module_node(g, modules[node.target], x, node.target, rank)
        elif node.op == "call_function" and node.target is as_images:
            x, rank = values[node.args[0]]
            shape = tuple(node.args[1])
            if rank == 4:
                values[node] = (x, 4)
            else:
                values[node] = (
                    g.node("Reshape", [x, g.const("image_shape", np.array((-1, *shape)))], "images"),
                    4,
                )
        elif node.op == "call_function" and node.target in _FUNCTIONS:
            x, rank = values[node.args[0]]
            values[node] = (g.node(_FUNCTIONS[node.target], [x], node.name), rank)
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            if not is_add(node):
                raise Unsupported("an add with a constant or alpha")  # only tensor + tensor here
            (a, rank), (b, _) = (values[arg] for arg in node.args)
            values[node] = (g.node("Add", [a, b], node.name), rank)
        elif node.op == "call_function" and node.target is torch.cat:
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim != 1:
                raise Unsupported("concatenation along another dimension than channels")
            parts = [values[t] for t in tensors]
            values[node] = (g.node("Concat", [p[0] for p in parts], node.name, axis=1), parts[0][1])
        elif (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"
        ):
            x, _ = values[node.args[0]]
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1 or len(node.args) > 2:
                raise Unsupported("flatten of other dimensions")
            values[node] = (g.node("Flatten", [x], node.name, axis=1), 2)
        elif node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise Unsupported("several outputs")
            output = values[node.args[0]][0]
        else:
            raise Unsupported(f"{node.op} {node.target}")
    return g, output
