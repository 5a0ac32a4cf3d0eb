"""Lottery tickets (Frankle & Carbin 2019): prune, rewind the survivors, retrain."""

from __future__ import annotations

import numbers

import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from ._base import BasePruner
from ._protocol import PruningContext
from ._schedules import BaseSchedule

__all__ = ["LotteryTicket"]


class _LotteryRounds(BaseSchedule):
    """``n_rounds`` pruning steps splitting ``max_epochs`` into ``n_rounds + 1`` equal phases.

    Round ``k`` (1-based) reaches sparsity ``1 - (1 - s) ** (k / n_rounds)``,
    i.e. every round removes the same fraction of the surviving weights.
    """

    def __init__(self, sparsity: float, n_rounds: int, rewind_epoch: int):
        self.sparsity = sparsity
        self.n_rounds = n_rounds
        self.rewind_epoch = rewind_epoch

    def _raw_steps(self, n_epochs):
        n = int(self.n_rounds)
        epochs = [round(k * n_epochs / (n + 1)) for k in range(1, n + 1)]
        # every round needs its own epoch, after rewind_epoch, and the ticket at least one epoch
        if epochs[0] < 1 or epochs[0] <= self.rewind_epoch or len(set(epochs)) < n or epochs[-1] >= n_epochs:
            raise ValueError(
                f"LotteryTicket(n_rounds={n}, rewind_epoch={self.rewind_epoch}) needs every "
                f"round to train past rewind_epoch, but max_epochs={n_epochs} gives rounds of "
                f"about {n_epochs / (n + 1):.1f} epochs: raise max_epochs to at least "
                f"{(n + 1) * (self.rewind_epoch + 1)}, or lower n_rounds or rewind_epoch."
            )
        s = float(self.sparsity)
        steps = []
        for k, epoch in enumerate(epochs, start=1):
            target = 1.0 - (1.0 - s) ** (k / n)
            steps.append((epoch, target / s if s > 0 else 1.0))
        return steps


class LotteryTicket(BasePruner):
    """Iterative magnitude pruning with rewinding (lottery tickets).

    One ``fit`` runs every round: ``max_epochs`` is split into
    ``n_rounds + 1`` phases of equal length. Each of the first ``n_rounds``
    phases trains, prunes the smallest-magnitude surviving weights, then
    rewinds the network (weights, biases and buffers) to its values at
    epoch ``rewind_epoch`` of the fit, keeping the masks, and resets the
    optimizer state. The last phase trains the final sparse network (the
    ticket).

    The per-round schedule is geometric, as in Frankle & Carbin: each round
    removes the same fraction ``p = 1 - (1 - sparsity) ** (1 / n_rounds)``
    of the weights still alive, so round ``k`` reaches
    ``1 - (1 - sparsity) ** (k / n_rounds)`` and the last one reaches
    ``sparsity`` exactly.

    Parameters
    ----------
    sparsity : float, default=0.9
        Final fraction of selected weights set to zero, in ``[0, 1)``.
    n_rounds : int, default=3
        Prune-and-rewind rounds, ``>= 1``. ``max_epochs`` must give every
        phase more than ``rewind_epoch`` epochs.
    rewind_epoch : int, default=0
        Epoch whose weights the survivors are rewound to: ``0`` is the
        initialization (the original lottery ticket), a small positive
        value is "late rewinding" (Frankle et al. 2020), which is more
        stable for larger networks.
    scope : {"lamp", "global", "erk", "layer"}, default="lamp"
        How the target is shared between layers (see :class:`BasePruner`).
        Frankle & Carbin prune fully connected networks layer-wise
        (``"layer"``); raw ``"global"`` ranking can empty most of a wide
        layer whose initial weights are small, which the default ``"lamp"``
        normalization avoids. No scope empties a layer or disconnects an
        output unit.
    layers : str, type, list or None, default=None
        Layers to prune by name, glob pattern or type; ``None`` for all
        Linear and Conv layers.
    prune_output_layer : bool, default=True
        ``False`` leaves the output layer dense.

    Notes
    -----
    A learning-rate scheduler callback is not restarted by a rewind.
    The snapshot is held on the fitted ``pruner_`` during ``fit`` and
    dropped at the last round.

    References
    ----------
    Frankle & Carbin, *The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks*, ICLR 2019.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, LotteryTicket
    >>> net = PrunedNetClassifier(pruner=LotteryTicket(0.9, n_rounds=3), max_epochs=40)
    """

    _parameter_constraints: dict = {
        **BasePruner._parameter_constraints,
        "n_rounds": [Interval(numbers.Integral, 1, None, closed="left")],
        "rewind_epoch": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        sparsity: float = 0.9,
        n_rounds: int = 3,
        rewind_epoch: int = 0,
        *,
        scope: str = "lamp",
        layers=None,
        prune_output_layer: bool = True,
    ):
        self.sparsity = sparsity
        self.n_rounds = n_rounds
        self.rewind_epoch = rewind_epoch
        self.scope = scope
        self.layers = layers
        self.prune_output_layer = prune_output_layer

    #: The rounds define the schedule.
    schedule = None

    def get_schedule(self) -> BaseSchedule:
        """The rounds: ``n_rounds`` steps at the end of equal training phases."""
        self.check_params()
        return _LotteryRounds(self.sparsity, self.n_rounds, self.rewind_epoch)

    def score(self, weights: dict[str, torch.Tensor], context: PruningContext) -> dict[str, torch.Tensor]:
        """Importance is the absolute value of each weight."""
        return {name: w.abs() for name, w in weights.items()}

    def on_epoch_begin(self, module: nn.Module, epoch: int, **kwargs) -> None:
        """Record the network at ``rewind_epoch``."""
        if epoch == self.rewind_epoch:
            self.rewind_state_ = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def rewind(self, module: nn.Module, context: PruningContext) -> dict[str, torch.Tensor] | None:
        """The network recorded at ``rewind_epoch`` (dropped after the last round)."""
        state = getattr(self, "rewind_state_", None)
        if context.step == int(self.n_rounds) - 1:
            self.__dict__.pop("rewind_state_", None)
        return state
