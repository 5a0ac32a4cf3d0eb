"""Where a training step's time goes: torch.profiler and cProfile over one epoch.

For the hand-written loop with L2 (``benchmarks/_handwritten.py``), skprune's
eager step and (on CUDA) the graphed step, on an MLP (512, 256) over
``make_classification(n, 64)`` at batch 256: host (CPU) time per step by
operator, and on CUDA the number of kernels and GPU time per step. Also the
Python functions of a skprune fit by own time (cProfile).

Run: ``PYTHONPATH=. python benchmarks/step_profile.py [--device cuda] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch.profiler import ProfilerActivity, profile

from skprune import MLP, PrunedNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _handwritten import handwritten_fit  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-samples", type=int, default=25_600)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    X, y = make_classification(args.n_samples, 64, n_informative=32, n_classes=10, random_state=0)
    X = X.astype(np.float32)
    steps = args.n_samples // 256
    Xt = torch.as_tensor(X, device=args.device)
    yt = torch.as_tensor(y, dtype=torch.long, device=args.device)

    def hand():
        handwritten_fit(
            MLP(64, 10, hidden_layer_sizes=(512, 256)).to(args.device),
            Xt,
            yt,
            epochs=1,
            batch_size=256,
            alpha=1e-4,
        )

    def ours(**extra):
        return lambda: PrunedNetClassifier(
            module__hidden_layer_sizes=(512, 256),
            max_epochs=1,
            batch_size=256,
            random_state=0,
            device=args.device,
            **extra,
        ).fit(X, y)

    runs = {"hand-written loop, L2": hand, "skprune eager": ours()}
    if cuda:
        runs['skprune compile="step"'] = ours(compile="step")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    out = Path(args.out) if args.out else None
    for name, fn in runs.items():
        fn()  # warm-up
        with profile(activities=activities) as prof:
            fn()
            if cuda:
                torch.cuda.synchronize()
        events = prof.key_averages()
        table = events.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40)
        cpu_total = sum(e.self_cpu_time_total for e in events)
        line = f"\n== {name}: host time {cpu_total / steps:.0f} us/step over {steps} steps"
        if cuda:
            kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
            gpu_us = sum(e.self_device_time_total for e in kernels)
            launches = sum(e.count for e in kernels)
            line += f"; GPU kernels {launches / steps:.1f} per step, {gpu_us / steps:.0f} us/step of GPU time"
        print(line)
        print(table)
        if out is not None:
            (out / f"profile_{name.split()[0]}_{'gpu' if cuda else 'cpu'}.txt").write_text(
                line + "\n" + table
            )
    profiler = cProfile.Profile()
    profiler.enable()
    ours()()
    profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(18)
    print(f"\n== cProfile of a skprune fit ({args.device}), by own time\n" + stream.getvalue()[-4000:])


if __name__ == "__main__":
    main()
