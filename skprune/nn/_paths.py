"""Paths from the inputs to the outputs through surviving weights.

A pruned network is dead when no input reaches an output: each layer can
keep weights and the network still predict one constant, because the
surviving weights of consecutive layers do not line up. Two tools live here:

:func:`unreachable_outputs`
    The check. It runs the network once on a structural copy: every
    Linear/Conv weight replaced by its keep mask times a fixed random
    positive factor (0 pruned), every bias and BatchNorm shift set to zero,
    BatchNorm scales to one. With non-negative weights and monotone
    activations, an output changes between a positive input and an
    all-zeros input exactly when some input reaches it through kept weights,
    whatever the graph (MLPs, ConvNets, residual adds, concatenations), as
    long as the forward can be run on a probe input. The random factors keep
    outputs that a module normalizes together (a softmax in its ``forward``)
    from cancelling: equal weights made every logit equal, so the
    probabilities never moved and every output looked cut. Such coupled
    outputs move together, so the check can only tell that none is reached.
:func:`reserve_paths`
    The construction the built-in pruners use. For each output unit it walks
    the unit graph of the layer chain backwards,
    greedily keeping at each layer the highest-scoring surviving weight
    that comes from a unit still reached from the inputs, down to the input
    layer: at most ``n_outputs * depth`` weights (outputs whose best chains
    meet share them), chosen by the pruner's own scores and reserved before
    the rest is ranked. Each output gets its own best chain rather than one
    shared chain: a single hidden unit feeding every output leaves a
    classifier almost no way to separate its classes. Through a
    convolution the chain keeps to kernel taps that read inside the input
    at every position (the centre tap under ``padding=k // 2``) where one
    survives: a chain of border taps could shift the path off a small
    feature map into the zero padding.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ._dropout import Dropout
from ._layers import iter_prunable_weights
from ._networks import MLP, ResidualBlock
from ._units import NORM_TYPES

__all__ = ["check_paths", "reserve_paths", "reserve_paths_folds", "unreachable_outputs"]

#: element-wise layers that map ``[0, inf)`` into ``[0, inf)`` strictly increasingly (Identity too)
_INCREASING = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ELU, nn.Softplus, nn.Identity)

#: square image sides tried for a network whose first layer is a convolution
_PROBE_SIDES = (8, 28, 32, 16, 64, 224)


def _probes(module: nn.Module, first: nn.Module) -> list[tuple[int, ...]]:
    """Input shapes (batch of one) to try for ``module``."""
    shape = getattr(module, "input_shape_", None) or getattr(module, "input_shape", None)
    shapes = []
    if shape is not None:
        try:
            shapes.append((1, *(int(v) for v in shape)))
        except (TypeError, ValueError):
            pass
    if isinstance(first, nn.Linear):
        shapes.append((1, first.in_features))
    elif isinstance(first, nn.Conv2d):
        c = first.in_channels
        shapes += [(1, c, s, s) for s in _PROBE_SIDES] + [(1, c * s * s) for s in _PROBE_SIDES]
    elif isinstance(first, nn.Conv1d):
        shapes += [(1, first.in_channels, s) for s in _PROBE_SIDES]
    return shapes


@torch.no_grad()
def _structural_copy(module: nn.Module, alive: dict[str, torch.Tensor]) -> nn.Module:
    """A float64 copy of ``module`` whose weights are the keep masks, biases and shifts zero."""
    probe = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
    generator = torch.Generator().manual_seed(0)  # fixed: the check is deterministic
    for name, _, layer in iter_prunable_weights(probe):
        keep = alive.get(name)
        weight = torch.ones_like(layer.weight) if keep is None else keep.to("cpu", torch.float64)
        factor = torch.rand(layer.weight.shape, generator=generator, dtype=torch.float64) + 0.5
        layer.weight.copy_(weight * factor)
        if getattr(layer, "bias", None) is not None:
            layer.bias.zero_()
    for sub in probe.modules():
        if isinstance(sub, NORM_TYPES):
            if sub.weight is not None:
                sub.weight.fill_(1.0)
                sub.bias.zero_()
            if sub.running_mean is not None:
                sub.running_mean.zero_()
                sub.running_var.fill_(1.0)
    return probe


@torch.no_grad()
def unreachable_outputs(module: nn.Module, alive: dict[str, torch.Tensor] | None = None) -> list[int] | None:
    """Indices of the outputs that no input reaches through surviving weights.

    Parameters
    ----------
    module : torch.nn.Module
        The network (not modified).
    alive : dict of str to bool Tensor, optional
        Keep mask of each prunable weight, by parameter name; a weight
        without an entry is fully kept. ``None`` reads the surviving weights
        from the module itself (nonzero entries).

    Returns
    -------
    list of int or None
        The unreachable output indices (empty when every output keeps a
        path), or ``None`` when the network could not be run on a probe input
        (then nothing is known).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skprune.nn._paths import unreachable_outputs
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    >>> alive = {"0.weight": torch.tensor([[True, True], [False, False]]),
    ...          "2.weight": torch.tensor([[True, False], [False, True]])}
    >>> unreachable_outputs(net, alive)  # output 1 reads hidden unit 1, which reads no input
    [1]
    """
    layers = list(iter_prunable_weights(module))
    if not layers:
        return None
    if alive is None:
        alive = {name: layer.weight.detach() != 0 for name, _, layer in layers}
    chain = _chain_of(module)
    if chain is not None:  # the probe's answer without running a copy of the network
        reached = _chain_reach(chain[0], chain[1], alive, None)
        if reached is not None:
            return [int(i) for i in torch.nonzero(~reached.cpu()).flatten()]
    return _probed_unreachable(module, alive, layers[0][2])


def _probed_unreachable(
    module: nn.Module, alive: dict[str, torch.Tensor], first: nn.Module
) -> list[int] | None:
    """:func:`unreachable_outputs` by running the structural copy on a positive and an all-zeros input."""
    probe = _structural_copy(module, alive)
    for shape in _probes(module, first):
        try:
            positive = torch.rand(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            ones = probe(positive + 0.5)
            zeros = probe(torch.zeros(shape, dtype=torch.float64))
        except Exception:  # a probe of the wrong shape: try the next one
            continue
        if not isinstance(ones, torch.Tensor) or ones.shape != zeros.shape or ones.dim() == 0:
            return None
        changed = (ones - zeros).reshape(ones.shape[0], -1).ne(0).any(dim=0)
        return [int(i) for i in torch.nonzero(~changed).flatten()]
    return None


def _chain_of(module: nn.Module) -> tuple[nn.Sequential, str] | None:
    """The ``nn.Sequential`` that is ``module``'s whole forward pass, and its parameters' prefix."""
    if type(module).forward is nn.Sequential.forward and isinstance(module, nn.Sequential):
        return module, ""
    layers = getattr(module, "layers", None)
    if isinstance(module, MLP) and type(module).forward is MLP.forward and isinstance(layers, nn.Sequential):
        return layers, "layers."
    return None


def _chain_reach(
    layers: nn.Sequential, prefix: str, alive: dict[str, torch.Tensor], reach: torch.Tensor | None
) -> torch.Tensor | None:
    """Which outputs of ``layers`` an input reaches through kept weights (``None``: not a plain chain).

    The structural probe of :func:`unreachable_outputs` computed on the unit
    graph: for Linear layers, residual adds and element-wise layers that are
    strictly increasing on ``[0, inf)`` (with non-negative weights, zero
    biases and a positive input, a unit of such a chain changes between the
    positive and the all-zeros input exactly when a reached unit feeds it
    through a kept weight), so no copy of the network is built or run. Any
    other layer returns ``None`` and the probe runs.
    """
    for name, layer in layers.named_children():
        path = f"{prefix}{name}"
        kind = type(layer)
        if kind is nn.Linear:
            if reach is None:
                reach = torch.ones(layer.in_features, dtype=torch.bool, device=layer.weight.device)
            if reach.numel() != layer.in_features:
                return None
            keep = alive.get(f"{path}.weight")
            if keep is None:
                reach = reach.any().expand(layer.out_features)
            else:
                reach = (keep.to(device=reach.device, dtype=torch.bool) & reach[None, :]).any(dim=1)
        elif kind is ResidualBlock and type(layer.branch) is nn.Sequential:
            if reach is None:
                return None
            branch = _chain_reach(layer.branch, f"{path}.branch.", alive, reach)
            if branch is None or branch.shape != reach.shape:
                return None
            reach = reach | branch
        elif kind is nn.Sequential:
            reach = _chain_reach(layer, f"{path}.", alive, reach)
            if reach is None:
                return None
        elif kind in _INCREASING or kind in (nn.Dropout, Dropout):  # Dropout: the identity in eval mode
            continue
        else:
            return None
    return reach


@torch.no_grad()
def reserve_paths(
    module: nn.Module, scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Weights to keep so that every output unit keeps a path from the inputs, chosen by ``scores``.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    scores : dict of str to Tensor
        Importance of each weight of the selected layers (higher = keep).
        Layers without scores are not pruned; their weights are ranked by
        magnitude to choose the path through them.
    keep : dict of str to bool Tensor
        Current keep masks of the selected layers (pruned entries are never
        chosen).

    Returns
    -------
    dict of str to bool Tensor
        For each selected layer, the entries to reserve (possibly none).
        Where the chain cannot be followed back to the input layer (a
        shortcut convolution, a concatenation), the walk stops there and the
        engine's check (:func:`unreachable_outputs`) has the last word.
    """

    def one(tensors):
        return {name: t.unsqueeze(0) for name, t in tensors.items()}

    return {name: r[0] for name, r in reserve_paths_folds([module], one(scores), one(keep)).items()}


