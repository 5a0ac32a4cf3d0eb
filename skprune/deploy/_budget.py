"""The memory budget of a load: what rebuilt objects may take, measured before they are allocated."""

from __future__ import annotations

import torch
from torch import nn

from .._training._prepare import module_kwargs
from ..exceptions import PersistenceError

__all__ = ["BUDGET_BASE", "BUDGET_PER_BYTE", "MemoryBudget"]

#: Memory that objects rebuilt from a file may take: this plus ``BUDGET_PER_BYTE`` per file byte.
BUDGET_BASE = 64 * 2**20
BUDGET_PER_BYTE = 64


class MemoryBudget:
    """Count the bytes of arrays and modules rebuilt from ``path``; refuse the file past ``budget``."""

    def __init__(self, budget: int, path):
        self.budget = budget
        self.used = 0
        self.path = path

    def charge(self, nbytes: int, what: str) -> None:
        self.used += int(nbytes)
        if self.used > self.budget:
            raise PersistenceError(
                f"{str(self.path)!r}: rebuilding {what} would take more than {self.budget} bytes of "
                "memory, far more than a file of this size can describe; the file is refused."
            )

    def probe(self, factory, what: str) -> None:
        """Charge the memory of the module ``factory()`` builds, measured on the meta device."""
        with torch.random.fork_rng(), torch.device("meta"):
            probe = factory()
        if not isinstance(probe, nn.Module):
            raise PersistenceError(f"{what} did not build a torch module.")
        nbytes = sum(t.numel() * t.element_size() for t in (*probe.parameters(), *probe.buffers()))
        self.charge(nbytes, f"module {what}")

    def construct(self, factory, what: str) -> nn.Module:
        """Build a module after checking, on the meta device, that it fits the budget."""
        self.probe(factory, what)
        with torch.random.fork_rng():
            return factory()

    def _charge_module(self, estimator) -> None:
        """Check on the meta device that the estimator's module fits the budget before building it."""
        module = estimator.module
        kwargs = module_kwargs(estimator)
        if isinstance(module, nn.Module):
            if kwargs:
                self.probe(lambda: type(module)(**kwargs), type(module).__name__)
        elif isinstance(module, type) and issubclass(module, nn.Module):
            self.probe(lambda: module(**kwargs), module.__name__)
