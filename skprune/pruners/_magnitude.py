"""Magnitude pruning (Han et al. 2015): small weights go first."""

from __future__ import annotations

import torch

from ._base import BasePruner
from ._protocol import PruningContext

__all__ = ["MagnitudePruning"]


class MagnitudePruning(BasePruner):
    """Prune the weights of smallest absolute value.

    With the default ``scope="lamp"`` all selected weights compete together
    after a per-layer normalization (LAMP), so layers with many redundant
    weights end sparser while no layer of small weights (a regressor's
    output layer) is emptied; ``scope="global"`` ranks raw magnitudes,
    ``"erk"`` uses RigL's Erdős–Rényi-Kernel layer densities and
    ``"layer"`` gives every layer the same sparsity. Every output unit
    keeps at least one incoming weight whatever the scope.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of selected weights set to zero, in ``[0, 1)``.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers; see :class:`BasePruner`.
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is Zhu & Gupta's :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` for all
        Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, MagnitudePruning, OneShot
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.8, schedule=OneShot()))
    """

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Importance is the absolute value of each weight."""
        return {name: w.abs() for name, w in weights.items()}
