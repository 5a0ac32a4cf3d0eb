"""Sample weights: validated once per fit, applied as a weighted mean of per-sample losses.

The semantics follow scikit-learn's ``MLPClassifier``/``MLPRegressor``: the
data term of a batch is the weighted average of the per-sample losses,
``sum(w_i * l_i) / sum(w_i)``, and the L2 penalty of that batch is
``0.5 * alpha * ||W||^2 / sum(w_i)``. Weights of 2 are therefore the same
as duplicated rows, and weights of 0 the same as dropped rows (exactly so
with full-batch training). Gradient statistics of the pruners (Taylor,
SNIP) come from this loss, so they respect the weights too.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import _check_sample_weight

__all__ = ["fit_sample_weight", "penalty_denominator", "weighted_loss"]


def fit_sample_weight(net, sample_weight, X_t, y_t) -> torch.Tensor | None:
    """Validated weights of this fit (times the class weights of a classifier), or ``None``.

    Parameters
    ----------
    net : PrunedNet
        Its ``_class_sample_weight(y_t)`` gives per-sample class weights
        (``None`` for a regressor or ``class_weight=None``).
    sample_weight : array-like of shape (n_samples,) or None
    X_t, y_t : Tensor
        The converted training data.

    Raises
    ------
    ValueError
        If the weights have the wrong length, are negative, not finite, or
        all zero.
    """
    class_weight = net._class_sample_weight(y_t)
    if sample_weight is None and class_weight is None:
        return None
    n_samples = int(X_t.shape[0])
    if sample_weight is None:
        weights = np.ones(n_samples, dtype=np.float64)
    else:
        try:
            weights = _check_sample_weight(
                sample_weight, np.empty((n_samples, 0)), dtype=np.float64, ensure_non_negative=True
            )
        except ValueError as error:
            raise ValueError(
                f"{type(net).__name__}.fit: sample_weight must be one non-negative finite number per "
                f"sample ({n_samples}): {error}"
            ) from error
    if class_weight is not None:
        weights = weights * class_weight
    if not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError(
            f"{type(net).__name__}.fit: the sample weights (times class_weight) must be finite with a "
            "positive sum; got all zero or non-finite weights."
        )
    return torch.as_tensor(weights, dtype=torch.float32, device=y_t.device)


def weighted_loss(get_loss, criterion, y_pred, y_true, weight, **kwargs) -> torch.Tensor:
    """``sum(w_i * l_i) / sum(w_i)`` of the per-sample losses of ``criterion``.

    ``get_loss`` is called with the criterion's ``reduction`` set to
    ``"none"`` (and restored afterwards); losses of multi-output samples
    are averaged over their outputs.
    """
    if not hasattr(criterion, "reduction"):
        raise TypeError(
            f"sample_weight needs a criterion with a 'reduction' argument (as torch's losses have), "
            f"got {type(criterion).__name__}."
        )
    previous = criterion.reduction
    criterion.reduction = "none"
    try:
        per_sample = get_loss(y_pred, y_true, **kwargs)
    finally:
        criterion.reduction = previous
    if per_sample.dim() > 1:
        per_sample = per_sample.reshape(per_sample.shape[0], -1).mean(dim=1)
    weight = weight.to(per_sample.dtype)
    total = weight.sum()
    weighted = (per_sample * weight).sum()
    return weighted / total if total > 0 else weighted


def penalty_denominator(y_true, weight) -> torch.Tensor | int:
    """The ``n`` of the L2 penalty ``0.5 * alpha * ||W||^2 / n``: the weight sum, or the batch size."""
    if weight is not None:
        total = weight.sum()
        if total > 0:
            return total
    return y_true.shape[0] if hasattr(y_true, "shape") and len(y_true.shape) else 1
