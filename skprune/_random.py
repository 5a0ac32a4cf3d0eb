"""Random streams of one fit: the same ``random_state`` gives the same model under any joblib backend.

Every random draw of a fit comes from the fit's own streams, never from a
state shared with fits running at the same time in other threads:

* batch shuffling and pruning decisions use their own ``torch.Generator``;
* the built-in networks' dropout (:class:`skprune.nn.Dropout`) draws from
  the generator that :func:`fit_generator` returns while the fit trains (a
  context variable, so each thread sees its own fit's generator);
* what can only draw from torch's *global* RNG (the default weight
  initialization of ``torch.nn`` layers, ``nn.Dropout`` in a user's module)
  runs inside :meth:`FitRandomness.global_stream`: under one process-wide
  lock, the global RNG is set to this fit's own stream for the block and
  put back afterwards. Blocks of concurrent fits take turns, so each fit's
  stream is the same as in a sequential run.

``torch.random.fork_rng`` alone is not enough in threads: it saves and
restores the process-global state, so two fits forking at the same time
overwrite each other's seeds.
"""

from __future__ import annotations

import copy
import numbers
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from sklearn.utils import check_random_state
from skorch.dataset import ValidSplit

__all__ = ["FitRandomness", "fit_generator", "seed_from_random_state", "seeded_valid_split"]

#: Serializes every use of torch's global RNG by a fit (see the module docstring).
_GLOBAL_RNG_LOCK = threading.RLock()

#: Generator of the fit running in this thread/context, for the built-in dropout.
_FIT_GENERATOR: ContextVar[torch.Generator | None] = ContextVar("skprune_fit_generator", default=None)


def seed_from_random_state(random_state) -> int:
    """Draw a torch seed from a scikit-learn ``random_state``.

    An int always gives the same seed; ``None`` draws from numpy's global
    generator, so repeated fits differ (scikit-learn's convention).
    """
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def fit_generator(device: torch.device) -> torch.Generator | None:
    """The generator of the fit running in this context, if it lives on ``device``; else ``None``."""
    generator = _FIT_GENERATOR.get()
    if generator is None or generator.device.type != device.type:
        return None
    return generator


def _global_generators(device: torch.device) -> list[torch.Generator]:
    generators = [torch.random.default_generator]
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index if device.index is not None else torch.cuda.current_device()
        generators.append(torch.cuda.default_generators[index])
    return generators


class FitRandomness:
    """The random streams of one fit, all derived from one seed.

    Parameters
    ----------
    seed : int
        From :func:`seed_from_random_state`.
    device : str or torch.device
        The fit's device (dropout draws on it).

    Attributes
    ----------
    batches : torch.Generator
        Shuffles training batches.
    pruning : torch.Generator
        Pruning decisions (``RandomPruning``) and the sensitivity pass.
    dropout : torch.Generator
        Dropout of the built-in networks, on ``device``.
    """

    def __init__(self, seed: int, device="cpu"):
        self.seed = int(seed)
        self.device = torch.device(device)
        self.batches = torch.Generator().manual_seed(self.seed)
        self.pruning = torch.Generator().manual_seed(self.seed + 1)
        self.dropout = torch.Generator(device=self.device).manual_seed(self.seed + 2)
        self._global_states: list[torch.Tensor] | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        """Make :attr:`dropout` the generator :func:`fit_generator` returns in this context."""
        token = _FIT_GENERATOR.set(self.dropout)
        try:
            yield
        finally:
            _FIT_GENERATOR.reset(token)

    @contextmanager
    def global_stream(self) -> Iterator[None]:
        """Run a block that draws from torch's global RNG on this fit's own stream.

        The first block starts the stream at ``seed`` (so weight
        initialization is what ``torch.manual_seed(seed)`` gives); later
        blocks continue it. The caller's global state is restored on exit.
        """
        with _GLOBAL_RNG_LOCK:
            generators = _global_generators(self.device)
            saved = [g.get_state() for g in generators]
            try:
                if self._global_states is None:
                    for g in generators:
                        g.manual_seed(self.seed)
                else:
                    for g, state in zip(generators, self._global_states):
                        g.set_state(state)
                yield
            finally:
                self._global_states = [g.get_state() for g in generators]
                for g, state in zip(generators, saved):
                    g.set_state(state)


def seeded_valid_split(split, seed: int | None):
    """``split``, or a copy seeded with ``seed`` if it is an unseeded ``ValidSplit(<fraction>)``.

    skorch's ``ValidSplit(0.2)`` shuffles with numpy's global generator, so
    the same ``random_state`` gave another split, hence another model, at
    every fit. The caller's splitter is not modified; one with its own
    ``random_state`` (or a non-shuffling split) is returned as it is.
    """
    cv = getattr(split, "cv", None)
    fraction = isinstance(cv, numbers.Real) and not isinstance(cv, bool) and not float(cv).is_integer()
    if seed is None or not isinstance(split, ValidSplit) or not fraction or split.random_state is not None:
        return split
    split = copy.copy(split)
    split.random_state = seed
    return split
