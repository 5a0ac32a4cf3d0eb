"""The memory budget of a load: what rebuilt objects may take, measured before they are allocated."""

from __future__ import annotations

import contextlib
import threading

import torch
from torch import nn
from torch.nn.modules import module as _module_hooks

from .._training._prepare import module_kwargs
from ..exceptions import PersistenceError

__all__ = ["BUDGET_BASE", "BUDGET_PER_BYTE", "MemoryBudget", "MAX_REGISTRATIONS_BASE"]

#: Modules, parameters and buffers that building the objects of a file may register: this plus
#: ``MAX_REGISTRATIONS_PER_TENSOR`` per tensor stored in the file. A module costs what it
#: registers, so no declared module (an RNN with num_layers=10000, an MLP with 50,000 layers) can
#: cost more construction work than the tensors stored with it.
MAX_REGISTRATIONS_BASE = 2048
MAX_REGISTRATIONS_PER_TENSOR = 16

#: Memory that objects rebuilt from a file may take: this plus ``BUDGET_PER_BYTE`` per file byte.
BUDGET_BASE = 64 * 2**20
BUDGET_PER_BYTE = 64


class MemoryBudget:
    """Count the bytes of arrays and modules rebuilt from ``path``; refuse the file past ``budget``."""

    def __init__(self, budget: int, path, n_tensors: int = 0):
        self.budget = budget
        self.used = 0
        self.path = path
        self.max_registrations = MAX_REGISTRATIONS_BASE + MAX_REGISTRATIONS_PER_TENSOR * n_tensors
        self.registrations = 0

    @contextlib.contextmanager
    def bounded_construction(self):
        """Count what modules built in this block register (on this thread); refuse past the cap."""
        thread = threading.get_ident()

        def count(*args):
            if threading.get_ident() != thread:
                return None
            self.registrations += 1
            if self.registrations > self.max_registrations:
                raise PersistenceError(
                    f"{str(self.path)!r}: building its modules registers more than "
                    f"{self.max_registrations} modules, parameters and buffers, far more than the "
                    "tensors it stores; the file is refused."
                )
            return None

        handles = [
            _module_hooks.register_module_module_registration_hook(count),
            _module_hooks.register_module_parameter_registration_hook(count),
            _module_hooks.register_module_buffer_registration_hook(count),
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

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
