"""Input validation shared by the estimators: one place, clear messages."""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_consistent_length, validate_data

__all__ = [
    "validate_X",
    "validate_X_y",
    "validate_images_X",
    "validate_images_X_y",
    "is_image_array",
    "check_alpha",
    "check_device",
    "check_loop_params",
    "as_numpy_input",
]


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


def _check_input_type(estimator, X) -> None:
    """Refuse skorch's other inputs (a dict of arrays, a torch Dataset) with a clear message."""
    if isinstance(X, dict) or isinstance(X, torch.utils.data.Dataset):
        raise TypeError(
            f"{type(estimator).__name__} takes X as an array, a pandas DataFrame, a scipy sparse matrix or a "
            f"torch tensor, got a {type(X).__name__}. skorch's dict of inputs and torch Datasets are not "
            "supported: concatenate the inputs into one array (columns), or pass the arrays themselves."
        )


def _check_one_target(estimator, y, multi_output: bool) -> None:
    """Refuse several target columns where the estimator takes one (the classifier), naming the way out."""
    if multi_output:
        return
    shape = getattr(y, "shape", None)
    if shape is None:
        shape = np.asarray(y).shape
    if len(shape) == 2 and shape[1] > 1:
        raise ValueError(
            f"{type(estimator).__name__} takes one label per sample (y of shape (n_samples,)), got y of "
            f"shape {shape} (multilabel or multi-output). Fit one classifier per column with "
            f"sklearn.multioutput.MultiOutputClassifier({type(estimator).__name__}(...))."
        )


def _first_non_numeric_column(X) -> tuple[str, object] | None:
    """``(column description, offending value)`` of the first column that is not numeric, if any."""
    columns = getattr(X, "columns", None)
    if columns is not None and hasattr(X, "iloc"):
        items = [
            (f"column {name!r}", X.iloc[:, j])
            for j, name in enumerate(columns)
            if X.iloc[:, j].dtype.kind not in "biuf"  # only non-numeric columns can hold strings
        ]
    else:
        array = np.asarray(X, dtype=object) if not sp.issparse(X) else None
        if array is None or array.ndim != 2:
            return None
        items = [(f"column {j}", array[:, j]) for j in range(array.shape[1])]
    for name, values in items:
        for value in np.asarray(values, dtype=object).ravel():
            try:
                float(value)
            except (TypeError, ValueError):
                return name, value
    return None


def _numeric(estimator, validate, X, *args, **kwargs):
    """Run scikit-learn's validation; a non-numeric column gets an error that names it."""
    try:
        return validate(estimator, X, *args, **kwargs)
    except ValueError as exc:
        if "could not convert" not in str(exc) and "Unable to convert" not in str(exc):
            raise
        found = _first_non_numeric_column(X)
        if found is None:
            raise
        name, value = found
        raise ValueError(
            f"{type(estimator).__name__} needs numeric features, but {name} of X holds {value!r}. "
            "Encode such columns first, e.g. make_pipeline(make_column_transformer((OneHotEncoder(), "
            f"[<categorical columns>]), remainder='passthrough'), {type(estimator).__name__}(...))."
        ) from exc


def validate_X_y(estimator, X, y, *, reset: bool, multi_output: bool, y_numeric: bool):
    """Validate training data; set ``n_features_in_`` and ``feature_names_in_``.

    If validation fails, the estimator's previous ``n_features_in_`` and
    ``feature_names_in_`` are restored, so a failed ``fit`` on a fitted
    estimator loses nothing.
    """
    _check_input_type(estimator, X)
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    X = as_numpy_input(X)
    y = as_numpy_input(y)
    _check_2d(estimator, X)
    _check_one_target(estimator, y, multi_output)
    saved = {
        k: estimator.__dict__[k] for k in ("n_features_in_", "feature_names_in_") if k in estimator.__dict__
    }
    try:
        X, y = _numeric(
            estimator,
            validate_data,
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
    _check_input_type(estimator, X)
    X = as_numpy_input(X)
    _check_2d(estimator, X)
    X = _numeric(
        estimator,
        validate_data,
        X,
        reset=False,
        accept_sparse=("csr", "csc"),
        dtype=np.float32,
        ensure_all_finite=True,
    )
    if sp.issparse(X):
        X = X.tocsr()
    return X


# ------------------------------------------------------------------ images
def is_image_array(X) -> bool:
    """Whether ``X`` is image-shaped: ``(N, C, H, W)`` or single-channel ``(N, H, W)``."""
    X = as_numpy_input(X)
    return not sp.issparse(X) and getattr(X, "ndim", None) in (3, 4)


def _channels_last_hint() -> str:
    return " If the array is channels-last (N, H, W, C), pass X.transpose(0, 3, 1, 2)."


def _image_array(estimator, X, expected, *, where: str) -> np.ndarray:
    """Check an image array and return it as float32 ``(N, C, H, W)``."""
    name = type(estimator).__name__
    X = np.asarray(as_numpy_input(X))
    if X.ndim == 3:  # documented: (N, H, W) is single-channel
        X = X[:, None, :, :]
    if X.shape[0] < 1 or 0 in X.shape[1:]:
        raise ValueError(f"{name} got an empty image array of shape {X.shape} in {where}.")
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} needs numeric images in {where}, got an array of dtype {X.dtype}; convert it, "
            "e.g. X.astype(np.float32)."
        )
    got = tuple(int(v) for v in X.shape[1:])
    if expected is not None and got != expected:
        hint = _channels_last_hint() if got == (expected[1], expected[2], expected[0]) else ""
        raise ValueError(
            f"{name} expected images of shape (n_samples, {', '.join(map(str, expected))}) "
            f"(input_shape={expected}) in {where}, got X of shape {X.shape}.{hint} Otherwise change "
            "module__input_shape, or resize the images."
        )
    if expected is None and got[2] in (1, 3, 4) and got[0] not in (1, 3, 4):
        raise ValueError(
            f"{name} reads 4-D X as (n_samples, channels, height, width), but X of shape {X.shape} looks "
            f"channels-last (n_samples, height, width, channels): pass X.transpose(0, 3, 1, 2). If it "
            f"really has {got[0]} channels, say so with module__input_shape={got}."
        )
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise ValueError(f"Input X contains NaN or infinity in {where}; {name} needs finite pixel values.")
    return X


