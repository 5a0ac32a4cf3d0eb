"""How a target sparsity is shared between layers, and the floor that keeps every layer connected.

Score-based pruners rank weights; an *allocation* decides which weights
compete with which:

``"lamp"`` (the default)
    Layer-adaptive global ranking (Lee et al., ICLR 2021, "Layer-adaptive
    sparsity for magnitude-based pruning"). Within each layer, the score
    ``s`` of a surviving weight becomes ``s**2 / sum(s'**2 for s' >= s)``
    (over surviving weights of the same layer), then all layers are ranked
    together. The largest weight of every layer scores 1, so a layer whose
    weights are small as a whole (the output layer of a regressor, a layer
    with a large fan-in) is not emptied, while layers still end with
    different sparsities as in plain global ranking.
``"global"``
    Plain global ranking of the raw scores (Han et al. 2015). Layers of
    small weights can lose almost every weight.
``"erk"``
    Erdős–Rényi-Kernel layer densities (Evci et al. 2020, RigL): the density
    of a layer is proportional to ``sum(shape) / prod(shape)``, scaled so
    that the whole network reaches the target; weights are ranked within
    each layer.
``"layer"``
    Every layer pruned to the same sparsity.

Whatever the allocation, a **connectivity floor** is kept: every output
unit keeps a path from the inputs through surviving weights (the weights of
:func:`skprune.nn._paths.reserve_paths`, chosen by the pruner's own scores:
for each output the greedy best-scoring chain input -> hidden -> ... ->
output, sharing chains between outputs), every output unit of the network's
output layer keeps its highest-scoring surviving incoming weight, and every
selected layer keeps at least its highest-scoring surviving weight. These are
reserved before the rest is ranked, so no pruner leaves a dead network or
empties a layer; at extreme targets on tiny networks the reached sparsity can
be slightly below the target by those few weights.
"""

from __future__ import annotations

import math

import torch

__all__ = ["ALLOCATIONS", "allocate", "allocate_folds"]

ALLOCATIONS = ("lamp", "global", "erk", "layer")


