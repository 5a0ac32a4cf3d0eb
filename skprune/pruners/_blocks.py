"""Depth pruning: remove whole residual blocks ``y = x + f(x)``.

Channel pruning makes every kernel of a network cheaper; depth pruning
removes whole kernels. Residual networks behave like ensembles of paths of
different lengths (Veit et al. 2016), so many of their blocks can go with
little loss once the rest is fine-tuned. :class:`BlockPruning` finds the
residual blocks of any fx-traceable network
(:func:`skprune.nn.trace_residual_blocks`: skprune's residual
:class:`~skprune.MLP` and :class:`~skprune.ConvNet`, torchvision-style
ResNets with BasicBlock or Bottleneck, with or without a projection
shortcut), ranks them by how much the loss depends on them, and masks
*every* parameter of the branch ``f`` of the least important ones. The
branch then outputs exactly zero (it ends in a Linear/Conv layer or an
affine BatchNorm, whose weight and bias are zero), so the block is the
identity ``y = x``, or ``y = proj(x)`` with a projection shortcut, and
:meth:`~skprune.PrunedNet.compact` deletes its modules.
"""

from __future__ import annotations

import numbers
import warnings

import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from ..nn._residual import ResidualBlockInfo, trace_residual_blocks
from ._masks import MaskStore
from ._protocol import PrunerProtocol, PruningContext
from ._schedules import BaseSchedule

__all__ = ["BlockPruning"]

IMPORTANCES = ("taylor", "random")


