"""skprune's own types that a saved file may name, registered by the subpackage that defines them.

Each subpackage (``nn``, ``pruners``, ``model_selection``, the training
engine, the estimators) calls :func:`register_builtin` for its public,
serializable classes and pure functions when it is imported.
:mod:`skprune.deploy`'s allow-list reads :data:`BUILTIN` and imports none of
those subpackages, so registration flows towards ``deploy``, never back.
This module imports nothing of skprune statically. ``import skprune`` is lazy
(PEP 562), so :func:`import_builtin_providers` imports the fixed list of
modules that register the rest (the estimators and everything they use): a
file loaded through ``skprune.deploy.load`` alone finds them too. The list
is written here, never read from a file.
"""

from __future__ import annotations

import importlib

__all__ = ["BUILTIN", "PROVIDERS", "import_builtin_providers", "register_builtin"]

#: Modules whose import registers every type of skprune that a file may name
#: (they import ``nn``, ``pruners`` and the training engine in turn).
PROVIDERS = ("skprune._classifier", "skprune._regressor", "skprune.model_selection")

#: ``"module.qualname"`` -> class or function, for every type skprune itself registered.
BUILTIN: dict[str, object] = {}


def register_builtin(*objects) -> None:
    """Put skprune classes or functions on the allow-list of :func:`skprune.load`."""
    for obj in objects:
        BUILTIN[f"{obj.__module__}.{obj.__qualname__}"] = obj


def import_builtin_providers() -> None:
    """Import the modules of :data:`PROVIDERS` (a dictionary lookup once they are imported)."""
    for name in PROVIDERS:
        importlib.import_module(name)
