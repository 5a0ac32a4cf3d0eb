"""Input validation shared by the estimators: one place, clear messages."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import validate_data

__all__ = ["validate_X", "validate_X_y", "check_alpha", "check_device", "as_numpy_input"]


def as_numpy_input(X):
    """Turn torch tensors into numpy so scikit-learn's validation can read them."""
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return X


def _check_2d(estimator, X) -> None:
    ndim = getattr(X, "ndim", None)
    if ndim is None and not sp.issparse(X) and hasattr(X, "__len__"):
        ndim = np.ndim(X) if not isinstance(X, (str, bytes)) else 0
    if ndim == 1:
        raise ValueError(
            f"{type(estimator).__name__} expected a 2-D X of shape (n_samples, "
            "n_features), got a 1-D array. Reshape your data with "
            "X.reshape(-1, 1) if it has a single feature or X.reshape(1, -1) "
            "if it contains a single sample."
        )


def validate_X_y(estimator, X, y, *, reset: bool, multi_output: bool, y_numeric: bool):
    """Validate training data; set ``n_features_in_`` and ``feature_names_in_``.

    If validation fails, the estimator's previous ``n_features_in_`` and
    ``feature_names_in_`` are restored, so a failed ``fit`` on a fitted
    estimator loses nothing.
    """
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    X = as_numpy_input(X)
    y = as_numpy_input(y)
    _check_2d(estimator, X)
    saved = {
        k: estimator.__dict__[k] for k in ("n_features_in_", "feature_names_in_") if k in estimator.__dict__
    }
    try:
        X, y = validate_data(
            estimator,
            X,
            y,
            reset=reset,
            accept_sparse=("csr", "csc"),
            dtype=np.float32,
            ensure_all_finite=True,
            multi_output=multi_output,
            y_numeric=y_numeric,
            ensure_min_samples=1,
        )
    except Exception:
        for k in ("n_features_in_", "feature_names_in_"):
            estimator.__dict__.pop(k, None)
        estimator.__dict__.update(saved)
        raise
    if sp.issparse(X):
        X = X.tocsr()
    return X, y


def validate_X(estimator, X):
    """Validate prediction data against what ``fit`` saw."""
    X = as_numpy_input(X)
    _check_2d(estimator, X)
    X = validate_data(
        estimator,
        X,
        reset=False,
        accept_sparse=("csr", "csc"),
        dtype=np.float32,
        ensure_all_finite=True,
    )
    if sp.issparse(X):
        X = X.tocsr()
    return X


def check_alpha(estimator) -> float:
    """Validate the L2 penalty strength ``alpha``."""
    alpha = estimator.alpha
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not np.isfinite(alpha):
        raise TypeError(f"alpha must be a finite number >= 0, got {alpha!r}.")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0 (it is an L2 penalty strength), got {alpha!r}.")
    return float(alpha)


def check_device(device) -> None:
    """Raise a clear error when the requested device does not exist here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device; use 'cpu' or 'cuda'.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but no CUDA GPU is available on this "
                "machine (torch.cuda.is_available() is False). Use device='cpu', or "
                "install a CUDA build of PyTorch on a machine with a GPU."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available.")
