"""Structured pruning: remove whole hidden units (neurons) or Conv2d channels.

A removed unit's weight row and bias are masked to zero, and so are the
matching BatchNorm entries and the matching input weights of the next layer
(found by tracing the network with torch.fx, see :func:`skprune.nn.trace_unit_groups`),
so the unit is dead in the masked network, the reported sparsity counts it,
and :meth:`skprune.PrunedNet.compact` can delete it for real.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from ..exceptions import CompactionError
from ..nn._groups import mask_channel_group, shared_channel_groups
from ..nn._layers import iter_prunable_weights
from ..nn._units import CHANNEL_DROPOUT, ELEMENTWISE_MODULES, UnitGroup, trace_unit_groups
from ._base import LAYER_SPEC, SCOPES, BasePruner
from ._context import ActivationRequest, PruningContext
from ._masks import MaskStore
from ._schedules import BaseSchedule

__all__ = ["NeuronPruning", "ChannelPruning", "StructuredPruner"]

IMPORTANCES = ("l2", "l1", "taylor", "apoz", "activation")

#: importance -> (activation statistic recorded, score of a unit from it: higher = keep)
ACTIVATION_IMPORTANCES = {
    "apoz": ("zero_fraction", lambda apoz: 1.0 - apoz),  # Hu et al. 2016: prune the most often zero
    "activation": ("mean_abs", lambda mean_abs: mean_abs),
}

#: element-wise modules that are not a non-linearity (a unit's activation is measured after one)
_NOT_ACTIVATIONS = (nn.Identity, nn.Dropout, nn.AlphaDropout, *CHANNEL_DROPOUT)


class StructuredPruner(BasePruner):
    """Base class of pruners that remove whole output units of a layer type.

    Subclasses set :attr:`layer_type` and :attr:`unit_name`.

    Parameters
    ----------
    sparsity : float, default=0.5
        Final fraction of the units of the selected layers to remove, in
        ``[0, 1)``. The fitted weight sparsity (``sparsity_``) is higher:
        removing a unit also removes the next layer's inputs from it.
    importance : {"l2", "l1", "taylor", "apoz", "activation"}, default="l2"
        Importance of a unit: the L2 or L1 norm of its weights; the sum
        over its weights of the accumulated ``|w * dL/dw|`` since the last
        step (Molchanov et al.); or, measured on the training batches since
        the last step after the unit's activation, one minus its average
        percentage of zeros (``"apoz"``, Hu et al. 2016: the units most
        often zero go first) or its mean absolute activation
        (``"activation"``).
    scope : {"layer", "global"}, default="layer"
        ``"layer"`` removes the same fraction of every selected layer;
        ``"global"`` ranks the units of all selected layers together, each
        layer's scores divided by their mean so layers of different fan-in
        compare.
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` selects
        every layer of the pruned type except the network's last layer
        (the output layer's units are never removed) and frozen layers
        (``requires_grad=False``), which are pruned only when named. Layers
        whose output channels are tied by a residual add or a concatenation
        (a channel group, e.g. a ResNet stage's stem and ``conv2`` layers) are
        pruned together, so they must be selected together: selecting some
        members of a group raises a ``ValueError`` at ``fit`` that names the group.
    fraction : float, optional
        Deprecated alias of ``sparsity``; will be removed in 0.3.
    criterion : str, optional
        Deprecated alias of ``importance`` (renamed so it cannot be confused
        with the estimator's loss ``criterion``); will be removed in 0.3.

    Examples
    --------
    :class:`~skprune.NeuronPruning` and :class:`~skprune.ChannelPruning` are
    the two built-in subclasses:

    >>> from skprune import ChannelPruning, NeuronPruning
    >>> from skprune.pruners import StructuredPruner
    >>> isinstance(NeuronPruning(), StructuredPruner), isinstance(ChannelPruning(), StructuredPruner)
    (True, True)
    """

    layer_type: type[nn.Module] = nn.Linear
    unit_name: str = "unit"

    _parameter_constraints: dict = {
        "sparsity": [Interval(numbers.Real, 0.0, 1.0, closed="left")],
        "importance": [StrOptions(set(IMPORTANCES))],
        "scope": [StrOptions(set(SCOPES))],
        "schedule": [HasMethods(["steps"]), None],
        "layers": LAYER_SPEC,
        "fraction": [Interval(numbers.Real, 0.0, 1.0, closed="left"), StrOptions({"deprecated"})],
        "criterion": [StrOptions(set(IMPORTANCES) | {"deprecated"})],
    }

    def __init__(
        self,
        sparsity: float = 0.5,
        *,
        importance: str = "l2",
        scope: str = "layer",
        schedule: BaseSchedule | None = None,
        layers=None,
        fraction="deprecated",
        criterion="deprecated",
    ):
        self.sparsity = sparsity
        self.importance = importance
        self.scope = scope
        self.schedule = schedule
        self.layers = layers
        self.fraction = fraction
        self.criterion = criterion

    def _check_params_together(self) -> None:
        for old, new in (("fraction", "sparsity"), ("criterion", "importance")):
            if getattr(self, old) != "deprecated":
                warnings.warn(
                    f"{type(self).__name__}({old}=...) is deprecated and will be removed in 0.3; "
                    f"use {new}=... instead.",
                    FutureWarning,
                    stacklevel=4,
                )

    @property
    def _unit_sparsity(self) -> float:
        """``sparsity``, or the deprecated ``fraction`` when given."""
        return float(self.sparsity if self.fraction == "deprecated" else self.fraction)

    @property
    def _importance(self) -> str:
        """``importance``, or the deprecated ``criterion`` when given."""
        return self.importance if self.criterion == "deprecated" else self.criterion

    @property
    def requires_gradient_statistics(self) -> bool:
        """Whether :meth:`observe` must see gradients (``importance="taylor"``)."""
        return self._importance == "taylor"

    def requires_activation_statistics(self, *, module: nn.Module, **kwargs) -> dict[str, ActivationRequest]:
        """For ``importance="apoz"`` or ``"activation"``: each selected layer's units after its activation.

        The engine records them on training batches; the key is the layer's
        weight name. A unit's activation is the output of the first
        non-linearity module (``nn.ReLU``, ...) after the layer, called once
        in ``forward``; failing that (e.g. ``F.relu`` in ``forward``), the
        input of the next layer when nothing but element-wise operations
        lies between them.

        Raises
        ------
        ValueError
            If a selected layer's activation cannot be located.
        """
        if self._importance not in ACTIVATION_IMPORTANCES:
            return {}
        statistic = ACTIVATION_IMPORTANCES[self._importance][0]
        try:
            groups = trace_unit_groups(module)
        except CompactionError as exc:
            raise ValueError(
                f"{type(self).__name__}(importance={self._importance!r}) follows each layer to its "
                f"activation, which needs a traceable network: {exc} Use importance='l2' instead."
            ) from exc
        modules = dict(module.named_modules())
        selected = self.select_layers(module)
        requests, unmeasured = {}, []
        for param, layer_name, layer in selected:
            where, name = _activation_point(groups.get(layer_name), modules)
            if name is None:
                unmeasured.append(layer_name)
                continue
            dim = 1 if isinstance(layer, nn.Conv2d) else -1
            requests[param] = ActivationRequest(name, where=where, dim=dim, statistics=(statistic,))
        if unmeasured:
            raise ValueError(self._no_activation_message(module, [n for _, n, _ in selected], unmeasured))
        return requests

    def _no_activation_message(self, module: nn.Module, selected: list[str], unmeasured: list[str]) -> str:
        """Why the layers ``unmeasured`` have no activation to measure, and which layers to select instead.

        Units tied by a residual add (the residual stream of skprune's own
        ``MLP``/``ConvNet`` with ``n_blocks > 0``) have no activation of their
        own; the group's layers are left out of the suggested ``layers=``.
        """
        tied: set[str] = set()
        for group in shared_channel_groups(module, selected):
            if set(group.producers) & set(unmeasured):
                tied |= set(group.producers)
        keep = [name for name in selected if name not in tied and name not in unmeasured]
        what = f"layer {unmeasured[0]!r}" if len(unmeasured) == 1 else f"layers {unmeasured}"
        message = (
            f"{type(self).__name__}(importance={self._importance!r}) measures each {self.unit_name} "
            f"after its activation, but the output of {what} reaches no activation module "
            "called once in forward, nor directly the next layer"
        )
        if tied:
            message += (
                f" (the {self.unit_name}s of {sorted(tied)} are tied by a residual add, whose sum has "
                "no activation of its own)"
            )
        message += ". "
        if keep:
            return message + (
                f"Select the layers that have one, layers={keep!r}; or give each layer its own "
                "activation module (e.g. nn.ReLU()) in your network, or use importance='l2'."
            )
        return message + (
            "Give each layer its own activation module (e.g. nn.ReLU()), leave the layer out with "
            "layers=..., or use importance='l2'."
        )

    def step_target(self, fraction: float) -> float:
        """The share of units removed at this step: ``sparsity * fraction``."""
        return self._unit_sparsity * float(fraction)

    def at_path_level(self, level: float, at: float) -> StructuredPruner:
        """A copy removing the share ``level`` of the units once, at fraction ``at`` of a fit.

        The deprecated ``fraction`` is dropped, so the level is not overridden by it.
        """
        return super().at_path_level(level, at).set_params(fraction="deprecated")

    prune_output_layer = False

    # ------------------------------------------------------------- selection
    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Return ``(param_name, layer_name, layer)`` of the layers whose units are pruned.

        Raises
        ------
        ValueError
            If nothing is selected, if the output layer is selected, or if
            ``sparsity`` would remove every unit of a selected layer.
        """
        name = type(self).__name__
        candidates = list(iter_prunable_weights(module))
        kind = self.layer_type.__name__
        if not candidates:
            raise ValueError(f"{name} found no {kind} layer to prune in {type(module).__name__}.")
        output_name = candidates[-1][1]
        typed = [c for c in candidates if isinstance(c[2], self.layer_type)]
        if self.layers is None:  # frozen layers (requires_grad=False) only when named
            selected = [c for c in typed if c[1] != output_name and c[2].weight.requires_grad]
        else:
            selected = [c for c in typed if self._layer_matches(c[1], c[2])]
            if selected:  # (nothing selected at all gets the message below)
                self._check_names_match(typed, kind)
            if any(c[1] == output_name for c in selected):
                raise ValueError(
                    f"{name}(layers={self.layers!r}) selects the output layer {output_name!r}; its "
                    f"{self.unit_name}s are the network's outputs and cannot be removed. Select "
                    "hidden layers only."
                )
        if not selected:
            available = [c[1] for c in typed if c[1] != output_name]
            raise ValueError(
                f"{name}(layers={self.layers!r}) selects no hidden {kind} layer to prune; "
                f"prunable hidden {kind} layers are {available}."
            )
        if self.scope == "layer":
            for _, layer_name, layer in selected:
                n_units = layer.weight.shape[0]
                if round(self._unit_sparsity * n_units) >= n_units:
                    raise ValueError(
                        f"{name}(sparsity={self._unit_sparsity!r}) would remove every {self.unit_name} of "
                        f"layer {layer_name!r} ({n_units} {self.unit_name}s); use a sparsity below "
                        f"{(n_units - 0.5) / n_units:.3f} or a wider layer."
                    )
        return selected

    # --------------------------------------------------------------- scoring
    def unit_scores(self, module: nn.Module, context: PruningContext) -> dict[str, torch.Tensor]:
        """Return one importance score per output unit of each selected layer (higher = keep)."""
        scores = {}
        missing = []
        for param, _, layer in self.select_layers(module):
            weight = layer.weight.detach()
            rows = weight.reshape(weight.shape[0], -1)
            if self._importance in ACTIVATION_IMPORTANCES:
                statistic, to_score = ACTIVATION_IMPORTANCES[self._importance]
                recorded = context.activations.get(param, {}).get(statistic)
                if recorded is not None and recorded.numel() == weight.shape[0]:
                    scores[param] = to_score(recorded.detach().to(weight.device).float().reshape(-1))
                    continue
                missing.append(param)
            if self._importance == "taylor" and param in context.statistics:
                stat = context.statistics[param].detach().to(weight.device)
                scores[param] = stat.reshape(weight.shape[0], -1).sum(dim=1).float()
                continue
            if self._importance == "taylor":
                missing.append(param)
            if self._importance == "l1":
                scores[param] = rows.abs().sum(dim=1).float()
            else:
                scores[param] = rows.norm(dim=1).float()
        if missing:
            what = "gradient statistics" if self._importance == "taylor" else "recorded activations"
            warnings.warn(
                f"{type(self).__name__}(importance={self._importance!r}) has no {what} for "
                f"{missing} at epoch {context.epoch} (no training step since the last pruning "
                "step); the L2 norm is used for this step. Start the schedule after at least one "
                "epoch to use these scores throughout.",
                UserWarning,
                stacklevel=2,
            )
        return scores

    @torch.no_grad()
    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Return keep masks removing ``round(target * n)`` units (per layer or overall).

        Units removed earlier stay removed. For each removed unit the
        weight row, the bias entry, the following BatchNorm entries and the
        next layer's matching inputs are masked.
        """
        selected = self.select_layers(module)
        layers = {param: (layer_name, layer) for param, layer_name, layer in selected}
        statistics = self.__dict__.pop("saliency_", {})
        context = dataclasses.replace(context, statistics={**context.statistics, **statistics})
        scores = self.unit_scores(module, context)
        pruned_before = {}
        for param, (_, layer) in layers.items():
            keep = masks.keep_mask(param, layer.weight)
            pruned_before[param] = ~keep.reshape(keep.shape[0], -1).any(dim=1)
        # a layer already without units (in a residual block that BlockPruning removed) takes no
        # part: it is not ranked and does not count towards the target
        dead = {param for param in layers if bool(pruned_before[param].all())}
        if self.scope == "layer":
            removed = {
                param: _lowest_units(scores[param], pruned_before[param], context.target) for param in layers
            }
        else:
            live = {param: layers[param] for param in layers if param not in dead}
            removed = self._global_units(live, scores, pruned_before, context.target) if live else {}
            removed.update({param: pruned_before[param] for param in dead})
        # channels tied by residual adds / concatenations: one score and one decision per group
        removed, shared = self._unify_channel_groups(
            module, layers, scores, pruned_before, removed, context.target
        )
        for param, units in removed.items():
            if bool(units.all()) and param not in dead:
                layer_name = layers[param][0]
                raise ValueError(
                    f"{type(self).__name__}(sparsity={self._unit_sparsity!r}, scope={self.scope!r}) would "
                    f"remove every {self.unit_name} of layer {layer_name!r}; use scope='layer' or a "
                    "smaller sparsity."
                )
        return self._unit_masks(module, masks, layers, removed, shared)

    def _unify_channel_groups(self, module, layers, scores, pruned_before, removed, target):
        """Channels tied by a residual add or a concatenation are scored and removed as one unit.

        A group of which only some layers are selected is refused with the
        group's layers named: removing the channels of one member alone would
        leave a network that ``compact()`` cannot shrink.
        """
        shared = []
        by_layer = {layer_name: param for param, (layer_name, _) in layers.items()}
        for group in shared_channel_groups(module, by_layer):
            members = [by_layer[p] for p in group.producers if p in by_layer]
            if len(members) != len(group.producers):
                missing = [p for p in group.producers if p not in by_layer]
                chosen = sorted(set(group.producers) - set(missing))
                kind = self.layer_type.__name__
                raise ValueError(
                    f"{type(self).__name__}(layers={self.layers!r}) selects {chosen} "
                    f"but not {missing}: their {group.size} output {self.unit_name}s are tied by a residual "
                    f"add or a concatenation, so a {self.unit_name} exists in all of them or in none, and "
                    f"they can only be removed together. Select the whole group, e.g. "
                    f"layers={sorted(group.producers)!r} (or layers=None for every {kind} "
                    f"layer), or leave the group out."
                )
            score = sum(scores[p] for p in members)
            before = torch.stack([pruned_before[p] for p in members]).all(dim=0)
            units = _lowest_units(score, before, target)
            for param in members:
                removed[param] = units
            shared.append((group, units))
        return removed, shared

    def _global_units(self, layers, scores, pruned_before, target):
        normalized = []
        for param in layers:
            s = scores[param]
            alive = ~pruned_before[param]
            scale = s[alive].mean() if alive.any() else s.new_tensor(1.0)
            normalized.append(s / scale.clamp_min(torch.finfo(s.dtype).tiny))
        flat = torch.cat(normalized)
        before = torch.cat([pruned_before[p] for p in layers])
        flat_removed = _lowest_units(flat, before, target)
        out, offset = {}, 0
        for param in layers:
            n = scores[param].numel()
            out[param] = flat_removed[offset : offset + n]
            offset += n
        return out

    def _unit_masks(self, module, masks, layers, removed, shared=()) -> dict[str, torch.Tensor]:
        params = dict(module.named_parameters())
        try:
            groups = trace_unit_groups(module)
        except CompactionError:
            groups = {}  # units are still removed from their own layer; compact() will explain
        new: dict[str, torch.Tensor] = {}

        def keep_of(name):
            if name not in new:
                new[name] = masks.keep_mask(name, params[name]).clone()
            return new[name]

        for group, units in shared:
            mask_channel_group(group, units, params, keep_of)
        for param, units in removed.items():
            layer_name, layer = layers[param]
            keep_of(param)[units] = False
            if layer.bias is not None:
                keep_of(_param_name(layer_name, "bias"))[units] = False
            group: UnitGroup | None = groups.get(layer_name)
            if group is None or group.blocked is not None:
                continue
            for norm in group.norms:
                for attr in ("weight", "bias"):
                    name = _param_name(norm, attr)
                    if name in params:
                        keep_of(name)[units] = False
            consumer = _param_name(group.consumer, "weight")
            keep = keep_of(consumer)
            columns = units.repeat_interleave(group.block)
            keep[:, columns] = False
        return new


def _param_name(layer_name: str, attr: str) -> str:
    return f"{layer_name}.{attr}" if layer_name else attr


def _activation_point(group: UnitGroup | None, modules: dict) -> tuple[str, str | None]:
    """``(where, module name)`` of the activation of a layer's units, or ``(.., None)`` if none is found."""
    if group is None:
        return "output", None
    for node in group.ops:
        module = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(module, (*ELEMENTWISE_MODULES, nn.PReLU)) and not isinstance(module, _NOT_ACTIVATIONS):
            calls = sum(1 for n in node.graph.nodes if n.op == "call_module" and n.target == node.target)
            if calls == 1:
                return "output", node.target
            break  # a shared activation module mixes several layers: read the next layer's input
    if group.ops and group.consumer is not None and not group.pooled and group.block == 1:
        graph = group.ops[0].graph
        if sum(1 for n in graph.nodes if n.op == "call_module" and n.target == group.consumer) == 1:
            return "input", group.consumer
    return "output", None


def _lowest_units(scores: torch.Tensor, pruned_before: torch.Tensor, target: float) -> torch.Tensor:
    """Boolean mask of the ``round(target * n)`` lowest-scoring units (earlier removals first)."""
    n = scores.numel()
    n_remove = min(max(int(round(target * n)), int(pruned_before.sum())), n)
    ranked = torch.where(pruned_before, torch.full_like(scores, -torch.inf), scores)
    removed = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if n_remove:
        removed[torch.argsort(ranked, stable=True)[:n_remove]] = True
    return removed


class NeuronPruning(StructuredPruner):
    """Remove whole hidden units (neurons) of Linear layers.

    A removed unit loses its weight row and bias, and the next layer loses
    the matching input weights (also BatchNorm1d entries in between), so
    :meth:`~skprune.PrunedNet.compact` can build a physically smaller,
    faster network with the same predictions. Works on the same schedules
    as unstructured pruning.

    Parameters
    ----------
    sparsity : float, default=0.5
        Final fraction of the hidden units of each selected layer removed,
        in ``[0, 1)``. A fraction that would remove every unit of a layer
        raises a ``ValueError`` at ``fit``.
    importance : {"l2", "l1", "taylor", "apoz", "activation"}, default="l2"
        Unit importance: L2 or L1 norm of its incoming weights; the
        accumulated first-order Taylor score ``sum |w * dL/dw|`` of its
        weights since the last pruning step (a step with no statistics yet,
        e.g. at epoch 0, falls back to L2 with a warning); or, measured
        after the unit's activation on the training batches since the last
        step (before a step at epoch 0: on ``sensitivity_batches`` training
        batches), ``1 - APoZ`` (``"apoz"``: the units most often exactly
        zero go first, Hu et al. 2016) or the mean absolute activation
        (``"activation"``). On a residual network (``module__n_blocks > 0``)
        the units summed by a residual add have no activation of their own:
        select the blocks' inner layers with ``layers=...`` (the error at
        ``fit`` names them).
    scope : {"layer", "global"}, default="layer"
        Remove the same fraction in every layer, or rank units of all
        selected layers together (scores divided by each layer's mean).
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Hidden Linear layers to prune by name, glob or type; ``None`` selects
        all but the output layer.
    fraction, criterion : optional
        Deprecated aliases of ``sparsity`` and ``importance``; removed in 0.3.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, NeuronPruning
    >>> net = PrunedNetClassifier(pruner=NeuronPruning(sparsity=0.5), max_epochs=30)
    >>> # net.fit(X, y).compact() has half the hidden units, same predictions
    """

    layer_type = nn.Linear
    unit_name = "unit"


class ChannelPruning(StructuredPruner):
    """Remove whole output channels of Conv2d layers (BatchNorm aware).

    A removed channel loses its filter and bias, its entries in a following
    BatchNorm2d (scale and shift), and the next Conv2d's matching input
    channels (or the matching block of a Linear layer after ``Flatten``).

    Parameters
    ----------
    sparsity : float, default=0.5
        Final fraction of the output channels of each selected Conv2d layer
        removed, in ``[0, 1)``.
    importance : {"l2", "l1", "taylor", "apoz", "activation"}, default="l2"
        Channel importance: L2 or L1 norm of its filter; accumulated
        ``sum |w * dL/dw|`` over its filter; or, after the channel's
        activation on training batches, ``1 - APoZ`` (share of exact zeros
        over samples and positions, Hu et al. 2016) or the mean absolute
        activation. On a residual network (``module__n_blocks > 0``) the
        channels summed by a residual add have no activation of their own:
        select the blocks' inner convolutions with ``layers=...`` (the error
        at ``fit`` names them).
    scope : {"layer", "global"}, default="layer"
        Same fraction per layer, or ranked across layers.
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Conv2d layers to prune; ``None`` selects all of them (except a
        Conv2d that is the network's last layer).
    fraction, criterion : optional
        Deprecated aliases of ``sparsity`` and ``importance``; removed in 0.3.

    Examples
    --------
    >>> from skprune import ChannelPruning
    >>> pruner = ChannelPruning(sparsity=0.25, importance="l1")
    """

    layer_type = nn.Conv2d
    unit_name = "channel"