def allocate(
    allocation: str,
    names: list[str],
    scores: dict[str, torch.Tensor],
    keep: dict[str, torch.Tensor],
    target: float,
    output_name: str | None,
    reserved: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Return new keep masks reaching ``target`` sparsity over ``names`` with ``allocation``.

    Parameters
    ----------
    allocation : {"lamp", "global", "erk", "layer"}
    names : list of str
        Parameter names of the selected weights, in network order.
    scores : dict of str to Tensor
        Importance per weight (higher = keep), checked finite-or-inf, no NaN.
    keep : dict of str to bool Tensor
        Current keep masks (pruned weights stay pruned).
    target : float
        Fraction of the selected weights to prune.
    output_name : str or None
        Parameter name of the network's output layer (each of its rows
        keeps one weight), or ``None`` when it is not selected.
    reserved : dict of str to bool Tensor, optional
        Weights that must survive besides the floor: the paths from the
        inputs to every output (:func:`skprune.nn._paths.reserve_paths`).

    Returns
    -------
    dict of str to bool Tensor
    """

    def one(tensors):
        return None if tensors is None else {n: t.unsqueeze(0) for n, t in tensors.items()}

    masks = allocate_folds(allocation, names, one(scores), one(keep), target, output_name, one(reserved))
    return {n: mask[0] for n, mask in masks.items()}


def allocate_folds(
    allocation: str,
    names: list[str],
    scores: dict[str, torch.Tensor],
    keep: dict[str, torch.Tensor],
    target: float,
    output_name: str | None,
    reserved: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """:func:`allocate` for ``k`` networks of the same shape at once (each tensor stacked ``[k, ...]``).

    Each network is ranked on its own, exactly as :func:`allocate` ranks it
    alone: the batched cross-validation of :class:`~skprune.PrunedNetCV`
    computes the masks of every fold in one pass of tensor operations
    instead of ``k``.
    """
    protected = _connectivity_floor(names, scores, keep, output_name)
    for n, r in (reserved or {}).items():
        if n not in protected:
            continue
        r = r.to(protected[n].device) & keep[n]
        per_fold = [r.shape[0]] + [1] * (r.dim() - 1)
        if n == output_name and r.dim() >= 3:
            # a row with a reserved weight needs no floor weight of its own
            covered = (
                r.reshape(r.shape[0], r.shape[1], -1).any(dim=2).view(*r.shape[:2], *([1] * (r.dim() - 2)))
            )
            protected[n] = r | (protected[n] & ~covered)
        else:  # the layer keeps weights: its reserved ones, or the floor where no path could be reserved
            protected[n] = torch.where(r.reshape(r.shape[0], -1).any(dim=1).view(per_fold), r, protected[n])
    if allocation == "lamp":
        ranked = {n: _lamp_scores(scores[n], keep[n]) for n in names}
        return _prune_lowest(names, ranked, keep, target, protected)
    if allocation == "global":
        return _prune_lowest(names, scores, keep, target, protected)
    if allocation == "layer":
        densities = {n: 1.0 - float(target) for n in names}
    elif allocation == "erk":
        densities = _erk_densities({n: tuple(scores[n].shape[1:]) for n in names}, 1.0 - float(target))
    else:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}.")
    out = {}
    for n in names:
        out.update(_prune_lowest([n], scores, keep, 1.0 - densities[n], protected))
    return out


def _connectivity_floor(names, scores, keep, output_name) -> dict[str, torch.Tensor]:
    """Weights that must survive (``[k, ...]`` tensors): the best of every output row and of every layer."""
    protected = {}
    for n in names:
        s = torch.where(keep[n], _finite(scores[n]), -torch.inf)
        k = s.shape[0]
        if n == output_name and s.dim() >= 3:
            rows = s.reshape(k, s.shape[1], -1)
            floor = torch.zeros_like(rows, dtype=torch.bool).scatter_(
                2, rows.argmax(dim=2, keepdim=True), True
            )
        else:
            flat = s.reshape(k, -1)
            floor = torch.zeros_like(flat, dtype=torch.bool)
            if flat.shape[1]:
                floor.scatter_(1, flat.argmax(dim=1, keepdim=True), True)
        protected[n] = floor.view_as(keep[n]) & keep[n]
    return protected


def _lamp_scores(score: torch.Tensor, keep: torch.Tensor, gather: bool | None = None) -> torch.Tensor:
    """LAMP score of each surviving weight of each layer of ``score`` (``[k, ...]``); pruned ones get -inf.

    With ``gather`` (the default on the CPU) the surviving finite scores of
    each network are gathered and sorted; otherwise (the default on an
    accelerator) the whole layers are sorted with the others set to 0 (they
    add nothing to a tail sum, and a survivor scoring 0 gets 0 either way),
    which gives the same scores without a round trip to the host.
    """
    flat = score.reshape(score.shape[0], -1).to(torch.float64)
    alive = keep.reshape(keep.shape[0], -1)
    # a score of -inf ranks below, and +inf above, every LAMP score (which lie in [0, 1])
    out = torch.full_like(flat, -1.0).masked_fill_(flat > 0, 2.0)
    finite = torch.isfinite(flat) & alive
    if flat.device.type == "cpu" if gather is None else gather:
        for row, (values, rows_finite) in enumerate(zip(flat, finite)):
            if rows_finite.any():
                survivors = values[rows_finite]
                out[row, rows_finite] = _lamp_of_finite(survivors - survivors.min().clamp(max=0.0))
    else:
        shift = torch.where(finite, flat, torch.inf).amin(dim=1, keepdim=True).clamp(max=0.0)  # inf -> 0
        out = torch.where(finite, _lamp_of_finite(torch.where(finite, flat - shift, 0.0)), out)
    return torch.where(alive, out, -torch.inf).view_as(score)


def _lamp_of_finite(values: torch.Tensor) -> torch.Tensor:
    """LAMP scores of non-negative finite ``values`` along the last dimension.

    ``v**2 / sum(v'**2 for v' ranked at or above v)``; equal values rank in
    index order (a stable sort), so the first of them gets the lowest score.
    """
    squares = values.pow(2)
    sorted_squares, order = torch.sort(squares, dim=-1, stable=True)
    # sum of the squares of this weight and every larger one in the layer
    tail = torch.flip(torch.cumsum(torch.flip(sorted_squares, [-1]), -1), [-1])
    lamp_sorted = torch.where(tail > 0, sorted_squares / tail.clamp_min(1e-300), 1.0)
    return torch.empty_like(values).scatter_(-1, order, lamp_sorted)


def _erk_densities(shapes: dict[str, tuple], density: float) -> dict[str, float]:
    """Erdős–Rényi-Kernel density of each layer so that the total density is ``density``."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: sum(s) / sizes[n] for n, s in shapes.items()}
    total_keep = density * sum(sizes.values())
    dense: set[str] = set()
    while True:
        free = [n for n in shapes if n not in dense]
        budget = total_keep - sum(sizes[n] for n in dense)
        weighted = sum(raw[n] * sizes[n] for n in free)
        eps = budget / weighted if weighted > 0 else 0.0
        over = [n for n in free if eps * raw[n] > 1.0]
        if not over:
            break
        dense.update(over)
    return {n: 1.0 if n in dense else max(0.0, min(1.0, eps * raw[n])) for n in shapes}


