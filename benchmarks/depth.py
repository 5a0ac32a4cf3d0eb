"""Depth against width at matched MACs: block pruning, channel pruning, both.

Data: scikit-learn's digits (1797 samples) scaled to [0, 1] and upsampled
to 1x16x16 (each pixel repeated 2x2), split 70/30
(``train_test_split(stratify=y, random_state=seed)``).

Network: a residual ``ConvNet(channels=(16, 32), n_blocks=2, hidden=0)``:
two stages ``conv -> BatchNorm -> ReLU -> 2 residual blocks -> max-pool``,
each block ``x + bn(conv(relu(bn(conv(x)))))``, then the output layer. All
8 block convolutions cost the same (16x16x16 channels at 16x16 pixels,
32x32 at 8x8), so removing a block removes the same MACs wherever it is.

For each seed the dense network is trained ``DENSE_EPOCHS`` epochs. Then, at
each MAC budget, the dense weights (the module instance) are pruned at once
(``OneShot(at=0)``, Taylor importance for all three: the same gradient
statistics, ``sensitivity_batches=5``) and fine-tuned ``TUNE_EPOCHS``
epochs at ``lr=3e-4``:

- **blocks**: ``BlockPruning(k)`` removes ``k`` of the 4 blocks;
- **channels**: ``ChannelPruning(s)``, ``s`` the channel share whose
  compacted network has the MACs nearest to the blocks row (the residual
  adds tie a stage's channels together, so they go as one group);
- **both**: ``CombinedPruning([BlockPruning(k - 1), ChannelPruning(s')])``,
  ``s'`` matched the same way.

The matched MACs are checked to lie within 10% of the blocks row. Every
pruned network is ``compact()``-ed (checked to predict like the masked one
to 1e-4) and timed on CPU with one torch thread in evaluation mode: the
median of repeated calls at batch 1 and batch 256, the models interleaved
round-robin so that load on the shared machine hits them alike.

Run: ``PYTHONPATH=. python benchmarks/depth.py`` (about 4 minutes on 2
shared cores).
"""

from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from skprune import (
    BlockPruning,
    ChannelPruning,
    CombinedPruning,
    ConvNet,
    OneShot,
    PrunedNetClassifier,
    PruningContext,
    compact_module,
)
from skprune._training._masks import MaskStore

SEEDS = (0, 1)
DENSE_EPOCHS = 12
TUNE_EPOCHS = 5
BLOCKS_REMOVED = (2, 3)  # of 4: about 1/2 and 1/3 of the MACs left
ARCH = dict(module__channels=(16, 32), module__n_blocks=2, module__hidden=0)
COMMON = dict(batch_size=64, alpha=1e-4)


