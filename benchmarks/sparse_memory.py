"""Peak memory of a fit on a 20,000 x 50,000 CSR matrix at 0.1% density.

The dense float32 matrix would take 3.7 GiB; skprune keeps X sparse and
densifies one batch at a time. Prints the process's peak resident memory
before and after ``fit``. Run: ``python benchmarks/sparse_memory.py``.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import scipy.sparse as sp
import torch

from skprune import PrunedNetClassifier


def main():
    torch.set_num_threads(1)
    rng = np.random.RandomState(0)
    n, d, per_row = 20000, 50000, 50
    indices = np.sort(rng.randint(0, d, size=(n, per_row)), axis=1).ravel()
    data = rng.rand(n * per_row).astype(np.float32)
    X = sp.csr_matrix((data, indices, np.arange(0, n * per_row + 1, per_row)), shape=(n, d))
    y = np.asarray(X[:, :2000].sum(axis=1)).ravel() > 1.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=(16,), max_epochs=1, batch_size=256, random_state=0
    ).fit(X, y)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dense = n * d * 4 / 2**20
    sparse = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    print(
        f"CSR {n} x {d}, density {X.nnz / (n * d):.4f}: sparse storage {sparse:.0f} MiB, "
        f"dense would be {dense:.0f} MiB"
    )
    print(f"peak RSS before fit {before:.0f} MiB (python + torch + data), after fit {peak:.0f} MiB")
    print(
        f"fit added {peak - before:.0f} MiB ({(peak - before) / dense:.1%} of the dense size) "
        f"in {elapsed:.1f} s;"
        f" train accuracy {net.score(X[:2000], y[:2000]):.3f}"
    )


if __name__ == "__main__":
    main()
