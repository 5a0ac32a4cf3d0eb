"""Prediction without skorch's per-call dataset, iterator and batch loop.

skorch's ``predict_proba`` wraps ``X`` in a dataset, builds an iterator and
runs an evaluation step per batch; at batch 1 that costs several times the
module's forward pass. :func:`fast_predict_proba` runs the module on the
validated tensor directly, in large chunks, under ``torch.no_grad``.

:func:`predict_rows` goes further for the input a deployed model sees most:
a plain C-contiguous float32/float64 numpy array with the fitted number of
features, for a model fitted on unnamed rows. What such a call needs from
the estimator (the module, the predict non-linearity, the device) is looked
up once per fitted model and kept in a :class:`RowPlan` outside the
estimator (so that pickling, ``clone`` and ``skprune.save`` never see it); it
is rebuilt when any of it changes (a new fit, ``set_params``). The call then
checks only the array's type, shape, dtype and memory layout, and that its
values are finite in float32 (the integrity check the full validation also
makes); anything else, including a failed check, takes the full validation
and its error messages.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch

from ._data import ArrayDataset, BatchIterator

__all__ = ["RowPlan", "fast_predict_proba", "predict_rows"]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

#: input elements per chunk (64 MiB of float32): large inputs go through in few forward passes
CHUNK_ELEMENTS = 1 << 24


def fast_predict_proba(net, X) -> np.ndarray | None:
    """Predicted outputs after the predict non-linearity, or ``None`` where skorch's path must run.

    Parameters
    ----------
    net : PrunedNet
        A fitted estimator.
    X : torch.Tensor or other
        Validated input (see ``prepare_predict_data``); anything but a dense
        tensor, or a custom dataset or iterator, returns ``None``.
    """
    if not (
        isinstance(X, torch.Tensor)
        and not X.is_sparse
        and net.dataset is ArrayDataset
        and net.iterator_valid is BatchIterator
        and not _user_nonlinearity(net)  # called per batch of batch_size, as skorch does
        and _standard_forward(net)
    ):
        return None
    module = net.module_
    if module.training:
        net._set_training(False)
    nonlinearity = net._get_predict_nonlinearity()
    n = X.shape[0]
    chunk = max(1, CHUNK_ELEMENTS // max(1, X[0].numel() if n else 1))
    outputs = []
    with torch.no_grad():
        for start in range(0, n, chunk):
            y = module(X[start : start + chunk])
            if not isinstance(y, torch.Tensor):
                return None  # tuple/dict outputs: skorch's path takes the first
            outputs.append(nonlinearity(y).cpu().numpy())
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)


def _standard_forward(net) -> bool:
    """Whether the class keeps skorch's ``forward_iter``/``evaluation_step`` and skprune's ``infer``.

    A skorch-style subclass that overrides one of them changes what
    ``predict_proba`` computes, so its predictions take skorch's path.
    """
    from skorch import NeuralNet

    from ._hooks import EngineHooksMixin

    return (
        _method_is(net, "infer", EngineHooksMixin.infer)
        and _method_is(net, "evaluation_step", NeuralNet.evaluation_step)
        and _method_is(net, "forward_iter", NeuralNet.forward_iter)
    )


def _method_is(obj, name: str, function) -> bool:
    method = getattr(obj, name, None)
    return getattr(method, "__func__", None) is function


def _user_nonlinearity(net) -> bool:
    """Whether ``predict_nonlinearity`` is a user's callable (not ``"auto"`` or ``None``)."""
    nonlinearity = net.predict_nonlinearity
    return nonlinearity is not None and not (isinstance(nonlinearity, str) and nonlinearity == "auto")


