"""The training step: an eager fast path, and an opt-in compiled or graphed step.

skorch's loop reads every batch loss with ``loss.item()`` (a host sync per
step), notifies every callback at every batch and builds the L2 penalty
through autograd. :class:`Trainer` runs one training epoch of
:class:`skprune.PrunedNet` instead:

* the loss is accumulated on the device and read once per epoch (the
  estimator's once-per-epoch divergence check reads it);
* the L2 penalty ``0.5 * alpha * ||W||^2 / n`` is added to the gradients as
  ``alpha * W / n`` (one ``torch._foreach_add_``), which is the same update
  without an autograd graph; the logged ``train_loss`` is therefore the
  criterion plus the pruner's penalty, without the L2 term;
* masks are applied by one ``torch._foreach_mul_`` per step;
* per-batch callback events and per-batch history entries happen only when
  a callback listens to training batches (see :func:`wants_training_batches`).

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

import warnings

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochScoring, PassthroughScoring
from skorch.dataset import get_len, unpack_data
from skorch.utils import TeeGenerator

from .._random import fit_generator
from ..nn._dropout import Dropout
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
_N_WARMUP = 3  # eager steps on a side stream before a CUDA graph is captured


def check_compile(compile) -> None:
    """Validate the estimator's ``compile`` parameter: ``False``, ``True`` or ``"step"``."""
    if compile is False or compile is True or (isinstance(compile, str) and compile == "step"):
        return
    raise ValueError(
        f'compile must be False, True (torch.compile of the module) or "step" (the whole training '
        f"step compiled; a CUDA graph on GPUs), got {compile!r}."
    )


def optimizer_defaults(net, optimizer_cls, kwargs: dict) -> dict:
    """Optimizer keyword arguments with the fastest implementation of the same algorithm.

    Adam and AdamW get ``fused=True`` (one kernel for all parameters, on CPU
    and CUDA) unless ``fused`` or ``foreach`` is given; with
    ``compile="step"`` on CUDA they also get ``capturable=True`` so that the
    step can be captured in a CUDA graph.
    """
    kwargs = dict(kwargs)
    if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, _FUSED_OPTIMIZERS)):
        return kwargs
    device = torch.device(net.device)
    if device.type not in ("cpu", "cuda") or kwargs.get("differentiable"):
        return kwargs
    if "fused" not in kwargs and "foreach" not in kwargs:
        kwargs["fused"] = True
    if net.compile == "step" and device.type == "cuda":
        kwargs.setdefault("capturable", True)
    return kwargs


