"""Put a fitted estimator back as it was when a fit fails or is interrupted."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["restored_on_failure"]

#: Fitted objects a continuing fit changes in place (copied together, so the
#: optimizer keeps pointing at the copied module's parameters).
_CHANGED_IN_PLACE = ("module_", "criterion_", "optimizer_", "masks_", "history_")


@contextmanager
def restored_on_failure(net, *, fresh: bool) -> Iterator[None]:
    """Run a fit; if it raises (``KeyboardInterrupt`` included), restore the estimator's attributes.

    A fresh fit builds new module and optimizer objects, so keeping the
    previous attribute values is enough. A continuing fit (``partial_fit``,
    ``warm_start=True``) trains the fitted objects in place: they are
    deep-copied first. skorch swallows a ``KeyboardInterrupt`` inside its
    epoch loop, so an interrupted training keeps what it trained; only
    errors (e.g. divergence) and interrupts outside the loop restore.

    Parameters
    ----------
    net : PrunedNet
    fresh : bool
        Whether the fit builds a new network.
    """
    previous = dict(net.__dict__)
    if not fresh:
        previous.update(copy.deepcopy({k: previous[k] for k in _CHANGED_IN_PLACE if k in previous}))
    try:
        yield
    except BaseException:
        net.__dict__.clear()
        net.__dict__.update(previous)
        raise
