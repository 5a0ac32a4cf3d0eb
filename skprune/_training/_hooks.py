"""skorch's training hooks of :class:`~skprune.PrunedNet`, delegated to the fit's engine and trainer.

One :class:`~skprune._training._engine.PruningEngine` and one
:class:`~skprune._training._step.Trainer` live for each ``fit``/``partial_fit``;
these hooks build them when training begins and hand every event to them:
pruning steps before epochs, gradients to a pruner that observes them, masks
after every optimizer step (also when interrupted), the L2 and pruner
penalties, and the once-per-epoch checks of ``_guards``. The engine is
closed (its forward hooks removed, the pruner's ``on_fit_end`` called) when
training ends, and also when an error or an interrupt ends it: in the
training loop (:meth:`EngineHooksMixin.fit_loop`) or in a callback's
``on_train_begin`` (:meth:`EngineHooksMixin.notify`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings

from sklearn.base import clone

from ..nn._layers import iter_prunable_weights
from ..nn._networks import MLP, ConvNet
from ..pruners._masks import MaskStore
from . import _guards
from ._data import split_weights
from ._engine import PruningEngine, run_sensitivity_pass
from ._history import measured_sparsity
from ._step import Trainer, compiles_for_hooks
from ._weights import penalty_denominator, weighted_loss

__all__ = ["EngineHooksMixin"]


class EngineHooksMixin:
    """The skorch hooks of the estimator (put before skorch's ``NeuralNet`` in the bases)."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Copy the pruner to ``pruner_`` and start the pruning engine of this fit."""
        self._start_engine()
        try:
            super().on_train_begin(net, X=X, y=y, **kwargs)
        except BaseException as error:
            self._engine.close(error)
            raise

    def _start_engine(self, n_epochs: int | None = None):
        """Build the engine and trainer of this fit (again when a callback rebuilds the module).

        ``n_epochs`` is the epochs the engine's schedule spans: ``max_epochs``,
        or those left in the fit when it restarts mid-fit.
        """
        previous = self.__dict__.get("pruner_")
        self.pruner_ = clone(self.pruner) if self.pruner is not None else None
        if self._keeps_structure() and n_epochs is None and self.pruner_ is not None:
            if previous is not None and repr(previous) != repr(self.pruner_):
                warnings.warn(
                    f"The network was compacted during fit, so this continuing fit fine-tunes it and is "
                    f"not pruned again: pruner={self.pruner_!r} is not applied (the fitted network keeps "
                    f"what {previous!r} removed). To prune to a new target, fit without warm_start (a "
                    "new network), or use compact_during_fit=False, which keeps a masked network that a "
                    "warm start prunes further.",
                    UserWarning,
                    stacklevel=2,
                )
        self._engine = PruningEngine(
            None if self._keeps_structure() else self.pruner_,
            self.module_,
            self.masks_,
            n_epochs=self.max_epochs if n_epochs is None else n_epochs,
            generator=self._rng.pruning,
            optimizer=self.optimizer_,
            compiled=compiles_for_hooks(self.compile),
        )
        try:
            overridden = type(self).train_step is not EngineHooksMixin.train_step
            previous = self.__dict__.get("_trainer") if n_epochs is not None else None
            self._trainer = Trainer(self, self._engine, step_overridden=overridden)
            if previous is not None:  # restarted mid-fit: the epochs trained so far count
                self._trainer.carry_counts(previous)
        except BaseException as error:
            self._engine.close(error)
            raise

    def _restart_trainer(self) -> None:
        """Build a new trainer after the module was compacted during the fit.

        Nothing the old trainer cached of the full-size network survives; the
        fit's first loss (for the divergence check) and its warnings carry over.
        """
        old = self._trainer
        overridden = type(self).train_step is not EngineHooksMixin.train_step
        self._trainer = Trainer(self, self._engine, step_overridden=overridden)
        self._trainer.first_loss = old.first_loss
        self._trainer._graph_reason_warned = getattr(old, "_graph_reason_warned", False)
        self._trainer.carry_counts(old)  # training_step_ describes the whole fit

    def _keeps_structure(self) -> bool:
        """Whether this fit continues a network compacted during fit: no pruning (the estimator says)."""
        return False

    def _after_last_pruning_step(self) -> None:
        """Called right after the pruner's last step when epochs are left (the estimator compacts)."""

    def _follow_rebuilt_components(self) -> None:
        """During a fit, restart the engine after ``set_params`` rebuilt the module or the optimizer.

        The engine of the replaced module is closed first (its activation
        hooks removed, the pruner's ``on_fit_end`` called), and the masks of
        a replaced module are dropped: they do not apply to the new one.
        """
        engine, trainer = self.__dict__.get("_engine"), self.__dict__.get("_trainer")
        if engine is None or trainer is None:
            return
        if engine.module is self.module_ and trainer.optimizer is getattr(self, "optimizer_", None):
            return
        engine.close()
        if engine.module is not self.module_:
            self.masks_ = MaskStore()
            self.__dict__["compacted_during_fit_"] = None  # a new, full-size network
        # the schedule spans the epochs left in this fit (not max_epochs again): the pruning target
        # is reached by the end of the fit, which does not look stopped early
        self._start_engine(n_epochs=max(engine.run.n_epochs - engine.run.epoch, 1))

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``; the engine is closed if a callback's ``on_train_begin`` raises."""
        if method_name != "on_train_begin":
            return super().notify(method_name, **cb_kwargs)
        try:
            return super().notify(method_name, **cb_kwargs)
        except BaseException as error:
            engine = self.__dict__.get("_engine")
            if engine is not None:
                engine.close(error)
            raise

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's training loop; an error or interrupt in it closes the engine before it propagates.

        skorch then swallows a ``KeyboardInterrupt`` and ends training
        normally (``on_train_end``), keeping what was trained.
        """
        try:
            return super().fit_loop(X, y, epochs=epochs, **fit_params)
        except BaseException as error:
            engine = self.__dict__.get("_engine")
            if engine is not None:
                engine.close(error)
            raise

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Run the pruning step scheduled before this epoch, if any."""
        super().on_epoch_begin(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)
        engine = self._engine
        engine.begin_epoch(
            self.optimizer_, functools.partial(run_sensitivity_pass, self, engine, dataset_train)
        )
        run = engine.run
        if run.steps and not run.steps_remain and run.epoch == max(run.steps) < run.n_epochs:
            self._after_last_pruning_step()  # epochs of fine-tuning are left

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Record the measured sparsity of this epoch in the history."""
        self._engine.end_epoch()
        self.history.record("sparsity", measured_sparsity(self.module_))
        _guards.check_divergence(self, dataset_train)
        super().on_epoch_end(net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Run a step scheduled after the last epoch (no fine-tuning after it)."""
        engine = self.__dict__.get("_engine")
        if engine is None:
            super().on_train_end(net, X=X, y=y, **kwargs)
            return
        try:
            if engine.at_end and not engine.closed:
                if engine.prune_if_scheduled(self.optimizer_) and len(self.history):
                    self.history.record("sparsity", measured_sparsity(self.module_))
        except BaseException as error:
            engine.close(error)
            raise
        engine.close()
        trainer = self.__dict__.get("_trainer")
        if trainer is not None:
            self.training_step_, self.training_step_reason_ = trainer.describe()
        _guards.finish_training(self, engine, X, y)
        super().on_train_end(net, X=X, y=y, **kwargs)

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=False, **kwargs):
        """Show gradients to a pruner that observes them (until its last step).

        Gradients of pruned entries are deliberately not zeroed at every
        step: the masks are re-applied to the weights right after each
        optimizer step, so with element-wise optimizers (SGD, momentum, Adam,
        AdamW, RMSprop, ...) surviving weights train exactly as with masked
        gradients, and masking them would keep exact zeros in Adam's second
        moment, whose square root is several times slower on CPU.
        """
        engine = self._engine
        if engine.observes_gradients:
            engine.observe_gradients()
        if engine.masks_gradients:
            engine.mask_gradients()

    def train_step(self, batch, **fit_params):
        """One optimizer step, then re-apply masks, even if interrupted (divergence: ``on_epoch_end``)."""
        try:
            return super().train_step(batch, **fit_params)
        finally:
            self._engine.apply_masks()

    def infer(self, x, **fit_params):
        """Module outputs; a training forward draws torch's global RNG (user's nn.Dropout) from the fit's."""
        rng = self.__dict__.get("_rng")
        own = rng is None or not self.module_.training or type(self.module_) in (MLP, ConvNet)
        with contextlib.nullcontext() if own else rng.global_stream():  # built-ins: seeded Dropout
            return super().infer(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Criterion plus, when training, the L2 penalty and the pruner's penalty."""
        _guards.check_module_output(self, y_pred)
        y_true, weight = split_weights(y_true)
        _guards.check_output_shape(self, y_pred, y_true)
        criterion_loss = functools.partial(super().get_loss, X=X, training=training)
        if weight is None:
            loss = criterion_loss(y_pred, y_true)
        else:  # weighted mean of per-sample losses (see _weights.py)
            loss = weighted_loss(criterion_loss, self.criterion_, y_pred, y_true, weight)
        if not training:
            return loss
        engine = self.__dict__.get("_engine")
        alpha = float(self.alpha)
        trainer = self.__dict__.get("_trainer")
        if alpha > 0 and not (trainer is not None and trainer.l2_as_gradient):
            weights = (
                engine.l2_weights
                if engine is not None
                else [layer.weight for _, _, layer in iter_prunable_weights(self.module_)]
            )
            squares = sum(w.pow(2).sum() for w in weights)
            loss = loss + 0.5 * alpha * squares / penalty_denominator(y_true, weight)
        extra = engine.penalty() if engine is not None else None
        if extra is not None:
            loss = loss + extra
        return loss
