"""Checks on a fit while it trains: divergence, a stop before the end, inputs at an extreme scale.

All checks run once per epoch or once per fit, on losses skorch already
recorded in the history, so they add no per-step host synchronization.

* :func:`check_divergence` (after each epoch) raises
  :class:`~skprune.exceptions.TrainingDivergedError` when the epoch's mean
  training loss is not finite, or is more than :data:`DIVERGENCE_FACTOR`
  times the larger of the loss on the fit's first batch and the loss of a
  trivial prediction (``log(n_classes)`` for cross-entropy, the targets'
  variance for MSE). The message names the likely cause: the data scale
  when the loss was already out of range before the first update, the
  learning rate otherwise.
* :func:`report_stop` (when training ends) re-applies the masks, records
  ``n_epochs_completed_`` and ``stopped_early_``, and warns when training
  stopped (``KeyboardInterrupt``, or a callback such as skorch's
  ``EarlyStopping``) before the pruning schedule finished.
* :func:`reapply_masks_after_callbacks` (after the callbacks' end of
  training) zeroes pruned weights that a callback put back, e.g.
  ``EarlyStopping(load_best=True)`` restoring an epoch before the last
  pruning step, and warns.
* :func:`warn_if_stalled_on_extreme_inputs` (when training ends) warns
  when the training loss did not go down and the inputs reach
  :data:`EXTREME_INPUT_SCALE`.
* :func:`warn_if_constant` (when training ends) warns with a
  :class:`ConstantModelWarning` when the network predicts one class (one
  value) for every training row while the targets vary, naming the likely
  causes: too high a sparsity, too few epochs, the scale of the data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier
from skorch import NeuralNetClassifier
from torch import nn

from ..exceptions import ConstantModelWarning, TrainingDivergedError
from ._data import split_weights

__all__ = [
    "DIVERGENCE_FACTOR",
    "EXTREME_INPUT_SCALE",
    "check_divergence",
    "check_module_output",
    "check_output_shape",
    "finish_training",
    "reapply_masks_after_callbacks",
    "report_stop",
    "warn_if_stalled_on_extreme_inputs",
]

#: An epoch loss this many times the reference loss counts as divergence.
DIVERGENCE_FACTOR = 1e3
#: Inputs whose largest absolute value exceeds this are reported as unscaled.
EXTREME_INPUT_SCALE = 1e6
#: The training loss of the last epoch above this fraction of the first's is "no progress".
_NO_PROGRESS = 0.95


def _epoch_loss(epoch: dict) -> float | None:
    """Mean training loss of one history row, weighted by batch size (as skorch's ``train_loss``)."""
    if "train_loss" in epoch:
        return float(epoch["train_loss"])
    pairs = [
        (float(b["train_loss"]), b.get("train_batch_size", 1))
        for b in epoch.get("batches", [])
        if "train_loss" in b
    ]
    total = sum(n for _, n in pairs)
    return sum(loss * n for loss, n in pairs) / total if total else None


def _first_batch_loss(net) -> float | None:
    """The training loss of the first batch: the loss before any update.

    The fast training epoch keeps it on the fit's trainer (it records no
    per-batch history); skorch's loop records every batch.
    """
    trainer = net.__dict__.get("_trainer")
    if trainer is not None and trainer.first_loss is not None:
        return trainer.first_loss
    for epoch in net.history:
        for batch in epoch.get("batches", []):
            if "train_loss" in batch:
                return float(batch["train_loss"])
    return None


def _max_abs(data) -> float | None:
    """Largest absolute value of a tensor, array or sparse matrix (None for other data)."""
    if isinstance(data, torch.Tensor):
        return float(data.detach().abs().max()) if data.numel() else 0.0
    if sp.issparse(data):
        return float(abs(data).max()) if data.nnz else 0.0
    if isinstance(data, np.ndarray) and data.dtype.kind in "biuf":
        return float(np.abs(data).max()) if data.size else 0.0
    return None


def _trivial_loss(net, dataset) -> float | None:
    """Loss of a trivial prediction, where the criterion says what that is."""
    criterion = getattr(net, "criterion_", None)
    if isinstance(criterion, nn.CrossEntropyLoss):
        n_classes = net._n_module_outputs()
        return math.log(n_classes) if n_classes and n_classes > 1 else None
    y = getattr(dataset, "targets", getattr(dataset, "y", None))  # ArrayDataset: the tensors
    if isinstance(criterion, nn.MSELoss) and isinstance(y, torch.Tensor) and y.is_floating_point():
        return float(y.var(dim=0, unbiased=False).mean()) if len(y) > 1 else None
    return None


def _scale_hint(net, dataset) -> str:
    parts = []
    x_max = _max_abs(getattr(dataset, "features", getattr(dataset, "X", None)))
    if x_max is not None:
        parts.append(f"the inputs reach |X| = {x_max:.3g}")
    y = getattr(dataset, "targets", getattr(dataset, "y", None))
    if isinstance(y, torch.Tensor) and y.is_floating_point():
        parts.append(f"the targets reach |y| = {_max_abs(y):.3g}")
    return " and ".join(parts) if parts else "check the scale of X and y"


def check_module_output(net, y_pred) -> None:
    """Refuse a module output that a torch loss cannot read (a tuple or list of tensors).

    A criterion of the user's own (not from ``torch.nn``) may take tuples; it is left alone.
    """
    criterion = getattr(net, "criterion_", None)
    if isinstance(y_pred, (tuple, list)) and type(criterion).__module__.startswith("torch.nn"):
        kinds = ", ".join(type(v).__name__ for v in y_pred)
        raise TypeError(
            f"The module {type(net.module_).__name__} returned a {type(y_pred).__name__} ({kinds}) from "
            f"forward, but {type(criterion).__name__} needs one tensor of outputs (logits for a "
            "classifier). Return only that tensor from forward, or wrap the module in one that does."
        )


def _nll_on_outputs_that_are_not_probabilities(net, first: float | None) -> bool:
    """Whether a classifier's NLLLoss was not finite before any update (skorch logs the outputs)."""
    return (
        first is not None
        and not math.isfinite(first)
        and isinstance(net, NeuralNetClassifier)
        and isinstance(getattr(net, "criterion_", None), nn.NLLLoss)
    )


#: losses that broadcast outputs against targets of another shape (with only a warning from torch)
_ELEMENTWISE_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def check_output_shape(net, y_pred, y_true) -> None:
    """Refuse module outputs that do not match the targets: one logit per class, one value per target.

    A classifier's module must give ``(n_samples, n_classes)``; a loss such
    as ``MSELoss`` would otherwise broadcast ``(n, 3)`` outputs against
    ``(n, 1)`` targets and train a wrong model without an error. Only
    shapes are read (no host synchronization).
    """
    if not isinstance(y_pred, torch.Tensor) or not isinstance(y_true, torch.Tensor):
        return
    how = (
        "Build the module with that many outputs: a module class taking n_outputs gets it from the data "
        "(leave module__n_outputs out); a module instance must be made for this y."
    )
    if isinstance(net, NeuralNetClassifier):
        n_classes = net._n_module_outputs()
        if n_classes is not None and (y_pred.dim() != 2 or y_pred.shape[1] != n_classes):
            got = y_pred.shape[1] if y_pred.dim() == 2 else f"shape {tuple(y_pred.shape[1:])} of"
            raise ValueError(
                f"The module {type(net.module_).__name__} outputs {got} values per sample, but y has "
                f"{n_classes} classes: the classifier needs one output (logit) per class. {how}"
            )
    elif isinstance(net.__dict__.get("criterion_"), _ELEMENTWISE_LOSSES) and y_pred.shape != y_true.shape:
        raise ValueError(
            f"The module {type(net.module_).__name__} outputs shape {tuple(y_pred.shape[1:])} per sample, "
            f"but y has {y_true.shape[1] if y_true.dim() == 2 else 1} target(s) per sample (shape "
            f"{tuple(y_true.shape[1:])}); {type(net.criterion_).__name__} would broadcast one against the "
            f"other and train a wrong model. {how}"
        )


def check_divergence(net, dataset) -> None:
    """Raise :class:`TrainingDivergedError` if the last epoch's training loss diverged.

    Parameters
    ----------
    net : PrunedNet
        Its history holds the batch losses of the epoch that just ended.
    dataset : torch Dataset
        The training data (read only to describe the cause, when raising).
    """
    loss = _epoch_loss(net.history[-1])
    if loss is None:
        return
    first = _first_batch_loss(net)
    if math.isfinite(loss):
        if first is None or not math.isfinite(first) or loss <= DIVERGENCE_FACTOR * max(first, 0.0):
            return
        trivial = _trivial_loss(net, dataset)
        if trivial is not None and loss <= DIVERGENCE_FACTOR * trivial:
            return
        what = f"grew to {loss:.3g}, more than {DIVERGENCE_FACTOR:g} times its start"
    else:
        what = f"became {loss}"
        trivial = _trivial_loss(net, dataset)
    data_at_fault = first is not None and (
        not math.isfinite(first) or (trivial is not None and first > DIVERGENCE_FACTOR * trivial)
    )
    epoch = len(net.history)
    if _nll_on_outputs_that_are_not_probabilities(net, first):
        cause = (
            "The loss was already not finite on the first batch: with NLLLoss, the classifier takes the log "
            "of the module's outputs (as skorch does), so they must be probabilities, e.g. from a softmax "
            f"layer, but {type(net.module_).__name__} gave values it cannot take the log of (logits?). "
            "Keep the default criterion=torch.nn.CrossEntropyLoss for a module that outputs logits."
        )
    elif data_at_fault:
        cause = (
            f"The loss was already {first:.3g} on the first batch, before any update, so the data, not "
            f"the learning rate, is the likely cause: {_scale_hint(net, dataset)}. Standardize the "
            "inputs (StandardScaler in a pipeline) and, for regression, the targets "
            "(TransformedTargetRegressor(regressor=..., transformer=StandardScaler()))."
        )
    else:
        start = f"{first:.3g}" if first is not None else "unknown"
        cause = (
            f"It was {start} on the first batch, so the updates made it grow: the learning rate is the "
            f"likely cause. Try a smaller lr (now {net.lr}); standardizing the inputs (StandardScaler) "
            "or a lower alpha can help too."
        )
    raise TrainingDivergedError(f"Training diverged: the mean training loss of epoch {epoch} {what}. {cause}")


def report_stop(net, engine) -> None:
    """Record how far training got; keep masks exact and warn if the schedule did not finish.

    Parameters
    ----------
    net : PrunedNet
        Gets ``n_epochs_completed_`` and ``stopped_early_``.
    engine : PruningEngine
        The engine of the fit that ends.
    """
    # an interrupt may land anywhere, e.g. between an optimizer step and the
    # mask application, or inside a pruning step: bind again and apply
    net.masks_.apply(net.module_)
    run = engine.run
    net.n_epochs_completed_ = run.epoch
    net.stopped_early_ = run.epoch < run.n_epochs
    if net.stopped_early_ and engine.pruner is not None and run.steps_remain:
        target = getattr(engine.pruner, "sparsity", None)
        target_text = f" of the target {target:g}" if isinstance(target, (int, float)) else ""
        warnings.warn(
            f"Training stopped after epoch {run.epoch} of {run.n_epochs} (KeyboardInterrupt or a callback "
            f"such as EarlyStopping), before the pruning schedule finished: {run.step_index} of "
            f"{len(run.steps)} pruning steps were taken, so sparsity_ is {net.sparsity_:.3g} instead"
            f"{target_text}. stopped_early_ and n_epochs_completed_ record this; fit again to reach "
            "the target.",
            UserWarning,
            stacklevel=2,
        )


def reapply_masks_after_callbacks(net) -> None:
    """Zero pruned weights that a callback put back when training ended, and warn.

    The estimator's own end of training runs before the callbacks'; one of
    them may then load weights saved before the last pruning step (skorch's
    ``EarlyStopping(load_best=True)`` or ``Checkpoint(load_best=True)``
    restoring the epoch with the best validation score, which pruning
    usually worsens). Pruned weights must stay exactly zero: the masks are
    applied again.

    Parameters
    ----------
    net : PrunedNet
        A net whose training just ended.
    """
    masks = getattr(net, "masks_", None)
    module = getattr(net, "module_", None)
    if not masks or module is None:
        return
    params = dict(module.named_parameters())
    revived = 0
    with torch.no_grad():
        for name, pruned in masks.pruned.items():
            if name in params:
                revived += int(torch.count_nonzero(params[name][pruned.to(params[name].device)]))
    if not revived:
        return
    masks.apply(module)
    warnings.warn(
        f"When training ended, a callback put back weights from before the last pruning step (e.g. "
        f"EarlyStopping(load_best=True) or Checkpoint(load_best=True) restoring the epoch with the best "
        f"validation score): {revived} pruned weights were no longer zero. The masks were applied "
        f"again, so sparsity_ is the pruned one ({net.sparsity_:.3g}), but the remaining weights are "
        "those of that epoch, not fine-tuned after the pruning step. Leave load_best off to keep the "
        "fine-tuned pruned network.",
        UserWarning,
        stacklevel=2,
    )


def warn_if_stalled_on_extreme_inputs(net, X) -> None:
    """Warn when the training loss did not go down and the inputs are at an extreme scale.

    Parameters
    ----------
    net : PrunedNet
        Its history holds the epochs of this fit.
    X : torch.Tensor, sparse matrix or other
        The training inputs (their scale is only read when the loss stalled).
    """
    history = net.history
    if len(history) < 2:
        return
    first, last = _epoch_loss(history[0]), _epoch_loss(history[-1])
    if first is None or last is None or not (math.isfinite(first) and math.isfinite(last)):
        return
    if last < _NO_PROGRESS * first:
        return
    x_max = _max_abs(X)
    if x_max is None or x_max <= EXTREME_INPUT_SCALE:
        return
    warnings.warn(
        f"Training made no progress (training loss {first:.3g} in the first epoch, {last:.3g} in the "
        f"last) and the inputs reach |X| = {x_max:.3g}: at that scale the network saturates and "
        "predicts almost the same output for every sample. Scale the inputs, e.g. "
        "make_pipeline(StandardScaler(), net).",
        UserWarning,
        stacklevel=2,
    )


#: training rows the constant-model check runs the network on (one forward, at the end of a fit),
#: spread evenly over the training set (so sorted data still shows its classes)
CONSTANT_CHECK_ROWS = 512
#: a regressor whose predictions spread less than this share of the targets' spread is constant
CONSTANT_STD_RATIO = 1e-3


def warn_if_constant(net, X, y) -> None:
    """Warn when the fitted network predicts one value for every training row while ``y`` varies.

    A classifier predicting one class for every row of a training set with
    several classes, or a regressor whose predictions spread less than
    ``CONSTANT_STD_RATIO`` of the (standardized) targets' spread, learned
    nothing from the inputs. Costs one forward pass on at most
    ``CONSTANT_CHECK_ROWS`` training rows spread evenly over the training
    set, at the end of ``fit``.

    Parameters
    ----------
    net : PrunedNet
        The estimator whose training just ended.
    X : torch.Tensor or other
        The training inputs (other types, e.g. a sparse matrix or a dataset, are not checked).
    y : torch.Tensor or other
        The encoded training targets, possibly ``(targets, sample weights)``.
    """
    targets, _ = split_weights(y)
    if not isinstance(X, torch.Tensor) or X.is_sparse or not isinstance(targets, torch.Tensor):
        return
    n = min(len(X), len(targets))
    stride = max(1, -(-n // CONSTANT_CHECK_ROWS))
    rows = len(range(0, n, stride))
    if rows < 2:
        return
    module = net.module_
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            out = module(X[:n:stride])
    except Exception:  # a module that needs fit_params or another input: nothing to check
        return
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.shape[:1] != (rows,) or not torch.isfinite(out).all():
        return
    out = out.detach().double().reshape(rows, -1)
    t = targets[:n:stride].detach()
    if is_classifier(net):
        if t.dim() != 1 or torch.unique(t).numel() < 2:
            return
        predicted = out.argmax(dim=1) if out.shape[1] > 1 else out[:, 0] > 0
        if torch.unique(predicted).numel() > 1:
            return
        what = f"one class for all {rows} training rows checked, which hold {torch.unique(t).numel()} classes"
    else:
        t = t.double().reshape(rows, -1)
        if out.shape[1] != t.shape[1]:
            return
        t_std, p_std = t.std(dim=0), out.std(dim=0)
        varying = t_std > 0
        if not varying.any() or (p_std[varying] > CONSTANT_STD_RATIO * t_std[varying]).any():
            return
        what = f"the same value for all {rows} training rows checked, whose targets vary"
    sparsity = float(getattr(net, "sparsity_", 0.0) or 0.0)
    causes = []
    if sparsity > 0:
        causes.append(
            f"too high a sparsity ({sparsity:.3g} of the weights are zero; try a lower pruner__sparsity)"
        )
    causes.append(
        f"too few epochs or too small a learning rate (max_epochs={net.max_epochs}, lr={net.lr}; raise them)"
    )
    causes.append(
        "the scale of the data (features of large or very different scales; "
        "use make_pipeline(StandardScaler(), net))"
    )
    warnings.warn(
        f"The fitted {type(net).__name__} predicts {what}: it learned nothing from the inputs. "
        "Likely causes: " + "; ".join(causes) + ".",
        ConstantModelWarning,
        stacklevel=2,
    )


def finish_training(net, engine, X, y=None) -> None:
    """At the end of training: :func:`report_stop`, then the warnings on stalled and constant models.

    A fit of 0 epochs (``max_epochs=0``: the network is only built) trained
    nothing, so it gets no warning about what training learned.
    """
    report_stop(net, engine)
    if engine.run.epoch == 0:
        return
    warn_if_stalled_on_extreme_inputs(net, X)
    warn_if_constant(net, X, y)
