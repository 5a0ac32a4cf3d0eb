"""ONNX export of fitted nets and pipelines.

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
joined to the net's graph. The direct translation lives in :mod:`._onnx_fx`;
:mod:`._onnx_runtime` serves the models (:class:`~skprune.OnnxPredictor`)
and quantizes them to int8 (:func:`~skprune.quantize_int8`).
Install the dependencies with ``pip install skprune[onnx]``.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn.pipeline import Pipeline
from torch import nn

from ._compaction import unwrap_compiled
from ._onnx_fx import GraphBuilder, Unsupported, translate
from ._schema import is_net

__all__ = ["OPSET", "export", "require", "to_onnx"]

OPSET = 17


def require(module: str):

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"ONNX export needs the {module!r} package: pip install 'skprune[onnx]' "
            "(onnx, onnxruntime, skl2onnx, onnxscript)."
        ) from exc


def _torch_export(module: nn.Module, sample: torch.Tensor):
    """Fallback: torch.onnx.export with the torch.export-based exporter (needs onnxscript)."""
    import onnx

    require("onnxscript")
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
    g = GraphBuilder()
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
    onnx = require("onnx")
    from onnx import TensorProto, helper

    estimator = best_of_search(estimator)
    if not is_net(estimator):
        raise TypeError(
            "to_onnx exports a fitted PrunedNetClassifier/PrunedNetRegressor, a Pipeline ending with one, "
            f"or a fitted search (PrunedNetCV, GridSearchCV) of either; got {type(estimator).__name__}."
        )
    estimator.check_is_fitted()
    sample = (
        estimator._prepare_predict_data(X_sample) if hasattr(estimator, "_prepare_predict_data") else X_sample
    )
    sample = torch.as_tensor(np.asarray(sample, dtype=np.float32))[:2].cpu()
    module, _ = unwrap_compiled(estimator.module_)  # compile=True: export the network it wraps
    was_training = module.training
    module.eval()
    opsets = [helper.make_opsetid("", OPSET)]
    try:
        try:
            g, logits = translate(module, sample, gemm)
            method = "fx"
        except Unsupported:
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
        if hasattr(estimator, "y_scale_"):  # normalize_y: the network predicts standardized targets
            scale = np.asarray(estimator.y_scale_, dtype=np.float32).reshape(-1)
            mean = np.asarray(estimator.y_mean_, dtype=np.float32).reshape(-1)
            scaled = g.node("Mul", [logits, g.const("y_scale", scale)], "unscale")
            logits = g.node("Add", [scaled, g.const("y_mean", mean)], "uncenter")
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
    if getattr(estimator, "feature_names_in_", None) is not None:  # fitted on a DataFrame
        meta["feature_names"] = json.dumps([str(name) for name in estimator.feature_names_in_])
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"skprune.{key}", value
    return model


def best_of_search(estimator):
    """A fitted search's ``best_estimator_`` (what its ``predict`` uses), else ``estimator``."""
    best = getattr(estimator, "best_estimator_", None)
    return estimator if best is None or isinstance(estimator, Pipeline) else best


def _has_classes(estimator) -> bool:
    try:
        return estimator.classes_ is not None
    except AttributeError:
        return False


def _pipeline_model(pipeline, X_sample, gemm=True):
    """skl2onnx for the steps before the net, joined to the net's graph."""
    onnx = require("onnx")
    skl2onnx = require("skl2onnx")
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
    # the graph inputs keep skl2onnx's names (the DataFrame's columns, or "X"): callers feed them by name
    pre_model = compose.add_prefix(pre_model, "pre_", rename_inputs=False)
    opsets = [onnx.helper.make_opsetid("", OPSET), onnx.helper.make_opsetid("ai.onnx.ml", 3)]
    for model in (net_model, pre_model):
        model.ir_version = 9
        del model.opset_import[:]
        model.opset_import.extend(opsets)
    merged = compose.merge_models(
        pre_model, net_model, io_map=[(pre_model.graph.output[0].name, "net_" + net_input)]
    )
    # merge_models lists both models' opsets: one entry per domain, as ONNX Runtime's quantizer requires
    del merged.opset_import[:]
    merged.opset_import.extend(opsets)
    # outputs keep their sklearn names
    renames = {o.name: o.name[len("net_") :] for o in merged.graph.output}
    for node in merged.graph.node:
        node.output[:] = [renames.get(o, o) for o in node.output]
        node.input[:] = [renames.get(i, i) for i in node.input]
    for out in merged.graph.output:
        out.name = renames[out.name]
    del merged.metadata_props[:]
    # the net's feature names are those of the transformed data, not of the pipeline's input
    merged.metadata_props.extend(p for p in net_model.metadata_props if p.key != "skprune.feature_names")
    if elem not in (TensorProto.FLOAT, TensorProto.DOUBLE):
        raise ValueError("The preprocessing steps do not produce a numeric array.")
    return merged


def to_onnx(estimator, X_sample, path=None):
    """Export a fitted net, or a pipeline ending with one, to ONNX.

    Parameters
    ----------
    estimator : PrunedNet, Pipeline or fitted search
        A fitted :class:`~skprune.PrunedNetClassifier` /
        :class:`~skprune.PrunedNetRegressor` (dense, masked, compacted or
        with CSR layers), or a fitted ``Pipeline`` whose last step is one and
        whose other steps ``skl2onnx`` can convert. A fitted search
        (:class:`~skprune.PrunedNetCV`, ``GridSearchCV``), also as a
        pipeline's last step, exports its ``best_estimator_``.
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

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import PrunedNetClassifier, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> [output.name for output in to_onnx(net, X[:5]).graph.output]
    ['label', 'probabilities']
    """
    model = export(estimator, X_sample)
    if path is not None:
        Path(path).write_bytes(model.SerializeToString())
    return model


def export(estimator, X_sample, gemm=True):
    estimator = best_of_search(estimator)
    if isinstance(estimator, Pipeline):
        model = _pipeline_model(estimator, X_sample, gemm)
    else:
        model = _net_graph(estimator, X_sample, gemm=gemm)
    onnx = require("onnx")
    onnx.checker.check_model(model)
    return model
