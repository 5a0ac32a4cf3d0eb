"""Pruning schedules: when pruning steps happen and how far each goes.

A schedule maps training progress to a fraction of the pruner's final
sparsity. It is evaluated once per fit: :meth:`BaseSchedule.steps` returns
the epochs at which pruning happens and the fraction of the final sparsity
reached at each. A step at epoch ``e`` is applied before epoch ``e`` trains
(``e == 0`` prunes at initialization, ``e == n_epochs`` after the last
epoch). The epochs after the last step fine-tune the pruned network. The
last step always reaches the full target, so the fitted sparsity is exact.
"""

from __future__ import annotations

import numbers

from sklearn.base import BaseEstimator

from .._doc_link import DocLinkMixin

__all__ = ["BaseSchedule", "OneShot", "Iterative", "Polynomial"]


def _check_fraction(name: str, value, *, allow_one: bool = True) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}.")
    upper_ok = value <= 1.0 if allow_one else value < 1.0
    if not (0.0 <= value and upper_ok):
        raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
    return float(value)


class BaseSchedule(DocLinkMixin, BaseEstimator):
    """Base class of pruning schedules.

    Subclasses implement :meth:`_raw_steps` returning ``(epoch, fraction)``
    pairs; this class validates, deduplicates and closes them.

    Examples
    --------
    A schedule maps the number of epochs to ``(epoch, fraction)`` steps:

    >>> from skprune import BaseSchedule
    >>> class AtTheEnd(BaseSchedule):
    ...     def _raw_steps(self, n_epochs):
    ...         return [(n_epochs, 1.0)]
    >>> AtTheEnd().steps(10)
    [(10, 1.0)]
    """

    def _raw_steps(self, n_epochs: int) -> list[tuple[int, float]]:
        raise NotImplementedError

    def steps(self, n_epochs: int) -> list[tuple[int, float]]:
        """Return sorted ``(epoch, fraction_of_final_sparsity)`` pruning steps.

        Parameters
        ----------
        n_epochs : int
            Number of epochs of the fit.

        Returns
        -------
        list of (int, float)
            Strictly increasing epochs in ``[0, n_epochs]``; fractions
            non-decreasing in ``(0, 1]``, the last equal to 1.
        """
        if n_epochs < 1:
            raise ValueError(f"n_epochs must be >= 1, got {n_epochs}.")
        merged: dict[int, float] = {}
        for epoch, fraction in self._raw_steps(n_epochs):
            epoch = int(min(max(epoch, 0), n_epochs))
            merged[epoch] = max(merged.get(epoch, 0.0), float(fraction))
        steps = sorted((e, f) for e, f in merged.items() if f > 0)
        if not steps:
            steps = [(n_epochs, 1.0)]
        # fractions must not decrease; the last one reaches the target
        running = 0.0
        closed = []
        for epoch, fraction in steps:
            running = max(running, min(fraction, 1.0))
            closed.append((epoch, running))
        closed[-1] = (closed[-1][0], 1.0)
        return closed


class OneShot(BaseSchedule):
    """Prune to the full target in one step, then fine-tune.

    Parameters
    ----------
    at : float, default=0.5
        Fraction of ``max_epochs`` trained densely before the single pruning
        step; the rest fine-tunes. ``at=0`` prunes at initialization,
        ``at=1`` prunes after training with no fine-tuning.

    Examples
    --------
    >>> from skprune import MagnitudePruning, OneShot
    >>> OneShot(at=0.5).steps(10)
    [(5, 1.0)]
    >>> pruner = MagnitudePruning(sparsity=0.8, schedule=OneShot(at=0))  # prune at initialization
    """

    def __init__(self, at: float = 0.5):
        self.at = at

    def _raw_steps(self, n_epochs):
        at = _check_fraction("OneShot(at=...)", self.at)
        return [(round(at * n_epochs), 1.0)]


class Iterative(BaseSchedule):
    """Prune in ``n_steps`` equal increments of sparsity (Han et al. 2015).

    Parameters
    ----------
    n_steps : int, default=5
        Number of pruning steps. Step ``i`` (1-based) reaches ``i / n_steps``
        of the final sparsity.
    start : float, default=0.2
        Fraction of ``max_epochs`` at which the first step happens.
    end : float, default=0.7
        Fraction of ``max_epochs`` at which the last step happens; the
        epochs after it fine-tune.

    Examples
    --------
    >>> from skprune import Iterative
    >>> Iterative(n_steps=3, start=0.2, end=0.6).steps(10)
    [(2, 0.3333333333333333), (4, 0.6666666666666666), (6, 1.0)]
    """

    def __init__(self, n_steps: int = 5, start: float = 0.2, end: float = 0.7):
        self.n_steps = n_steps
        self.start = start
        self.end = end

    def _raw_steps(self, n_epochs):
        if not isinstance(self.n_steps, numbers.Integral) or self.n_steps < 1:
            raise ValueError(f"Iterative(n_steps=...) must be an integer >= 1, got {self.n_steps!r}.")
        start = _check_fraction("Iterative(start=...)", self.start)
        end = _check_fraction("Iterative(end=...)", self.end)
        if end < start:
            raise ValueError(f"Iterative needs start <= end, got start={start}, end={end}.")
        n = int(self.n_steps)
        steps = []
        for i in range(n):
            position = start if n == 1 else start + (end - start) * i / (n - 1)
            steps.append((round(position * n_epochs), (i + 1) / n))
        return steps


class Polynomial(BaseSchedule):
    """Gradual pruning of Zhu & Gupta (2017), one step per epoch.

    ``s_t = s_f * (1 - (1 - (t - t0) / (t1 - t0)) ** power)`` for epochs
    ``t0 <= t <= t1``, so sparsity rises quickly while the network has many
    redundant weights and slowly as it approaches the target.

    Parameters
    ----------
    start : float, default=0.1
        Fraction of ``max_epochs`` at which gradual pruning starts.
    end : float, default=0.7
        Fraction of ``max_epochs`` at which the target is reached; the epochs
        after it fine-tune.
    power : float, default=3
        Exponent of the schedule (3 in the paper; 1 is linear).

    Examples
    --------
    >>> from skprune import Polynomial
    >>> [(epoch, round(fraction, 3)) for epoch, fraction in Polynomial(start=0.0, end=0.4).steps(10)]
    [(1, 0.578), (2, 0.875), (3, 0.984), (4, 1.0)]
    """

    def __init__(self, start: float = 0.1, end: float = 0.7, power: float = 3):
        self.start = start
        self.end = end
        self.power = power

    def _raw_steps(self, n_epochs):
        start = _check_fraction("Polynomial(start=...)", self.start)
        end = _check_fraction("Polynomial(end=...)", self.end)
        if end < start:
            raise ValueError(f"Polynomial needs start <= end, got start={start}, end={end}.")
        if not isinstance(self.power, numbers.Real) or self.power <= 0:
            raise ValueError(f"Polynomial(power=...) must be > 0, got {self.power!r}.")
        t0 = round(start * n_epochs)
        t1 = max(t0, round(end * n_epochs))
        if t1 == t0:
            return [(t1, 1.0)]
        return [(t, 1.0 - (1.0 - (t - t0) / (t1 - t0)) ** self.power) for t in range(t0, t1 + 1)]
