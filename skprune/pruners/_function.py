"""User-written pruning rules as plain functions."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._base import BasePruner, as_score_tensor
from ._masks import MaskStore
from ._protocol import PruningContext
from ._schedules import BaseSchedule

__all__ = ["FunctionPruner", "GradientStatistics"]


@dataclass
class GradientStatistics:
    """Gradients of one weight tensor seen since the previous pruning step.

    Every tensor has the shape of the weight. Before a step at epoch 0 they
    come from the sensitivity batches (see ``BasePruner.sensitivity_batches``).

    Parameters
    ----------
    n_batches : int
        Backward passes observed.
    grad_sum : Tensor
        Sum of the gradients.
    grad_sq_sum : Tensor
        Sum of the squared gradients.
    taylor : Tensor
        Sum of ``|w * grad|`` (first-order Taylor importance).
    first_grad, last_grad : Tensor
        The first and the latest gradient observed.

    Examples
    --------
    A :class:`~skprune.FunctionPruner` rule receives one per layer:

    >>> from skprune import FunctionPruner
    >>> def gradient_noise(weight, stats):
    ...     return weight.abs() / (stats.grad_var.sqrt() + 1e-8)
    >>> pruner = FunctionPruner(gradient_noise, sparsity=0.8)
    """

    n_batches: int
    grad_sum: torch.Tensor
    grad_sq_sum: torch.Tensor
    taylor: torch.Tensor
    first_grad: torch.Tensor
    last_grad: torch.Tensor

    @property
    def grad_mean(self) -> torch.Tensor:
        """Mean gradient."""
        return self.grad_sum / self.n_batches

    @property
    def grad_var(self) -> torch.Tensor:
        """Variance of the gradient over the observed batches."""
        return (self.grad_sq_sum / self.n_batches - self.grad_mean.pow(2)).clamp_min(0)


def _fn_name(fn) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


class FunctionPruner(BasePruner):
    """Prune by a score computed by your own function.

    ``score_fn(weight, stats)`` is called once per selected layer at every
    pruning step and returns a tensor (or array) of the weight's shape;
    higher means more important, and the lowest-scoring weights are pruned
    to the target sparsity. Everything else (``sparsity``, ``scope``,
    ``schedule``, layer selection, grid search through ``pruner__*``) works
    as for the built-in strategies.

    Whatever ``score_fn`` returns, every output of the network keeps a path
    from the inputs: before ranking, the allocation reserves for each output
    unit its best-scoring chain of surviving weights from the input layer
    (by ``score_fn``'s scores; at most one weight per layer and output), so
    no sparsity leaves a dead network. A pruner written against the whole
    :class:`~skprune.pruners.PrunerProtocol` whose own masks cut every path to
    an output is refused at ``fit`` with a ``ValueError`` naming the outputs
    (nothing is repaired silently).

    Parameters
    ----------
    score_fn : callable
        ``score_fn(weight, stats) -> scores``. ``weight`` is the layer's
        weight tensor (detached; do not modify it). ``stats`` is a
        :class:`GradientStatistics` of that weight's gradients since the
        previous pruning step when ``gradients=True``, else ``None``.
        Define it at module level (``def``): a ``lambda`` or a nested
        function works for fitting but cannot be pickled, so neither can
        the estimator, and ``GridSearchCV(n_jobs>1)`` fails with it.
    sparsity : float, default=0.9
        Final fraction of selected weights set to zero, in ``[0, 1)``.
    gradients : bool, default=True
        Whether to gather :class:`GradientStatistics` for ``score_fn``
        (a few elementwise operations per weight and batch until the last
        pruning step). ``False`` is faster for rules that use only weights.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers; see :class:`BasePruner`.
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is Zhu & Gupta's :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` for all
        Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense.

    Attributes
    ----------
    statistics_ : dict of str to GradientStatistics
        On the fitted copy ``pruner_`` only: gradients observed since the
        last pruning step, by parameter name.

    Examples
    --------
    Prune the weights whose gradient changed least since the previous
    step:

    >>> def gradient_change(weight, stats):
    ...     return (stats.last_grad - stats.first_grad).abs()
    >>> from skprune import PrunedNetClassifier, FunctionPruner
    >>> net = PrunedNetClassifier(pruner=FunctionPruner(gradient_change, sparsity=0.8))
    """

    _parameter_constraints: dict = {
        **BasePruner._parameter_constraints,
        "score_fn": [callable],
        "gradients": ["boolean"],
    }

    def __init__(
        self,
        score_fn=None,
        sparsity: float = 0.9,
        *,
        gradients: bool = True,
        scope: str = "lamp",
        schedule: BaseSchedule | None = None,
        layers=None,
        prune_output_layer: bool = True,
    ):
        super().__init__(
            sparsity,
            scope=scope,
            schedule=schedule,
            layers=layers,
            prune_output_layer=prune_output_layer,
        )
        self.score_fn = score_fn
        self.gradients = gradients

    @property
    def requires_gradient_statistics(self) -> bool:
        """Gradients are gathered when ``gradients=True``."""
        return bool(self.gradients)

    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor, **kwargs) -> None:
        """Add one gradient to the statistics of ``name``."""
        records = self.__dict__.setdefault("statistics_", {})
        record = records.get(name)
        if record is None:
            records[name] = GradientStatistics(
                n_batches=1,
                grad_sum=grad.clone(),
                grad_sq_sum=grad.pow(2),
                taylor=(weight * grad).abs(),
                first_grad=grad.clone(),
                last_grad=grad.clone(),
            )
            return
        record.n_batches += 1
        record.grad_sum += grad
        record.grad_sq_sum += grad.pow(2)
        record.taylor += (weight * grad).abs()
        record.last_grad.copy_(grad)

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Call ``score_fn`` on every selected weight; check what it returns."""
        records = self.__dict__.get("statistics_", {}) if self.gradients else {}
        label = f"FunctionPruner(score_fn={_fn_name(self.score_fn)})"
        scores = {}
        for name, w in weights.items():
            stats = records.get(name) if self.gradients else None
            if self.gradients and stats is None:
                zeros = torch.zeros_like(w)
                stats = GradientStatistics(0, zeros, zeros, zeros, zeros, zeros)
            s = as_score_tensor(self.score_fn(w, stats), label, name)
            if tuple(s.shape) != tuple(w.shape):
                raise ValueError(
                    f"{label} returned scores of shape {tuple(s.shape)} for {name!r}, whose "
                    f"weight has shape {tuple(w.shape)}: score_fn must return one score per weight."
                )
            if s.is_floating_point() and torch.isnan(s).any():
                raise ValueError(
                    f"{label} returned NaN scores for {name!r}: score_fn must return finite "
                    "numbers (use torch.nan_to_num if a ratio can be 0/0)."
                )
            scores[name] = s
        return scores

    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Masks from ``score_fn``; the gradient statistics start afresh after the step."""
        try:
            return super().compute_masks(module, masks, context)
        finally:
            self.__dict__.pop("statistics_", None)
