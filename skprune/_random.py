"""Seeding helpers: ``random_state`` seeds initialization, shuffling and pruning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from sklearn.utils import check_random_state

__all__ = ["seed_from_random_state", "seeded_torch"]


def seed_from_random_state(random_state) -> int:
    """Draw a torch seed from a scikit-learn ``random_state``.

    An int always gives the same seed; ``None`` draws from numpy's global
    generator, so repeated fits differ (scikit-learn's convention).
    """
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


@contextmanager
def seeded_torch(seed: int, device: str | torch.device = "cpu") -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring it afterwards.

    Dropout and default weight initialization draw from the global RNG;
    forking it keeps a fit reproducible without disturbing the caller's
    random stream.
    """
    devices = []
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
