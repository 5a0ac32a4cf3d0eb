"""Calling a pruner's event hooks with keyword arguments, and adapting first-protocol overrides.

The event hooks of :class:`~skprune.pruners.PrunerProtocol` are called with
keyword arguments only. The engine resolves a pruner's hooks once per fit
(:class:`FitHooks`): a hook that accepts ``**kwargs`` is called as it is; a
hook written against the first protocol's positional signatures (no
``**kwargs``) is called positionally with what it knew, and a
``FutureWarning`` names it once per fit; a duck-typed pruner written before
a hook existed gets a no-op. :func:`call_hook` does the same for one call,
for pruners that forward hooks to their parts.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref

__all__ = ["KEYWORD_HOOKS", "FitHooks", "call_hook"]


#: The event hooks, called with keyword arguments only: hook -> the keywords
#: the engine passes, and the positional arguments of its first signature
#: (``None``: the hook is new, it never had a positional form).
KEYWORD_HOOKS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "on_fit_begin": (("module", "masks", "n_epochs"), None),
    "requires_activation_statistics": (("module",), None),
    "on_epoch_begin": (("module", "epoch", "n_epochs"), ("module", "epoch")),
    "penalty": (("module",), ("module",)),
    "observe": (("name", "weight", "grad"), ("name", "weight", "grad")),
    "on_fit_end": (("module", "masks", "epoch", "error"), None),
}

_DEFAULTS = {"requires_activation_statistics": dict}
#: hook -> function -> its kind, so a signature is inspected once
_KINDS: dict[str, weakref.WeakKeyDictionary] = {hook: weakref.WeakKeyDictionary() for hook in KEYWORD_HOOKS}


def _signature_kind(hook: str, method) -> str:
    """``"keyword"`` (accepts ``**kwargs``), ``"positional"`` (the first protocol's form), or raise."""
    function = getattr(method, "__func__", method)
    try:
        return _KINDS[hook][function]
    except (KeyError, TypeError):
        pass
    passed, legacy = KEYWORD_HOOKS[hook]
    owner = getattr(getattr(method, "__self__", None), "__class__", type(None)).__name__
    try:
        parameters = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: trust it takes keywords
        return "keyword"
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        needed = [
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is p.empty
        ]
        unknown = [name for name in needed if name not in passed]
        positional_only = [p.name for p in parameters if p.kind is p.POSITIONAL_ONLY]
        if unknown or positional_only:
            raise TypeError(
                f"{owner}.{hook} is called with the keyword arguments {list(passed)} (and more in "
                f"later versions), but requires {unknown or positional_only}. Name its parameters "
                f"after those keywords: def {hook}(self, *, {', '.join(passed)}, **kwargs)."
            )
        kind = "keyword"
    elif legacy is None:
        raise TypeError(
            f"{owner}.{hook} must accept keyword arguments, as every pruner hook does: "
            f"def {hook}(self, *, {', '.join(passed)}, **kwargs)."
        )
    else:
        kind = "positional"
    try:
        _KINDS[hook][function] = kind
    except TypeError:  # not weak-referenceable: inspected again next time
        pass
    return kind


def _call_positionally(method, legacy: tuple[str, ...], **kwargs):
    return method(*(kwargs[name] for name in legacy))


def _resolve(pruner, hook: str):
    """``(callable taking the hook's keyword arguments, why it is deprecated or None)``."""
    method = getattr(pruner, hook, None)  # only ADDED_HOOKS may be absent (an older duck-typed pruner)
    if method is None:
        default = _DEFAULTS.get(hook)
        return (lambda **kwargs: default() if default else None), f"{hook} is missing"
    if _signature_kind(hook, method) == "keyword":
        return method, None
    legacy = KEYWORD_HOOKS[hook][1]
    return functools.partial(_call_positionally, method, legacy), (
        f"{hook}({', '.join(legacy)}) takes no **kwargs"
    )


class FitHooks:
    """A pruner's event hooks for one fit, resolved once: every one is called with keywords.

    Hooks with the first protocol's positional signatures (no ``**kwargs``)
    are adapted, and a ``FutureWarning`` names them, once per ``FitHooks``
    (the engine builds one per fit). Holds bound methods only for the fit;
    nothing is stored on the pruner.

    Parameters
    ----------
    pruner : PrunerProtocol or duck-typed pruner

    Raises
    ------
    TypeError
        If a hook that accepts ``**kwargs`` requires a parameter the engine
        does not pass, or a new hook has no ``**kwargs``.
    """

    def __init__(self, pruner):
        reasons = []
        for hook in KEYWORD_HOOKS:
            call, reason = _resolve(pruner, hook)
            setattr(self, hook, call)
            if reason:
                reasons.append(reason)
        if reasons:
            warnings.warn(
                f"{type(pruner).__name__} is written against skprune's first pruner protocol "
                f"({'; '.join(reasons)}). It still works, but hooks are now called with keyword "
                "arguments and may receive more of them: derive from skprune.pruners.PrunerProtocol "
                "and add **kwargs, e.g. def on_epoch_begin(self, module, epoch, **kwargs). The "
                "positional form will stop working in skprune 0.4.",
                FutureWarning,
                stacklevel=3,
            )


def call_hook(pruner, hook: str, **kwargs):
    """Call event ``hook`` of ``pruner`` with keyword arguments, adapting a positional override.

    For a pruner that forwards hooks to other pruners
    (:class:`~skprune.CombinedPruning`); the engine resolves its pruner's
    hooks once per fit with :class:`FitHooks`.

    Parameters
    ----------
    pruner : PrunerProtocol
    hook : str
        One of ``KEYWORD_HOOKS``.
    **kwargs
        The hook's keyword arguments.
    """
    call, _ = _resolve(pruner, hook)
    return call(**kwargs)
