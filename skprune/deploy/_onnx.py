"""ONNX export of fitted nets and pipelines, ONNX Runtime serving, and int8 through ONNX Runtime.

:func:`to_onnx` writes the network as an ONNX graph whose outputs are what
the estimator returns: ``label`` and ``probabilities`` for a classifier,
``variable`` for a regressor. Networks built from the standard layers
(Linear, CSR Linear, Conv2d, BatchNorm, activations, pooling, Flatten,
Dropout, residual adds and channel concatenations: the built-in
:class:`~skprune.MLP` and :class:`~skprune.ConvNet` and most hand-written
ones) are translated directly from their :mod:`torch.fx` graph, which takes
milliseconds and needs nothing but ``onnx``. Anything else goes through
``torch.onnx.export(dynamo=True)`` (needs ``onnxscript``). In a
``Pipeline``, the steps before the net are converted by ``skl2onnx`` and
joined to the net's graph.

:class:`OnnxPredictor` serves such a model with ONNX Runtime behind
``predict`` / ``predict_proba`` / ``score``; :func:`quantize_int8` returns
one whose MatMul/Conv weights are int8 (``onnxruntime.quantization.quantize_dynamic``).
Install the dependencies with ``pip install skprune[onnx]``.
"""

from __future__ import annotations

import json
import operator
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

__all__ = ["to_onnx", "OnnxPredictor", "quantize_int8"]

OPSET = 17


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs the {module!r} package: pip install 'skprune[onnx]' "
            "(onnx, onnxruntime, skl2onnx, onnxscript)."
        ) from exc


# ------------------------------------------------------------ fx -> ONNX
class _Unsupported(Exception):
    """The direct translation does not know an operation (torch.onnx.export is used instead)."""


class _GraphBuilder:
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


def _np(tensor: torch.Tensor) -> np.ndarray:
    if tensor.layout == torch.sparse_csr:
        tensor = tensor.to_dense()
    return tensor.detach().cpu().to(torch.float32).numpy()


_ACTIVATIONS = {nn.ReLU: "Relu", nn.Tanh: "Tanh", nn.Sigmoid: "Sigmoid", nn.Softplus: "Softplus"}
_IDENTITY = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
_FUNCTIONS = {
    torch.relu: "Relu",
    F.relu: "Relu",
    torch.tanh: "Tanh",
    F.tanh: "Tanh",
    torch.sigmoid: "Sigmoid",
    F.sigmoid: "Sigmoid",
}


def _pair(value) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [value, value]


def _module_node(g: _GraphBuilder, module: nn.Module, x: str, name: str, rank: int) -> tuple[str, int]:
    from ._export import SparseLinear

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
            raise _Unsupported(f"padding_mode={module.padding_mode!r}")
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
            raise _Unsupported("BatchNorm without running statistics")
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
    if isinstance(module, _IDENTITY):
        return x, rank
    if isinstance(module, nn.LeakyReLU):
        return g.node("LeakyRelu", [x], name, alpha=float(module.negative_slope)), rank
    if isinstance(module, nn.ELU):
        return g.node("Elu", [x], name, alpha=float(module.alpha)), rank
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise _Unsupported("GELU(approximate='tanh')")
        # 0.5 * x * (1 + erf(x / sqrt(2)))
        scaled = g.node("Div", [x, g.const("sqrt2", np.array(np.sqrt(2.0), np.float32))], name)
        erf = g.node("Erf", [scaled], name)
        one = g.node("Add", [erf, g.const("one", np.array(1.0, np.float32))], name)
        half = g.node("Mul", [x, g.const("half", np.array(0.5, np.float32))], name)
        return g.node("Mul", [half, one], name), rank
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise _Unsupported("Flatten of other dimensions")
        return g.node("Flatten", [x], name, axis=1), 2
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        p = _pair(module.padding)
        attrs = dict(kernel_shape=kernel, strides=stride, pads=[p[0], p[1], p[0], p[1]])
        attrs["ceil_mode"] = int(module.ceil_mode)
        if isinstance(module, nn.MaxPool2d):
            if _pair(module.dilation) != [1, 1] or module.return_indices:
                raise _Unsupported("dilated max pooling")
            return g.node("MaxPool", [x], name, **attrs), 4
        if module.divisor_override is not None:
            raise _Unsupported("divisor_override")
        return g.node("AveragePool", [x], name, count_include_pad=int(module.count_include_pad), **attrs), 4
    if isinstance(module, nn.AdaptiveAvgPool2d) and _pair(module.output_size) == [1, 1]:
        return g.node("GlobalAveragePool", [x], name), 4
    raise _Unsupported(type(module).__name__)


