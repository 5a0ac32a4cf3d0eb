"""The training loop of :class:`skprune.PrunedNet`: skorch's protocol, one host sync per epoch.

skorch's loop reads every batch loss with ``loss.item()`` (a host sync per
step), notifies every callback at every batch and builds the L2 penalty
through autograd. :class:`Trainer` runs the training epochs with the same
protocol (``on_batch_begin``/``on_batch_end``/``on_grad_computed`` for every
callback that may listen, the batch entries ``train_loss`` and
``train_batch_size``, ``optimizer.step(closure)``) at less cost:

* the batch losses stay on the device and are written to the history at the
  end of the epoch (one host sync per epoch) unless code that may read them
  during the epoch is present: then the per-step path records each batch
  live, exactly as skorch does (see :attr:`Trainer.live`, ``docs/speed.md``);
* callbacks whose batch hooks are skorch's no-ops are not called;
* the L2 penalty ``0.5 * alpha * ||W||^2 / n`` is added to the gradients as
  ``alpha * W / n`` (one ``torch._foreach_add_``), which is the same update
  without an autograd graph; the logged ``train_loss`` is therefore the
  criterion plus the pruner's penalty, without the L2 term;
* masks are applied by one ``torch._foreach_mul_`` per step;

With ``compile="auto"`` (the default) the step is captured as a CUDA graph
wherever that is safe (see :meth:`Trainer.graph_refusal`): on CUDA, with the
data in memory on the GPU, no callback listening to training batches, a
capturable optimizer (Adam and AdamW get ``capturable=True`` there) and no
per-step statistics to gather; every other fit, and every CPU fit, runs the
eager step. The path taken is the fitted attribute ``training_step_`` (with
``training_step_reason_``) and a line of the verbose log.

With ``compile="step"`` the step is compiled: on CUDA the whole step
(batch gather, forward, backward, L2 term, optimizer step, masks, loss
accumulation) is captured once as a CUDA graph and replayed (recaptured after
a pruning step, a rewind or a learning-rate change); on the CPU the forward
pass and the loss go through ``torch.compile`` (backward by AOTAutograd) and
the fused optimizer step runs eagerly. Full batches only: the last, partial
batch of an epoch runs the eager step, so no sample is dropped and shapes stay
static.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
from skorch import NeuralNet, NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback, EpochScoring, PassthroughScoring
from skorch.dataset import get_len, unpack_data
from skorch.utils import TeeGenerator

from .._random import fit_generator
from ..nn._dropout import Dropout
from ..nn._networks import MLP, ConvNet
from ._data import BatchIterator, _resolve, split_weights
from ._log import TrainingLog
from ._weights import penalty_denominator

__all__ = [
    "EpochLoss",
    "Trainer",
    "TrainingStepMixin",
    "check_compile",
    "optimizer_defaults",
    "wants_training_batches",
]

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_grad_computed")
_FUSED_OPTIMIZERS = (torch.optim.Adam, torch.optim.AdamW)
N_WARMUP = 3  # eager steps on a side stream before a CUDA graph is captured


COMPILE_CHOICES = ("auto", "step")


def check_compile(compile) -> None:
    """Validate the estimator's ``compile`` parameter: ``"auto"``, ``False``, ``True`` or ``"step"``."""
    if compile is False or compile is True or (isinstance(compile, str) and compile in COMPILE_CHOICES):
        return
    raise ValueError(
        f'compile must be "auto" (the default: the training step as a CUDA graph where that is '
        f'safe, eager elsewhere), False (always eager), True (torch.compile of the module) or "step" '
        f"(the whole training step compiled; a CUDA graph on GPUs), got {compile!r}."
    )


def compiles_for_hooks(compile) -> bool:
    """Whether ``compile`` always compiles something that forward hooks would not see reliably.

    ``"auto"`` never does: a fit whose pruner records activations runs the
    eager step until the pruner's last step (the graph is captured after
    the engine removed its hooks).
    """
    return compile is True or compile == "step"


def graphs_step(compile) -> bool:
    """Whether ``compile`` asks for the CUDA-graph step on CUDA (``"auto"`` or ``"step"``)."""
    return isinstance(compile, str) and compile in COMPILE_CHOICES


