"""scikit-learn parameters on a skorch net: explicit ``__init__`` parameters and ``pruner__*`` routing."""

from __future__ import annotations

import functools
import inspect

import torch
from sklearn.base import BaseEstimator

__all__ = [
    "ParamsMixin",
    "apply_pending_device",
    "check_continuable",
    "is_fitted_outside_fit",
    "rebuild_stale_components",
    "with_default_criterion",
]

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

    def get_params(self, deep=True):
        """Parameters; a ``device`` set on a fitted net is reported though the next fit applies it."""
        params = super().get_params(deep=deep)
        pending = self.__dict__.get("_pending_device", _UNSET)
        if pending is not _UNSET and "device" in params:
            params["device"] = pending
        return params

    def set_params(self, **params):
        """Set parameters; ``pruner__<name>`` is routed to the pruner.

        Stock skorch stores ``pruner__sparsity=0.8`` as a stray attribute and
        never updates the pruner; here it calls ``self.pruner.set_params``.

        On a fitted net, nothing fitted is lost: where skorch would rebuild
        the module at once (``module__*``, ``module=``, ``optimizer=``,
        ``compile``), the values are stored and take effect at the next
        ``fit``; ``device`` too (the fitted module predicts where it is), and
        ``criterion=`` (it chooses the predict non-linearity). ``criterion__*``
        of the fitted criterion's class is applied at once (the optimizer is
        rebuilt at the next continuing fit). Right after
        ``initialize()``, during ``fit`` and in callbacks, ``set_params``
        rebuilds at once, as in skorch (e.g. ``InputShapeSetter``). ``partial_fit`` and
        ``fit`` with ``warm_start=True`` continue the fitted network: they
        rebuild a changed criterion or optimizer, and refuse a changed module
        with a ``ValueError``. Optimizer settings such as ``lr`` or
        ``optimizer__momentum`` apply to the running optimizer too, as in
        skorch.

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
        # only a fitted net outside its fit defers: right after initialize(), during fit and in
        # callbacks, skorch's behaviour (rebuild at once; e.g. InputShapeSetter) is kept
        fitted = is_fitted_outside_fit(self)
        stale = _stale_components(self, other) if fitted else {}
        if "device" in other:
            device = other.pop("device")
            if fitted and not _same(device, self.device):
                # the fitted module stays where it is and predicts there: the new device is
                # the one the next fit trains on (get_params reports it already)
                self.__dict__["_pending_device"] = device
            else:
                self.__dict__.pop("_pending_device", None)
                object.__setattr__(self, "device", device)
        if "callbacks" in other:
            # a plain value, validated when callbacks are initialized at fit
            # (skorch would initialize them here and raise on a bad value)
            BaseEstimator.set_params(self, callbacks=other.pop("callbacks"))
            if self.initialized_:
                self._initialize_callbacks()
        if other and stale:
            # skorch would rebuild the module (or criterion) right here, which
            # throws the fitted model away: store the values, rebuild at the next fit
            # (values as fitted are kept, so that setting a value back is no change)
            pending = {c: dict(v) for c, v in self.__dict__.get("_stale_components", {}).items()}
            for component, keys in stale.items():
                for key in keys:
                    pending.setdefault(component, {}).setdefault(key, self.__dict__.get(key, _UNSET))
            self.__dict__["initialized_"] = False
            try:
                super().set_params(**other)
            finally:
                self.__dict__["initialized_"] = True
            for component in list(pending):
                changed = {
                    k: v for k, v in pending[component].items() if not _same(self.__dict__.get(k, _UNSET), v)
                }
                if changed:
                    pending[component] = changed
                else:
                    del pending[component]
            self.__dict__["_stale_components"] = pending
            criterion = self.criterion
            if "criterion" in stale and isinstance(criterion, type) and type(self.criterion_) is criterion:
                # only criterion__* of the same criterion class (which holds nothing fitted and does not
                # choose the predict non-linearity): rebuilt at once, e.g. criterion__reduction for
                # skorch's loss_scoring; the optimizer follows at the next continuing fit
                self._initialize_criterion()
        elif other:
            super().set_params(**other)
            self._follow_rebuilt_components()
        if pruner_params:
            if self.pruner is None or not hasattr(self.pruner, "set_params"):
                raise ValueError(
                    f"Cannot set {sorted(_PRUNER_PREFIX + k for k in pruner_params)}: "
                    f"pruner is {self.pruner!r}. Set a pruner first, e.g. "
                    "pruner=MagnitudePruning()."
                )
            self.pruner.set_params(**pruner_params)
        return self


def is_fitted_outside_fit(net) -> bool:
    """Whether ``net`` holds a fitted model and no fit is running (then ``set_params`` defers rebuilds)."""
    return bool(net.initialized_) and "n_features_in_" in net.__dict__ and "_rng" not in net.__dict__


def apply_pending_device(net, *, fresh: bool) -> None:
    """At the start of a fit, take the ``device`` set on the fitted net; a continuing fit refuses it."""
    device = net.__dict__.get("_pending_device", _UNSET)
    if device is _UNSET:
        return
    if not fresh:
        raise ValueError(
            f"device was set to {device!r} after the network was fitted on {net.device!r}; partial_fit "
            "and fit with warm_start=True continue the fitted network where it is. Call fit "
            "(warm_start=False) to train a new network on the new device, or set device back. The "
            "fitted model is unchanged."
        )
    del net.__dict__["_pending_device"]
    object.__setattr__(net, "device", device)


def with_default_criterion(estimator_class, criterion, **extra):
    """``estimator_class.__init__`` with another default ``criterion``: each parameter is written once.

    scikit-learn reads the parameters (and their defaults) from the
    signature of ``__init__``; the returned function carries the signature
    of ``estimator_class.__init__`` with only the default of ``criterion``
    changed, plus the keyword-only parameters ``extra`` (name: default)
    that only this subclass has (e.g. the classifier's ``class_weight``),
    inserted before ``**kwargs`` and stored as plain attributes.
    """
    base = estimator_class.__init__
    signature = inspect.signature(base)
    parameters = [
        p.replace(default=criterion) if p.name == "criterion" else p for p in signature.parameters.values()
    ]
    if extra:
        var_keyword = [p for p in parameters if p.kind is p.VAR_KEYWORD]
        parameters = [p for p in parameters if p.kind is not p.VAR_KEYWORD]
        keyword_only = inspect.Parameter.KEYWORD_ONLY
        parameters += [inspect.Parameter(k, keyword_only, default=v) for k, v in extra.items()]
        parameters += var_keyword
    signature = signature.replace(parameters=parameters)

    @functools.wraps(base)
    def __init__(self, *args, **kwargs):
        if len(args) < 2 and "criterion" not in kwargs:
            kwargs["criterion"] = criterion
        own = {name: kwargs.pop(name, default) for name, default in extra.items()}
        base(self, *args, **kwargs)
        vars(self).update(own)

    __init__.__signature__ = signature
    return __init__


_UNSET = object()


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # e.g. arrays: ambiguous truth value
        return False


def _stale_components(net, params: dict) -> dict[str, list[str]]:
    """Which fitted components ``params`` would make stale: ``{"module": [keys], ...}``."""
    stale: dict[str, list[str]] = {}
    modules = set(getattr(net, "_modules", ())) | {"module"}
    criteria = set(getattr(net, "_criteria", ())) | {"criterion"}
    for key in params:
        prefix = key.split("__", 1)[0]
        if prefix in modules or prefix == "compile":
            stale.setdefault("module", []).append(key)
        elif prefix in criteria:
            stale.setdefault("criterion", []).append(key)
        elif key == "optimizer":
            stale.setdefault("optimizer", []).append(key)
    return stale


def check_continuable(net, how: str) -> None:
    """Refuse to continue a fitted network whose module parameters changed since it was built.

    Parameters
    ----------
    net : PrunedNet
    how : str
        What continues it (``"partial_fit"``, ``"fit with warm_start=True"``), for the message.

    Raises
    ------
    ValueError
        If ``set_params`` changed a module parameter after the network was built, or the
        network holds prediction-only sparse weights (:func:`skprune.to_sparse`).
    """
    module = getattr(net, "module_", None)
    if isinstance(module, torch.nn.Module) and any(
        isinstance(getattr(layer, "weight", None), torch.Tensor) and layer.weight.layout != torch.strided
        for layer in module.modules()
    ):
        raise ValueError(
            f"This network holds sparse (CSR) weights made by skprune.to_sparse, which are for "
            f"prediction only; {how} cannot train it. Continue training the network it was made from, "
            "then call to_sparse again. The fitted model is unchanged."
        )
    keys = net.__dict__.get("_stale_components", {}).get("module")
    if keys:
        raise ValueError(
            f"{', '.join(keys)} changed after the network was fitted; {how} continues training the "
            "fitted network, which was built with the previous values. Call fit (with "
            "warm_start=False) to train a new network with them, or set them back. The fitted "
            "model is unchanged."
        )


def rebuild_stale_components(net) -> None:
    """Before continuing a fit, build the criterion/optimizer whose parameters changed since fitting."""
    pending = net.__dict__.pop("_stale_components", {})
    if "criterion" in pending:
        net._initialize_criterion()
    if "criterion" in pending or "optimizer" in pending:
        net._initialize_optimizer()