def _translate(module: nn.Module, sample: torch.Tensor, gemm: bool = True):
    """ONNX nodes computing ``module(X)`` (as ``logits``) from its fx graph; raises _Unsupported."""
    from ..nn._networks import as_images
    from ._export import SparseLinear

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, SparseLinear) or super().is_leaf_module(m, qualname)

    try:
        graph = Tracer().trace(module)
    except Exception as exc:  # fx raises many types
        raise _Unsupported(f"not traceable: {exc}") from exc
    traced = fx.GraphModule(module, graph)
    modules = dict(traced.named_modules())
    g = _GraphBuilder(gemm)
    values: dict[fx.Node, tuple[str, int]] = {}
    output = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if values:
                raise _Unsupported("more than one input")
            values[node] = ("X", sample.dim())
        elif node.op == "call_module":
            x, rank = values[node.args[0]]
            if len(node.args) != 1 or node.kwargs:
                raise _Unsupported("a layer called with several arguments")
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
            (a, rank), (b, _) = (values[arg] for arg in node.args[:2])
            values[node] = (g.node("Add", [a, b], node.name), rank)
        elif node.op == "call_function" and node.target is torch.cat:
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            if dim != 1:
                raise _Unsupported("concatenation along another dimension than channels")
            parts = [values[t] for t in tensors]
            values[node] = (g.node("Concat", [p[0] for p in parts], node.name, axis=1), parts[0][1])
        elif (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"
        ):
            x, _ = values[node.args[0]]
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            if start != 1 or len(node.args) > 2:
                raise _Unsupported("flatten of other dimensions")
            values[node] = (g.node("Flatten", [x], node.name, axis=1), 2)
        elif node.op == "output":
            if not isinstance(node.args[0], fx.Node):
                raise _Unsupported("several outputs")
            output = values[node.args[0]][0]
        else:
            raise _Unsupported(f"{node.op} {node.target}")
    return g, output


def _torch_export(module: nn.Module, sample: torch.Tensor):
    """Fallback: torch.onnx.export with the torch.export-based exporter (needs onnxscript)."""
    import onnx

    _require("onnxscript")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.onnx")
        torch.onnx.export(
            module,
            (sample,),
            path,
            dynamo=True,
            input_names=["X"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=max(OPSET, 18),
            optimize=True,
        )
        model = onnx.load(path, load_external_data=True)
    g = _GraphBuilder()
    g.nodes = list(model.graph.node)
    g.initializers = list(model.graph.initializer)
    return g, "logits", model.opset_import


def _label_tensor(classes: np.ndarray):
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64), "int64"
    if classes.dtype.kind == "f":
        return classes.astype(np.float64), "float64"
    return np.array([str(c) for c in classes], dtype=object), "str"


