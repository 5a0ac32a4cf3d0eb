"""L1-driven pruning: an L1 penalty pushes weights to zero, magnitude masks finish."""

from __future__ import annotations

import numbers

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from ._base import BasePruner
from ._protocol import PruningContext
from ._schedules import BaseSchedule

__all__ = ["L1Pruning"]


class L1Pruning(BasePruner):
    """Train with an L1 penalty on the selected weights, then prune by magnitude.

    The penalty ``strength * sum(|w|)`` over the selected weights is added
    to the training loss for the whole fit, so the optimizer drives
    unimportant weights toward zero; at the scheduled steps the weights of
    smallest magnitude are pruned to the target sparsity. Search
    ``strength`` like any other hyperparameter (``pruner__strength``).

    The penalty is a sum over weights added to a loss that is a mean over
    samples, as in scikit-learn's ``Lasso``: the (sub)gradient it adds to
    every weight is exactly ``strength``, whatever the size of the network
    or of the batch, so a strength found for one network transfers to
    another. It comes on top of the estimator's L2 ``alpha``.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of selected weights set to zero, in ``[0, 1)``.
    strength : float, default=1e-4
        Weight of the L1 penalty, ``>= 0``; ``0`` is plain magnitude
        pruning. Useful values are around ``1e-5`` to ``1e-3`` with Adam
        at its default learning rate.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers; see :class:`BasePruner`.
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is Zhu & Gupta's :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Layers to penalize and prune, by name, glob pattern or type;
        ``None`` for all Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense and unpenalized.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, L1Pruning
    >>> net = PrunedNetClassifier(pruner=L1Pruning(0.9, strength=1e-4), random_state=0)
    """

    _parameter_constraints: dict = {
        **BasePruner._parameter_constraints,
        "strength": [Interval(numbers.Real, 0.0, None, closed="left")],
    }

    def __init__(
        self,
        sparsity: float = 0.9,
        strength: float = 1e-4,
        *,
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
        self.strength = strength

    def penalty(self, module: nn.Module, **kwargs) -> torch.Tensor | None:
        """``strength * sum(|w|)`` over the selected weights (``None`` if ``strength == 0``)."""
        if self.strength == 0:
            return None
        total = sum(layer.weight.abs().sum() for _, _, layer in self.select_layers(module))
        return float(self.strength) * total

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Importance is the absolute value of each weight."""
        return {name: w.abs() for name, w in weights.items()}