class BlockPruning(PrunerProtocol):
    """Remove whole residual blocks (depth pruning).

    A residual block is ``y = x + f(x)`` (or ``y = proj(x) + f(x)``) in the
    network's ``forward``; a removed block's branch ``f`` has every
    parameter masked to zero, so it outputs exactly zero and the block is
    the identity (``y = proj(x)`` for a projection shortcut: the
    downsampling and channel change stay). Blocks are found with
    :mod:`torch.fx` (see :func:`skprune.nn.trace_residual_blocks`).

    Parameters
    ----------
    n_blocks_to_remove : int or float, default=0.5
        How many blocks to remove, as in scikit-learn's
        ``RFE(n_features_to_select=...)``: an int is a number of blocks
        (``0`` to the number of blocks), a float in ``[0, 1]`` a share of
        the blocks (rounded to the nearest count). This is the parameter a
        sparsity path of :class:`~skprune.PrunedNetCV` varies (as a share),
        and the one to put in a grid: ``pruner__n_blocks_to_remove``.
    importance : {"taylor", "random"}, default="taylor"
        How blocks are ranked (the least important go first).
        ``"taylor"``: the first-order Taylor estimate of how much the loss
        changes when the block's weights are zeroed, ``|sum over the
        branch's Linear/Conv weights of w * dL/dw|``, per training batch,
        averaged over the batches since the previous pruning step
        (Molchanov et al. 2019, for a whole block). ``"random"``: a seeded
        random order (the baseline any criterion must beat).
    projection_blocks : bool, default=True
        Whether blocks with a projection shortcut (``y = proj(x) + f(x)``,
        a downsampling ResNet block) may be removed. ``False`` keeps them
        and ranks only identity-shortcut blocks.
    schedule : BaseSchedule or None, default=None
        When to remove blocks; ``None`` is :class:`~skprune.Polynomial`
        (blocks go a few at a time, with training in between).
        ``OneShot(at=0.5)`` removes them all at mid-fit.

    Attributes
    ----------
    path_parameter : str
        ``"n_blocks_to_remove"``.

    See Also
    --------
    skprune.ChannelPruning : Remove channels instead (width); combine both
        with :class:`~skprune.CombinedPruning`.
    skprune.nn.trace_residual_blocks : The blocks found in a network.

    Notes
    -----
    Every parameter of a removed block's branch is masked, so its layers
    count as fully pruned in ``sparsity_`` and the pruning report, and the
    mask store keeps them at zero during fine-tuning. Blocks whose branch
    would not output zero with zero parameters (one ending in a sigmoid,
    or in a BatchNorm without affine parameters) are not candidates.

    Examples
    --------
    Search the depth of a residual MLP:

    >>> from sklearn.datasets import load_iris
    >>> from skprune import BlockPruning, OneShot, PrunedNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(
    ...     module__hidden_layer_sizes=(16,), module__n_blocks=4,
    ...     pruner=BlockPruning(n_blocks_to_remove=2, schedule=OneShot(at=0.5)),
    ...     max_epochs=4, random_state=0,
    ... ).fit(X, y)
    >>> net.compact().module_.n_blocks
    2
    """

    path_parameter = "n_blocks_to_remove"

    _parameter_constraints: dict = {
        "n_blocks_to_remove": [
            Interval(numbers.Integral, 0, None, closed="left"),
            Interval(numbers.Real, 0.0, 1.0, closed="both"),
        ],
        "importance": [StrOptions(set(IMPORTANCES))],
        "projection_blocks": ["boolean"],
        "schedule": [HasMethods(["steps"]), None],
    }

    def __init__(
        self,
        n_blocks_to_remove: int | float = 0.5,
        *,
        importance: str = "taylor",
        projection_blocks: bool = True,
        schedule: BaseSchedule | None = None,
    ):
        self.n_blocks_to_remove = n_blocks_to_remove
        self.importance = importance
        self.projection_blocks = projection_blocks
        self.schedule = schedule

    def _check_params_together(self) -> None:
        if isinstance(self.n_blocks_to_remove, bool):
            raise ValueError(
                f"{type(self).__name__}(n_blocks_to_remove={self.n_blocks_to_remove!r}): pass a number of "
                "blocks (an int such as 2) or a share of them (a float such as 0.5), not a bool."
            )

    @property
    def requires_gradient_statistics(self) -> bool:
        """Whether :meth:`observe` must see gradients (``importance="taylor"``)."""
        return self.importance == "taylor"

    # ------------------------------------------------------------ selection
    def blocks(self, module: nn.Module) -> list[ResidualBlockInfo]:
        """The candidate blocks of ``module``, in ``forward`` order.

        Raises
        ------
        ValueError
            If the network cannot be traced or has no removable residual
            block, or if ``n_blocks_to_remove`` is a count above the number
            of blocks.
        """
        name = type(self).__name__
        try:
            found, skipped = trace_residual_blocks(module, return_skipped=True)
        except Exception as exc:  # fx raises many types
            raise ValueError(
                f"{name} cannot find the residual blocks of {type(module).__name__}: torch.fx could not "
                f"trace its forward ({type(exc).__name__}: {exc}). Write forward without data-dependent "
                "control flow."
            ) from exc
        blocks = [b for b in found if self.projection_blocks or not b.projection]
        if not blocks:
            why = "; ".join(f"{add}: {reason}" for add, reason in list(skipped.items())[:3])
            projection = [b.name for b in found if b.projection]
            raise ValueError(
                f"{name} found no residual block y = x + f(x) to remove in {type(module).__name__}"
                + (f" (adds that are not: {why})" if why else " (its forward has no residual add)")
                + (
                    f"; blocks {projection} have a projection shortcut: pass projection_blocks=True"
                    if projection
                    else ""
                )
                + ". Use a residual network, e.g. module__n_blocks=3 with MLP or ConvNet."
            )
        n = self.n_blocks_to_remove
        if isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > len(blocks):
            raise ValueError(
                f"{name}(n_blocks_to_remove={n}) asks for more blocks than the network has: "
                f"{len(blocks)} ({[b.name for b in blocks]}). Use at most {len(blocks)}, or a share "
                "such as 0.5."
            )
        return blocks

    def n_to_remove(self, n_blocks: int) -> int:
        """Blocks removed at the end of the schedule, out of ``n_blocks``."""
        n = self.n_blocks_to_remove
        if isinstance(n, numbers.Integral) and not isinstance(n, bool):
            return min(int(n), n_blocks)
        return min(int(round(float(n) * n_blocks)), n_blocks)

    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """``(param_name, layer_name, layer)`` of the Linear/Conv weights in the candidate blocks' branches.

        These are the weights whose gradients the Taylor importance reads.
        """
        modules = dict(module.named_modules())
        out = []
        for block in self.blocks(module):
            for param in block.weights:
                layer_name = param.rsplit(".", 1)[0]
                out.append((param, layer_name, modules[layer_name]))
        return out

    # --------------------------------------------------------------- pruning
    @torch.no_grad()
    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Mask every parameter of the ``round(target * n_blocks_to_remove)`` least important blocks.

        Blocks removed at an earlier step stay removed (and count).
        """
        blocks = self.blocks(module)
        params = dict(module.named_parameters())
        before = torch.tensor(
            [all(not masks.keep_mask(p, params[p]).any() for p in b.parameters) for b in blocks]
        )
        n_remove = int(round(float(context.target) * self.n_to_remove(len(blocks))))
        n_remove = min(max(n_remove, int(before.sum())), len(blocks))
        scores = self.block_scores(blocks, context)
        ranked = torch.where(before, torch.full_like(scores, -torch.inf), scores)
        removed = torch.argsort(ranked, stable=True)[:n_remove].tolist()
        new = {}
        for index in removed:
            for param in blocks[index].parameters:
                new[param] = torch.zeros_like(params[param], dtype=torch.bool)
        self.__dict__.pop("batches_", None)
        self.__dict__.pop("batch_", None)
        return new

    def block_scores(self, blocks: list[ResidualBlockInfo], context: PruningContext) -> torch.Tensor:
        """One importance per block (higher = kept longer); see ``importance``."""
        random = torch.rand(len(blocks), generator=context.generator, dtype=torch.float64)
        if self.importance == "random":
            return random
        batches = list(self.__dict__.get("batches_", []))
        if self.__dict__.get("batch_"):
            batches.append(self.__dict__["batch_"])
        if not batches:
            warnings.warn(
                f"{type(self).__name__}(importance='taylor') has no gradient statistics at epoch "
                f"{context.epoch}; the blocks are ranked at random for this step.",
                UserWarning,
                stacklevel=3,
            )
            return random
        scores = torch.zeros(len(blocks), dtype=torch.float64)
        for batch in batches:
            for i, block in enumerate(blocks):
                scores[i] += abs(sum(batch.get(w, 0.0) for w in block.weights))
        return scores / len(batches)

    # ----------------------------------------------------------------- hooks
    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor, **kwargs) -> None:
        """Add ``sum(w * dL/dw)`` of one weight to the current batch's sums.

        The engine shows every selected weight once per backward pass; a
        weight seen again starts a new batch.
        """
        batch = self.__dict__.setdefault("batch_", {})
        if name in batch:
            self.__dict__.setdefault("batches_", []).append(batch)
            batch = self.__dict__["batch_"] = {}
        batch[name] = float((weight.double() * grad.double()).sum())
