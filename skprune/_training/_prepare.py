"""Data preparation for the estimators: validate once, convert once, shape for the module.

``fit`` validates ``X`` and ``y`` (tabular rows or images) with scikit-learn's
conventions, converts them to tensors on the estimator's device once, and
decides the shape the module sees: images stay ``(N, C, H, W)`` except for
the built-in MLP, which gets them flattened. ``predict`` does the same for
``X`` and checks it against what ``fit`` saw.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from skorch.utils import is_dataset

from .._validation import (
    is_image_array,
    validate_images_X,
    validate_images_X_y,
    validate_X,
    validate_X_y,
)
from ..nn._networks import MLP, check_input_shape
from ._data import to_tensor_once

__all__ = ["module_kwargs", "module_to_device", "prepare_fit_data", "prepare_predict_data"]


def module_input_shape(net):
    """The ``(C, H, W)`` given as ``module__input_shape`` or held by a module instance, else None."""
    shape = net.get_params_for("module").get("input_shape")
    if shape is None and isinstance(net.module, torch.nn.Module):
        shape = getattr(net.module, "input_shape", None)
    return None if shape is None else check_input_shape(shape, name="module__input_shape")


def images_for_module(net, X: np.ndarray) -> np.ndarray:
    """Images stay (N, C, H, W), except for the built-in MLP, which gets them flattened."""
    module_type = net.module if isinstance(net.module, type) else type(net.module)
    if issubclass(module_type, MLP):
        return X.reshape(X.shape[0], -1)
    return X


def prepare_fit_data(net, X, y, *, reset: bool, sample_weight=None, classes=None):
    """Validate ``X`` and ``y``, set input attributes on ``reset``, and return tensors on the device.

    Parameters
    ----------
    net : PrunedNet
        Its ``_encode_y`` turns validated targets into a tensor (label
        encoding for the classifier).
    X, y : array-like
    sample_weight : array-like or None
        Handed to ``_encode_y`` (the regressor standardizes ``y`` with
        weighted statistics); validated later.
    reset : bool
        Whether this is a fresh fit (sets ``n_features_in_``,
        ``feature_names_in_``, ``input_shape_``, targets' attributes).
    classes : array-like or None
        The ``classes`` of ``partial_fit``, handed to ``_encode_y``.

    Returns
    -------
    (Tensor, Tensor)
    """
    if is_image_array(X):
        X, y = validate_images_X_y(
            net,
            X,
            y,
            module_input_shape(net),
            reset=reset,
            multi_output=net._multi_output,
            y_numeric=net._y_numeric,
        )
        X = images_for_module(net, X)
    else:
        if not reset and getattr(net, "input_shape_", None) is not None:
            validate_images_X(net, X)  # fitted on images: refuses flat rows with a reshape hint
        X, y = validate_X_y(net, X, y, reset=reset, multi_output=net._multi_output, y_numeric=net._y_numeric)
        if reset:
            net.__dict__.pop("input_shape_", None)
    y_t = net._encode_y(y, reset=reset, sample_weight=sample_weight, classes=classes)
    X_t = to_tensor_once(X, torch.float32, net.device)
    return X_t, y_t.to(net.device)


def prepare_predict_data(net, X):
    """Validate ``X`` against what ``fit`` saw and return it as a tensor (datasets pass through)."""
    if is_dataset(X):
        return X
    net.check_is_fitted()
    if _plain_rows(net, X):
        return to_tensor_once(X, torch.float32, net.device)
    if getattr(net, "input_shape_", None) is not None:
        X = images_for_module(net, validate_images_X(net, X))
    else:
        X = validate_X(net, X)
    return to_tensor_once(X, torch.float32, net.device)


def _plain_rows(net, X) -> bool:
    """Whether ``X`` is a finite float ndarray of the fitted width, for a net fitted on unnamed rows.

    Such input needs none of scikit-learn's validation machinery (which costs
    several times a small network's forward pass at batch 1); anything else,
    including non-finite values and float64 values beyond float32's range,
    goes through the full validation and its error messages.
    """
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float32, np.float64)
        and X.shape[0] >= 1
        and X.shape[1] == getattr(net, "n_features_in_", None)
        and getattr(net, "input_shape_", None) is None
        and getattr(net, "feature_names_in_", None) is None
        and bool(np.isfinite(X).all())
        # float64 beyond float32's range would become inf in the tensor: the full validation refuses it
        and (X.dtype == np.float32 or not X.size or float(np.abs(X).max()) <= float(np.finfo(np.float32).max))
    )


def module_kwargs(net) -> dict:
    """``module__*`` parameters, plus the sizes the module's ``__init__`` can take from the data.

    ``n_features_in``, ``n_outputs`` and ``input_shape`` are inferred from
    the data seen at ``fit`` when the module class accepts them and they are
    not given.

    Raises
    ------
    ValueError
        If a size must be inferred but no data was seen yet.
    """
    kwargs = net.get_params_for("module")
    module = net.module
    if isinstance(module, torch.nn.Module):
        return kwargs
    try:
        parameters = inspect.signature(module).parameters
    except (TypeError, ValueError):
        return kwargs
    inferred = {
        "n_features_in": getattr(net, "n_features_in_", None),
        "n_outputs": net._n_module_outputs(),
    }
    image_shape = getattr(net, "input_shape_", None)
    if image_shape is not None and "input_shape" in parameters and "input_shape" not in kwargs:
        kwargs["input_shape"] = tuple(image_shape)  # images seen at fit (e.g. ConvNet)
    for name, value in inferred.items():
        if name in parameters and name not in kwargs:
            if value is None:
                raise ValueError(
                    f"{type(net).__name__} infers {name} of {getattr(module, '__name__', module)} "
                    "from the training data: call fit(X, y) instead of initialize(), "
                    f"or pass module__{name}=..."
                )
            kwargs[name] = value
    return kwargs


def module_to_device(module, device):
    """Move the module (a copy, for an instance) to ``device`` and float32; refuse meta tensors."""
    if any(p.is_meta for p in module.parameters()) or any(b.is_meta for b in module.buffers()):
        raise ValueError(
            f"The module {type(module).__name__} has parameters on the 'meta' device, which hold no "
            "values to train or prune. Materialize it first, e.g. module.to_empty(device='cpu') and "
            "load its weights, or pass the module class."
        )
    floating = [p for p in module.parameters() if p.is_floating_point()]
    if any(p.dtype != torch.float32 for p in floating):
        module = module.to(torch.float32)  # X is always converted to float32
    return module.to(device)