@torch.no_grad()
def reserve_paths_folds(
    modules: list[nn.Module], scores: dict[str, torch.Tensor], keep: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """:func:`reserve_paths` of ``k`` networks of the same architecture at once.

    ``scores``, ``keep`` and the returned entries are stacked ``[k, ...]``;
    each network's paths are exactly those :func:`reserve_paths` reserves
    for it alone (the batched cross-validation of
    :class:`~skprune.PrunedNetCV` reserves every fold's in one walk).
    """
    reserved = {name: torch.zeros_like(k, dtype=torch.bool) for name, k in keep.items()}
    layers = {layer_name: (param, layer) for param, layer_name, layer in iter_prunable_weights(modules[0])}
    if not layers:
        return reserved
    first = next(iter(layers))
    feeder = _feeders(layers)
    reach: dict[str, torch.Tensor] = {}
    _walk(list(layers)[-1], modules, layers, scores, keep, reserved, feeder, first, reach)
    return reserved


def _feeders(layers: dict) -> dict[str, tuple[str, int]]:
    """Layer -> (the layer before it whose units it reads, inputs per unit), where the shapes say so.

    The unit graph of a chain (MLP, ConvNet, ``nn.Sequential``) read from the
    layers' order and sizes, without tracing: ``torch.fx`` patches
    ``nn.Module.__call__`` for every thread while it traces, which would
    disturb fits running in other threads. A layer whose predecessor's sizes
    do not match (a shortcut convolution, a concatenation) has no feeder and
    the walk stops there; the engine's check has the last word.
    """
    feeder = {}
    names = list(layers)
    for before, after in zip(names, names[1:]):
        a, b = layers[before][1], layers[after][1]
        if isinstance(a, nn.Linear) and isinstance(b, nn.Linear) and a.out_features == b.in_features:
            feeder[after] = (before, 1)
        elif isinstance(a, nn.Conv2d) and isinstance(b, nn.Conv2d):
            if a.out_channels == b.in_channels and b.groups == 1:
                feeder[after] = (before, 1)
        elif isinstance(a, nn.Conv2d) and isinstance(b, nn.Linear) and b.in_features % a.out_channels == 0:
            feeder[after] = (before, b.in_features // a.out_channels)
    return feeder


def _kept(layers, keep, layer_name, n_folds: int) -> torch.Tensor:
    param, layer = layers[layer_name]
    kept = keep.get(param)
    if kept is None:
        return torch.ones(n_folds, *layer.weight.shape, dtype=torch.bool, device=layer.weight.device)
    return kept


def _reached_inputs(layer_name, layers, keep, feeder, reach, n_folds: int) -> torch.Tensor | None:
    """Which inputs of ``layer_name`` each network reaches from its inputs (``None``: all, or unknown)."""
    source = feeder.get(layer_name)
    if source is None:  # the input layer reads the network inputs; any other: unknown
        return None
    producer, block = source
    if producer not in reach:
        reach[producer] = torch.zeros(0, dtype=torch.bool)  # a cycle guard; replaced below
        inputs = _reached_inputs(producer, layers, keep, feeder, reach, n_folds)
        kept = _kept(layers, keep, producer, n_folds)
        kept = kept.reshape(n_folds, kept.shape[1], kept.shape[2], -1).any(dim=3)
        if inputs is not None:
            kept = kept & inputs.to(kept.device)[:, None, :]
        reach[producer] = kept.any(dim=2)
    units = reach[producer]
    return units.repeat_interleave(block, dim=1) if units.numel() else None


def _in_bounds_taps(layer: nn.Module) -> torch.Tensor | None:
    """Kernel positions of a convolution that read inside the input at every output position (flat).

    A tap at offset ``i * dilation - padding`` reads the zero padding at the
    border positions unless ``i * dilation >= left`` and ``(k - 1 - i) *
    dilation >= right`` padding: with ``padding=k // 2`` only the centre
    tap, without padding every tap. A chain of border-reading taps can
    shift a path off the map (a 2x2 map after pooling, a residual branch of
    two more convolutions), leaving the spatial position a later Linear
    layer reads without signal. ``None`` for other layers.
    """
    if not isinstance(layer, nn.modules.conv._ConvNd) or layer.transposed:
        return None
    safe = torch.ones((), dtype=torch.bool)
    for dim, (size, dilation) in enumerate(zip(layer.kernel_size, layer.dilation)):
        total = (size - 1) * dilation
        if layer.padding_mode != "zeros" or layer.padding == "valid":
            left = right = 0  # no zero padding: every tap reads the input
        elif layer.padding == "same":
            left, right = total // 2, total - total // 2
        else:
            left = right = layer.padding[dim]
        taps = torch.arange(size) * dilation
        safe = safe.unsqueeze(-1) & ((taps >= left) & (total - taps >= right))
    return safe.reshape(-1)


def _prefer_in_bounds_taps(per_input: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Scores ``per_input`` (networks, units, inputs, taps), kept to in-bounds taps where possible.

    A unit keeps to the inputs that have a kept in-bounds tap, and to those
    taps, when it has any (:func:`_in_bounds_taps`); otherwise it chooses
    among all its kept taps, as for a layer without kernel positions.
    """
    safe = _in_bounds_taps(layer)
    if safe is None or bool(safe.all()) or safe.numel() != per_input.shape[3]:
        return per_input
    on_safe = per_input.masked_fill(~safe.to(per_input.device), -torch.inf)
    input_has = (on_safe > -torch.inf).any(dim=3, keepdim=True)  # (networks, units, inputs, 1)
    unit_has = input_has.any(dim=2, keepdim=True)
    return torch.where(unit_has, on_safe, per_input)


def _walk(layer_name, modules, layers, scores, keep, reserved, feeder, first, reach) -> None:
    """Reserve the greedy best chain from every output unit of ``layer_name`` down to the input layer.

    The chains of all output units of all ``k`` networks are followed
    together, one layer at a time: at each layer every unit on a chain takes
    its best-scoring kept incoming weight from a source unit still reached
    from the inputs (the first of equal ones), and that source is the
    chain's unit in the layer below. A chain that meets a unit without such
    a weight reserves nothing; where the units feeding a layer cannot be
    followed back, no chain does.
    """
    k = len(modules)
    n_units = layers[layer_name][1].weight.shape[0]
    device = layers[layer_name][1].weight.device
    folds = torch.arange(k, device=device)[:, None]
    units = torch.arange(n_units, device=device).expand(k, n_units)
    complete = torch.ones(k, n_units, dtype=torch.bool, device=device)
    chain = []  # (param, units, source column, kernel position), each [k, units], from the output down
    while True:
        param, layer = layers[layer_name]
        source = feeder.get(layer_name)
        if source is None and layer_name != first:
            return  # the units feeding this layer cannot be followed back
        score = scores.get(param)
        if score is None:  # a layer without scores: its weights' magnitudes choose the path
            score = torch.stack([m.get_parameter(param).detach().abs() for m in modules])
        kept = _kept(layers, keep, layer_name, k)
        inputs = _reached_inputs(layer_name, layers, keep, feeder, reach, k)
        if inputs is not None and inputs.shape[1] == kept.shape[2]:
            kept = kept & inputs.to(kept.device).reshape(k, 1, -1, *([1] * (kept.dim() - 3)))
        rows = torch.where(kept[folds, units], score[folds, units].to(torch.float64), -torch.inf)
        per_input = rows.reshape(k, n_units, rows.shape[2], -1)  # (networks, units, inputs, kernel positions)
        per_input = _prefer_in_bounds_taps(per_input, layer)
        best_pos = per_input.argmax(dim=3)
        best = per_input.gather(3, best_pos[..., None]).squeeze(3)  # (networks, units, inputs)
        block = 1 if source is None else source[1]
        n_sources = layer.weight.shape[1] if source is None else layers[source[0]][1].weight.shape[0]
        if block > 1 and best.shape[2] == n_sources * block:  # a Linear reading flattened channels
            by_source = best.reshape(k, n_units, n_sources, block)
            src_pos = by_source.argmax(dim=3)
            best = by_source.gather(3, src_pos[..., None]).squeeze(3)  # (networks, units, sources)
            src = best.argmax(dim=2)
            column = src * block + src_pos.gather(2, src[..., None]).squeeze(2)
        else:
            src = best.argmax(dim=2)
            column = src
        complete &= (best > -torch.inf).any(dim=2)  # a unit that lost every incoming weight ends its chain
        chain.append((param, units, column, best_pos.gather(2, column[..., None]).squeeze(2)))
        if source is None:
            break
        layer_name, units = source[0], src
    for param, units, column, pos in chain:
        if param in reserved:  # mark the entries of complete chains (counted: chains may share an entry)
            target = reserved[param]
            hits = torch.zeros(*target.shape[:3], target[0, 0, 0].numel(), device=target.device)
            index = (folds.expand_as(units), units, column, pos)
            hits.index_put_(index, complete.to(hits.dtype), accumulate=True)
            target |= (hits > 0).view_as(target)


def check_paths(module: nn.Module, masks, keep_masks: dict[str, torch.Tensor], owner: str) -> None:
    """Raise if the keep masks a pruner returned leave an output that no input reaches.

    Called by the pruning engine after every pruning step, for every pruner.
    The built-in pruners (and :class:`~skprune.FunctionPruner`, and any
    :class:`~skprune.BasePruner` subclass) keep a path to every output by
    construction (:func:`reserve_paths`); a protocol pruner that returns
    masks itself gets this error rather than a network that predicts a
    constant. Nothing is repaired behind the user's back: which weights
    matter is the rule's decision.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    masks : MaskStore
        The current masks (weights without a new mask keep these).
    keep_masks : dict of str to bool Tensor
        The masks the pruner returned.
    owner : str
        The pruner's name, for the message.

    Raises
    ------
    ValueError
        Naming the unreachable outputs and what to change.
    """
    alive = {}
    for name, _, layer in iter_prunable_weights(module):
        keep = keep_masks.get(name)
        alive[name] = masks.keep_mask(name, layer.weight) if keep is None else keep.to(torch.bool)
    dead = unreachable_outputs(module, alive)
    if dead:  # only outputs this step cut count (a network may have outputs no input reaches)
        before = unreachable_outputs(
            module, {n: masks.keep_mask(n, lay.weight) for n, _, lay in iter_prunable_weights(module)}
        )
        dead = [i for i in dead if i not in set(before or [])]
    if dead:
        shown = dead[:10] + (["..."] if len(dead) > 10 else [])
        raise ValueError(
            f"{owner}.compute_masks cut every path from the inputs to output(s) {shown} of the network: "
            "no input reaches them through surviving weights, so the model would predict a constant for "
            "them. Keep at least one chain of weights from the inputs to every output (a BasePruner "
            "subclass or FunctionPruner does: its allocation reserves the best-scoring path to each "
            "output before ranking the rest), or lower the sparsity."
        )
