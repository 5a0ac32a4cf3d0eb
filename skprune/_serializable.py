"""skprune's own types that a saved file may name, registered by the subpackage that defines them.

Each subpackage (``nn``, ``pruners``, ``model_selection``, the training
engine, the estimators) calls :func:`register_builtin` for its public,
serializable classes and pure functions when it is imported.
:mod:`skprune.deploy`'s allow-list reads :data:`BUILTIN` and imports none of
those subpackages, so registration flows towards ``deploy``, never back.
This module imports nothing of skprune.
"""

from __future__ import annotations

__all__ = ["BUILTIN", "register_builtin"]

#: ``"module.qualname"`` -> class or function, for every type skprune itself registered.
BUILTIN: dict[str, object] = {}


def register_builtin(*objects) -> None:
    """Put skprune classes or functions on the allow-list of :func:`skprune.load`."""
    for obj in objects:
        BUILTIN[f"{obj.__module__}.{obj.__qualname__}"] = obj
