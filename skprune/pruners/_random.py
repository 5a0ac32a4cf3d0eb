"""Random pruning: the baseline every pruning comparison needs (Blalock et al. 2020)."""

from __future__ import annotations

import torch

from ._base import BasePruner
from ._protocol import PruningContext

__all__ = ["RandomPruning"]


class RandomPruning(BasePruner):
    """Prune weights chosen uniformly at random.

    A criterion is only worth its cost if it beats this baseline at the same
    sparsity. The choice is drawn from the estimator's ``random_state``, so
    a fit with an integer ``random_state`` is reproducible.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of selected weights set to zero, in ``[0, 1)``.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        ``"global"`` draws among all selected weights at once (layers end
        with about the same sparsity); ``"layer"`` gives every layer exactly
        the target sparsity; ``"lamp"`` and ``"erk"`` share the target
        between layers as described in :class:`BasePruner` (LAMP leaves
        layers of few weights denser).
    schedule : BaseSchedule or None, default=None
        When to prune; ``None`` is Zhu & Gupta's :class:`~skprune.Polynomial`.
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` for all
        Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, RandomPruning
    >>> net = PrunedNetClassifier(pruner=RandomPruning(0.9), random_state=0)
    """

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Independent uniform scores from ``context.generator``."""
        return {
            name: torch.rand(w.shape, generator=context.generator, device=context.generator.device)
            for name, w in weights.items()
        }