def optimizer_defaults(net, optimizer_cls, kwargs: dict) -> dict:
    """Optimizer keyword arguments with the fastest implementation of the same algorithm.

    Adam and AdamW get ``fused=True`` (one kernel for all parameters, on CPU
    and CUDA) unless ``fused`` or ``foreach`` is given; with
    ``compile="auto"`` (the default) or ``"step"`` on CUDA they also get
    ``capturable=True`` so that the step can be captured in a CUDA graph.
    """
    kwargs = dict(kwargs)
    if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, _FUSED_OPTIMIZERS)):
        return kwargs
    device = torch.device(net.device)
    if device.type not in ("cpu", "cuda") or kwargs.get("differentiable"):
        return kwargs
    if "fused" not in kwargs and "foreach" not in kwargs:
        kwargs["fused"] = True
    if graphs_step(net.compile) and device.type == "cuda":
        kwargs.setdefault("capturable", True)
    return kwargs


def _hook_overridden(obj, hook: str, base) -> bool:
    """Whether ``obj``'s ``hook`` is anything but ``base``'s no-op (instance attributes count)."""
    attr = getattr(obj, hook, None)
    if attr is None:
        return False
    return getattr(attr, "__func__", attr) is not getattr(base, hook)


def wants_training_batches(callback, net, hooks=_BATCH_HOOKS) -> bool:
    """Whether a callback may listen to training batches (then it is notified at every batch).

    Any hook that is not :class:`skorch.callbacks.Callback`'s no-op counts,
    including hooks set on the instance (e.g. ``Mock(spec=Callback)``).
    skorch's ``EpochScoring`` listens to training batches only with
    ``on_train=True``; the :class:`TrainingLog` only for its progress bar.
    """
    if isinstance(callback, EpochScoring) and type(callback).on_batch_end is EpochScoring.on_batch_end:
        return bool(callback.on_train) and "on_batch_end" in hooks
    if isinstance(callback, TrainingLog) and type(callback).on_batch_end is TrainingLog.on_batch_end:
        return (net.verbose or 0) >= 2 and "on_batch_end" in hooks  # the progress bar
    return any(_hook_overridden(callback, hook, Callback) for hook in hooks)


def _reads_batches_later(callback) -> bool:
    """Whether a batch listener is known to need no live history entry (it gets the loss as a tensor)."""
    return (
        isinstance(callback, EpochScoring) and type(callback).on_batch_end is EpochScoring.on_batch_end
    ) or (isinstance(callback, TrainingLog) and type(callback).on_batch_end is TrainingLog.on_batch_end)


def _own_get_loss(net) -> bool:
    """Whether the estimator's ``get_loss`` is skprune's own (not overridden by a user subclass)."""
    from ._hooks import EngineHooksMixin  # the hooks import this module

    for klass in type(net).__mro__:
        if "get_loss" in vars(klass):
            return klass is EngineHooksMixin
    return False


def _method_is(obj, name: str, function) -> bool:
    """Whether ``obj.name`` is ``function`` (a subclass's override or an instance attribute is not)."""
    method = getattr(obj, name, None)
    return getattr(method, "__func__", None) is function


def _standard_get_loss(net) -> bool:
    """Whether ``get_loss`` is skprune's over skorch's own: no class but those defines it."""
    from ._hooks import EngineHooksMixin  # the hooks import this module

    owners = [klass for klass in type(net).__mro__ if "get_loss" in vars(klass)]
    return (
        bool(owners)
        and owners[0] is EngineHooksMixin
        and all(klass in (NeuralNetClassifier, NeuralNetRegressor, NeuralNet) for klass in owners[1:])
    )


class EpochLoss(PassthroughScoring):
    """skorch's ``PassthroughScoring`` that also takes a loss recorded once per epoch.

    The fast training epoch records ``train_loss`` for the epoch without
    per-batch entries; this callback then marks whether it is the best so far,
    as skorch does for the batch average.
    """

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        if self.name not in row:
            super().on_epoch_end(net, **kwargs)
            return
        score = row[self.name]
        is_best = self._is_best_score(score)
        if is_best:
            self.best_score_ = score
        if is_best is not None:
            net.history.record(self.name + "_best", bool(is_best))