def count_macs(module: nn.Module, sample: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of one sample (Conv2d and Linear layers)."""
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            total += output[0].numel() * per_output
        else:
            total += layer.in_features * layer.out_features

    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.no_grad():
            module.eval()(sample[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total


def structure_macs(module: nn.Module, pruner, sample: torch.Tensor) -> int:
    """MACs of ``module`` pruned by ``pruner`` and compacted (random importance: the structure counts)."""
    module = copy.deepcopy(module)
    masks = MaskStore()
    parts = [part for _, part in pruner.pruners] if isinstance(pruner, CombinedPruning) else [pruner]
    for part in parts:
        generator = torch.Generator().manual_seed(0)
        context = PruningContext(
            epoch=0, n_epochs=1, step=0, target=part.step_target(1.0), generator=generator
        )
        masks.update(part.compute_masks(module, masks, context))
    masks.apply(module)
    return count_macs(compact_module(module), sample)


def matched_share(module, target: int, sample, blocks: int) -> float:
    """The channel share (to 0.01) whose network, ``blocks`` blocks removed, has MACs nearest ``target``.

    MACs fall as the share grows: bisection.
    """

    def macs(share: float) -> int:
        parts = [("channels", ChannelPruning(share, importance="l2"))]
        if blocks:
            parts.insert(0, ("blocks", BlockPruning(blocks, importance="random")))
        return structure_macs(module, CombinedPruning(parts), sample)

    low, high = 0, 80  # hundredths
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if macs(middle / 100) > target else (low, middle)
    return min((low / 100, high / 100), key=lambda share: abs(macs(share) - target))


def latency(
    modules: dict[str, nn.Module], sample1, sample256, rounds: int = 15
) -> dict[str, tuple[float, float]]:
    """Median seconds per call at batch 1 and 256, models interleaved round-robin."""
    times = {name: ([], []) for name in modules}
    with torch.inference_mode():
        for module in modules.values():
            module.eval()
            module(sample1), module(sample256)  # warm up
        for _ in range(rounds):
            for name, module in modules.items():
                start = time.perf_counter()
                for _ in range(20):
                    module(sample1)
                times[name][0].append((time.perf_counter() - start) / 20)
                start = time.perf_counter()
                module(sample256)
                times[name][1].append(time.perf_counter() - start)
    return {name: (float(np.median(a)), float(np.median(b))) for name, (a, b) in times.items()}


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8).repeat(2, axis=2).repeat(2, axis=3)
    rows = []
    for seed in SEEDS:
        Xtr, Xte, ytr, yte = train_test_split(images, y, test_size=0.3, stratify=y, random_state=seed)
        sample = torch.as_tensor(Xte[:1])
        dense = PrunedNetClassifier(ConvNet, max_epochs=DENSE_EPOCHS, random_state=seed, **ARCH, **COMMON)
        dense.fit(Xtr, ytr)
        dense_macs = count_macs(dense.module_, sample)
        modules = {"dense": dense.module_}
        rows.append(
            {
                "seed": seed,
                "budget": "dense",
                "model": "dense",
                "accuracy": dense.score(Xte, yte),
                "macs": dense_macs,
            }
        )
        for k in BLOCKS_REMOVED:
            target = structure_macs(dense.module_, BlockPruning(k, importance="random"), sample)
            share = matched_share(dense.module_, target, sample, blocks=0)
            share_both = matched_share(dense.module_, target, sample, blocks=k - 1)
            candidates = {
                f"blocks: {k} of 4 removed": BlockPruning(k, importance="taylor", schedule=OneShot(at=0)),
                f"channels: {share:.0%} removed": ChannelPruning(
                    share, importance="taylor", schedule=OneShot(at=0)
                ),
                f"both: {k - 1} block(s) + {share_both:.0%} channels": CombinedPruning(
                    [
                        ("blocks", BlockPruning(k - 1, importance="taylor", schedule=OneShot(at=0))),
                        ("channels", ChannelPruning(share_both, importance="taylor", schedule=OneShot(at=0))),
                    ]
                ),
            }
            for name, pruner in candidates.items():
                t = time.perf_counter()
                net = PrunedNetClassifier(
                    copy.deepcopy(dense.module_),
                    pruner=pruner,
                    max_epochs=TUNE_EPOCHS,
                    lr=3e-4,
                    random_state=seed,
                    **COMMON,
                ).fit(Xtr, ytr)
                compacted = net.compact()
                gap = np.abs(compacted.predict_proba(Xte) - net.predict_proba(Xte)).max()
                assert gap < 1e-4, (name, gap)
                macs = count_macs(compacted.module_, sample)
                assert abs(macs - target) <= 0.1 * target, (name, macs, target)
                modules[f"{k}:{name}"] = compacted.module_
                rows.append(
                    {
                        "seed": seed,
                        "budget": f"~{target / dense_macs:.0%} MACs",
                        "model": name,
                        "accuracy": compacted.score(Xte, yte),
                        "macs": macs,
                        "fine-tune s": time.perf_counter() - t,
                    }
                )
        timed = latency(modules, sample, torch.as_tensor(Xte[:256]))
        keys = ["dense"] + [k for k in modules if k != "dense"]
        for row, key in zip([r for r in rows if r["seed"] == seed], keys):
            row["ms batch 1"], row["ms batch 256"] = (1e3 * v for v in timed[key])
    frame = pd.DataFrame(rows)
    frame["accuracy"] *= 100
    # speed-ups are ratios to the dense network timed in the same interleaved rounds (same seed)
    dense_rows = frame[frame["model"] == "dense"].set_index("seed")
    for column in ("ms batch 1", "ms batch 256"):
        frame[f"speed-up {column[3:]}"] = frame["seed"].map(dense_rows[column]) / frame[column]
    frame["MACs vs dense"] = frame["macs"] / frame["seed"].map(dense_rows["macs"])
    summary = (
        frame.groupby(["budget", "model"], sort=False)
        .agg(
            accuracy=("accuracy", "mean"),
            acc_min=("accuracy", "min"),
            macs_vs_dense=("MACs vs dense", "mean"),
            speedup_batch_1=("speed-up batch 1", "mean"),
            speedup_batch_256=("speed-up batch 256", "mean"),
            ms_batch_1=("ms batch 1", "median"),
            ms_batch_256=("ms batch 256", "median"),
        )
        .reset_index()
    )
    pd.set_option("display.width", 200)
    print(frame.round(3).to_string(index=False))
    print()
    print(
        summary.round(3).to_markdown(index=False)
        if _has_tabulate()
        else summary.round(3).to_string(index=False)
    )
    print(f"\n{time.perf_counter() - started:.0f} s in all")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