def validate_images_X_y(estimator, X, y, expected, *, reset: bool, multi_output: bool, y_numeric: bool):
    """Validate image-shaped training data.

    Sets ``n_features_in_`` to ``C * H * W`` and ``input_shape_`` to
    ``(C, H, W)`` (on ``reset``), removes ``feature_names_in_``; on failure
    the previous attributes stay.

    Parameters
    ----------
    estimator : PrunedNet
    X : array-like of shape (n_samples, C, H, W) or (n_samples, H, W)
        A 3-D array is read as single-channel images.
    y : array-like
    expected : tuple of int or None
        The ``(C, H, W)`` the module was told (``module__input_shape``) or,
        when not ``reset``, the shape seen at the first ``fit``.
    """
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    if not reset:
        if getattr(estimator, "input_shape_", None) is None:
            raise ValueError(
                f"{type(estimator).__name__} was fitted on flat rows of {estimator.n_features_in_} "
                "features; continue with the same kind of data, e.g. X.reshape(len(X), -1), or call "
                "fit to start again on images."
            )
        expected = tuple(estimator.input_shape_)
    X = _image_array(estimator, X, expected, where="fit")
    _check_one_target(estimator, as_numpy_input(y), multi_output)
    y = validate_data(
        estimator, X="no_validation", y=as_numpy_input(y), multi_output=multi_output, y_numeric=y_numeric
    )
    check_consistent_length(X, y)
    if reset:
        estimator.__dict__.pop("feature_names_in_", None)
        estimator.input_shape_ = tuple(int(v) for v in X.shape[1:])
        estimator.n_features_in_ = math.prod(estimator.input_shape_)
    return X, y


def validate_images_X(estimator, X):
    """Validate images at predict time against the ``input_shape_`` seen at ``fit``."""
    X = as_numpy_input(X)
    expected = tuple(estimator.input_shape_)
    if not is_image_array(X):
        shape = getattr(X, "shape", None)
        raise ValueError(
            f"{type(estimator).__name__} was fitted on images of shape (n_samples, "
            f"{', '.join(map(str, expected))}), got X of shape {shape}; reshape it with "
            f"X.reshape(-1, {', '.join(map(str, expected))})."
        )
    return _image_array(estimator, X, expected, where="predict")


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
    elif dev.type == "meta":
        raise ValueError(
            "device='meta' holds tensor shapes but no values, so nothing can be trained or predicted "
            "on it; use device='cpu' or 'cuda'."
        )
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"device={device!r} was requested but MPS is not available.")


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_loop_params(estimator) -> None:
    """Validate ``max_epochs``, ``batch_size`` and ``lr`` (booleans are refused, not read as 0/1)."""
    if not _is_int(estimator.max_epochs) or estimator.max_epochs < 0:
        raise ValueError(f"max_epochs must be an integer >= 0, got {estimator.max_epochs!r}.")
    if estimator.max_epochs == 0 and getattr(estimator, "pruner", None) is not None:
        raise ValueError(
            "max_epochs=0 fits the network to the data's shape without training it (as in skorch), "
            f"which leaves the pruner {type(estimator.pruner).__name__} no epoch to prune in; use "
            "max_epochs >= 1, or pruner=None."
        )
    batch_size = estimator.batch_size
    if not _is_int(batch_size) or (batch_size < 1 and batch_size != -1):
        raise ValueError(f"batch_size must be a positive integer or -1 (full batch), got {batch_size!r}.")
    lr = estimator.lr
    is_number = isinstance(lr, numbers.Real) and not isinstance(lr, (bool, np.bool_))
    if not (is_number and np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number such as 1e-3, got {lr!r}.")