class TrainingStepMixin:
    """The estimator's side of the step: its training epochs, optimizer defaults and ``compile``."""

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Training epochs go through the fit's :class:`Trainer` (skorch's loop otherwise)."""
        trainer = self.__dict__.get("_trainer")
        if training and iterator is not None and trainer is not None and trainer.active:
            trainer.run_epoch(iterator, prefix, **fit_params)
            return
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def get_params_for_optimizer(self, prefix, named_parameters):
        """skorch's optimizer arguments, with the fused Adam/AdamW kernel by default."""
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        return args, optimizer_defaults(self, self.optimizer, kwargs)

    def torch_compile(self, module, name):
        """skorch's ``compile=True``; ``"step"`` compiles the training step instead, ``"auto"`` nothing."""
        if isinstance(self.compile, str):
            return module
        return super().torch_compile(module, name)


class Trainer:
    """Runs the training epochs of one fit (see the module docstring).

    Parameters
    ----------
    net : PrunedNet
    engine : PruningEngine
        The fit's pruning engine (masks, gradient statistics, penalty).
    step_overridden : bool
        Whether the estimator's class overrides skorch's training step; then
        skorch's loop runs and this trainer steps aside.
    """

    def __init__(self, net, engine, *, step_overridden: bool):
        self.net = net
        self.engine = engine
        self.optimizer = getattr(net, "optimizer_", None)
        self.active = (
            not step_overridden
            and type(net).train_step_single is NeuralNet.train_step_single
            and list(net._optimizers) == ["optimizer"]
            and isinstance(self.optimizer, torch.optim.Optimizer)
        )
        #: the L2 term goes to the gradients (the estimator's ``get_loss`` then leaves it out)
        self.l2_as_gradient = self.active
        self.alpha = float(net.alpha)
        self.device = torch.device(net.device)
        self.loss_sum = torch.zeros((), device=self.device)
        self.compiled = None
        if self.active and net.compile == "step" and self.device.type != "cuda":
            self.compiled = torch.compile(self._forward_loss, **net.get_params_for("compile"))
        self.graph = None
        self._graph_key = None
        self._graph_reason_warned = False
        #: epochs of this fit that replayed the CUDA graph / ran eager steps only, and why
        self.graph_epochs = 0
        self.eager_epochs = 0
        self.eager_reasons: list[str] = []
        #: the loss of the fit's first batch, before any update (read by the divergence check)
        self.first_loss: float | None = None
        self.update_listeners()

    def update_listeners(self) -> None:
        """Look up which callbacks listen to training batches (at fit begin; callbacks may change)."""
        net = self.net
        callbacks = [cb for _, cb in net.callbacks_]
        listening = functools.partial(wants_training_batches, net=net)
        self.begin_listeners = [cb for cb in callbacks if listening(cb, hooks=("on_batch_begin",))]
        self.end_listeners = [cb for cb in callbacks if listening(cb, hooks=("on_batch_end",))]
        net_hooks = [h for h in _BATCH_HOOKS[:2] if getattr(type(net), h) is not getattr(NeuralNet, h)]
        #: callbacks see every gradient (skorch's ``on_grad_computed`` with the parameters)
        self.grad_events = any(wants_training_batches(cb, net, ("on_grad_computed",)) for cb in callbacks)
        #: the per-step path: batch entries written live, with one host sync per batch, because
        #: user code may read them during the epoch (a batch listener skprune does not know,
        #: a ``get_loss`` override that records batch values, an overridden batch hook of the net)
        self.live = (
            not self.active
            or bool(net_hooks)
            or not _own_get_loss(net)
            or not all(_reads_batches_later(cb) for cb in self.begin_listeners + self.end_listeners)
        )
        #: kept for the CUDA graph check: whether any callback hears training batches
        self.batch_events = bool(self.begin_listeners or self.end_listeners or self.grad_events or self.live)

    # -------------------------------------------------------------- a step
    def _forward_loss(self, Xi, yi, **fit_params):
        y_pred = self.net.infer(Xi, **fit_params)
        return self.net.get_loss(y_pred, yi, X=Xi, training=True), y_pred

    @torch.no_grad()
    def _add_l2(self, n: int) -> None:
        if self.alpha <= 0:
            return
        pairs = [(w.grad, w) for w in self.engine.l2_weights if w.grad is not None]
        if pairs:
            grads, weights = zip(*pairs)
            torch._foreach_add_(list(grads), list(weights), alpha=self.alpha / n)

    def eager_step(self, batch, fit_params, *, compiled: bool = False):
        """One optimizer step on ``batch``; returns ``(loss, y_pred, n)``.

        As in skorch's ``train_step``, the optimizer's ``step`` gets the
        closure (zero the gradients, forward, loss, backward, the L2 term,
        ``on_grad_computed``), so an optimizer that re-evaluates the loss
        (``LBFGS``) or needs a closure works; the estimator's
        ``get_train_step_accumulator`` (skorch's ``FirstStepAccumulator`` by
        default) picks the loss and prediction returned. The loss is not
        detached (callbacks see ``loss.requires_grad`` as in skorch).
        """
        Xi, yi = unpack_data(batch)
        n = get_len(Xi)
        forward_loss = self.compiled if compiled and self.compiled is not None else self._forward_loss
        _, weight = split_weights(yi)  # with sample weights, the L2 term is divided by their sum
        denominator = None
        accumulator = self.net.get_train_step_accumulator()

        def closure():
            nonlocal denominator
            self.optimizer.zero_grad(set_to_none=True)
            loss, y_pred = forward_loss(Xi, yi, **fit_params)
            loss.backward()
            if denominator is None:
                denominator = n if weight is None else float(penalty_denominator(yi, weight))
            self._add_l2(denominator)
            if self.grad_events:
                self.net.notify(
                    "on_grad_computed",
                    named_parameters=TeeGenerator(self.net.get_all_learnable_params()),
                    batch=batch,
                    training=True,
                )
            else:
                if self.engine.observes_gradients:
                    self.engine.observe_gradients()
                if self.engine.masks_gradients:
                    self.engine.mask_gradients()
            accumulator.store_step({"loss": loss, "y_pred": y_pred})
            return loss

        try:
            self.optimizer.step(closure)
        finally:  # an interrupt between the step and the masks must not leave pruned weights alive
            self.engine.apply_masks()
        step = accumulator.get_step()
        loss, y_pred = step["loss"], step["y_pred"]
        detached = loss.detach()
        if self.first_loss is None:
            self.first_loss = float(detached)  # one host sync per fit: the loss before any update
        self.loss_sum.add_(detached, alpha=n)
        return loss, y_pred, n

    # ------------------------------------------------------------- an epoch
    def run_epoch(self, iterator, prefix: str, **fit_params) -> None:
        """Train one epoch, with skorch's batch events and history entries; record ``<prefix>_loss``.

        On the fast path the per-batch losses stay on the device and are
        written to the batch entries at the end of the epoch (one host sync
        per epoch); on the per-step path (``live``) each batch is recorded
        and notified exactly as skorch's ``run_single_epoch`` does.
        """
        net = self.net
        history = net.history
        net._set_training(True)
        self.loss_sum.zero_()
        first_batch = len(history[-1]["batches"]) if len(history) else 0
        losses: list = []
        total = None  # the fast epoch sums its batch losses on the host (float64, as skorch does)
        if self._graph_applies(iterator, fit_params):
            n_seen, n_batches, losses = self._graph_epoch(iterator, prefix)
        elif not self.live:
            n_seen, n_batches, total = self._fast_epoch(iterator, prefix, fit_params)
        else:
            n_seen = n_batches = 0
            full = getattr(iterator, "batch_size", None)
            for batch in iterator:
                net.notify("on_batch_begin", batch=batch, training=True)
                compiled = self.compiled is not None and get_len(unpack_data(batch)[0]) == full
                loss, y_pred, n = self.eager_step(batch, fit_params, compiled=compiled)
                history.record_batch(prefix + "_loss", loss.item())
                history.record_batch(prefix + "_batch_size", n)
                net.notify("on_batch_end", batch=batch, training=True, loss=loss, y_pred=y_pred)
                n_seen += n
                n_batches += 1
        if n_batches == 0:
            n, size = len(getattr(iterator, "dataset", ())), getattr(iterator, "batch_size", None)
            raise ValueError(
                f"The training data gave no training batch in epoch {len(net.history)}: {n} training "
                f"samples, batch_size={size}, drop_last={getattr(iterator, 'drop_last', None)} "
                "(iterator_train__drop_last). Nothing would be trained; use a smaller batch_size, -1 for "
                "full batch, or keep the last batch."
            )
        if losses:  # the epoch's one host sync: every batch loss at once
            batches = history[-1]["batches"]
            for entry, value in zip(batches[first_batch:], torch.stack(losses).tolist()):
                entry[prefix + "_loss"] = value
        history.record(prefix + "_batch_count", n_batches)
        mean = (self.loss_sum.item() if total is None else total) / max(n_seen, 1)
        # a non-finite or explosive mean is raised by the estimator's divergence
        # check at the end of this epoch (``_guards.check_divergence``), with its cause
        history.record(prefix + "_loss", mean)

    def _fast_epoch(self, iterator, prefix: str, fit_params) -> tuple[int, int, float]:
        """The training batches of an epoch on the fast path; returns ``(n_seen, n_batches, loss total)``.

        Each batch gets its history entry (with ``<prefix>_batch_size``) when it
        starts, as from skorch's ``history.new_batch``; the losses stay on the
        device and are written into the entries once, when the epoch ends (also
        when it ends early, on an error or an interrupt, for the batches done).
        """
        net = self.net
        batches = net.history[-1]["batches"]  # the epoch's row (skorch's new_batch appends to it)
        first_batch = len(batches)
        size_key = prefix + "_batch_size"
        begin, end = self.begin_listeners, self.end_listeners
        full = getattr(iterator, "batch_size", None)
        step = self._step_kind()
        direct = self._direct_forward_loss(iterator, fit_params)
        losses: list = []
        sizes: list = []
        try:
            for batch in iterator:
                batches.append({})  # the net's own on_batch_begin (history.new_batch)
                for callback in begin:
                    callback.on_batch_begin(net, batch=batch, training=True)
                if type(batch) is tuple and len(batch) == 2:
                    Xi, yi = batch
                else:
                    Xi, yi = unpack_data(batch)
                n = Xi.shape[0] if isinstance(Xi, torch.Tensor) else get_len(Xi)
                if self.compiled is not None and n == full:
                    forward_loss = self.compiled
                elif direct is not None and losses:  # the epoch's first batch goes through get_loss
                    forward_loss = direct
                else:
                    forward_loss = self._forward_loss
                loss, y_pred = self._fast_step(batch, Xi, yi, n, fit_params, step, forward_loss)
                batches[-1][size_key] = n
                losses.append(loss.detach())
                sizes.append(n)
                for callback in end:
                    callback.on_batch_end(net, batch=batch, training=True, loss=loss, y_pred=y_pred)
        finally:  # the epoch's one host sync: every batch loss at once
            values = torch.stack(losses).tolist() if losses else []
            for entry, value in zip(batches[first_batch:], values):
                entry[prefix + "_loss"] = value
        total = math.fsum(value * n for value, n in zip(values, sizes))
        return sum(sizes), len(sizes), total

    def _direct_forward_loss(self, iterator, fit_params):
        """The forward pass and loss without skorch's per-call conversions, or ``None`` where they matter.

        Where the estimator's ``infer`` and ``get_loss`` are skprune's and
        skorch's own (no subclass overrides them), the batches are tensors on
        the device (a :class:`BatchIterator` over an :class:`ArrayDataset`
        without sample weights), there are no fit parameters for ``forward``
        and the module draws no random number from torch's global stream (a
        built-in network), ``net.infer`` is ``module_(X)`` and ``net.get_loss``
        is ``criterion_(y_pred, y)`` plus the pruner's penalty (the L2 term goes
        to the gradients), after the checks of the module's output. The
        epoch's first batch runs the full ``get_loss`` with those checks (the
        output's type and width cannot change between batches of an epoch);
        the others run this. An output that is not a tensor goes to ``get_loss``.
        """
        from ._hooks import EngineHooksMixin  # the hooks import this module

        net = self.net
        resolved = _resolve(iterator.dataset) if isinstance(iterator, BatchIterator) else None
        if (
            fit_params
            or not self.l2_as_gradient
            or resolved is None
            or resolved[0].sample_weight is not None
            or not _method_is(net, "infer", EngineHooksMixin.infer)
            or not _method_is(net, "get_loss", EngineHooksMixin.get_loss)
            or not _standard_get_loss(net)
            or (net.__dict__.get("_rng") is not None and type(net.module_) not in (MLP, ConvNet))
            or isinstance(net.criterion_, torch.nn.NLLLoss)  # skorch's classifier takes the log first
        ):
            return None
        module, criterion, engine = net.module_, net.criterion_, self.engine
        penalty = engine.penalty if engine.hooks is not None else None

        def forward_loss(Xi, yi):
            y_pred = module(Xi)
            if type(y_pred) is not torch.Tensor:  # e.g. a tuple for a criterion of the user's
                return net.get_loss(y_pred, yi, X=Xi, training=True), y_pred
            loss = criterion(y_pred, yi)
            extra = None if penalty is None else penalty()
            return (loss if extra is None else loss + extra), y_pred

        return forward_loss

    def _step_kind(self) -> tuple:
        """What a fast step needs to know, looked up once per epoch (callbacks and masks may change)."""
        net = self.net
        accumulator = _method_is(net, "get_train_step_accumulator", NeuralNet.get_train_step_accumulator)
        optimizer = self.optimizer
        params = None  # zero_grad(set_to_none=True) of torch's Optimizer: every gradient to None
        if _method_is(optimizer, "zero_grad", torch.optim.Optimizer.zero_grad):
            params = [p for group in optimizer.param_groups for p in group["params"]]
        return accumulator, self.alpha > 0, params

    def _fast_step(self, batch, Xi, yi, n, fit_params, step, forward_loss):
        """One optimizer step, as :meth:`eager_step` (same closure, same order), with less per-step Python.

        ``step`` is :meth:`_step_kind`'s triple: whether the estimator's train
        step accumulator is skorch's ``FirstStepAccumulator`` (then the
        closure keeps its first evaluation itself), whether the L2 term
        applies, and the optimizer's parameters when its ``zero_grad`` is
        torch's (then the closure sets their gradients to ``None`` itself).
        Returns ``(loss, y_pred)``; the loss is not detached.
        """
        default_accumulator, l2, params = step
        net, engine, optimizer = self.net, self.engine, self.optimizer
        accumulator = None if default_accumulator else net.get_train_step_accumulator()
        first: list = []
        grad_events = self.grad_events

        def closure():
            if params is None:
                optimizer.zero_grad(set_to_none=True)
            else:  # what torch's zero_grad(set_to_none=True) does, without its per-call profiling scope
                for param in params:
                    param.grad = None
            loss, y_pred = forward_loss(Xi, yi, **fit_params)
            loss.backward()
            if l2:
                _, weight = split_weights(yi)  # with sample weights, divided by their sum
                self._add_l2(n if weight is None else float(penalty_denominator(yi, weight)))
            if grad_events:
                net.notify(
                    "on_grad_computed",
                    named_parameters=TeeGenerator(net.get_all_learnable_params()),
                    batch=batch,
                    training=True,
                )
            else:
                if engine.observes_gradients:
                    engine.observe_gradients()
                if engine.masks_gradients:
                    engine.mask_gradients()
            if accumulator is not None:
                accumulator.store_step({"loss": loss, "y_pred": y_pred})
            elif not first:
                first.append((loss, y_pred))
            return loss

        try:
            optimizer.step(closure)
        finally:  # an interrupt between the step and the masks must not leave pruned weights alive
            if engine.run.bound:  # a dense fit has no mask to apply
                engine.apply_masks()
        if accumulator is not None:
            result = accumulator.get_step()
            loss, y_pred = result["loss"], result["y_pred"]
        else:
            loss, y_pred = first[0]
        if self.first_loss is None:
            self.first_loss = float(loss.detach())  # one host sync per fit: the loss before any update
        return loss, y_pred

    # -------------------------------------------------------- the CUDA graph
    def graph_refusal(self, iterator, fit_params) -> str | None:
        """Why this fit cannot capture its step as a CUDA graph, or ``None`` when it can."""
        net = self.net
        if not graphs_step(net.compile):
            return f"compile={net.compile!r}"
        if self.device.type != "cuda":
            return f"the device is {net.device!r}, not CUDA"
        if not self.active:
            return "the training step is overridden or there are several optimizers"
        if fit_params:
            return "fit parameters for forward"
        if self.batch_events:
            return "a callback listens to training batches"
        if not isinstance(iterator, BatchIterator) or _resolve(iterator.dataset) is None:
            return "the data is not an in-memory ArrayDataset"
        if _resolve(iterator.dataset)[0].sample_weight is not None:
            return "sample weights"
        if not all(
            g.get("capturable", isinstance(self.optimizer, torch.optim.SGD))
            for g in self.optimizer.param_groups
        ):
            return f"{type(self.optimizer).__name__} is not capturable (pass optimizer__capturable=True)"
        if _uses_fit_generator(net.module_) and not _can_register_generators():
            return (
                "this PyTorch cannot replay draws from the fit's own random generator "
                "(skprune.nn.Dropout) in a CUDA graph (CUDAGraph.register_generator_state)"
            )
        X = _resolve(iterator.dataset)[0].features
        if not isinstance(X, torch.Tensor) or X.device.type != "cuda":
            return "X is not a dense tensor on the GPU"
        return None

    def _graph_applies(self, iterator, fit_params) -> bool:
        """Whether this epoch replays the CUDA graph; counts the epoch and records why not."""
        reason = self.graph_refusal(iterator, fit_params)
        on_cuda = self.device.type == "cuda"
        if reason is not None and self.net.compile == "step" and on_cuda and not self._graph_reason_warned:
            # asked for explicitly: say why it is not used ("auto" says it in training_step_reason_)
            warnings.warn(f'compile="step" runs the eager step: {reason}.', UserWarning, stacklevel=4)
            self._graph_reason_warned = True
        if reason is None and self.engine.observes_gradients:
            reason = "the pruner reads every step's gradients until its last pruning step"
        elif reason is None and self.engine.recorder is not None:
            reason = "the pruner records activations until its last pruning step"
        if reason is None:
            self.graph_epochs += 1
            return True
        self.eager_epochs += 1
        if reason not in self.eager_reasons:
            self.eager_reasons.append(reason)
        return False

    def carry_counts(self, previous: Trainer) -> None:
        """Take over the epoch counts of the trainer this one replaces mid-fit."""
        self.graph_epochs += previous.graph_epochs
        self.eager_epochs += previous.eager_epochs
        self.eager_reasons.extend(r for r in previous.eager_reasons if r not in self.eager_reasons)

    def describe(self) -> tuple[str, str | None]:
        """The fit's training step (``training_step_``) and why it is not a graph throughout.

        Returns
        -------
        mode : {"cuda_graph", "eager", "compiled", "compiled_module"}
            ``"cuda_graph"`` if any epoch replayed the captured graph;
            ``"compiled"`` for ``compile="step"`` on the CPU;
            ``"compiled_module"`` for ``compile=True``; else ``"eager"``.
        reason : str or None
            Why epochs ran the eager step (``None`` if none did, or if no
            epoch ran through this trainer).
        """
        if self.graph_epochs:
            mode = "cuda_graph"
        elif self.compiled is not None:
            mode = "compiled"
        elif self.net.compile is True:
            mode = "compiled_module"
        else:
            mode = "eager"
        if not self.eager_epochs or mode.startswith("compiled"):
            return mode, None
        reason = "; ".join(self.eager_reasons)
        if self.graph_epochs:
            total = self.graph_epochs + self.eager_epochs
            reason = f"eager for {self.eager_epochs} of {total} epochs: {reason}"
        return mode, reason

    def _graph_epoch(self, iterator, prefix: str) -> tuple[int, int, list]:
        base, order = iterator.epoch_index()
        n, size = len(iterator.dataset), iterator.batch_size
        if order is None:
            order = torch.arange(n, device=base.features.device)
        if self.graph is None or not self._same_key(self._graph_key):
            self.graph = None
            self._n_warm = 0
            self._static_index = torch.zeros(size, dtype=torch.long, device=base.features.device)
            self._graph_data = (base.features, base.targets)
        n_full = n // size
        if getattr(self, "_batch_losses", None) is None or self._batch_losses.numel() < n_full:
            # per-batch losses written on the device by the graph itself (read once per epoch)
            self._batch_losses = torch.zeros(max(n_full, 1), device=self.device)
            self._loss_position = torch.zeros(1, dtype=torch.long, device=self.device)
            self.graph = None  # the graph writes into these buffers: capture it again
            self._n_warm = 0
        self._loss_position.zero_()
        history = self.net.history
        for b in range(n_full):
            history.new_batch()
            history.record_batch(prefix + "_batch_size", size)
            self._static_index.copy_(order[b * size : (b + 1) * size], non_blocking=True)
            if self.graph is None:
                if self._n_warm < N_WARMUP:
                    self._warm_step(size)
                    continue
                self._capture(size)
            self.graph.replay()
        losses = list(self._batch_losses[:n_full].unbind()) if n_full else []
        n_batches = n_full
        if n % size:
            history.new_batch()
            history.record_batch(prefix + "_batch_size", n - n_full * size)
            losses.append(self.eager_step(base.take(order[n_full * size :]), {})[0].detach())
            n_batches += 1
        return n, n_batches, losses

    def _current_key(self) -> tuple:
        """What a captured graph depends on: bound masks, optimizer state objects, learning rates."""
        first = next(iter(self.optimizer.state.values()), None)
        lrs = tuple(float(g["lr"]) for g in self.optimizer.param_groups)
        return (self.engine.run.bound, first, lrs)

    def _same_key(self, key) -> bool:
        bound, first, lrs = self._current_key()
        return key is not None and key[0] is bound and key[1] is first and key[2] == lrs

    def _graph_body(self, size: int) -> None:
        X, y = self._graph_data
        index = self._static_index
        Xi = torch.index_select(X, 0, index)
        yi = None if y is None else torch.index_select(y, 0, index)
        loss, _ = self._forward_loss(Xi, yi)
        loss.backward()
        self._add_l2(size)
        self.optimizer.step()
        self.engine.apply_masks()
        self.loss_sum.add_(loss.detach(), alpha=size)
        self._batch_losses.index_copy_(0, self._loss_position, loss.detach().reshape(1))
        self._loss_position.add_(1)
        return loss.detach()

    def _warm_step(self, size: int) -> None:
        def step():
            self.optimizer.zero_grad(set_to_none=True)
            return self._graph_body(size)

        loss = on_side_stream(step)
        if self.first_loss is None:
            self.first_loss = float(loss)
        self._n_warm += 1

    def _capture(self, size: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        generator = fit_generator(self.device)
        if generator is None or not _uses_fit_generator(self.net.module_):
            generator = None
        # dropout draws from the fit's own generator: each replay must advance
        # it (new masks every step), as the default CUDA generator is advanced
        self.graph, _ = capture_graph(lambda: self._graph_body(size), generator)
        self._graph_key = self._current_key()


def on_side_stream(body):
    """``body()`` run on a fresh side stream, ordered after and before the current stream's work.

    The warm-up steps before a CUDA graph capture run so, as PyTorch's
    CUDA-graph notes advise (lazily created state such as optimizer moments
    and cuBLAS workspaces settles outside the capture).
    """
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        result = body()
    torch.cuda.current_stream().wait_stream(stream)
    return result


def capture_graph(body, generator: torch.Generator | None = None) -> tuple[torch.cuda.CUDAGraph, object]:
    """A CUDA graph of ``body()`` and what the captured call returned (its outputs are static tensors).

    ``generator``, a CUDA generator the body draws from, is registered so
    that each replay advances it.
    """
    graph = torch.cuda.CUDAGraph()
    if generator is not None:
        graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        result = body()
    return graph, result


def _uses_fit_generator(module: torch.nn.Module) -> bool:
    """Whether ``module`` draws random numbers from the fit's own generator (``skprune.nn.Dropout``)."""
    return any(isinstance(m, Dropout) and m.p > 0 for m in module.modules())


def _can_register_generators() -> bool:
    """Whether CUDA graphs can replay draws from a user-made generator (PyTorch 2.5 and later)."""
    return hasattr(torch.cuda.CUDAGraph, "register_generator_state")
