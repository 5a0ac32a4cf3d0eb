"""First-order saliency: prune the weights whose removal changes the loss least.

Removing weight ``w`` changes the loss by about ``|w * dL/dw|`` (a
first-order Taylor expansion). :class:`TaylorPruning` accumulates that
quantity over the training batches since the previous pruning step
(Molchanov et al. 2017, 2019); :class:`SNIPPruning` computes it once, on a
few batches before training, and prunes at initialization (Lee et al.
2019, where it is called connection sensitivity).
"""

from __future__ import annotations

import numbers

import torch
from sklearn.utils._param_validation import Interval

from ._base import BasePruner
from ._protocol import PruningContext
from ._schedules import BaseSchedule, OneShot

__all__ = ["TaylorPruning", "SNIPPruning"]


def _saliency(weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
    # A selected layer that received no gradient (unused in the forward
    # pass) has no statistics: fall back to |w| for it.
    return {name: context.statistics.get(name, w.abs()) for name, w in weights.items()}


class TaylorPruning(BasePruner):
    """Prune the weights of smallest first-order Taylor importance ``|w * dL/dw|``.

    The importance of each weight is ``|w * dL/dw|`` summed over the
    training batches since the previous pruning step, so it reflects the
    network as it is being trained. A step before any training (epoch 0,
    e.g. ``schedule=OneShot(at=0)``) measures it on ``n_batches`` training
    batches first, without updating the weights (which is
    :class:`SNIPPruning`).

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
    n_batches : int, default=5
        Batches used to measure the importance at a step that has no
        training batches behind it (pruning at epoch 0).

    Notes
    -----
    Gathering the statistics costs one elementwise product per selected
    weight and batch, until the last pruning step.

    References
    ----------
    Molchanov et al., *Pruning Convolutional Neural Networks for Resource
    Efficient Inference*, ICLR 2017; *Importance Estimation for Neural
    Network Pruning*, CVPR 2019.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, TaylorPruning
    >>> net = PrunedNetClassifier(pruner=TaylorPruning(0.9), random_state=0)
    """

    requires_gradient_statistics = True

    _parameter_constraints: dict = {
        **BasePruner._parameter_constraints,
        "n_batches": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        sparsity: float = 0.9,
        *,
        scope: str = "lamp",
        schedule: BaseSchedule | None = None,
        layers=None,
        prune_output_layer: bool = True,
        n_batches: int = 5,
    ):
        super().__init__(
            sparsity,
            scope=scope,
            schedule=schedule,
            layers=layers,
            prune_output_layer=prune_output_layer,
        )
        self.n_batches = n_batches

    @property
    def sensitivity_batches(self) -> int:
        """Batches of the sensitivity pass at epoch 0 (``n_batches``)."""
        return self.n_batches

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Accumulated ``|w * dL/dw|`` since the previous pruning step."""
        return _saliency(weights, context)


class SNIPPruning(BasePruner):
    """SNIP: prune once at initialization by connection sensitivity.

    Before the first epoch, the gradients of the loss on ``n_batches``
    shuffled training batches are computed without updating the weights;
    the weights of smallest ``|w * dL/dw|`` (summed over those batches) are
    pruned, and the sparse network is then trained for all ``max_epochs``.
    There is no schedule parameter: pruning happens at epoch 0.

    Parameters
    ----------
    sparsity : float, default=0.9
        Fraction of selected weights set to zero, in ``[0, 1)``.
    n_batches : int, default=5
        Training batches (of ``batch_size``) that measure the sensitivity.
        Lee et al. use one batch of 100-128 samples; a few batches lower the
        variance of the estimate at negligible cost. The batches are drawn
        from the estimator's ``random_state`` and do not change the order
        of the training batches.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers (see :class:`BasePruner`;
        the paper ranks raw scores globally, ``"global"``).
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` for all
        Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense.

    Notes
    -----
    The sensitivity is the criterion's loss alone (no ``alpha`` or pruner
    penalty), with the module in training mode, and ``fit`` keyword
    arguments are not passed to ``forward`` in this pass. The paper
    normalizes the sensitivities to sum to one; that does not change their
    order, so it is skipped.

    References
    ----------
    Lee, Ajanthan & Torr, *SNIP: Single-shot Network Pruning based on
    Connection Sensitivity*, ICLR 2019.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, SNIPPruning
    >>> net = PrunedNetClassifier(pruner=SNIPPruning(0.95, n_batches=3), random_state=0)
    """

    requires_gradient_statistics = True

    _parameter_constraints: dict = {
        **BasePruner._parameter_constraints,
        "n_batches": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        sparsity: float = 0.9,
        *,
        n_batches: int = 5,
        scope: str = "lamp",
        layers=None,
        prune_output_layer: bool = True,
    ):
        self.sparsity = sparsity
        self.n_batches = n_batches
        self.scope = scope
        self.layers = layers
        self.prune_output_layer = prune_output_layer

    #: SNIP always prunes at initialization.
    schedule = None

    @property
    def sensitivity_batches(self) -> int:
        """Batches of the sensitivity pass (``n_batches``)."""
        return self.n_batches

    def get_schedule(self) -> BaseSchedule:
        """``OneShot(at=0)``: prune before the first epoch."""
        return OneShot(at=0.0)

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Connection sensitivity ``|w * dL/dw|`` summed over the sensitivity batches."""
        return _saliency(weights, context)
