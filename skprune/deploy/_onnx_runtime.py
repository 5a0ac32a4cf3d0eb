"""ONNX Runtime serving of exported models, and int8 weights through ONNX Runtime's dynamic quantization."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import Pipeline

from ._onnx import best_of_search, export, require

__all__ = ["OnnxPredictor", "quantize_int8"]


class _ClassifierOnly:
    """A method that only a classifier's predictor has (``hasattr`` is false on a regressor's).

    Like scikit-learn's ``available_if``, but the bound method is kept in the
    instance's ``__dict__`` after the first access, so a batch-1 serving call
    pays no descriptor on the way (``available_if`` wraps the function anew
    at every access: microseconds per call).
    """

    def __init__(self, method):
        self.method = method
        self.__doc__ = method.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, predictor, owner=None):
        if predictor is None:
            return self.method  # on the class: the function (documentation, introspection)
        if predictor.kind != "classifier":
            raise AttributeError(f"A regressor's OnnxPredictor has no {self.name}; use predict.")
        bound = self.method.__get__(predictor, owner)
        predictor.__dict__[self.name] = bound
        return bound


class OnnxPredictor:
    """Predict with an ONNX model in ONNX Runtime, like the estimator it was exported from.

    Parameters
    ----------
    model : onnx.ModelProto or bytes
        A model written by :func:`to_onnx` (or :func:`quantize_int8`).
    n_threads : int or None, default=None
        ONNX Runtime intra-op threads (``None``: its default).
    allow_spinning : bool, default=True
        Whether ONNX Runtime's worker threads (``n_threads`` > 1) keep
        spinning after a call, waiting for the next one: ONNX Runtime's
        default, best for back-to-back calls on cores of their own. Pass
        ``False`` where other work shares the cores (torch, NumPy, a
        notebook): spinning threads take the CPU from it.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import OnnxPredictor, PrunedNetClassifier, to_onnx
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> served = OnnxPredictor(to_onnx(net, X[:5]))
    >>> bool((served.predict(X) == net.predict(X)).all())
    True
    """

    def __init__(self, model, n_threads=None, allow_spinning=True):
        if not (isinstance(model, bytes) or hasattr(model, "SerializeToString")):
            raise TypeError(
                f"OnnxPredictor takes an onnx.ModelProto or its bytes, got {type(model).__name__}"
                + (f"; for a file use OnnxPredictor.from_file({model!r})." if isinstance(model, str) else ".")
            )
        self.model_bytes = model if isinstance(model, bytes) else model.SerializeToString()
        self.n_threads = n_threads
        self.allow_spinning = bool(allow_spinning)
        onnx = require("onnx")
        proto = onnx.load_from_string(self.model_bytes)
        meta = {p.key: p.value for p in proto.metadata_props}
        self.kind = meta.get("skprune.kind", "regressor")
        if "skprune.classes" in meta:
            self.classes_ = np.asarray(json.loads(meta["skprune.classes"]))
        if "skprune.feature_names" in meta:  # the net was fitted on a DataFrame
            self.feature_names_in_ = np.asarray(json.loads(meta["skprune.feature_names"]), dtype=object)
        self.input_names_ = [i.name for i in proto.graph.input]
        self.input_types_ = [i.type.tensor_type.elem_type for i in proto.graph.input]
        self._input_dtype = onnx.helper.tensor_dtype_to_np_dtype(self.input_types_[0])
        self._output = ["probabilities"] if self.kind == "classifier" else ["variable"]
        self.stored_values = int(sum(np.prod(t.dims) for t in proto.graph.initializer))
        self._session = None
        self._full_session = None
        self._run = None

    @classmethod
    def from_file(cls, path, n_threads=None, allow_spinning=True):
        """Load an ``.onnx`` file written by :meth:`save` or :func:`to_onnx` (no code is run)."""
        return cls(Path(path).read_bytes(), n_threads=n_threads, allow_spinning=allow_spinning)

    def save(self, path) -> None:
        """Write the ONNX model to ``path``."""
        Path(path).write_bytes(self.model_bytes)

    @property
    def n_bytes(self) -> int:
        """Size of the serialized model."""
        return len(self.model_bytes)

    @property
    def session(self):
        """The ``onnxruntime.InferenceSession`` that serves predictions.

        It runs the model cut down to the one output the predictor reads
        (``probabilities`` or ``variable``): ONNX Runtime otherwise computes
        every graph output on every call, and the label (``ArgMax`` +
        ``Gather``) is cheaper to take from the probabilities in NumPy.
        """
        if self._session is None:
            ort = require("onnxruntime")
            options = ort.SessionOptions()
            if self.n_threads is not None:
                options.intra_op_num_threads = int(self.n_threads)
                options.inter_op_num_threads = 1
            if not self.allow_spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            served = _keep_outputs(self.model_bytes, self._output)
            self._session = ort.InferenceSession(served, options, providers=["CPUExecutionProvider"])
        return self._session

    def _bind(self):
        """The per-call runner: ``(feed) -> outputs``, with its run options made once.

        ``InferenceSession.run`` re-validates the feed in Python on every
        call, about a third of a batch-1 prediction of a small MLP. The
        predictor builds the feed from the model's own input names, so it
        calls the session's compiled ``run`` directly where ONNX Runtime
        exposes it, and the public ``run`` otherwise (same results: tested).
        """
        ort = require("onnxruntime")
        session, names, options = self.session, self._output, ort.RunOptions()
        compiled = getattr(session, "_sess", None)
        if compiled is not None and callable(getattr(compiled, "run", None)):
            run = compiled.run
        else:  # pragma: no cover - an ONNX Runtime without the compiled handle
            run = session.run
        self._run = lambda feed: run(names, feed, options)
        return self._run

    def _feed(self, X) -> dict:
        if len(self.input_names_) > 1:  # one input per column (skl2onnx, DataFrame input)
            return self._column_feed(X)
        if not (isinstance(X, np.ndarray) and X.dtype == self._input_dtype and X.flags.c_contiguous):
            names = getattr(self, "feature_names_in_", None)
            if names is not None and hasattr(X, "columns"):
                columns = [str(c) for c in X.columns]
                if columns != list(names):
                    raise ValueError(
                        "The feature names should match those that were passed during fit: the model "
                        f"reads the columns {list(names)} in this order, got {columns}. Select them as "
                        "X[predictor.feature_names_in_]."
                    )
            X = np.ascontiguousarray(np.asarray(X, dtype=self._input_dtype))
        return {self.input_names_[0]: X}

    def _column_feed(self, X) -> dict:
        """One array per graph input, taken from the DataFrame column of the same name."""
        from onnx import helper

        if not hasattr(X, "columns"):
            raise ValueError(
                f"This model reads a DataFrame with the columns {self.input_names_} (one graph input "
                f"per column, as the pipeline was exported); got {type(X).__name__}."
            )
        missing = [name for name in self.input_names_ if name not in X.columns]
        if missing:
            raise ValueError(f"X lacks the columns {missing} that this model reads ({self.input_names_}).")
        feed = {}
        for name, elem in zip(self.input_names_, self.input_types_):
            column = X[name].to_numpy().reshape(-1, 1)
            feed[name] = column.astype(helper.tensor_dtype_to_np_dtype(elem))
        return feed

    def run(self, X) -> list:
        """Raw ONNX Runtime outputs for ``X``: every output of the model, in its order."""
        ort = require("onnxruntime")
        if self._full_session is None:
            self._full_session = ort.InferenceSession(
                self.model_bytes, self.session.get_session_options(), providers=["CPUExecutionProvider"]
            )
        return self._full_session.run(None, self._feed(X))

    @_ClassifierOnly
    def predict_proba(self, X):
        """Class probabilities (classifiers only: a regressor's predictor has no ``predict_proba``)."""
        return (self._run or self._bind())(self._feed(X))[0]

    def predict(self, X):
        """Labels (classifiers) or values (regressors)."""
        if self.kind == "classifier":
            proba = self.predict_proba(X)
            return self.classes_[proba.argmax(axis=1)]
        return (self._run or self._bind())(self._feed(X))[0].astype(np.float64)

    def score(self, X, y, sample_weight=None):
        """Accuracy for classifiers, R² for regressors, as the estimator's ``score``."""
        metric = accuracy_score if self.kind == "classifier" else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.update(_session=None, _full_session=None, _run=None)
        state.pop("predict_proba", None)  # the bound method _ClassifierOnly keeps
        return state


def _keep_outputs(model_bytes: bytes, outputs: list) -> bytes:
    """The model with only ``outputs`` and the nodes and initializers they need.

    A model with control-flow nodes (whose subgraphs may read outer names)
    is returned unchanged.
    """
    onnx = require("onnx")
    proto = onnx.load_from_string(model_bytes)
    graph = proto.graph
    if [o.name for o in graph.output] == list(outputs):
        return model_bytes
    subgraph = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(a.type in subgraph for n in graph.node for a in n.attribute):
        return model_bytes
    needed, kept = set(outputs), []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    kept.reverse()
    new_outputs = [o for o in graph.output if o.name in outputs]
    initializers = [t for t in graph.initializer if t.name in needed]
    del graph.node[:], graph.output[:], graph.initializer[:]
    graph.node.extend(kept)
    graph.output.extend(new_outputs)
    graph.initializer.extend(initializers)
    return proto.SerializeToString()


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

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import PrunedNetClassifier, quantize_int8
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> quantize_int8(net, X[:5]).predict(X[:3]).shape
    (3,)
    """
    require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    estimator = best_of_search(estimator)
    if X_sample is None:
        if isinstance(estimator, Pipeline) and hasattr(estimator, "feature_names_in_"):
            raise ValueError(
                "This pipeline was fitted on a DataFrame: pass X_sample, a few of its rows "
                "(quantize_int8(pipeline, X.iloc[:5])), which give the model's inputs their names and types."
            )
        shape = getattr(estimator, "input_shape_", None) or (estimator.n_features_in_,)
        X_sample = np.zeros((2, *shape), dtype=np.float32)
    model = export(estimator, X_sample, gemm=False)  # the quantizer handles MatMul, not Gemm
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
