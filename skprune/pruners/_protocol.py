"""The pruner protocol: every hook the training engine calls on a pruner.

This is the whole contract between the estimator and a pruning strategy.
The engine (``skprune._training._engine.PruningEngine``) calls exactly the
members declared here, directly, and nothing else. Each hook has a no-op
default, except :meth:`PrunerProtocol.compute_masks`, which is the strategy
itself. The order of calls in one ``fit``/``partial_fit`` is:

1. :meth:`~PrunerProtocol.check_params` and
   :meth:`~PrunerProtocol.check_n_features` before anything is changed;
2. when training begins: :meth:`~PrunerProtocol.get_schedule` (planned once
   for ``max_epochs``), :meth:`~PrunerProtocol.select_layers`,
   :meth:`~PrunerProtocol.requires_activation_statistics` and
   :meth:`~PrunerProtocol.on_fit_begin`;
3. every epoch: :meth:`~PrunerProtocol.on_epoch_begin`, then, at a
   scheduled step, :meth:`~PrunerProtocol.step_target`,
   :meth:`~PrunerProtocol.compute_masks` and
   :meth:`~PrunerProtocol.rewind`;
4. every training step: :meth:`~PrunerProtocol.penalty` (added to the
   loss) and, while pruning steps remain and
   :attr:`~PrunerProtocol.requires_gradient_statistics` is true,
   :meth:`~PrunerProtocol.observe` for each selected weight;
5. when the fit ends, however it ends (also on an error or a
   ``KeyboardInterrupt``): :meth:`~PrunerProtocol.on_fit_end`.

The event hooks (``on_fit_begin``, ``on_epoch_begin``, ``observe``,
``penalty``, ``requires_activation_statistics``, ``on_fit_end``) are called
with keyword arguments only and accept ``**kwargs``, as skorch's callbacks
do, so the engine can pass more later without breaking anyone's subclass.
An override written against the earlier positional signatures (no
``**kwargs``) still works, with a ``FutureWarning`` once per fit (see
:mod:`skprune.pruners._hook_calls`).
``compute_masks`` and ``rewind`` receive a :class:`PruningContext`, which
grows new fields the same way.

Activations are recorded on request: a pruner returns
:class:`ActivationRequest` objects from
:meth:`~PrunerProtocol.requires_activation_statistics`; the engine records
them with forward hooks it owns (removed when the fit ends, also on an error
or an interrupt) and hands their means since the previous step to
``compute_masks`` in :attr:`PruningContext.activations`.

A pruner is a scikit-learn estimator-like policy object: its parameters are
set in ``__init__`` and reachable through ``get_params``/``set_params``
(so ``pruner__sparsity`` works in a grid search) and validated by
:meth:`~PrunerProtocol.check_params` from the class's
``_parameter_constraints``, as in scikit-learn. State gathered during a fit
(for example gradient statistics) lives in attributes ending in ``_``: the
estimator always works on a ``clone``, ``pruner_``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from sklearn.base import BaseEstimator, clone
from torch import nn

from .._doc_link import DocLinkMixin
from ..nn._layers import iter_prunable_weights
from ._context import ActivationRequest, PruningContext
from ._masks import MaskStore
from ._schedules import BaseSchedule, OneShot, Polynomial

__all__ = [
    "ADDED_HOOKS",
    "ActivationRequest",
    "PROTOCOL_MEMBERS",
    "PrunerProtocol",
    "PruningContext",
    "REQUIRED_MEMBERS",
    "is_pruner",
    "missing_hooks",
]


class PrunerProtocol(DocLinkMixin, BaseEstimator, metaclass=abc.ABCMeta):
    """Abstract base of every pruning strategy: the hooks the engine calls.

    Subclass it for a strategy that computes masks in its own way (as
    :class:`~skprune.InputPruning` and :class:`~skprune.CombinedPruning`
    do); for a rule that scores weights, subclass
    :class:`~skprune.BasePruner` and write one method, ``score``. Every hook
    but :meth:`compute_masks` has a no-op default.

    Subclasses declare their own parameters in ``__init__``.

    Examples
    --------
    A strategy that keeps the first half of every row of the output layer:

    >>> import torch
    >>> from skprune.pruners import PrunerProtocol
    >>> class KeepFirstHalf(PrunerProtocol):
    ...     def compute_masks(self, module, masks, context):
    ...         name, _, layer = self.select_layers(module)[-1]
    ...         keep = torch.ones_like(layer.weight, dtype=torch.bool)
    ...         keep[:, layer.weight.shape[1] // 2:] = False
    ...         return {name: keep}
    >>> from skprune import PrunedNetClassifier
    >>> net = PrunedNetClassifier(pruner=KeepFirstHalf(), max_epochs=2)
    """

    #: Name of the parameter a sparsity path varies (``PrunedNetCV`` sets
    #: it to each level of the path), or ``None`` when the strategy has no
    #: such parameter.
    path_parameter: ClassVar[str | None] = "sparsity"

    #: Whether :meth:`observe` must be called with every selected weight and
    #: its gradient after every training backward pass (until the last step).
    requires_gradient_statistics: bool = False

    #: Training batches on which the engine computes gradients (and records
    #: requested activations), without updating weights, before a step that
    #: has no training batches behind it (pruning at epoch 0). Only used
    #: when :attr:`requires_gradient_statistics` is true or activations are
    #: requested.
    sensitivity_batches: int = 5

    #: Constraints on the ``__init__`` parameters, in scikit-learn's
    #: ``_parameter_constraints`` format; checked by :meth:`check_params`.
    _parameter_constraints: ClassVar[dict] = {}

    def set_params(self, **params) -> PrunerProtocol:
        """Set parameters, as scikit-learn's; a nested one under ``None`` gets a clear error.

        Raises
        ------
        ValueError
            For ``<param>__<sub>`` when ``<param>`` is ``None`` (e.g.
            ``schedule__at`` with the default ``schedule=None``).
        """
        current = self.get_params(deep=False)
        for key in params:
            parent, sep, _ = key.partition("__")
            if sep and parent in current and params.get(parent, current[parent]) is None:
                example = "OneShot(at=0.3)" if parent == "schedule" else "..."
                default = " (None means Polynomial())" if parent == "schedule" else ""
                raise ValueError(
                    f"Cannot set {key!r} on {type(self).__name__}: its {parent} is None{default}. "
                    f"Set the {parent} itself, e.g. {parent}={example} (pruner__{parent}=... on a net)."
                )
        return super().set_params(**params)

    # ------------------------------------------------------------ validation
    def check_params(self) -> None:
        """Validate the parameters; called by ``fit`` before anything changes.

        The default checks ``_parameter_constraints`` (scikit-learn's
        declarative format), then :meth:`_check_params_together` for rules
        that involve several parameters.

        Raises
        ------
        ValueError, TypeError
            With a message naming the parameter and what to change.
        """
        self._validate_params()  # scikit-learn's, from _parameter_constraints
        self._check_params_together()

    def _check_params_together(self) -> None:
        """Checks that involve several parameters (none by default)."""

    def check_n_features(self, n_features: int) -> None:
        """Check the number of input features of the data; called by ``fit`` first.

        Parameters
        ----------
        n_features : int
            Columns of ``X``.
        """

    # -------------------------------------------------------------- planning
    def get_schedule(self) -> BaseSchedule:
        """Return the schedule: the ``schedule`` parameter, or ``Polynomial()``."""
        schedule = self.get_params(deep=False).get("schedule")
        return schedule if schedule is not None else Polynomial()

    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Return ``(param_name, layer_name, layer)`` of the weights this pruner works on.

        Called once when training begins (a bad selection fails before any
        epoch), and by the pruner itself. The default is every Linear and
        Conv layer.
        """
        return list(iter_prunable_weights(module))

    def step_target(self, fraction: float) -> float:
        """The :attr:`PruningContext.target` of a step at ``fraction`` of the schedule.

        The default is the fraction itself (the share of the final goal);
        the weight pruners return ``sparsity * fraction``.
        """
        return float(fraction)

    # -------------------------------------------------------------- pruning
    @abc.abstractmethod
    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Return new boolean *keep* masks, by parameter name.

        Parameters
        ----------
        module : torch.nn.Module
            The network (do not modify it).
        masks : MaskStore
            The masks so far; entries pruned there must stay pruned.
        context : PruningContext
            The step: epoch, target, seeded generator.

        Returns
        -------
        dict of str to bool Tensor
            ``True`` keeps an entry, ``False`` prunes it.
        """

    def rewind(self, module: nn.Module, context: PruningContext) -> dict[str, torch.Tensor] | None:
        """Values to load into the network after a pruning step, or ``None``.

        Called after every pruning step. A returned dict (keys from
        ``module.state_dict()``) is copied into the network, the masks are
        applied on top and the optimizer state is reset, so training
        restarts from those values (lottery-ticket rewinding).
        """
        return None

    def at_path_level(self, level: float, at: float) -> PrunerProtocol:
        """A copy that prunes once, at fraction ``at`` of a fit, to ``level`` of :attr:`path_parameter`.

        Used by :class:`~skprune.PrunedNetCV` to walk a sparsity path. The
        default sets :attr:`path_parameter` and ``schedule=OneShot(at=at)``.

        Raises
        ------
        TypeError
            If the pruner has no path parameter or no ``schedule`` parameter.
        """
        params = self.get_params(deep=False)
        name = type(self).__name__
        if self.path_parameter is None or self.path_parameter not in params or "schedule" not in params:
            raise TypeError(
                f"{name} cannot be put on a sparsity path: a path sets the pruner's "
                f"{self.path_parameter or 'sparsity'!r} and 'schedule' parameters, and {name} has "
                f"parameters {sorted(params)}. Use GridSearchCV over its parameters instead."
            )
        return clone(self).set_params(**{self.path_parameter: float(level)}, schedule=OneShot(at=at))

    # ---------------------------------------------------------------- hooks
    def on_fit_begin(self, *, module: nn.Module, masks: MaskStore, n_epochs: int, **kwargs) -> None:
        """Called once when training begins, after the layers are selected and the schedule is planned.

        Parameters
        ----------
        module : torch.nn.Module
            The network (do not modify it).
        masks : MaskStore
            The masks so far (empty for a fresh fit, the fitted ones for
            ``partial_fit`` or a warm start).
        n_epochs : int
            Epochs of this fit.
        **kwargs
            More information the engine may pass in later versions.
        """

    def on_fit_end(
        self, *, module: nn.Module, masks: MaskStore, epoch: int, error: BaseException | None, **kwargs
    ) -> None:
        """Called once when the fit ends, however it ends: normally, on an error, or interrupted.

        Drop per-fit state here that must not outlive the fit.

        Parameters
        ----------
        module : torch.nn.Module
            The network.
        masks : MaskStore
            The masks at the end of the fit.
        epoch : int
            Epochs completed in this fit.
        error : BaseException or None
            What ended the fit early (``KeyboardInterrupt`` included), or
            ``None`` when it ran to its end.
        **kwargs
            More information the engine may pass in later versions.
        """

    def requires_activation_statistics(self, *, module: nn.Module, **kwargs) -> dict[str, ActivationRequest]:
        """The activations to record for this pruner, by a key of its choosing (none by default).

        Called once per fit, when training begins. For each entry the engine
        records :class:`ActivationRequest` ``.statistics`` of that
        activation on the training forward passes (while pruning steps
        remain), with forward hooks it owns and removes when the fit ends,
        and hands their means since the previous step to
        :meth:`compute_masks` as ``context.activations[key]``. Before a step
        that no training batch preceded (pruning at epoch 0), it records
        them on :attr:`sensitivity_batches` training batches first.

        Parameters
        ----------
        module : torch.nn.Module
            The network (do not register hooks on it yourself).
        **kwargs
            More information the engine may pass in later versions.

        Returns
        -------
        dict of str to ActivationRequest
        """
        return {}

    def penalty(self, module: nn.Module, **kwargs) -> torch.Tensor | None:
        """Extra loss term added at every training step (``None`` for none).

        Called as ``penalty(module=...)``.
        """
        return None

    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor, **kwargs) -> None:
        """See one selected weight and its gradient after a backward pass.

        Called as ``observe(name=..., weight=..., grad=...)`` for every
        selected weight after every training backward pass (and every batch
        of a sensitivity pass) until the last pruning step, only when
        :attr:`requires_gradient_statistics` is true. Do not modify the
        tensors; keep per-fit state in attributes ending in ``_``.
        """

    def on_epoch_begin(self, module: nn.Module, epoch: int, **kwargs) -> None:
        """Called at the start of every epoch, before that epoch's pruning step.

        Called as ``on_epoch_begin(module=..., epoch=..., n_epochs=...)``
        (``epoch`` counts the epochs completed in this fit). Do not modify
        ``module``; :class:`~skprune.LotteryTicket` records the weights it
        later rewinds to.
        """


#: Members every pruner has: duck-typed pruners (not derived from
#: :class:`PrunerProtocol`) must define all of them.
REQUIRED_MEMBERS: frozenset[str] = frozenset(
    {
        "check_params",
        "check_n_features",
        "get_schedule",
        "select_layers",
        "step_target",
        "compute_masks",
        "rewind",
        "penalty",
        "observe",
        "on_epoch_begin",
        "requires_gradient_statistics",
        "sensitivity_batches",
        "path_parameter",
        "at_path_level",
    }
)

#: Hooks added after the first protocol: a duck-typed pruner written before
#: them works without them (they are no-ops for it, with a FutureWarning).
ADDED_HOOKS: frozenset[str] = frozenset({"on_fit_begin", "on_fit_end", "requires_activation_statistics"})

#: Every member of a pruner that the engine may use.
PROTOCOL_MEMBERS: frozenset[str] = REQUIRED_MEMBERS | ADDED_HOOKS

def missing_hooks(obj) -> list[str]:
    """Protocol members that ``obj`` lacks (empty for a subclass of :class:`PrunerProtocol`).

    Parameters
    ----------
    obj : object

    Returns
    -------
    list of str

    Examples
    --------
    >>> from skprune.pruners._protocol import missing_hooks
    >>> missing_hooks(object())[:3]
    ['at_path_level', 'check_n_features', 'check_params']
    """
    if isinstance(obj, PrunerProtocol):
        return []
    return sorted(name for name in REQUIRED_MEMBERS if not hasattr(obj, name))


def is_pruner(obj) -> bool:
    """Whether ``obj`` is a pruner: a :class:`PrunerProtocol` or an object with every hook.

    Parameters
    ----------
    obj : object
        Anything, e.g. the ``pruner`` parameter of an estimator.

    Returns
    -------
    bool

    Examples
    --------
    >>> from skprune import MagnitudePruning
    >>> from skprune.pruners import is_pruner
    >>> is_pruner(MagnitudePruning()), is_pruner("magnitude")
    (True, False)
    """
    return not isinstance(obj, type) and not missing_hooks(obj)
