"""What ONNX Runtime's spinning worker threads cost the work that runs next on the same cores.

Digits, an MLP (256, 128); torch and BLAS on 2 threads. Prints the median
time of skprune's dense ``predict_proba`` on 1,024 rows alone, right after a
2-thread ``OnnxPredictor`` call (ONNX Runtime's default: worker threads
spin, waiting for the next call), and right after one made with
``allow_spinning=False``.

Run: ``PYTHONPATH=. python benchmarks/onnx_spinning.py`` (on 2 cores, or
``taskset -c 0,1``). Compare figures of one run.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

import skprune
from skprune import OnnxPredictor, PrunedNetClassifier


def median_ms(before, call, rounds=30) -> float:
    """Median time of ``call()`` in milliseconds, each time right after ``before()``."""
    times = []
    for _ in range(rounds):
        before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    net = PrunedNetClassifier(module__hidden_layer_sizes=(256, 128), max_epochs=3, random_state=0).fit(X, y)
    batch = X[np.random.RandomState(0).randint(0, len(X), 1024)]
    model = skprune.to_onnx(net, X[:2])
    torch.set_num_threads(2)
    with threadpool_limits(2):
        spinning = OnnxPredictor(model, n_threads=2)
        quiet = OnnxPredictor(model, n_threads=2, allow_spinning=False)
        predict = lambda: net.predict_proba(batch)  # noqa: E731
        alone = median_ms(lambda: None, predict)
        after_spinning = median_ms(lambda: spinning.predict_proba(batch), predict)
        after_quiet = median_ms(lambda: quiet.predict_proba(batch), predict)
    print(f"skprune dense predict_proba, 1,024 rows, 2 threads: alone {alone:.2f} ms")
    print(f"  right after a spinning 2-thread ONNX Runtime call: {after_spinning:.2f} ms")
    print(f"  right after an allow_spinning=False one: {after_quiet:.2f} ms")


if __name__ == "__main__":
    main()
