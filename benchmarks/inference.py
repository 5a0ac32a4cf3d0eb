"""Inference cost of pruned models: compaction, sparse (CSR) weights; file sizes.

(int8 moved to ONNX Runtime; ``benchmarks/deployment.py`` measures it with
the ONNX Runtime and scikit-learn rows.)

Setting (from issue 5): CPU, ``torch.set_num_threads(2)``, an MLP with two
hidden layers of 1024 units on 100 features, predict on a batch of 1024.

1. Train the dense MLP on synthetic data, then prune copies of it and
   fine-tune briefly (the module instance keeps its trained weights):
   ``NeuronPruning`` 50% and 75% (then ``compact()``), unstructured
   ``MagnitudePruning`` 95% (then ``to_sparse()``).
2. Time ``predict_proba`` on one batch of 1024 (end to end, validation
   included, one forward pass) and the bare module forward of every
   variant, interleaved (one call of each variant per round, ``--repeats``
   rounds). Report the median and the best round, and speed-ups over dense
   measured in this one run. On a loaded machine two torch threads contend
   with other processes, which inflates medians of short calls; the best
   round shows the uncontended cost.
3. Report test accuracy of every variant and the sizes of files written by
   ``skprune.save`` (dense and pruned variants; int8 and CSR modules cannot
   be saved by it) and of ``torch.save(module.state_dict())`` for all.
4. Digits check: 50% of hidden units removed vs dense, test accuracy over
   ``--digits-seeds`` seeds.

Run: ``PYTHONPATH=. python benchmarks/inference.py`` (about 2-4 minutes on
2 shared cores). Timings on a shared machine are noisy: compare ratios from
one run, never absolute times across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split

import skprune
from skprune import MagnitudePruning, NeuronPruning, OneShot, PrunedNetClassifier
from skprune.deploy._export import state_bytes, stored_values


def _fine_tune(dense, pruner, X, y, epochs, seed):
    """Prune a copy of the trained dense network and fine-tune it (warm start)."""
    net = PrunedNetClassifier(
        module__hidden_layer_sizes=dense.module_.hidden_layer_sizes,
        module__n_features_in=dense.n_features_in_,
        module__n_outputs=len(dense.classes_),
        pruner=pruner,
        max_epochs=epochs,
        lr=1e-3,
        batch_size=256,
        random_state=seed,
        warm_start=True,
    ).initialize()
    net.module_.load_state_dict(dense.module_.state_dict())
    return net.fit(X, y)


def _time_variants(variants, Xb, repeats):
    """Median and best seconds of predict_proba and of the bare forward, interleaved."""
    X_t = torch.as_tensor(Xb)
    predict = {name: [] for name in variants}
    forward = {name: [] for name in variants}
    for est in variants.values():
        est.set_params(batch_size=len(Xb))  # one forward pass per predict
        est.predict_proba(Xb)  # warm up
        est.module_.eval()
    for _ in range(repeats):
        for name, est in variants.items():
            start = time.perf_counter()
            est.predict_proba(Xb)
            predict[name].append(time.perf_counter() - start)
            with torch.no_grad():
                start = time.perf_counter()
                est.module_(X_t)
                forward[name].append(time.perf_counter() - start)
    stats = {}
    for name in variants:
        stats[name] = {
            "predict_median": statistics.median(predict[name]),
            "predict_best": min(predict[name]),
            "forward_median": statistics.median(forward[name]),
            "forward_best": min(forward[name]),
        }
    return stats


def _file_bytes(est):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.skp")
        try:
            skprune.save(est, path)
        except skprune.PersistenceError:
            return np.nan
        return os.path.getsize(path)


def inference_table(args):
    X, y = make_classification(n_samples=5000, n_features=100, n_informative=40, n_classes=5, random_state=0)
    X = X.astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=2000, random_state=0, stratify=y)
    t0 = time.perf_counter()
    dense = PrunedNetClassifier(
        module__hidden_layer_sizes=(1024, 1024),
        max_epochs=args.epochs,
        lr=1e-3,
        batch_size=256,
        random_state=0,
    ).fit(X_train, y_train)
    neuron50 = _fine_tune(
        dense, NeuronPruning(0.5, schedule=OneShot(at=0)), X_train, y_train, args.ft_epochs, 1
    )
    neuron75 = _fine_tune(
        dense, NeuronPruning(0.75, schedule=OneShot(at=0)), X_train, y_train, args.ft_epochs, 2
    )
    mag95 = _fine_tune(
        dense, MagnitudePruning(0.95, schedule=OneShot(at=0)), X_train, y_train, args.ft_epochs, 3
    )
    train_s = time.perf_counter() - t0
    compact50 = neuron50.compact()
    compact75 = neuron75.compact()
    variants = {
        "dense": dense,
        "neurons -50% (masked)": neuron50,
        "neurons -50% compacted": compact50,
        "neurons -75% compacted": compact75,
        "unstructured 95% (masked, dense)": mag95,
        "unstructured 95% CSR": skprune.to_sparse(mag95),
        # int8 now runs in ONNX Runtime (skprune.quantize_int8): see benchmarks/deployment.py
    }
    Xb = X_test[:1024]
    timing = _time_variants(variants, Xb, args.repeats)
    dense_acc = dense.score(X_test, y_test)
    rows = []
    base = timing["dense"]
    for name, est in variants.items():
        acc = est.score(X_test, y_test)
        t = timing[name]
        rows.append(
            {
                "variant": name,
                "values_stored": stored_values(est.module_),
                "predict_ms": 1e3 * t["predict_median"],
                "speedup": base["predict_median"] / t["predict_median"],
                "best_ms": 1e3 * t["predict_best"],
                "best_speedup": base["predict_best"] / t["predict_best"],
                "fwd_speedup": base["forward_median"] / t["forward_median"],
                "test_acc": acc,
                "acc_change_pts": 100 * (acc - dense_acc),
                "save_MB": _file_bytes(est) / 1e6,
                "state_dict_MB": state_bytes(est.module_) / 1e6,
            }
        )
    table = pd.DataFrame(rows)
    equal50 = float(np.abs(neuron50.predict_proba(X_test) - compact50.predict_proba(X_test)).max())
    equal75 = float(np.abs(neuron75.predict_proba(X_test) - compact75.predict_proba(X_test)).max())
    return table, train_s, equal50, equal75


def digits_table(args):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    rows = []
    for seed in range(args.digits_seeds):
        kwargs = dict(
            max_epochs=30, lr=3e-3, batch_size=64, random_state=seed, module__hidden_layer_sizes=(128,)
        )
        dense = PrunedNetClassifier(**kwargs).fit(X_train, y_train)
        pruned = PrunedNetClassifier(pruner=NeuronPruning(0.5), **kwargs).fit(X_train, y_train)
        compact = pruned.compact()
        rows.append(
            {
                "seed": seed,
                "dense_acc": dense.score(X_test, y_test),
                "pruned50_acc": pruned.score(X_test, y_test),
                "compacted_acc": compact.score(X_test, y_test),
                "hidden_units": f"128 -> {compact.module_.hidden_layer_sizes[0]}",
            }
        )
    table = pd.DataFrame(rows)
    table["diff_pts"] = 100 * (table["pruned50_acc"] - table["dense_acc"])
    return table


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15, help="interleaved timing rounds (median)")
    parser.add_argument("--epochs", type=int, default=8, help="dense training epochs")
    parser.add_argument("--ft-epochs", type=int, default=4, help="fine-tuning epochs after pruning")
    parser.add_argument("--digits-seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (issue 5: 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, load average {os.getloadavg()}")
    table, train_s, equal50, equal75 = inference_table(args)
    print(
        f"\nMLP 100-1024-1024-5, batch 1024, median of {args.repeats} interleaved rounds "
        f"(training took {train_s:.0f}s)"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"max |proba(masked) - proba(compacted)|: 50%: {equal50:.2e}, 75%: {equal75:.2e}")
    digits = digits_table(args)
    print("\nDigits (70/30 split), MLP(128), 30 epochs: dense vs NeuronPruning(0.5)")
    print(digits.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"mean difference: {digits['diff_pts'].mean():+.2f} points")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
