"""Base class of pruning strategies.

A pruner is a policy object with scikit-learn parameters. Given the network,
the current masks, a target sparsity and optional statistics, it returns new
masks. It never trains, never owns the optimizer, and keeps no fitted state
across ``clone``.

Writing your own rule
---------------------
Subclass :class:`BasePruner` and implement one method,
:meth:`BasePruner.score`: given the selected weights it returns one score
per weight, higher = more important; the lowest-scoring weights are pruned.
Everything else is inherited: the ``sparsity``, ``scope``, ``schedule``,
``layers`` and ``prune_output_layer`` parameters (so ``pruner__sparsity``
works in a grid search), layer selection, the schedule, exact target
sparsity, masks that never revive a pruned weight, and the checks of the
returned scores (shape, NaN)::

    class SmallestRows(BasePruner):
        "Prune the weights of the output units with the smallest row norm."

        def score(self, weights, context):
            return {name: w.norm(dim=1, keepdim=True).expand_as(w) for name, w in weights.items()}

A rule that needs gradients sets ``requires_gradient_statistics = True``:
then ``context.statistics[name]`` holds ``|w * dL/dw|`` summed over the
batches since the previous pruning step, and :meth:`BasePruner.observe` is
called with every weight and its gradient after every backward pass. State
that ``observe`` gathers belongs to the fit: store it in attributes ending
in ``_`` (the estimator works on a ``clone``, ``pruner_``, so each fit
starts fresh), as :class:`~skprune.FunctionPruner` does. For a rule
written as a plain function, use :class:`~skprune.FunctionPruner`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import numbers

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from ..nn._layers import iter_prunable_weights
from ..nn._paths import reserve_paths, reserve_paths_folds
from ._allocation import ALLOCATIONS, allocate, allocate_folds
from ._masks import MaskStore
from ._protocol import PrunerProtocol, PruningContext
from ._schedules import BaseSchedule

__all__ = ["BasePruner", "LAYER_SPEC", "SCOPES", "ALLOCATIONS"]

#: scopes of the structured pruners (units ranked per layer or together)
SCOPES = ("global", "layer")

#: ``layers=`` accepts a name, glob pattern or type, a list of them, or None.
LAYER_SPEC = [str, type, list, tuple, set, None]


class BasePruner(PrunerProtocol):
    """Unstructured pruning by a per-weight importance score.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of the selected weights set to zero, in ``[0, 1)``.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers (see
        :mod:`skprune.pruners._allocation`). ``"lamp"`` ranks all selected
        weights together after normalizing scores within each layer
        (layer-adaptive, Lee et al. 2021), so no layer of small weights is
        emptied; ``"global"`` ranks raw scores together; ``"erk"`` gives
        layers Erdős–Rényi-Kernel densities (RigL); ``"layer"`` prunes every
        layer to the same sparsity. Whatever the scope, every output unit
        of the output layer keeps at least one incoming weight and no
        selected layer is emptied. ``"lamp"`` is the default because it was
        the most accurate at 80-98% sparsity on iris, wine, breast cancer,
        digits and diabetes (``benchmarks/layer_allocation.py``, figures in
        ``benchmarks/RESULTS.md``).
    schedule : BaseSchedule or None, default=None
        When pruning happens; ``None`` means :class:`~skprune.Polynomial`.
    layers : str, type, or list of them, or None, default=None
        Which Linear/Conv layers to prune: module names (``"layers.fc0"``),
        glob patterns (``"layers.fc*"``) or module types (``torch.nn.Linear``).
        ``None`` selects all of them except frozen ones (weight with
        ``requires_grad=False``, e.g. by skorch's ``Freezer``); a frozen
        layer is pruned only when ``layers`` names it.
    prune_output_layer : bool, default=True
        Whether the last Linear/Conv layer may be pruned. Set to ``False``
        to leave the output layer dense.

    Examples
    --------
    A new criterion is one method: higher scores are kept.

    >>> from sklearn.datasets import load_iris
    >>> from skprune import BasePruner, PrunedNetClassifier
    >>> class SmallestRows(BasePruner):
    ...     def score(self, weights, context):
    ...         return {n: w.norm(dim=1, keepdim=True).expand_as(w) for n, w in weights.items()}
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=SmallestRows(sparsity=0.5), max_epochs=5, random_state=0)
    >>> round(net.fit(X, y).sparsity_, 2)
    0.5
    """

    #: Whether :attr:`PruningContext.statistics` must hold accumulated
    #: ``|w * grad|`` and :meth:`observe` must see gradients (the estimator
    #: gathers them only when asked, and only while pruning steps remain).
    requires_gradient_statistics: bool = False

    #: Training batches on which the estimator computes gradients, without
    #: updating weights, before a pruning step for which no statistics were
    #: gathered (a step at epoch 0: pruning at initialization). Only used
    #: when :attr:`requires_gradient_statistics` is true.
    sensitivity_batches: int = 5

    _parameter_constraints: dict = {
        "sparsity": [Interval(numbers.Real, 0.0, 1.0, closed="left")],
        "scope": [StrOptions(set(ALLOCATIONS))],
        "schedule": [HasMethods(["steps"]), None],
        "layers": LAYER_SPEC,
        "prune_output_layer": ["boolean"],
    }

    def __init__(
        self,
        sparsity: float = 0.9,
        *,
        scope: str = "lamp",
        schedule: BaseSchedule | None = None,
        layers=None,
        prune_output_layer: bool = True,
    ):
        self.sparsity = sparsity
        self.scope = scope
        self.schedule = schedule
        self.layers = layers
        self.prune_output_layer = prune_output_layer

    def step_target(self, fraction: float) -> float:
        """``sparsity * fraction``: the weight sparsity to reach at this step."""
        return float(self.sparsity) * float(fraction)

    # ------------------------------------------------------------- selection
    def _layer_matches(self, name: str, layer: nn.Module) -> bool:
        spec = self.layers
        items = spec if isinstance(spec, (list, tuple, set)) else [spec]
        for item in items:
            if isinstance(item, type):
                if isinstance(layer, item):
                    return True
            elif isinstance(item, str):
                if name == item or fnmatch.fnmatchcase(name, item):
                    return True
            else:
                raise TypeError(
                    f"{type(self).__name__}(layers=...) items must be module names, "
                    f"glob patterns or module types, got {item!r}."
                )
        return False

    def _check_names_match(self, candidates, kind: str = "Linear or Conv") -> None:
        """Raise if a name or pattern of ``layers`` matches none of ``candidates`` (a typo, most likely)."""
        spec = self.layers
        items = spec if isinstance(spec, (list, tuple, set)) else [spec]
        names = [c[1] for c in candidates]
        for item in items:
            if isinstance(item, str) and not any(n == item or fnmatch.fnmatchcase(n, item) for n in names):
                raise ValueError(
                    f"{type(self).__name__}(layers={spec!r}): {item!r} matches no {kind} layer it can "
                    f"prune; those layers are {names}."
                )

    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Return ``(param_name, layer_name, layer)`` of the weights to prune.

        Raises
        ------
        ValueError
            If the selection matches no prunable layer, or a name or
            pattern in ``layers`` matches none.
        """
        candidates = list(iter_prunable_weights(module))
        if not candidates:
            raise ValueError(
                f"{type(self).__name__} found no Linear or Conv layer to prune in {type(module).__name__}."
            )
        selected = [c for c in candidates if c[2].weight.requires_grad]  # frozen: only when named
        if self.layers is not None:
            selected = [c for c in candidates if self._layer_matches(c[1], c[2])]
            if selected:  # (nothing selected at all gets the message below)
                self._check_names_match(candidates)
        if not self.prune_output_layer:
            output_name = candidates[-1][0]
            selected = [c for c in selected if c[0] != output_name]
        if not selected:
            available = [c[1] for c in candidates]
            raise ValueError(
                f"{type(self).__name__}(layers={self.layers!r}, "
                f"prune_output_layer={self.prune_output_layer}) selects no layer to "
                f"prune; prunable layers are {available} (frozen ones, requires_grad=False, "
                "only when named in layers)."
            )
        return selected

    # --------------------------------------------------------------- scoring
    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Return an importance score per weight (higher = keep).

        Parameters
        ----------
        weights : dict of str to Tensor
            The selected weights, keyed by parameter name.
        context : PruningContext
            Step information and statistics.

        Returns
        -------
        dict of str to Tensor
            One tensor per key of ``weights``, of the same shape.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score().")

    def _checked_scores(self, weights, context) -> dict[str, torch.Tensor]:
        scores = self.score(weights, context)
        if not isinstance(scores, dict) or set(scores) != set(weights):
            raise ValueError(
                f"{type(self).__name__}.score must return a dict with one entry per "
                f"weight {sorted(weights)}, got {type(scores).__name__}."
            )
        checked = {}
        for name, w in weights.items():
            s = as_score_tensor(scores[name], f"{type(self).__name__}.score", name)
            if tuple(s.shape) != tuple(w.shape):
                raise ValueError(
                    f"{type(self).__name__} returned scores of shape {tuple(s.shape)} "
                    f"for {name!r}, whose weight has shape {tuple(w.shape)}."
                )
            s = s.detach().to(device=w.device, dtype=torch.float32)
            if torch.isnan(s).any():
                raise ValueError(
                    f"{type(self).__name__} returned NaN scores for {name!r}; scores must be finite numbers."
                )
            checked[name] = s
        return checked

    @torch.no_grad()
    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Return new *keep* masks reaching ``context.target`` sparsity.

        Weights already pruned stay pruned; among the remaining ones the
        lowest-scoring (after the scope's normalization) are pruned until
        ``round(target * n)`` of the ``n`` selected weights (per layer for
        ``scope="layer"`` and ``"erk"``) are pruned, sparing the
        connectivity floor (one weight per output unit of the output layer,
        one per layer).
        The gradient statistics gathered by :meth:`observe` are handed to
        :meth:`score` in ``context.statistics`` and then start afresh.
        """
        scores, keep, output_name = self._ranking_inputs(module, masks, context)
        reserved = reserve_paths(module, scores, keep)  # every output keeps a path from the inputs
        return allocate(self.scope, list(scores), scores, keep, context.target, output_name, reserved)

    def _ranking_inputs(self, module: nn.Module, masks: MaskStore, context: PruningContext):
        """The checked scores and the keep masks of the selected weights, and the output layer's name."""
        selected = self.select_layers(module)
        weights = {param: layer.weight.detach() for param, _, layer in selected}
        statistics = self.__dict__.pop("saliency_", {})
        context = dataclasses.replace(context, statistics={**context.statistics, **statistics})
        scores = self._checked_scores(weights, context)
        keep = {name: masks.keep_mask(name, w) for name, w in weights.items()}
        output_name = _output_param_name(module)
        return scores, keep, (output_name if output_name in weights else None)

    # ----------------------------------------------------------------- hooks
    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor, **kwargs) -> None:
        """Accumulate ``|w * dL/dw|`` of one selected weight (the first-order Taylor saliency).

        Called by the engine after every training backward pass (and every
        batch of a sensitivity pass) until the last pruning step, when
        :attr:`requires_gradient_statistics` is true. The sums since the
        previous step reach :meth:`score` as ``context.statistics``.
        Gradients of pruned entries are not zeroed, but their weights are,
        so their saliency is zero. A subclass that overrides this and still
        wants the sums calls ``super().observe(name, weight, grad)``.

        Parameters
        ----------
        name : str
            Parameter name, e.g. ``"layers.fc0.weight"``.
        weight, grad : Tensor
            The weight and its gradient (detached).
        **kwargs
            More information the engine may pass in later versions.
        """
        sums = self.__dict__.setdefault("saliency_", {})
        contribution = (weight * grad).abs()
        if name in sums:
            sums[name] += contribution
        else:
            sums[name] = contribution


