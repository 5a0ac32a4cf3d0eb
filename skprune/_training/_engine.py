"""The pruning engine: training-time pruning of one fit, with its own run state.

The estimator owns conformance and the skorch training loop; the engine owns
everything pruning does while the loop runs: it plans the schedule, asks the
pruner for masks at the scheduled epochs, hands them to the mask store,
rewinds when the pruner asks, resets optimizer state of pruned entries,
shows gradients to pruners that observe them, records the activations they
ask for, and keeps pruned weights at exactly zero after every optimizer
step. It calls only the hooks declared in
:class:`skprune.pruners.PrunerProtocol`, event hooks with keyword arguments
(resolved once per fit by :class:`~skprune.pruners._protocol.FitHooks`).

One engine lives for one ``fit``/``partial_fit`` call (the estimator builds
it when training begins and closes it when the fit ends, however it ends:
:meth:`PruningEngine.close` removes the engine's forward hooks and calls the
pruner's ``on_fit_end``); it holds no reference to data after that.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from skorch.dataset import unpack_data
from torch import nn

from ..nn._layers import iter_prunable_weights
from ..nn._paths import check_paths
from ..pruners._hook_calls import FitHooks
from ..pruners._masks import MaskStore, is_elementwise
from ..pruners._protocol import PrunerProtocol, PruningContext
from ._activations import ActivationRecorder
from ._data import BatchIterator

__all__ = ["PruningEngine", "PruningRun", "refuse_tied_weights"]


def refuse_tied_weights(module: nn.Module, selected: list, pruner_name: str) -> None:
    """Raise a clear error if a selected layer shares its weight tensor with another layer.

    Masks are kept per layer name; a tied weight (one ``Parameter`` used by
    two layers, as in a tied encoder/decoder) has one name in
    ``named_parameters()``, and two layer masks would disagree on it.
    """
    users: dict[int, list[str]] = {}
    for _, layer_name, layer in iter_prunable_weights(module):
        users.setdefault(id(layer.weight), []).append(layer_name)
    for _, layer_name, layer in selected:
        tied = users.get(id(layer.weight), [layer_name])
        if len(tied) > 1:
            untied = [n for _, n, lay in iter_prunable_weights(module) if len(users[id(lay.weight)]) == 1]
            raise ValueError(
                f"Layers {tied} share one weight tensor (tied weights), which {pruner_name} cannot prune: "
                "their masks would disagree on the shared entries. Leave them out with "
                f"{pruner_name}(layers=...) (layers without tied weights: {untied}), or untie the weights."
            )


@dataclass
class PruningRun:
    """Where one fit stands: epochs trained, steps planned and taken, what is bound.

    Attributes
    ----------
    n_epochs : int
        Epochs of this fit.
    steps : dict of int to float
        Schedule: epoch -> fraction of the pruner's goal reached at that step.
    epoch : int
        Epochs completed so far in this fit.
    step_index : int
        Pruning steps taken so far.
    n_observed : int
        Backward passes shown to the pruner since its last step.
    selected : list
        ``(param_name, layer_name, layer)`` the pruner works on.
    bound : list
        ``(parameter, keep multiplier)`` pairs of the mask store.
    """

    n_epochs: int
    steps: dict[int, float] = field(default_factory=dict)
    epoch: int = 0
    step_index: int = 0
    n_observed: int = 0
    selected: list = field(default_factory=list)
    bound: list = field(default_factory=list)

    @property
    def steps_remain(self) -> bool:
        """Whether a pruning step is still ahead in this fit."""
        return self.step_index < len(self.steps)


class PruningEngine:
    """Runs a pruner's schedule during one fit of a network.

    Parameters
    ----------
    pruner : PrunerProtocol or None
        The fitted copy ``pruner_`` (``None`` for a dense fit: masks are still
        kept exact, e.g. after a warm start).
    module : torch.nn.Module
        The network being trained.
    masks : MaskStore
        The estimator's mask store (updated in place).
    n_epochs : int
        Epochs of this fit.
    generator : torch.Generator
        Seeded generator for pruning decisions and the sensitivity pass.
    optimizer : torch.optim.Optimizer or None, default=None
        The fit's optimizer. One that is not element-wise (e.g. ``LBFGS``)
        gets masked gradients at every step (:attr:`masks_gradients`).
    compiled : bool, default=False
        Whether the module or the training step is compiled
        (``torch.compile`` does not see forward hooks added or removed
        after it traced the module, so activations cannot be recorded).

    Raises
    ------
    ValueError
        If the pruner's layer selection or activation request does not fit
        the network, or activations are requested from a compiled fit.
    """

    def __init__(
        self,
        pruner: PrunerProtocol | None,
        module: nn.Module,
        masks: MaskStore,
        *,
        n_epochs: int,
        generator: torch.Generator,
        optimizer=None,
        compiled: bool = False,
    ):
        self.pruner = pruner
        self.module = module
        self.masks = masks
        self.generator = generator
        self.closed = False
        self.hooks = FitHooks(pruner) if pruner is not None else None
        self.recorder: ActivationRecorder | None = None
        steps: dict[int, float] = {}
        selected: list = []
        requests: dict = {}
        if pruner is not None:
            selected = pruner.select_layers(module)  # fails early on a bad selection
            refuse_tied_weights(module, selected, type(pruner).__name__)
            steps = dict(pruner.get_schedule().steps(n_epochs))
            requests = self._activation_requests(module, compiled)
        self.run = PruningRun(n_epochs=n_epochs, steps=steps, selected=selected, bound=masks.bind(module))
        #: weights of the L2 penalty, looked up once per fit
        self.l2_weights = [layer.weight for _, _, layer in iter_prunable_weights(module)]
        #: whether gradients of pruned entries are zeroed after every backward
        #: pass: needed where the update of one entry reads others (LBFGS
        #: directions and curvature pairs stay in the unpruned subspace)
        self.masks_gradients = optimizer is not None and not is_elementwise(optimizer)
        if pruner is None:
            return
        if requests and steps:
            self.recorder = ActivationRecorder(module, requests, type(pruner).__name__)
        try:
            self.hooks.on_fit_begin(module=module, masks=masks, n_epochs=n_epochs)
        except BaseException:
            self._remove_recorder()
            raise

    def _activation_requests(self, module: nn.Module, compiled: bool) -> dict:
        """The pruner's activation requests; refused for a compiled fit (hooks would not run reliably)."""
        if not compiled:
            return self.hooks.requires_activation_statistics(module=module)
        refusal = (
            f"{type(self.pruner).__name__} records activations with forward hooks, which a compiled "
            "module or training step does not run reliably; fit it with compile=\"auto\" (the default: "
            "eager steps while activations are recorded) or compile=False."
        )
        try:
            requests = self.hooks.requires_activation_statistics(module=module)
        except Exception as exc:  # e.g. a compiled module cannot be traced to find the activations
            raise ValueError(refusal) from exc
        if requests:
            raise ValueError(refusal)
        return requests

    # ---------------------------------------------------------- fit bounds
    def _remove_recorder(self) -> None:
        if self.recorder is not None:
            self.recorder.remove()
            self.recorder = None

    def close(self, error: BaseException | None = None) -> None:
        """End the fit: remove the engine's forward hooks, then call the pruner's ``on_fit_end``.

        Idempotent: the first call wins (the estimator calls it when training
        ends, or when an error or an interrupt ends it early).

        Parameters
        ----------
        error : BaseException or None, default=None
            What ended the fit early, or ``None`` when it ran to its end.
        """
        if self.closed:
            return
        self.closed = True
        try:
            self._remove_recorder()
        finally:
            if self.hooks is not None:
                self._end_fit(error)

    def _end_fit(self, error: BaseException | None) -> None:
        """The pruner's ``on_fit_end``; while an error ends the fit, a failure of the hook only warns."""
        try:
            self.hooks.on_fit_end(module=self.module, masks=self.masks, epoch=self.run.epoch, error=error)
        except Exception as hook_error:
            if error is None:
                raise
            warnings.warn(
                f"{type(self.pruner).__name__}.on_fit_end raised {type(hook_error).__name__}: {hook_error} "
                f"while the fit was ending on {type(error).__name__}, which is raised.",
                RuntimeWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------ per step
    @property
    def observes_gradients(self) -> bool:
        """Whether the pruner must see gradients after this backward pass."""
        return (
            self.pruner is not None and self.pruner.requires_gradient_statistics and self.run.steps_remain
        )

    def observe_gradients(self) -> None:
        """Show every selected weight and its gradient to the pruner."""
        with torch.no_grad():
            for name, _, layer in self.run.selected:
                grad = layer.weight.grad
                if grad is not None:
                    self.hooks.observe(name=name, weight=layer.weight.detach(), grad=grad.detach())
        self.run.n_observed += 1

    def mask_gradients(self) -> None:
        """Zero the gradients of pruned entries (for optimizers that are not element-wise)."""
        self.masks.mask_bound_gradients(self.run.bound)

    def apply_masks(self) -> None:
        """Zero every pruned weight (after each optimizer step)."""
        self.masks.apply_bound(self.run.bound)

    def penalty(self) -> torch.Tensor | None:
        """The pruner's loss term for this step, or ``None``."""
        return None if self.hooks is None else self.hooks.penalty(module=self.module)

    # ----------------------------------------------------------- per epoch
    def begin_epoch(self, optimizer, sensitivity_pass) -> None:
        """Call the pruner's epoch hook, then take the step scheduled before this epoch.

        Parameters
        ----------
        optimizer : torch.optim.Optimizer or None
            Its state of newly pruned entries is reset.
        sensitivity_pass : callable
            ``sensitivity_pass(n_batches)`` computes gradients (and records
            requested activations) on training batches without updating
            weights (each backward pass followed by
            :meth:`observe_gradients`); used when the pruner needs
            statistics and no batch was observed since its last step.
        """
        self.call_epoch_hook()
        self.prune_if_scheduled(optimizer, sensitivity_pass)

    def call_epoch_hook(self) -> None:
        """Call the pruner's ``on_epoch_begin`` hook (the first half of :meth:`begin_epoch`)."""
        if self.hooks is not None:
            self.hooks.on_epoch_begin(module=self.module, epoch=self.run.epoch, n_epochs=self.run.n_epochs)

    def end_epoch(self) -> None:
        """Count a completed epoch."""
        self.run.epoch += 1

    @property
    def at_end(self) -> bool:
        """Whether every epoch of the fit completed (a step may be due after the last)."""
        return self.run.epoch == self.run.n_epochs

    def prune_if_scheduled(self, optimizer, sensitivity_pass=None) -> bool:
        """Take the pruning step scheduled at the current epoch, if any.

        Returns
        -------
        bool
            Whether a step was taken.
        """
        context = self.scheduled_context(sensitivity_pass)
        if context is None:
            return False
        self.take_step(context, optimizer)
        return True

    def scheduled_context(self, sensitivity_pass=None) -> PruningContext | None:
        """The context of the pruning step scheduled at the current epoch (``None``: no step).

        Runs ``sensitivity_pass`` first when the pruner needs statistics
        that no training batch gathered since its last step.
        """
        run, pruner = self.run, self.pruner
        fraction = run.steps.get(run.epoch)
        if fraction is None or pruner is None:
            return None
        recorder = self.recorder
        needs_gradients = pruner.requires_gradient_statistics and run.n_observed == 0
        needs_activations = recorder is not None and recorder.empty
        if (needs_gradients or needs_activations) and sensitivity_pass is not None:
            sensitivity_pass(int(pruner.sensitivity_batches))
        return PruningContext(
            epoch=run.epoch,
            n_epochs=run.n_epochs,
            step=run.step_index,
            target=pruner.step_target(fraction),
            generator=self.generator,
            activations=recorder.take() if recorder is not None else {},
        )

    def take_step(self, context: PruningContext, optimizer, keep_masks: dict | None = None) -> None:
        """Take the pruning step of ``context``: the pruner's masks, checked, then applied.

        ``keep_masks`` are the masks the pruner's ``compute_masks`` returns
        for this step, when they were computed already (for several folds
        at once by :func:`~skprune.pruners._base.compute_masks_of_folds`).
        """
        run, pruner = self.run, self.pruner
        if keep_masks is None:
            keep_masks = pruner.compute_masks(self.module, self.masks, context)
        keep_masks = self._checked(keep_masks)
        check_paths(self.module, self.masks, keep_masks, type(pruner).__name__)  # no dead network (issue 24)
        self.masks.update(keep_masks)
        run.bound = self.masks.bind(self.module)
        state = pruner.rewind(self.module, context)
        if state is not None:
            self._load_rewound_state(state, optimizer)
        self.apply_masks()
        if optimizer is not None:
            self.masks.mask_optimizer_state(self.module, optimizer)
        run.step_index += 1
        run.n_observed = 0
        if not run.steps_remain:
            self._remove_recorder()  # no step left to use them: training runs without hooks

    def rebind(self, module: nn.Module) -> None:
        """Go on with ``module``, the network compacted after the pruner's last step.

        The mask store was sliced to it beforehand; the run state (epochs,
        steps taken) stays, and the layers the pruner selected are looked up
        by name in the new network (deleted ones are dropped).
        """
        self.module = module
        modules = dict(module.named_modules())
        self.run.selected = [
            (name, layer_name, modules[layer_name])
            for name, layer_name, _ in self.run.selected
            if layer_name in modules
        ]
        self.run.bound = self.masks.bind(module)
        self.l2_weights = [layer.weight for _, _, layer in iter_prunable_weights(module)]

    def _checked(self, keep_masks) -> dict:
        """The pruner's keep masks, refused with the reason if a name or a shape is not the network's."""
        where = f"{type(self.pruner).__name__}.compute_masks"
        if not isinstance(keep_masks, Mapping):
            raise TypeError(
                f"{where} must return a dict of parameter name -> boolean keep mask, "
                f"got {type(keep_masks).__name__}."
            )
        params = dict(self.module.named_parameters())
        for name, keep in keep_masks.items():
            if name not in params:
                raise ValueError(
                    f"{where} returned a mask for {name!r}, which is not a parameter of the network "
                    f"(its parameters: {list(params)[:8]}{' ...' if len(params) > 8 else ''})."
                )
            shape = tuple(params[name].shape)
            if not isinstance(keep, torch.Tensor) or tuple(keep.shape) != shape:
                got = tuple(keep.shape) if isinstance(keep, torch.Tensor) else type(keep).__name__
                raise ValueError(
                    f"{where} returned a mask of shape {got} for {name!r}, whose shape is {shape}: "
                    "return one boolean per entry of the parameter (a broadcast mask is not accepted)."
                )
        return keep_masks

    def _load_rewound_state(self, state: dict, optimizer) -> None:
        """Load parameter/buffer values the pruner asked to rewind to; reset the optimizer."""
        current = dict(self.module.state_dict(keep_vars=True))
        unknown = sorted(set(state) - set(current))
        if unknown:
            raise KeyError(f"{type(self.pruner).__name__}.rewind returned unknown entries {unknown}.")
        with torch.no_grad():
            for name, value in state.items():
                current[name].copy_(value)
        if optimizer is not None:
            optimizer.state.clear()  # moments belong to the discarded weights


def run_sensitivity_pass(net, engine: PruningEngine, dataset, n_batches: int) -> None:
    """Gradients (or forward passes only) on the first ``n_batches`` shuffled training batches, no update.

    Fills the pruner's statistics for a step at which none were gathered
    (pruning at initialization, as SNIP does): gradients when the pruner
    observes them, the requested activations in any case (the engine's
    forward hooks see these training-mode passes). Batches are shuffled by
    the engine's generator, so the training order is the same as without
    this pass. The loss is the criterion alone (no penalty).

    Parameters
    ----------
    net : PrunedNet
        The estimator (for its iterator, forward pass and criterion).
    engine : PruningEngine
    dataset : torch Dataset
        The training data.
    n_batches : int
    """
    iterator = net.get_iterator(dataset, training=True)
    if isinstance(iterator, BatchIterator):
        iterator.generator = engine.generator
    net._set_training(True)
    gradients = engine.observes_gradients
    for index, batch in enumerate(iterator):
        if index >= n_batches:
            break
        Xi, yi = unpack_data(batch)
        if not gradients:
            with torch.no_grad():
                net.infer(Xi)
            continue
        net.module_.zero_grad(set_to_none=True)
        loss = net.get_loss(net.infer(Xi), yi, X=Xi, training=False)
        loss.backward()
        engine.masks.mask_bound_gradients(engine.run.bound)
        engine.observe_gradients()
    net.module_.zero_grad(set_to_none=True)