def _net_graph(estimator, X_sample, input_type=None, gemm=True):
    """The ONNX graph of a fitted PrunedNet, with sklearn-style outputs."""
    onnx = _require("onnx")
    from onnx import TensorProto, helper

    estimator.check_is_fitted()
    sample = (
        estimator._prepare_predict_data(X_sample) if hasattr(estimator, "_prepare_predict_data") else X_sample
    )
    sample = torch.as_tensor(np.asarray(sample, dtype=np.float32))[:2].cpu()
    module = estimator.module_
    was_training = module.training
    module.eval()
    opsets = [helper.make_opsetid("", OPSET)]
    try:
        try:
            g, logits = _translate(module, sample, gemm)
            method = "fx"
        except _Unsupported:
            import copy

            g, logits, opsets = _torch_export(copy.deepcopy(module).cpu().eval(), sample)
            method = "torch.onnx.export"
    finally:
        module.train(was_training)
    input_type = input_type or TensorProto.FLOAT
    graph_input = "X"
    if input_type != TensorProto.FLOAT:
        g.nodes.insert(0, helper.make_node("Cast", ["X_in"], ["X"], to=TensorProto.FLOAT, name="cast_input"))
        graph_input = "X_in"
    inputs = [helper.make_tensor_value_info(graph_input, input_type, ["batch", *sample.shape[1:]])]
    is_classifier = hasattr(estimator, "classes_") and getattr(estimator, "_y_ndim", 1) is not None
    is_classifier = is_classifier and hasattr(estimator, "predict_proba") and _has_classes(estimator)
    if is_classifier:
        g.nodes.append(helper.make_node("Softmax", [logits], ["probabilities"], axis=1, name="softmax"))
        index = g.node("ArgMax", ["probabilities"], "argmax", axis=1, keepdims=0)
        labels, kind = _label_tensor(estimator.classes_)
        if kind == "str":
            table = helper.make_tensor(
                "classes", TensorProto.STRING, [len(labels)], [s.encode() for s in labels]
            )
            g.initializers.append(table)
            label_type = TensorProto.STRING
        else:
            g.initializers.append(onnx.numpy_helper.from_array(labels, "classes"))
            label_type = TensorProto.INT64 if kind == "int64" else TensorProto.DOUBLE
        g.nodes.append(helper.make_node("Gather", ["classes", index], ["label"], axis=0, name="label"))
        outputs = [
            helper.make_tensor_value_info("label", label_type, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(labels)]),
        ]
        kind_name = "classifier"
    else:
        n_targets = int(getattr(estimator, "n_outputs_", 1) or 1)
        if getattr(estimator, "_y_ndim", 2) == 1:
            g.nodes.append(
                helper.make_node(
                    "Reshape", [logits, g.const("flat", np.array([-1]))], ["variable"], name="ravel"
                )
            )
            shape = ["batch"]
        else:
            g.nodes.append(helper.make_node("Identity", [logits], ["variable"], name="variable"))
            shape = ["batch", n_targets]
        outputs = [helper.make_tensor_value_info("variable", TensorProto.FLOAT, shape)]
        labels, kind_name = None, "regressor"
    graph = helper.make_graph(g.nodes, type(estimator).__name__, inputs, outputs, g.initializer_list())
    model = helper.make_model(graph, opset_imports=opsets, producer_name="skprune")
    model.ir_version = min(model.ir_version, 9)
    meta = {"kind": kind_name, "exporter": method}
    if labels is not None:
        meta["classes"] = json.dumps(np.asarray(estimator.classes_).tolist())
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"skprune.{key}", value
    return model


def _has_classes(estimator) -> bool:
    try:
        return estimator.classes_ is not None
    except AttributeError:
        return False


_GraphBuilder.initializer_list = lambda self: self.initializers


