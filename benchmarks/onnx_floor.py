"""Where a batch-1 prediction's time goes: ONNX Runtime's per-call floor against skprune's call.

Digits, an MLP (256, 128) trained densely and a copy 75%-neuron-pruned and
compacted; one row, one thread, each callable called back to back
(20 blocks, median of the per-call block means). Printed, in microseconds:

* ONNX Runtime on a one-node ``Identity`` graph: the public
  ``InferenceSession.run``, the session's compiled ``run`` (what
  :class:`skprune.OnnxPredictor` calls), and a run with input and output
  pre-bound (``io_binding``, no new input): no ONNX Runtime call of any
  model can be faster than these;
* the 75%-compacted MLP through the public ``run`` of the full exported
  graph (``label`` and ``probabilities``), through the compiled ``run`` of
  the graph cut to ``probabilities``, and through ``OnnxPredictor.predict_proba``;
* the raw torch forward of both nets, and skprune's ``predict_proba``.

Run: ``PYTHONPATH=. python benchmarks/onnx_floor.py`` (pin a core with
``taskset -c N`` where other processes run). Compare figures of one run.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper
from sklearn.datasets import load_digits

import skprune
from skprune import NeuronPruning, OneShot, OnnxPredictor, PrunedNetClassifier
from skprune.deploy._onnx_runtime import _keep_outputs


def per_call_us(call, n_calls=20_000, blocks=20) -> float:
    """Median over ``blocks`` of the mean per-call time of back-to-back calls, in microseconds."""
    for _ in range(n_calls // 10):
        call()
    size = n_calls // blocks
    means = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(size):
            call()
        means.append((time.perf_counter() - start) / size)
    return 1e6 * statistics.median(means)


def main() -> None:
    torch.set_num_threads(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    run_options = ort.RunOptions()

    X_in = helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 64])
    Y_out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 64])
    graph = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "identity", [X_in], [Y_out])
    identity = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    session = ort.InferenceSession(identity, options, providers=["CPUExecutionProvider"])
    row = np.zeros((1, 64), np.float32)
    public = per_call_us(lambda: session.run(["Y"], {"X": row}))
    compiled = per_call_us(lambda: session._sess.run(["Y"], {"X": row}, run_options))
    print(f"ORT Identity graph: public run {public:.2f} us, compiled run {compiled:.2f} us")
    binding = session.io_binding()
    binding.bind_ortvalue_input("X", ort.OrtValue.ortvalue_from_numpy(row))
    binding.bind_output("Y")
    bound = per_call_us(lambda: session.run_with_iobinding(binding))
    print(f"ORT Identity graph, input and output pre-bound (io_binding): {bound:.2f} us")

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    hidden = dict(module__hidden_layer_sizes=(256, 128), random_state=0)
    dense = PrunedNetClassifier(max_epochs=10, **hidden).fit(X, y)
    pruner = NeuronPruning(0.75, schedule=OneShot(at=0))
    compacted = PrunedNetClassifier(max_epochs=3, pruner=pruner, **hidden).fit(X, y).compact()
    x1 = X[:1].copy()
    model = skprune.to_onnx(compacted, X[:2]).SerializeToString()
    cpu = ["CPUExecutionProvider"]
    full = ort.InferenceSession(model, options, providers=cpu)
    cut = ort.InferenceSession(_keep_outputs(model, ["probabilities"]), options, providers=cpu)
    served = OnnxPredictor(model, n_threads=1)
    full_us = per_call_us(lambda: full.run(["probabilities"], {"X": x1}))
    cut_us = per_call_us(lambda: cut._sess.run(["probabilities"], {"X": x1}, run_options))
    print(f"75%-compacted MLP, full graph public run: {full_us:.2f} us")
    print(f"75%-compacted MLP, cut graph compiled run: {cut_us:.2f} us")
    served_us = per_call_us(lambda: served.predict_proba(x1))
    print(f"75%-compacted MLP, OnnxPredictor.predict_proba: {served_us:.2f} us")
    with torch.inference_mode():
        xt = torch.from_numpy(x1)
        dense_module, compact_module = dense.module_.eval(), compacted.module_.eval()
        dense_fw, compact_fw = (per_call_us(lambda m=m: m(xt)) for m in (dense_module, compact_module))
    print(f"raw torch forward: dense {dense_fw:.2f} us, compacted {compact_fw:.2f} us")
    dense_us = per_call_us(lambda: dense.predict_proba(x1), 5_000)
    compact_us = per_call_us(lambda: compacted.predict_proba(x1), 5_000)
    print(f"skprune dense predict_proba: {dense_us:.2f} us; compacted {compact_us:.2f} us")


if __name__ == "__main__":
    main()
