"""What the engine hands a pruner: the context of a pruning step, and the activations it may ask for.

:class:`PruningContext` is the argument of ``compute_masks`` and ``rewind``
that grows new fields (instead of new positional arguments);
:class:`ActivationRequest` is what a pruner returns from
``requires_activation_statistics`` to have activations recorded for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["ACTIVATION_STATISTICS", "ActivationRequest", "PruningContext"]


#: Statistics the engine can record of an activation, per unit (see :class:`ActivationRequest`).
ACTIVATION_STATISTICS = ("mean", "mean_abs", "mean_square", "zero_fraction")


@dataclass(frozen=True)
class ActivationRequest:
    """One activation a pruner asks the engine to record during training.

    Returned (as the values of a dict whose keys the pruner chooses) by
    :meth:`PrunerProtocol.requires_activation_statistics`. The engine
    registers a forward hook on ``module`` for the fit, reduces the
    recorded tensor over every dimension but ``dim`` on each training
    forward pass (never in evaluation mode), and hands the means since the
    previous pruning step to ``compute_masks`` as
    ``context.activations[key][statistic]``, a tensor with one entry per
    index of ``dim``.

    Parameters
    ----------
    module : str
        Name of a submodule of the network, as in ``named_modules()``
        (``""`` is the network itself).
    where : {"output", "input"}, default="output"
        Record what the submodule returns, or its first positional input.
    dim : int or None, default=1
        The dimension of the units: ``1`` for ``(N, features)`` and
        ``(N, channels, H, W)`` tensors, ``-1`` for features last; ``None``
        reduces everything to one number (e.g. a residual branch's output).
    statistics : tuple of str, default=("mean_abs", "zero_fraction")
        Any of :data:`ACTIVATION_STATISTICS`: ``"mean"``, ``"mean_abs"``
        (mean absolute activation), ``"mean_square"`` and
        ``"zero_fraction"`` (the share of exact zeros: APoZ, Hu et al. 2016).

    Examples
    --------
    >>> from skprune.pruners import ActivationRequest
    >>> ActivationRequest("layers.act0", statistics=("zero_fraction",))
    ActivationRequest(module='layers.act0', where='output', dim=1, statistics=('zero_fraction',))
    """

    module: str
    where: str = "output"
    dim: int | None = 1
    statistics: tuple[str, ...] = ("mean_abs", "zero_fraction")

    def __post_init__(self):
        if not isinstance(self.module, str):
            raise TypeError(f"ActivationRequest(module=...) is a submodule name (str), got {self.module!r}.")
        if self.where not in ("output", "input"):
            raise ValueError(f"ActivationRequest(where=...) is 'output' or 'input', got {self.where!r}.")
        if self.dim is not None and (isinstance(self.dim, bool) or not isinstance(self.dim, int)):
            raise TypeError(f"ActivationRequest(dim=...) is an int or None, got {self.dim!r}.")
        statistics = (self.statistics,) if isinstance(self.statistics, str) else tuple(self.statistics)
        unknown = [stat for stat in statistics if stat not in ACTIVATION_STATISTICS]
        if unknown or not statistics:
            raise ValueError(
                f"ActivationRequest(statistics={self.statistics!r}): choose one or more of "
                f"{list(ACTIVATION_STATISTICS)}."
            )
        object.__setattr__(self, "statistics", statistics)


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
        Where this step goes, as returned by
        :meth:`PrunerProtocol.step_target`: for the weight pruners, the
        sparsity to reach in the selected layers (the pruner's ``sparsity``
        times the schedule's fraction); for a pruner whose goal is not a
        weight sparsity (e.g. :class:`~skprune.InputPruning`), the
        schedule's fraction of its final goal.
    generator : torch.Generator
        Seeded source of randomness (from the estimator's ``random_state``).
    statistics : dict of str to Tensor
        Per-parameter statistics a pruner gathered itself since its last
        step (see :meth:`skprune.BasePruner.observe`), keyed by parameter
        name. Empty unless the pruner gathers them.
    activations : dict of str to dict of str to Tensor
        The activations the pruner asked for
        (:meth:`PrunerProtocol.requires_activation_statistics`), averaged
        over the training forward passes since its previous step:
        ``activations[key][statistic]`` for each requested key and
        statistic. Empty unless the pruner asks.

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
    activations: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