def _pipeline_model(pipeline, X_sample, gemm=True):
    """skl2onnx for the steps before the net, joined to the net's graph."""
    onnx = _require("onnx")
    skl2onnx = _require("skl2onnx")
    from onnx import TensorProto, compose

    pre = pipeline[:-1]
    pre_model = skl2onnx.to_onnx(
        pre, X_sample[:2] if not hasattr(X_sample, "iloc") else X_sample.iloc[:2], target_opset=OPSET
    )
    (pre_output,) = pre_model.graph.output
    elem = pre_output.type.tensor_type.elem_type
    transformed = pre.transform(X_sample[:2] if not hasattr(X_sample, "iloc") else X_sample.iloc[:2])
    net_model = _net_graph(
        pipeline[-1], np.asarray(transformed, dtype=np.float32), input_type=elem, gemm=gemm
    )
    net_input = net_model.graph.input[0].name
    net_model = compose.add_prefix(net_model, "net_")
    pre_model = compose.add_prefix(pre_model, "pre_")
    for model in (net_model, pre_model):
        model.ir_version = 9
        del model.opset_import[:]
        model.opset_import.extend(
            [onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid("ai.onnx.ml", 3)]
        )
    merged = compose.merge_models(
        pre_model, net_model, io_map=[(pre_model.graph.output[0].name, "net_" + net_input)]
    )
    # outputs keep their sklearn names
    renames = {o.name: o.name[len("net_") :] for o in merged.graph.output}
    for node in merged.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for out in merged.graph.output:
        out.name = renames[out.name]
    del merged.metadata_props[:]
    merged.metadata_props.extend(net_model.metadata_props)
    if elem not in (TensorProto.FLOAT, TensorProto.DOUBLE):
        raise ValueError("The preprocessing steps do not produce a numeric array.")
    return merged


def to_onnx(estimator, X_sample, path=None):
    """Export a fitted net, or a pipeline ending with one, to ONNX.

    Parameters
    ----------
    estimator : PrunedNet or Pipeline
        A fitted :class:`~skprune.PrunedNetClassifier` /
        :class:`~skprune.PrunedNetRegressor` (dense, masked, compacted or
        with CSR layers), or a fitted ``Pipeline`` whose last step is one and
        whose other steps ``skl2onnx`` can convert.
    X_sample : array-like or DataFrame
        A few rows of input, as given to ``predict``: they fix the input's
        type and shape (the batch size stays free).
    path : str or path-like, default=None
        Where to write the ``.onnx`` file.

    Returns
    -------
    onnx.ModelProto
        Inputs: ``X`` (float32 rows or images; for a pipeline, what
        ``skl2onnx`` names them). Outputs: ``label`` and ``probabilities``
        for a classifier, ``variable`` for a regressor.
    """
    model = _export(estimator, X_sample)
    if path is not None:
        Path(path).write_bytes(model.SerializeToString())
    return model