def wants_training_batches(callback, net) -> bool:
    """Whether a callback listens to training batches (then they are notified and recorded)."""
    if isinstance(callback, EpochScoring):
        return bool(callback.on_train)
    if isinstance(callback, TrainingLog):
        return (net.verbose or 0) >= 2  # the progress bar
    cls = type(callback)
    return any(getattr(cls, hook) is not getattr(Callback, hook) for hook in _BATCH_HOOKS)


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
        """skorch's ``compile=True``; ``compile="step"`` compiles the training step instead."""
        if self.compile == "step":
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
            and not isinstance(self.optimizer, torch.optim.LBFGS)  # its closure re-evaluates the loss
        )
        #: the L2 term goes to the gradients (the estimator's ``get_loss`` then leaves it out)
        self.l2_as_gradient = self.active
        self.alpha = float(net.alpha)
        self.device = torch.device(net.device)
        self.batch_events = any(wants_training_batches(cb, net) for _, cb in net.callbacks_)
        self.loss_sum = torch.zeros((), device=self.device)
        self.compiled = None
        if self.active and net.compile == "step" and self.device.type != "cuda":
            self.compiled = torch.compile(self._forward_loss, **net.get_params_for("compile"))
        self.graph = None
        self._graph_key = None
        self._graph_reason_warned = False
        #: the loss of the fit's first batch, before any update (read by the divergence check)
        self.first_loss: float | None = None

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
        """One optimizer step on ``batch``; returns ``(detached loss, y_pred, n)``."""
        Xi, yi = unpack_data(batch)
        n = get_len(Xi)
        self.optimizer.zero_grad(set_to_none=True)
        forward_loss = self.compiled if compiled and self.compiled is not None else self._forward_loss
        loss, y_pred = forward_loss(Xi, yi, **fit_params)
        loss.backward()
        _, weight = split_weights(yi)  # with sample weights, the L2 term is divided by their sum
        self._add_l2(n if weight is None else float(penalty_denominator(yi, weight)))
        if self.batch_events:
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
        try:
            self.optimizer.step()
        finally:  # an interrupt between the step and the masks must not leave pruned weights alive
            self.engine.apply_masks()
        loss = loss.detach()
        if self.first_loss is None:
            self.first_loss = float(loss)  # one host sync per fit: the loss before any update
        self.loss_sum.add_(loss, alpha=n)
        return loss, y_pred, n

    # ------------------------------------------------------------- an epoch
    def run_epoch(self, iterator, prefix: str, **fit_params) -> None:
        """Train one epoch, record ``<prefix>_loss`` once, raise if it is not finite."""
        net = self.net
        net._set_training(True)
        self.loss_sum.zero_()
        if self._graph_applies(iterator, fit_params):
            n_seen, n_batches = self._graph_epoch(iterator)
        else:
            n_seen = n_batches = 0
            full = getattr(iterator, "batch_size", None)
            for batch in iterator:
                if self.batch_events:
                    net.notify("on_batch_begin", batch=batch, training=True)
                compiled = self.compiled is not None and get_len(unpack_data(batch)[0]) == full
                loss, y_pred, n = self.eager_step(batch, fit_params, compiled=compiled)
                if self.batch_events:
                    net.history.record_batch(prefix + "_loss", loss.item())
                    net.history.record_batch(prefix + "_batch_size", n)
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
        net.history.record(prefix + "_batch_count", n_batches)
        mean = self.loss_sum.item() / max(n_seen, 1)  # the epoch's one host sync
        # a non-finite or explosive mean is raised by the estimator's divergence
        # check at the end of this epoch (``_guards.check_divergence``), with its cause
        net.history.record(prefix + "_loss", mean)

    # -------------------------------------------------------- the CUDA graph
    def _graph_applies(self, iterator, fit_params) -> bool:
        if self.net.compile != "step" or self.device.type != "cuda":
            return False
        reason = None
        if fit_params:
            reason = "fit parameters for forward"
        elif self.batch_events:
            reason = "a callback listens to training batches"
        elif not isinstance(iterator, BatchIterator) or _resolve(iterator.dataset) is None:
            reason = "the data is not an in-memory ArrayDataset"
        elif _resolve(iterator.dataset)[0].sample_weight is not None:
            reason = "sample weights"
        elif not all(g.get("capturable", isinstance(self.optimizer, torch.optim.SGD))
                     for g in self.optimizer.param_groups):
            reason = f"{type(self.optimizer).__name__} is not capturable (pass optimizer__capturable=True)"
        elif _uses_fit_generator(self.net.module_) and not _can_register_generators():
            reason = (
                "this PyTorch cannot replay draws from the fit's own random generator "
                "(skprune.nn.Dropout) in a CUDA graph (CUDAGraph.register_generator_state)"
            )
        if reason is None:
            X = _resolve(iterator.dataset)[0].X
            if not isinstance(X, torch.Tensor) or X.device.type != "cuda":
                reason = "X is not a dense tensor on the GPU"
        if reason is not None and not self._graph_reason_warned:
            warnings.warn(f'compile="step" runs the eager step: {reason}.', UserWarning, stacklevel=4)
            self._graph_reason_warned = True
        if self.engine.observes_gradients:
            return False  # the pruner reads every step's gradients: eager steps until its last step
        return reason is None

    def _graph_epoch(self, iterator) -> tuple[int, int]:
        base, order = iterator.epoch_index()
        n, size = len(iterator.dataset), iterator.batch_size
        if order is None:
            order = torch.arange(n, device=base.X.device)
        if self.graph is None or not self._same_key(self._graph_key):
            self.graph = None
            self._n_warm = 0
            self._static_index = torch.zeros(size, dtype=torch.long, device=base.X.device)
            self._graph_data = (base.X, base.y)
        n_full = n // size
        for b in range(n_full):
            self._static_index.copy_(order[b * size : (b + 1) * size], non_blocking=True)
            if self.graph is None:
                if self._n_warm < _N_WARMUP:
                    self._warm_step(size)
                    continue
                self._capture(size)
            self.graph.replay()
        n_batches = n_full
        if n % size:
            self.eager_step(base.take(order[n_full * size :]), {})
            n_batches += 1
        return n, n_batches

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
        return loss.detach()

    def _warm_step(self, size: int) -> None:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._graph_body(size)
        torch.cuda.current_stream().wait_stream(stream)
        if self.first_loss is None:
            self.first_loss = float(loss)
        self._n_warm += 1

    def _capture(self, size: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        generator = fit_generator(self.device)
        if generator is not None and _uses_fit_generator(self.net.module_):
            # dropout draws from the fit's own generator: each replay must advance
            # it (new masks every step), as the default CUDA generator is advanced
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            self._graph_body(size)
        self.graph = graph
        self._graph_key = self._current_key()


def _uses_fit_generator(module: torch.nn.Module) -> bool:
    """Whether ``module`` draws random numbers from the fit's own generator (``skprune.nn.Dropout``)."""
    return any(isinstance(m, Dropout) and m.p > 0 for m in module.modules())


def _can_register_generators() -> bool:
    """Whether CUDA graphs can replay draws from a user-made generator (PyTorch 2.5 and later)."""
    return hasattr(torch.cuda.CUDAGraph, "register_generator_state")
