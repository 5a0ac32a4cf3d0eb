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

import fnmatch
import numbers
from dataclasses import dataclass, field

import torch
from sklearn.base import BaseEstimator
from torch import nn

from .._doc_link import DocLinkMixin
from .._training._masks import MaskStore
from ..nn._layers import iter_prunable_weights
from ._schedules import BaseSchedule, Polynomial

__all__ = ["BasePruner", "PruningContext", "is_pruner"]

SCOPES = ("global", "layer")


@dataclass
class PruningContext:
    """What a pruner may look at when it computes masks.

    Parameters
    ----------
    epoch : int
        Epochs trained so far in this fit.
    n_epochs : int
        Epochs of this fit.
    step : int
        Index of this pruning step (0-based).
    target : float
        Sparsity to reach in the selected layers after this step: the
        pruner's ``sparsity`` times the schedule's fraction. For a pruner
        without a ``sparsity`` parameter (e.g. :class:`~skprune.InputPruning`,
        whose goal is a number of features), the schedule's fraction alone:
        the share of the pruner's final goal to reach at this step.
    generator : torch.Generator
        Seeded source of randomness (from the estimator's ``random_state``).
    statistics : dict of str to Tensor
        Per-parameter statistics gathered since the last step (for example
        accumulated ``|w * dL/dw|``), keyed by parameter name. Empty unless
        the pruner asks for them.

    Examples
    --------
    The engine builds the context; a pruner's ``score`` reads it:

    >>> import torch
    >>> from skprune import PruningContext
    >>> context = PruningContext(epoch=3, n_epochs=10, step=0, target=0.45,
    ...                          generator=torch.Generator().manual_seed(0))
    >>> context.target
    0.45
    """

    epoch: int
    n_epochs: int
    step: int
    target: float
    generator: torch.Generator
    statistics: dict[str, torch.Tensor] = field(default_factory=dict)


def is_pruner(obj) -> bool:
    """Whether ``obj`` implements the pruner interface.

    Parameters
    ----------
    obj : object
        Anything, e.g. the ``pruner`` parameter of an estimator.

    Returns
    -------
    bool
        True for skprune's pruners and for objects providing their methods.

    Examples
    --------
    >>> from skprune import MagnitudePruning
    >>> from skprune.pruners import is_pruner
    >>> is_pruner(MagnitudePruning()), is_pruner("magnitude")
    (True, False)
    """
    return callable(getattr(obj, "compute_masks", None)) and callable(getattr(obj, "get_schedule", None))


