"""GPU training time of skprune against a hand-written PyTorch loop, measured in the same run.

Settings of issue 16 (all Adam lr 1e-3, the same epochs for every contender):

* MLP (512, 256) on ``make_classification(200000, 64)`` (10 classes), batch
  256 and 1024;
* the default ``ConvNet`` on 3x32x32 images (``--n-images`` random images,
  10 classes from random projections), batch 256.

Contenders: the baseline, a hand-written eager loop with ``torch.optim.Adam``
defaults and the L2 penalty (``alpha=1e-4``) through autograd
(``benchmarks/_handwritten.py``); the same loop without L2; stock skorch
(MLP only, no L2); skprune with ``compile=False`` (the eager step), dense and
``MagnitudePruning(0.9)``; skprune with its defaults (``compile="auto"``: the
CUDA-graphed step where it is safe), dense and pruned. Each
fit is timed end to end (data validation and transfer, capture and pruning
steps included) and reported per optimizer step. The eager and graphed fits
of the same seed are compared (largest difference of predicted
probabilities).

``--large`` adds issue 27's setting: an MLP (256, 128) on 16M rows x 64
features with every other setting at skprune's defaults (batch 64), one
epoch, ``compile=False`` against the defaults, in microseconds per
row-epoch (the goal: the defaults at least 4x faster).

Run on a machine with a CUDA GPU: ``PYTHONPATH=. python benchmarks/gpu_fit.py [--large]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification

from skprune import MLP, ConvNet, MagnitudePruning, PrunedNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handwritten import handwritten_fit, stock_skorch_fit  # noqa: E402

ALPHA = 1e-4


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - start, result


def contenders(kind, X, y, epochs, batch_size, device):
    n_in = X.shape[1]

    def module():
        if kind == "mlp":
            return MLP(n_in, 10, hidden_layer_sizes=(512, 256))
        return ConvNet(int(np.prod(X.shape[1:])), 10, input_shape=X.shape[1:])

    def handwritten(alpha):
        def fit(seed):
            Xt = torch.as_tensor(X, device=device)
            yt = torch.as_tensor(y, dtype=torch.long, device=device)
            torch.manual_seed(seed)
            return handwritten_fit(
                module().to(device), Xt, yt, epochs=epochs, batch_size=batch_size, alpha=alpha, seed=seed
            )

        return fit

    def skprune(**extra):
        def fit(seed):
            net_module = MLP if kind == "mlp" else ConvNet
            kw = {"module__hidden_layer_sizes": (512, 256)} if kind == "mlp" else {}
            return PrunedNetClassifier(
                net_module,
                max_epochs=epochs,
                batch_size=batch_size,
                alpha=ALPHA,
                random_state=seed,
                device=device,
                **kw,
                **extra,
            ).fit(X, y)

        return fit

    def stock(seed):
        return stock_skorch_fit(
            X, y, hidden=(512, 256), n_classes=10, epochs=epochs, batch_size=batch_size, seed=seed,
            device=device,
        )

    rows = {
        "hand-written eager loop, L2 (baseline)": handwritten(ALPHA),
        "hand-written eager loop, no L2": handwritten(0.0),
    }
    if kind == "mlp":
        rows["stock skorch (no L2)"] = stock
    rows.update(
        {
            "skprune eager dense": skprune(compile=False),
            "skprune eager magnitude 90%": skprune(compile=False, pruner=MagnitudePruning(0.9)),
            "skprune defaults dense": skprune(),
            "skprune defaults magnitude 90%": skprune(pruner=MagnitudePruning(0.9)),
        }
    )
    return rows


def run_setting(title, kind, X, y, epochs, batch_size, repeats, device):
    rows = contenders(kind, X, y, epochs, batch_size, device)
    # warm-up: CUDA context, kernels, cuBLAS handles
    for fn in contenders(kind, X[: 8 * batch_size], y[: 8 * batch_size], 1, batch_size, device).values():
        fn(0)
    times = {name: [] for name in rows}
    fitted = {}
    for rep in range(repeats):
        for name, fn in rows.items():
            seconds, result = timed(lambda fn=fn, rep=rep: fn(rep))
            times[name].append(seconds)
            if rep == 0:
                fitted[name] = result
    steps = epochs * -(-len(X) // batch_size)
    med = {name: float(np.median(t)) for name, t in times.items()}
    base = med["hand-written eager loop, L2 (baseline)"]
    print(
        f"\n{title}: batch {batch_size}, {epochs} epochs ({steps} steps), "
        f"median of {repeats} interleaved fits"
    )
    print(f"{'':40s} {'fit s':>7s} {'ms/step':>8s} {'vs baseline':>12s} {'speed-up':>9s}")
    for name, value in med.items():
        print(f"{name:40s} {value:7.2f} {1e3 * value / steps:8.3f} {value / base:12.3f} {base / value:9.2f}x")
    for label, (a, b) in {
        "pruned/dense eager": ("skprune eager magnitude 90%", "skprune eager dense"),
        "pruned/dense defaults": ("skprune defaults magnitude 90%", "skprune defaults dense"),
    }.items():
        print(f"{label}: {med[a] / med[b]:.3f}")
    probe = X[:10000]
    for label in ("dense", "magnitude 90%"):
        eager = fitted[f"skprune eager {label}"].predict_proba(probe)
        default = fitted[f"skprune defaults {label}"]
        graphed = default.predict_proba(probe)
        print(
            f"eager vs defaults {label}: max |d proba| = {np.abs(eager - graphed).max():.2e} "
            f"(defaults' training_step_: {default.training_step_})"
        )


def run_large(n_rows: int, device: str) -> None:
    """Issue 27's row: 16M x 64, MLP (256, 128), defaults, one epoch; compile=False vs the defaults."""
    generator = torch.Generator(device=device).manual_seed(0)
    X = torch.randn(n_rows, 64, device=device, generator=generator)
    y = (X[:, :32] @ torch.randn(32, 10, device=device, generator=generator)).argmax(1)
    X, y = X.cpu().numpy(), y.cpu().numpy()  # as a user has it: NumPy arrays in memory
    params = dict(module__hidden_layer_sizes=(256, 128), max_epochs=1, random_state=0, device=device)
    PrunedNetClassifier(**params).fit(X[:20000], y[:20000])  # warm-up
    results = {}
    for name, extra in (("compile=False (eager)", {"compile": False}), ("defaults", {})):
        seconds, net = timed(lambda extra=extra: PrunedNetClassifier(**params, **extra).fit(X, y))
        results[name] = (seconds, net)
    batch = PrunedNetClassifier().batch_size
    print(f"\nMLP (256, 128), {n_rows:,} rows x 64, defaults (batch {batch}), 1 epoch")
    print(f"{'':24s} {'fit s':>7s} {'us/row-epoch':>13s}  training_step_")
    for name, (seconds, net) in results.items():
        print(f"{name:24s} {seconds:7.2f} {1e6 * seconds / n_rows:13.3f}  {net.training_step_}")
    eager, default = results["compile=False (eager)"][0], results["defaults"][0]
    print(f"defaults speed-up over compile=False: {eager / default:.2f}x (goal >= 4x)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-images", type=int, default=50_000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--large", action="store_true", help="add the 16M-row setting of issue 27")
    parser.add_argument("--large-rows", type=int, default=16_000_000)
    parser.add_argument("--skip-standard", action="store_true", help="only the --large setting")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU here: run with --device cpu for a smoke test")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"device: {name}; torch {torch.__version__}")
    if args.large:
        run_large(args.large_rows, args.device)
    if args.skip_standard:
        return
    X, y = make_classification(args.n_samples, 64, n_informative=32, n_classes=10, random_state=0)
    X = X.astype(np.float32)
    for batch_size in (256, 1024):
        run_setting(
            "MLP (512, 256), 200k x 64" if args.n_samples == 200_000 else f"MLP, {X.shape}",
            "mlp",
            X,
            y,
            args.epochs,
            batch_size,
            args.repeats,
            args.device,
        )
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.n_images, 3, 32, 32), dtype=np.float32)
    labels = (images.reshape(len(images), -1) @ rng.standard_normal((3 * 32 * 32, 10))).argmax(1)
    run_setting(
        "ConvNet (default), 3x32x32 images",
        "conv",
        images,
        labels,
        args.epochs,
        256,
        args.repeats,
        args.device,
    )


if __name__ == "__main__":
    main()