class RowPlan:
    """What predicting plain rows needs from a fitted estimator, looked up once (see the module docstring).

    Parameters
    ----------
    net : PrunedNet
        A fitted estimator, fitted on unnamed rows (not images, no feature
        names), with skprune's dataset and iterator and a predict
        non-linearity of skorch's (``"auto"`` or ``None``).
    """

    __slots__ = (
        "criterion",
        "dataset",
        "device",
        "iterator",
        "module",
        "n_features",
        "nonlinearity",
        "nonlinearity_param",
        "on_cpu",
    )

    def __init__(self, net):
        state = net.__dict__
        self.module = state["module_"]
        self.criterion = state.get("criterion_")
        self.n_features = state["n_features_in_"]
        self.nonlinearity_param = net.predict_nonlinearity
        self.device = net.device
        self.dataset = net.dataset
        self.iterator = net.iterator_valid
        self.nonlinearity = net._get_predict_nonlinearity()
        self.on_cpu = torch.device(net.device).type == "cpu"

    @staticmethod
    def applies(net) -> bool:
        """Whether plain rows of ``net`` can skip skorch's prediction path and the full validation."""
        state = net.__dict__
        return (
            "module_" in state
            and isinstance(state.get("n_features_in_"), int)
            and state.get("input_shape_") is None
            and state.get("feature_names_in_") is None
            and net.dataset is ArrayDataset
            and net.iterator_valid is BatchIterator
            and not _user_nonlinearity(net)
            and _standard_forward(net)
        )

    def current(self, net) -> bool:
        """Whether the estimator still has what this plan was built from (one identity check each)."""
        state = net.__dict__
        return (
            state.get("module_") is self.module
            and state.get("criterion_") is self.criterion
            and net.predict_nonlinearity is self.nonlinearity_param
            and net.device is self.device
            and net.dataset is self.dataset
            and net.iterator_valid is self.iterator
            and state.get("n_features_in_") == self.n_features
            and state.get("feature_names_in_") is None
            and state.get("input_shape_") is None
        )


#: the plan of each estimator that predicted plain rows; weak keys: it goes with the estimator
_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def predict_rows(net, X) -> np.ndarray | None:
    """Outputs after the predict non-linearity for plain rows, or ``None`` where the full path must run.

    Plain rows are a C-contiguous, writeable float32 or float64 ``numpy.ndarray``
    of shape ``(n, n_features_in_)``, ``1 <= n`` and at most one forward
    chunk, whose values are finite in float32, given to an estimator that
    :meth:`RowPlan.applies` to. The outputs are those of
    :func:`fast_predict_proba` on the validated tensor (the same forward
    under ``torch.no_grad``).

    Parameters
    ----------
    net : PrunedNet
    X : object
        Anything; only plain rows are predicted here.
    """
    if type(X) is not np.ndarray or X.ndim != 2:
        return None
    dtype = X.dtype
    if (dtype is not _FLOAT32 and dtype is not _FLOAT64) or not (X.flags.c_contiguous and X.flags.writeable):
        return None
    n = X.shape[0]
    if n < 1 or n * X.shape[1] > CHUNK_ELEMENTS:
        return None
    plan = _PLANS.get(net)
    if plan is None or not plan.current(net):
        if not RowPlan.applies(net):
            return None
        plan = _PLANS[net] = RowPlan(net)
    if X.shape[1] != plan.n_features:
        return None
    if dtype is _FLOAT32:
        if not np.isfinite(X).all():
            return None  # the full validation names the problem
        rows = torch.from_numpy(X)
    else:
        if not float(np.abs(X).max()) <= _FLOAT32_MAX:  # also false for NaN
            return None  # NaN, inf, or beyond float32's range: the full validation refuses it
        rows = torch.from_numpy(X.astype(np.float32))
    module = plan.module
    if module.training:
        net._set_training(False)
    with torch.no_grad():
        y = module(rows if plan.on_cpu else rows.to(plan.device))
        if type(y) is not torch.Tensor:
            return None  # tuple/dict outputs: skorch's path takes the first
        out = plan.nonlinearity(y)
    return out.numpy() if plan.on_cpu else out.cpu().numpy()