class BasePruner(DocLinkMixin, BaseEstimator):
    """Unstructured pruning by a per-weight importance score.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of the selected weights set to zero, in ``[0, 1)``.
    scope : {"global", "layer"}, default="global"
        ``"global"`` ranks all selected weights together (layers end with
        different sparsities); ``"layer"`` prunes every selected layer to the
        same sparsity.
    schedule : BaseSchedule or None, default=None
        When pruning happens; ``None`` means :class:`~skprune.Polynomial`.
    layers : str, type, or list of them, or None, default=None
        Which Linear/Conv layers to prune: module names (``"layers.fc0"``),
        glob patterns (``"layers.fc*"``) or module types (``torch.nn.Linear``).
        ``None`` selects all of them.
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

    def __init__(
        self,
        sparsity: float = 0.9,
        *,
        scope: str = "global",
        schedule: BaseSchedule | None = None,
        layers=None,
        prune_output_layer: bool = True,
    ):
        self.sparsity = sparsity
        self.scope = scope
        self.schedule = schedule
        self.layers = layers
        self.prune_output_layer = prune_output_layer

    # ------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        sparsity = self.sparsity
        if not isinstance(sparsity, numbers.Real) or isinstance(sparsity, bool):
            raise TypeError(
                f"{type(self).__name__}(sparsity=...) must be a number in [0, 1), got {sparsity!r}."
            )
        if not 0.0 <= float(sparsity) < 1.0:
            raise ValueError(
                f"{type(self).__name__}(sparsity={sparsity!r}) is impossible: sparsity "
                "is the fraction of weights set to zero and must be in [0, 1) "
                "(0.9 keeps 10% of the weights)."
            )
        if self.scope not in SCOPES:
            raise ValueError(
                f"{type(self).__name__}(scope={self.scope!r}) is not supported; use one of {SCOPES}."
            )
        if self.schedule is not None and not isinstance(self.schedule, BaseSchedule):
            raise TypeError(
                f"{type(self).__name__}(schedule=...) must be a schedule such as "
                f"OneShot(), Iterative() or Polynomial(), got {self.schedule!r}."
            )

    def get_schedule(self) -> BaseSchedule:
        """Return the schedule in use (``Polynomial()`` when none was given)."""
        return self.schedule if self.schedule is not None else Polynomial()

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

    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Return ``(param_name, layer_name, layer)`` of the weights to prune.

        Raises
        ------
        ValueError
            If the selection matches no prunable layer.
        """
        candidates = list(iter_prunable_weights(module))
        if not candidates:
            raise ValueError(
                f"{type(self).__name__} found no Linear or Conv layer to prune in {type(module).__name__}."
            )
        selected = candidates
        if self.layers is not None:
            selected = [c for c in candidates if self._layer_matches(c[1], c[2])]
        if not self.prune_output_layer:
            output_name = candidates[-1][0]
            selected = [c for c in selected if c[0] != output_name]
        if not selected:
            available = [c[1] for c in candidates]
            raise ValueError(
                f"{type(self).__name__}(layers={self.layers!r}, "
                f"prune_output_layer={self.prune_output_layer}) selects no layer to "
                f"prune; prunable layers are {available}."
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
            s = torch.as_tensor(scores[name])
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
        lowest-scoring are pruned until exactly ``round(target * n)`` of the
        ``n`` selected weights (per layer for ``scope="layer"``) are pruned.
        """
        selected = self.select_layers(module)
        weights = {param: layer.weight.detach() for param, _, layer in selected}
        scores = self._checked_scores(weights, context)
        keep = {name: masks.keep_mask(name, w) for name, w in weights.items()}
        names = list(weights)
        if self.scope == "global":
            return _prune_lowest(names, scores, keep, context.target)
        new_masks = {}
        for name in names:
            new_masks.update(_prune_lowest([name], scores, keep, context.target))
        return new_masks

    # ----------------------------------------------------------------- hooks
    def penalty(self, module: nn.Module) -> torch.Tensor | None:
        """Extra loss term added during training (``None`` for none)."""
        return None

    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor) -> None:
        """See one selected weight and its gradient after a backward pass.

        Called by the estimator for every selected weight after every
        training backward pass (and every batch of a sensitivity pass) until
        the last pruning step, when :attr:`requires_gradient_statistics` is
        true. The default does nothing. Gradients of pruned entries are
        zero. Do not modify the tensors; keep per-fit state in attributes
        ending in ``_``.

        Parameters
        ----------
        name : str
            Parameter name, e.g. ``"layers.fc0.weight"``.
        weight, grad : Tensor
            The weight and its gradient (detached).
        """

    def on_epoch_begin(self, module: nn.Module, epoch: int) -> None:
        """Called at the start of every epoch, before that epoch's pruning step.

        The default does nothing; :class:`~skprune.LotteryTicket` uses it to
        record the weights it later rewinds to. Do not modify ``module``.
        """

    def rewind(self, module: nn.Module, context: PruningContext) -> dict[str, torch.Tensor] | None:
        """Values to load into the network after a pruning step, or ``None``.

        Called after every pruning step. A returned dict (keys from
        ``module.state_dict()``) is copied into the network, the new masks
        are applied on top, and the optimizer state is reset, so training
        restarts from those values (lottery-ticket rewinding). The default
        returns ``None``: training continues from the current weights.
        """
        return None


def _prune_lowest(names, scores, keep, target) -> dict[str, torch.Tensor]:
    """Prune the lowest scores among ``names`` to reach ``target`` sparsity."""
    flat_scores = torch.cat(
        [torch.where(keep[n], scores[n], torch.full_like(scores[n], -torch.inf)).flatten() for n in names]
    )
    flat_keep = torch.cat([keep[n].flatten() for n in names])
    n_total = flat_scores.numel()
    n_prune = max(int(round(target * n_total)), int((~flat_keep).sum()))
    n_prune = min(n_prune, n_total)
    new_keep = torch.ones(n_total, dtype=torch.bool, device=flat_scores.device)
    if n_prune > 0:
        order = torch.argsort(flat_scores, stable=True)
        new_keep[order[:n_prune]] = False
    out, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = new_keep[offset : offset + size].view_as(scores[n])
        offset += size
    return out
