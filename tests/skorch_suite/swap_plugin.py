"""pytest plugin: run skorch's own test suite with skorch's nets swapped for skprune's.

Loaded with ``-p swap_plugin`` in a pytest run of the installed
``skorch/tests`` (see ``tests/test_skorch_suite.py``). It replaces
``NeuralNet``, ``NeuralNetClassifier`` and ``NeuralNetRegressor`` in
``skorch``, ``skorch.net``, ``skorch.classifier`` and ``skorch.regressor`` by
subclasses of :class:`skprune.PrunedNet`, :class:`skprune.PrunedNetClassifier`
and :class:`skprune.PrunedNetRegressor` before the test modules are imported.

The subclasses take skorch's defaults for the parameters whose defaults
skprune changes on purpose (documented in the estimators' docstrings):
``optimizer=SGD``, ``lr=0.01``, ``max_epochs=10``, ``batch_size=128``,
``train_split=ValidSplit(5)``, ``verbose=1``, ``alpha=0`` (no L2) and, for
the regressor, ``normalize_y=False``; the criterion defaults are skorch's
too (``NLLLoss`` for the classifier). Everything else is skprune's own code.
The environment variable ``SKPRUNE_SKORCH_SUITE_PRUNER`` chooses the
``pruner`` default: ``none`` (dense) or ``magnitude``
(``MagnitudePruning(0.5)``).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import types

import skorch
import skorch.classifier
import skorch.net
import skorch.regressor
import torch
from skorch.dataset import ValidSplit

import skprune
from skprune import MagnitudePruning

_PRUNERS = {"none": lambda: None, "magnitude": lambda: MagnitudePruning(0.5)}


def _with_defaults(bases, name, module, **defaults):
    """A subclass of ``bases`` whose ``__init__`` has other defaults, named as skorch's class.

    It carries the name and module of the skorch class it replaces, so that
    pickle finds it (through the swapped module attribute) and ``repr`` reads
    as skorch's.
    """
    init = bases[0].__init__
    signature = inspect.signature(init)
    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p
              for p in signature.parameters.values()]
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD][1:]

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        given = set(positional[: len(args)]) | set(kwargs)
        for key, value in defaults.items():
            if key not in given:
                kwargs[key] = value
        init(self, *args, **kwargs)

    __init__.__signature__ = signature.replace(parameters=params)
    return type(name, tuple(bases), {"__init__": __init__, "__module__": module, "__qualname__": name})


def _swap() -> None:
    pruner = os.environ.get("SKPRUNE_SKORCH_SUITE_PRUNER", "none")
    common = dict(
        optimizer=torch.optim.SGD, lr=0.01, max_epochs=10, batch_size=128, verbose=1, alpha=0.0,
        pruner=_PRUNERS[pruner](), train_split=ValidSplit(5),
    )
    net = _with_defaults([skprune.PrunedNet], "NeuralNet", "skorch.net", **common)
    # subclasses of the swapped NeuralNet too, as skorch's are (isinstance, patched methods)
    classifier = _with_defaults(
        [skprune.PrunedNetClassifier, net], "NeuralNetClassifier", "skorch.classifier",
        criterion=torch.nn.NLLLoss, **common,
    )
    regressor = _with_defaults(
        [skprune.PrunedNetRegressor, net], "NeuralNetRegressor", "skorch.regressor",
        normalize_y=False, **common,
    )
    for module in (skorch, skorch.net):
        module.NeuralNet = net
    for module in (skorch, skorch.classifier):
        module.NeuralNetClassifier = classifier
    for module in (skorch, skorch.regressor):
        module.NeuralNetRegressor = regressor


def _flaky(max_runs=2, min_passes=1, **_):
    """Stand-in for the ``flaky`` package's decorator (skorch's test_net.py imports it): retry a test."""

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            for attempt in range(max_runs):
                try:
                    return test(*args, **kwargs)
                except AssertionError:
                    if attempt == max_runs - 1:
                        raise
            return None

        return run

    return decorate


def pytest_configure(config):
    if "flaky" not in sys.modules:
        try:
            import flaky  # noqa: F401
        except ImportError:
            stub = types.ModuleType("flaky")
            stub.flaky = _flaky
            sys.modules["flaky"] = stub
    _swap()
