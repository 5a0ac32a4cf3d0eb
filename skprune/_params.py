"""scikit-learn parameters on a skorch net: explicit ``__init__`` parameters and ``pruner__*`` routing."""

from __future__ import annotations

import functools
import inspect

from sklearn.base import BaseEstimator

__all__ = ["ParamsMixin", "with_default_criterion"]

_PRUNER_PREFIX = "pruner__"


def _init_param_names(cls) -> frozenset:
    """Names of the explicit ``__init__`` parameters of an estimator class."""
    cached = cls.__dict__.get("_init_param_names_cache")
    if cached is None:
        signature = inspect.signature(cls.__init__)
        cached = frozenset(
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )
        type.__setattr__(cls, "_init_param_names_cache", cached)
    return cached


class ParamsMixin:
    """Parameter handling of :class:`~skprune.PrunedNet` (put before skorch's ``NeuralNet``).

    Constructor parameters are plain attributes (a torch module given as
    ``module`` is not registered as a component), ``get_params`` lists the
    explicit parameters plus prefixed ones (``module__*``, ...), and
    ``set_params(pruner__x=...)`` reaches the pruner.
    """

    # ------------------------------------------------------------ parameters
    def __setattr__(self, name, value):
        # Constructor parameters (``module`` may be a torch module instance)
        # are plain attributes; skorch would register them as components.
        if name in _init_param_names(type(self)):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _get_param_names(self):
        explicit = _init_param_names(type(self))
        # prefixed parameters (module__x, optimizer__y, ...) and any other
        # keyword given to __init__/set_params, which skorch validates at
        # initialize with a "did you mean" message
        extra = self.__dict__.get("_params_to_validate", set())
        dynamic = [k for k in self.__dict__ if ("__" in k or k in extra) and not k.endswith("_")]
        return sorted(set(explicit) | set(dynamic))

    def set_params(self, **params):
        """Set parameters; ``pruner__<name>`` is routed to the pruner.

        Stock skorch stores ``pruner__sparsity=0.8`` as a stray attribute and
        never updates the pruner; here it calls ``self.pruner.set_params``.

        Parameters
        ----------
        **params : dict
            Estimator parameters, ``pruner__*``, ``module__*``, ``optimizer__*``...

        Returns
        -------
        self
        """
        pruner_params = {
            key[len(_PRUNER_PREFIX) :]: value
            for key, value in params.items()
            if key.startswith(_PRUNER_PREFIX)
        }
        other = {key: value for key, value in params.items() if not key.startswith(_PRUNER_PREFIX)}
        if "callbacks" in other:
            # a plain value, validated when callbacks are initialized at fit
            # (skorch would initialize them here and raise on a bad value)
            BaseEstimator.set_params(self, callbacks=other.pop("callbacks"))
            if self.initialized_:
                self._initialize_callbacks()
        if other:
            super().set_params(**other)
        if pruner_params:
            if self.pruner is None or not hasattr(self.pruner, "set_params"):
                raise ValueError(
                    f"Cannot set {sorted(_PRUNER_PREFIX + k for k in pruner_params)}: "
                    f"pruner is {self.pruner!r}. Set a pruner first, e.g. "
                    "pruner=MagnitudePruning()."
                )
            self.pruner.set_params(**pruner_params)
        return self


def with_default_criterion(estimator_class, criterion):
    """``estimator_class.__init__`` with another default ``criterion``: each parameter is written once.

    scikit-learn reads the parameters (and their defaults) from the
    signature of ``__init__``; the returned function carries the signature
    of ``estimator_class.__init__`` with only the default of ``criterion``
    changed.
    """
    base = estimator_class.__init__
    signature = inspect.signature(base)
    signature = signature.replace(
        parameters=[
            p.replace(default=criterion) if p.name == "criterion" else p
            for p in signature.parameters.values()
        ]
    )

    @functools.wraps(base)
    def __init__(self, *args, **kwargs):
        if len(args) < 2 and "criterion" not in kwargs:
            kwargs["criterion"] = criterion
        base(self, *args, **kwargs)

    __init__.__signature__ = signature
    return __init__
