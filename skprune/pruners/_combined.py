"""Several pruners in one fit, each on its own schedule (e.g. inputs and weights)."""

from __future__ import annotations

import torch
from torch import nn

from ._hook_calls import FitHooks, call_hook
from ._masks import MaskStore
from ._protocol import PrunerProtocol, PruningContext, is_pruner, missing_hooks
from ._schedules import BaseSchedule

__all__ = ["CombinedPruning"]


class _UnionSchedule(BaseSchedule):
    """Every epoch at which one of the combined pruners has a step.

    The fractions are meaningless here: :class:`CombinedPruning` asks each
    part's own schedule how far that part goes at each epoch.
    """

    def __init__(self, schedules=()):
        self.schedules = schedules

    def _raw_steps(self, n_epochs):
        return [(epoch, 1.0) for schedule in self.schedules for epoch, _ in schedule.steps(n_epochs)]


class CombinedPruning(PrunerProtocol):
    """Apply several pruners in one fit, e.g. input features and weights.

    Each part keeps its own parameters and schedule; at every epoch where a
    part has a pruning step, that part computes its masks on top of the
    masks of all parts (entries pruned by one part stay pruned), in list
    order. Penalties are added up. Parts should usually select different
    layers; when they share one, each part's target counts the entries the
    other parts already pruned there.

    Parameters
    ----------
    pruners : list of (str, pruner) tuples
        The parts, named as in :class:`~sklearn.pipeline.Pipeline`, so that
        their parameters are reachable as ``<name>__<param>`` (and, on the
        estimator, ``pruner__<name>__<param>``, e.g. in ``GridSearchCV``).

    Examples
    --------
    Keep 10 input features and prune 80% of the weights of the later layers:

    >>> from skprune import CombinedPruning, InputPruning, MagnitudePruning, PrunedNetClassifier
    >>> pruner = CombinedPruning([
    ...     ("inputs", InputPruning(n_features=10)),
    ...     ("weights", MagnitudePruning(0.8, layers=["layers.fc1", "layers.output"])),
    ... ])
    >>> net = PrunedNetClassifier(module__hidden_layer_sizes=(64, 32), pruner=pruner)
    >>> net.set_params(pruner__inputs__n_features=5).pruner.pruners[0][1].n_features
    5
    """

    #: A path would need to know which part to vary: use GridSearchCV.
    path_parameter = None

    def __init__(self, pruners):
        self.pruners = pruners

    # ------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict:
        """Parameters, with each part's as ``<name>__<param>`` when ``deep``."""
        params = {"pruners": self.pruners}
        if not deep:
            return params
        for name, part in self._named_parts(check=False):
            params[name] = part
            if hasattr(part, "get_params"):
                for key, value in part.get_params(deep=True).items():
                    params[f"{name}__{key}"] = value
        return params

    def set_params(self, **params) -> CombinedPruning:
        """Set parameters: ``pruners``, a whole part by name, or ``<name>__<param>``."""
        if "pruners" in params:
            self.pruners = params.pop("pruners")
        names = [name for name, _ in self._named_parts(check=False)]
        if params and not names and self.pruners:
            self._named_parts()  # not (name, pruner) tuples: the TypeError says what to give
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in names:
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}: the parts are {names}; "
                    f"use '<name>__<param>', e.g. '{names[0]}__...'."
                    if names
                    else f"Invalid parameter {key!r} for {type(self).__name__}: it has no parts."
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                self.pruners = [(n, value if n == name else p) for n, p in self.pruners]
        for name, sub_params in nested.items():
            dict(self._named_parts(check=False))[name].set_params(**sub_params)
        return self

    def _named_parts(self, *, check: bool = True) -> list[tuple[str, object]]:
        parts = self.pruners
        valid = isinstance(parts, (list, tuple)) and all(
            isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) for item in parts
        )
        if not valid:
            if not check:
                return []
            raise TypeError(
                f"{type(self).__name__}(pruners=...) must be a list of (name, pruner) tuples, e.g. "
                "[('inputs', InputPruning(10)), ('weights', MagnitudePruning(0.8))]; "
                f"got {parts!r}."
            )
        if check:
            names = [name for name, _ in parts]
            if not parts:
                raise ValueError(f"{type(self).__name__}(pruners=[]) needs at least one pruner.")
            if len(set(names)) != len(names):
                raise ValueError(f"{type(self).__name__}(pruners=...) has repeated names {names}.")
            for name, part in parts:
                if "__" in name or name == "pruners":
                    raise ValueError(
                        f"{type(self).__name__}: part name {name!r} must not contain '__' "
                        "and must not be 'pruners'."
                    )
                if not is_pruner(part):
                    raise TypeError(
                        f"{type(self).__name__}: part {name!r} must be a pruner such as "
                        f"MagnitudePruning(0.8), got {part!r}"
                        + (f" (missing hooks {missing_hooks(part)})." if not isinstance(part, type) else ".")
                    )
        return list(parts)

    # ------------------------------------------------------------ validation
    def check_params(self) -> None:
        """Check the list of parts and each part's parameters."""
        for _, part in self._named_parts():
            part.check_params()

    def check_n_features(self, n_features: int) -> None:
        """Let each part check the number of input features."""
        for _, part in self._named_parts():
            part.check_n_features(n_features)

    @property
    def requires_gradient_statistics(self) -> bool:
        """Whether any part observes gradients."""
        return any(part.requires_gradient_statistics for _, part in self._named_parts())

    @property
    def sensitivity_batches(self) -> int:
        """The most sensitivity batches any gradient-observing part (else any part) asks for."""
        parts = [p for _, p in self._named_parts()]
        wanted = [p.sensitivity_batches for p in parts if p.requires_gradient_statistics]
        return max(wanted or [p.sensitivity_batches for p in parts], default=0)

    def requires_activation_statistics(self, *, module: nn.Module, **kwargs) -> dict:
        """Every part's requests, each key prefixed with ``<part name>__``."""
        requests = {}
        for name, part in self._named_parts():
            found = call_hook(part, "requires_activation_statistics", module=module, **kwargs)
            requests.update({f"{name}__{key}": request for key, request in (found or {}).items()})
        return requests

    def get_schedule(self) -> BaseSchedule:
        """A schedule with a step wherever any part has one."""
        return _UnionSchedule([part.get_schedule() for _, part in self._named_parts()])

    # ------------------------------------------------------------- selection
    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Layers selected by any part (each once, in order of first selection)."""
        selected, seen = [], set()
        for _, part in self._named_parts():
            for item in part.select_layers(module):
                if item[0] not in seen:
                    seen.add(item[0])
                    selected.append(item)
        return selected

    def compute_masks(self, module: nn.Module, masks: MaskStore, context: PruningContext) -> dict:
        """Run the parts whose schedules have a step at ``context.epoch``.

        Each such part gets a context whose ``target`` is its own
        ``step_target`` of its own schedule's fraction at this epoch, and
        sees the masks of the parts before it.
        """
        current = MaskStore()
        current.load_state_dict(masks.state_dict())
        new_masks: dict = {}
        for name, part in self._named_parts():
            part_context = self._part_context(part, context, name)
            if part_context is None:
                continue
            keep = part.compute_masks(module, current, part_context)
            current.update(keep)
            new_masks.update(keep)
        return new_masks

    @staticmethod
    def _part_context(part, context: PruningContext, name: str) -> PruningContext | None:
        """The context of ``part``'s own step at ``context.epoch``, or None if it has none."""
        steps = part.get_schedule().steps(context.n_epochs)
        epochs = [epoch for epoch, _ in steps]
        if context.epoch not in epochs:
            return None
        step = epochs.index(context.epoch)
        return PruningContext(
            epoch=context.epoch,
            n_epochs=context.n_epochs,
            step=step,
            target=part.step_target(steps[step][1]),
            generator=context.generator,
            statistics=context.statistics,
            activations={
                key[len(name) + 2 :]: value
                for key, value in context.activations.items()
                if key.startswith(f"{name}__")
            },
        )

    # ----------------------------------------------------------------- hooks
    def on_fit_begin(self, *, module: nn.Module, masks: MaskStore, n_epochs: int, **kwargs) -> None:
        """Call every part's ``on_fit_begin`` (a part with first-protocol hooks warns here, once per fit)."""
        for _, part in self._named_parts():
            FitHooks(part).on_fit_begin(module=module, masks=masks, n_epochs=n_epochs, **kwargs)

    def on_fit_end(self, *, module: nn.Module, masks: MaskStore, epoch: int, error, **kwargs) -> None:
        """Call every part's ``on_fit_end``, all of them even if one raises (the first error is raised)."""
        first = None
        for _, part in self._named_parts():
            try:
                call_hook(part, "on_fit_end", module=module, masks=masks, epoch=epoch, error=error, **kwargs)
            except Exception as exc:  # the other parts still end their fit
                first = first or exc
        if first is not None:
            raise first

    def penalty(self, module: nn.Module, **kwargs):
        """Sum of the parts' penalties (``None`` when no part has one)."""
        terms = [call_hook(part, "penalty", module=module, **kwargs) for _, part in self._named_parts()]
        terms = [t for t in terms if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def observe(self, name: str, weight: torch.Tensor, grad: torch.Tensor, **kwargs) -> None:
        """Show the gradient to every part that observes gradients."""
        for _, part in self._named_parts():
            if part.requires_gradient_statistics:
                call_hook(part, "observe", name=name, weight=weight, grad=grad, **kwargs)

    def on_epoch_begin(self, module: nn.Module, epoch: int, **kwargs) -> None:
        """Call every part's ``on_epoch_begin``."""
        for _, part in self._named_parts():
            call_hook(part, "on_epoch_begin", module=module, epoch=epoch, **kwargs)

    def rewind(self, module: nn.Module, context: PruningContext) -> dict[str, torch.Tensor] | None:
        """Values from the parts that rewind at this step (each asked with its own step context).

        Raises
        ------
        ValueError
            If two parts ask to rewind the same entry to different values.
        """
        merged: dict[str, torch.Tensor] = {}
        for part_name, part in self._named_parts():
            part_context = self._part_context(part, context, part_name)
            if part_context is None:
                continue
            values = part.rewind(module, part_context)
            for key, value in (values or {}).items():
                if key in merged and not torch.equal(merged[key], value):
                    raise ValueError(
                        f"CombinedPruning: part {part_name!r} rewinds {key!r} to other values than "
                        "an earlier part; give the parts different layers."
                    )
                merged[key] = value
        return merged or None
