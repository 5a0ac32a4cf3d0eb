"""Activation statistics a pruner asked for, recorded with forward hooks the engine owns.

A pruner declares what it needs with
:meth:`~skprune.pruners.PrunerProtocol.requires_activation_statistics`
(a dict of :class:`~skprune.pruners.ActivationRequest`). For one fit the
engine registers one forward hook per request with an
:class:`ActivationRecorder`, sums the requested statistics over the training
forward passes (evaluation-mode passes are ignored), hands the means since
the previous step to ``compute_masks`` and removes every hook when the fit
ends, also on an error or an interrupt: nothing stays on the module or the
pruner. The hooks are plain objects holding tensors, so a module that is
copied or pickled mid-fit (by a callback) still copies and pickles.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pruners._context import ActivationRequest

__all__ = ["ActivationRecorder"]


class _Accumulator:
    """The forward hook of one request: per-unit sums of the requested statistics."""

    def __init__(self, key: str, request: ActivationRequest, owner: str):
        self.key = key
        self.request = request
        self.owner = owner
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0  # values summed per unit

    def _value(self, args, output) -> torch.Tensor:
        request = self.request
        value = output if request.where == "output" else (args[0] if args else None)
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{self.owner} asked for the {request.where} of module {request.module!r}, which is "
                f"{type(value).__name__}, not a tensor; ask for a module whose {request.where} is one tensor."
            )
        return value.detach()

    @torch.no_grad()
    def __call__(self, module: nn.Module, args, output) -> None:
        if not module.training:
            return  # validation and prediction passes are not training batches
        x = self._value(args, output)
        dim = self.request.dim
        if dim is None:
            dims = tuple(range(x.dim()))
            per_unit = x.numel()
        else:
            if not -x.dim() <= dim < x.dim():
                raise ValueError(
                    f"{self.owner} asked for dim={dim} of the {self.request.where} of module "
                    f"{self.request.module!r}, which has shape {tuple(x.shape)}."
                )
            dim = dim % x.dim()
            dims = tuple(d for d in range(x.dim()) if d != dim)
            per_unit = x.numel() // max(x.shape[dim], 1)
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        for stat in self.request.statistics:
            if stat == "zero_fraction":
                value = x == 0
            elif stat == "mean_abs":
                value = x.abs()
            elif stat == "mean_square":
                value = x.square()
            else:
                value = x
            total = value.sum(dim=dims, dtype=dtype) if dims else value.to(dtype)
            previous = self.sums.get(stat)
            if previous is None:
                self.sums[stat] = total
            elif previous.shape != total.shape:
                raise ValueError(
                    f"The {self.request.where} of module {self.request.module!r} changed from "
                    f"{tuple(previous.shape)} to {tuple(total.shape)} units between forward passes "
                    f"(a module called at several places?); {self.owner} cannot average it."
                )
            else:
                previous += total
        self.count += per_unit

    def take(self) -> dict[str, torch.Tensor] | None:
        """The means since the last call (``None`` if nothing was recorded), then start afresh."""
        if not self.count:
            return None
        means = {stat: (total / self.count).float() for stat, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


class ActivationRecorder:
    """Forward hooks recording the activations a pruner asked for, for one fit.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    requests : dict of str to ActivationRequest
        What the pruner asked for, by its keys.
    owner : str
        The pruner's class name, for messages.

    Raises
    ------
    TypeError, ValueError
        If ``requests`` is not a dict of ActivationRequest, or names a
        submodule the network lacks.
    """

    def __init__(self, module: nn.Module, requests, owner: str):
        where = f"{owner}.requires_activation_statistics"
        if not isinstance(requests, dict):
            raise TypeError(f"{where} must return a dict of key -> ActivationRequest, got {requests!r}.")
        modules = dict(module.named_modules())
        self.accumulators: list[_Accumulator] = []
        self.handles: list = []
        for key, request in requests.items():
            if not isinstance(key, str) or not isinstance(request, ActivationRequest):
                raise TypeError(
                    f"{where} must return a dict of str -> skprune.pruners.ActivationRequest, got "
                    f"{key!r}: {request!r}."
                )
            if request.module not in modules:
                names = [name for name in modules if name][:12]
                raise ValueError(
                    f"{where} asks for module {request.module!r}, which the network does not have; its "
                    f"submodules include {names}."
                )
        try:
            for key, request in requests.items():
                accumulator = _Accumulator(key, request, owner)
                self.handles.append(modules[request.module].register_forward_hook(accumulator))
                self.accumulators.append(accumulator)
        except BaseException:
            self.remove()
            raise

    @property
    def empty(self) -> bool:
        """Whether nothing was recorded since the last :meth:`take`."""
        return not any(accumulator.count for accumulator in self.accumulators)

    def take(self) -> dict[str, dict[str, torch.Tensor]]:
        """Means of every request recorded since the last call, by key; then start afresh."""
        taken = {}
        for accumulator in self.accumulators:
            means = accumulator.take()
            if means is not None:
                taken[accumulator.key] = means
        return taken

    def remove(self) -> None:
        """Remove every hook from the network (idempotent)."""
        while self.handles:
            self.handles.pop().remove()
        self.accumulators = []