def _finite(score: torch.Tensor) -> torch.Tensor:
    """``score`` with infinities clamped to the largest finite values of its dtype (order kept)."""
    info = torch.finfo(score.dtype)
    return score.clamp(min=info.min, max=info.max)


def _prune_lowest(names, scores, keep, target, protected) -> dict[str, torch.Tensor]:
    """Prune the lowest ``scores`` (``[k, ...]``, each network alone) to ``target``, sparing ``protected``."""
    # pruned entries rank strictly first and protected ones strictly last, whatever the scores of the
    # others (a score of -inf must not tie with, and so revive, an entry pruned before)
    k = keep[names[0]].shape[0]
    flat_scores = torch.cat(
        [
            torch.where(
                keep[n], torch.where(protected[n], torch.inf, _finite(scores[n])), -torch.inf
            ).reshape(k, -1)
            for n in names
        ],
        dim=1,
    )
    flat_keep = torch.cat([keep[n].reshape(k, -1) for n in names], dim=1)
    flat_protected = torch.cat([protected[n].reshape(k, -1) for n in names], dim=1)
    counts = torch.stack([flat_protected.sum(dim=1), (~flat_keep).sum(dim=1)], dim=1).tolist()  # one sync
    n_total = flat_scores.shape[1]
    new_keep = torch.ones(k, n_total, dtype=torch.bool, device=flat_scores.device)
    for row, (n_protected, n_pruned) in enumerate(counts):
        n_prune = min(max(int(round(float(target) * n_total)), n_pruned), n_total - n_protected)
        if n_prune > 0:
            new_keep[row] = ~_lowest(flat_scores[row], n_prune)
    out, offset = {}, 0
    for n in names:
        size = scores[n][0].numel()
        out[n] = new_keep[:, offset : offset + size].reshape(scores[n].shape)
        offset += size
    return out


def _lowest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` lowest entries of 1-D ``scores`` (``1 <= k <= len``), equal ones taken first come first.

    The first ``k`` of a stable ascending sort, found by selection: every
    entry below the ``k``-th smallest value, then as many entries equal to
    it as are still missing, in index order (no sort of the whole array).
    """
    threshold = torch.kthvalue(scores, k).values
    below = scores < threshold
    ties = scores == threshold
    missing = k - below.sum()
    return below | (ties & (torch.cumsum(ties, 0) <= missing))