def _export(estimator, X_sample, gemm=True):
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        model = _pipeline_model(estimator, X_sample, gemm)
    else:
        model = _net_graph(estimator, X_sample, gemm=gemm)
    onnx = _require("onnx")
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------ serving
class OnnxPredictor:
    """Predict with an ONNX model in ONNX Runtime, like the estimator it was exported from.

    Parameters
    ----------
    model : onnx.ModelProto or bytes
        A model written by :func:`to_onnx` (or :func:`quantize_int8`).
    n_threads : int or None, default=None
        ONNX Runtime intra-op threads (``None``: its default).
    """

    def __init__(self, model, n_threads=None):
        self.model_bytes = model if isinstance(model, bytes) else model.SerializeToString()
        self.n_threads = n_threads
        onnx = _require("onnx")
        proto = onnx.load_from_string(self.model_bytes)
        meta = {p.key: p.value for p in proto.metadata_props}
        self.kind = meta.get("skprune.kind", "regressor")
        if "skprune.classes" in meta:
            self.classes_ = np.asarray(json.loads(meta["skprune.classes"]))
        self.input_names_ = [i.name for i in proto.graph.input]
        self.input_types_ = [i.type.tensor_type.elem_type for i in proto.graph.input]
        self._input_dtype = onnx.helper.tensor_dtype_to_np_dtype(self.input_types_[0])
        self._outputs = {"probabilities": ["probabilities"], "variable": ["variable"]}
        self.stored_values = int(sum(np.prod(t.dims) for t in proto.graph.initializer))
        self._session = None

    @classmethod
    def from_file(cls, path, n_threads=None):
        """Load an ``.onnx`` file written by :meth:`save` or :func:`to_onnx` (no code is run)."""
        return cls(Path(path).read_bytes(), n_threads=n_threads)

    def save(self, path) -> None:
        """Write the ONNX model to ``path``."""
        Path(path).write_bytes(self.model_bytes)

    @property
    def n_bytes(self) -> int:
        """Size of the serialized model."""
        return len(self.model_bytes)

    @property
    def session(self):
        if self._session is None:
            ort = _require("onnxruntime")
            options = ort.SessionOptions()
            if self.n_threads is not None:
                options.intra_op_num_threads = int(self.n_threads)
                options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                self.model_bytes, options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def _feed(self, X) -> dict:
        if len(self.input_names_) > 1:  # one input per column (skl2onnx, DataFrame input)
            from onnx import helper

            feed = {}
            for name, elem in zip(self.input_names_, self.input_types_):
                column = X[name].to_numpy().reshape(-1, 1)
                dtype = helper.tensor_dtype_to_np_dtype(elem)
                feed[name] = column.astype(dtype)
            return feed
        if not (isinstance(X, np.ndarray) and X.dtype == self._input_dtype and X.flags.c_contiguous):
            X = np.ascontiguousarray(np.asarray(X, dtype=self._input_dtype))
        return {self.input_names_[0]: X}

    def run(self, X) -> list:
        """Raw ONNX Runtime outputs for ``X``."""
        return self.session.run(None, self._feed(X))

    def predict_proba(self, X):
        """Class probabilities (classifiers)."""
        if self.kind != "classifier":
            raise AttributeError("A regressor has no predict_proba; use predict.")
        return self.session.run(self._outputs["probabilities"], self._feed(X))[0]

    def predict(self, X):
        """Labels (classifiers) or values (regressors)."""
        if self.kind == "classifier":
            proba = self.predict_proba(X)
            return self.classes_[proba.argmax(axis=1)]
        return self.session.run(self._outputs["variable"], self._feed(X))[0].astype(np.float64)

    def score(self, X, y):
        """Accuracy for classifiers, R² for regressors."""
        from sklearn.metrics import accuracy_score, r2_score

        if self.kind == "classifier":
            return accuracy_score(y, self.predict(X))
        return r2_score(y, self.predict(X))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        return state


def quantize_int8(estimator, X_sample=None, *, n_threads=None):
    """Return an ONNX Runtime predictor whose layer weights are int8.

    The net (or pipeline) is exported with :func:`to_onnx`, then
    ``onnxruntime.quantization.quantize_dynamic`` stores MatMul and Conv
    weights as int8 (per-tensor scale) and quantizes activations on the fly.

    Parameters
    ----------
    estimator : PrunedNet or Pipeline
        Fitted (compact it first to quantize the smaller net).
    X_sample : array-like, default=None
        A few input rows; ``None`` uses zeros shaped like the training input
        (nets only).
    n_threads : int or None, default=None
        ONNX Runtime threads.

    Returns
    -------
    OnnxPredictor
        ``predict`` / ``predict_proba`` / ``score``; ``save(path)`` writes
        the int8 ``.onnx`` file and ``OnnxPredictor.from_file`` reads it.
    """
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if X_sample is None:
        shape = getattr(estimator, "input_shape_", None) or (estimator.n_features_in_,)
        X_sample = np.zeros((2, *shape), dtype=np.float32)
    model = _export(estimator, X_sample, gemm=False)  # the quantizer handles MatMul, not Gemm
    with tempfile.TemporaryDirectory() as folder:
        source, target = os.path.join(folder, "float.onnx"), os.path.join(folder, "int8.onnx")
        Path(source).write_bytes(model.SerializeToString())
        prepared = os.path.join(folder, "prepared.onnx")
        # the pre-processing ONNX Runtime recommends: shape inference and graph optimization
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        quantize_dynamic(
            prepared, target, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Conv"]
        )
        data = Path(target).read_bytes()
    return OnnxPredictor(data, n_threads=n_threads)
