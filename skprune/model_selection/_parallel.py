"""Distributed search on dask: a fail-fast variant of joblib's ``dask`` backend.

scikit-learn searches (``GridSearchCV``, :class:`~skprune.PrunedNetCV`) run on
a dask cluster through joblib::

    from dask.distributed import Client
    import joblib

    client = Client("scheduler-address:8786")
    with joblib.parallel_backend("dask"):
        search.fit(X, y)

joblib's own ``dask`` backend (joblib 1.6) never tells ``Parallel`` that a
task failed on the scheduler side, for example with ``KilledWorker`` when a
worker process dies: the search then waits forever. After
:func:`register_dask_backend`, the ``"dask"`` backend name points to
:class:`FailFastDaskBackend`, which reports such failures to ``Parallel`` so
the search stops with dask's own error.
"""

from __future__ import annotations

import asyncio

__all__ = ["register_dask_backend"]


class _RemoteFailure:
    """Carries an exception raised by dask (not by the task) to the callback thread."""

    def __init__(self, exception: BaseException):
        self.exception = exception


def _backend_class():
    from joblib._dask import DaskDistributedBackend

    class FailFastDaskBackend(DaskDistributedBackend):
        """joblib's dask backend that surfaces scheduler-side task failures.

        Identical to ``joblib._dask.DaskDistributedBackend`` except that a
        future in error state (e.g. ``distributed.KilledWorker``) is passed to
        ``Parallel``'s completion callback, which then raises it instead of
        waiting for a result that never comes.
        """

        async def _collect(self):
            while self._continue:
                async for future, result in self.waiting_futures:
                    cf_future = self._results.pop(future)
                    callback = self._callbacks.pop(future)
                    if future.status == "error":
                        _, exc, _ = result
                        cf_future.set_exception(exc)
                        if callback is not None:
                            callback(_RemoteFailure(exc))
                    else:
                        cf_future.set_result(result)
                        callback(result)
                await asyncio.sleep(0.01)

        def retrieve_result_callback(self, out):
            if isinstance(out, _RemoteFailure):
                raise out.exception
            return super().retrieve_result_callback(out)

    return FailFastDaskBackend


def register_dask_backend() -> None:
    """Make joblib's ``"dask"`` backend fail fast when a worker is lost.

    Call once per process before ``joblib.parallel_backend("dask")``. Needs
    the ``dask`` extra (``pip install 'skprune[dask]'``).

    Examples
    --------
    >>> import joblib
    >>> from skprune.model_selection import register_dask_backend
    >>> register_dask_backend()
    >>> with joblib.parallel_backend("dask"):  # doctest: +SKIP
    ...     search.fit(X, y)  # GridSearchCV or PrunedNetCV, on the cluster of the current dask Client
    """
    try:
        import joblib
        from joblib._dask import DaskDistributedBackend  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Distributed search needs dask.distributed: pip install 'skprune[dask]'.") from exc
    joblib.register_parallel_backend("dask", _backend_class())


def __getattr__(name):
    if name == "FailFastDaskBackend":
        return _backend_class()
    raise AttributeError(name)