@torch.no_grad()
def compute_masks_of_folds(pruners, modules, masks, contexts) -> list[dict[str, torch.Tensor]] | None:
    """``[p.compute_masks(m, s, c) for ...]`` of k networks of one architecture in one batched pass.

    For :class:`~skprune.PrunedNetCV`'s batched folds, whose pruners take
    their steps in lock-step: each pruner scores its own network (its own
    ``score`` and context), then the paths and the allocation of all
    networks run on stacked ``[k, ...]`` tensors (:func:`reserve_paths_folds`,
    :func:`allocate_folds`), which rank each network exactly as
    :meth:`BasePruner.compute_masks` does alone. Returns ``None`` (compute
    them one by one) unless every pruner is a :class:`BasePruner` that
    keeps its ``compute_masks``, all with the same scope and target, and
    the networks select the same layers.
    """
    first = pruners[0]
    if not all(
        isinstance(p, BasePruner)
        and type(p).compute_masks is BasePruner.compute_masks
        and p.scope == first.scope
        and c.target == contexts[0].target
        for p, c in zip(pruners, contexts)
    ):
        return None
    selected = [[param for param, _, _ in p.select_layers(m)] for p, m in zip(pruners, modules)]
    if any(names != selected[0] for names in selected[1:]):
        return None  # decided before scoring: scoring takes each pruner's gathered gradient sums
    inputs = [p._ranking_inputs(m, s, c) for p, m, s, c in zip(pruners, modules, masks, contexts)]
    names, output_name = list(inputs[0][0]), inputs[0][2]
    scores = {n: torch.stack([fold_scores[n] for fold_scores, _, _ in inputs]) for n in names}
    keep = {n: torch.stack([fold_keep[n] for _, fold_keep, _ in inputs]) for n in names}
    reserved = reserve_paths_folds(modules, scores, keep)
    stacked = allocate_folds(first.scope, names, scores, keep, contexts[0].target, output_name, reserved)
    return [{n: mask[i] for n, mask in stacked.items()} for i in range(len(modules))]


def as_score_tensor(value, source: str, name: str) -> torch.Tensor:
    """``value`` (the scores a rule returned for weight ``name``) as a tensor, else a TypeError."""
    try:
        return torch.as_tensor(value)
    except (TypeError, RuntimeError, ValueError):
        got = "None" if value is None else type(value).__name__
        raise TypeError(
            f"{source} returned {got} for {name!r}; it must return one score per "
            "weight: a tensor or array of numbers of the weight's shape."
        ) from None


def _output_param_name(module: nn.Module) -> str | None:
    """Parameter name of the network's last Linear/Conv weight (its output layer)."""
    candidates = list(iter_prunable_weights(module))
    return candidates[-1][0] if candidates else None
