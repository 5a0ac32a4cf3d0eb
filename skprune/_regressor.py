"""The regressor: single and multi-output targets, float64 predictions."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from skorch import NeuralNetRegressor

from ._estimator import PrunedNet
from ._params import with_default_criterion
from ._serializable import register_builtin

__all__ = ["PrunedNetRegressor"]


def _usable_weights(sample_weight, n_samples):
    """Weights for the target's mean and scale (zero weight = row absent), or ``None``.

    Invalid weights give ``None`` here; ``fit`` refuses them with a clear error right after.
    """
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return None
    ok = weights.shape == (n_samples,) and np.isfinite(weights).all() and (weights >= 0).all()
    return weights if ok and weights.sum() > 0 else None


class PrunedNetRegressor(PrunedNet, NeuralNetRegressor):
    """Neural network regressor with pruning as a hyperparameter.

    Supports single and multi-output targets; ``predict`` returns shape
    ``(n_samples,)`` for a 1-D ``y`` and ``(n_samples, n_targets)`` otherwise.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=MLP
        The network; sizes are inferred at ``fit``.
    criterion : torch loss class, default=torch.nn.MSELoss
        Training loss.
    pruner : pruner or None, default=None
        e.g. ``MagnitudePruning(sparsity=0.9)``; ``None`` for a dense net.
    alpha : float, default=1e-4
        L2 penalty strength, as in ``MLPRegressor``.
    random_state : int, RandomState or None, default=None
        Seeds initialization, shuffling, dropout, random pruning and a
        ``ValidSplit(<fraction>)`` without its own ``random_state``.
    normalize_y : bool, default=True
        Train on the target standardized per column (weighted mean 0,
        standard deviation 1, from the ``y`` and ``sample_weight`` of
        ``fit``) and map predictions back.
        Targets on any scale then work with the default ``lr`` and
        ``alpha`` (an unscaled target such as diabetes' 25-346 otherwise
        trains to a near-constant model); the loss, ``alpha`` and
        ``valid_loss`` apply to the standardized target. ``False`` trains
        on ``y`` as given, e.g. inside a ``TransformedTargetRegressor``
        that already scales it.
    **kwargs
        See :class:`PrunedNet` for every other parameter.

    Attributes
    ----------
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        Mean and standard deviation of the target at ``fit`` (0 and 1 with
        ``normalize_y=False``); ``predict`` returns
        ``network output * y_scale_ + y_mean_``.
    sparsity_, n_params_, pruner_, masks_, compacted_during_fit_
        See :class:`PrunedNet` (``compact_during_fit``: structured pruning
        fine-tunes the compacted network).

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from skprune import MagnitudePruning, PrunedNetRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> net = PrunedNetRegressor(pruner=MagnitudePruning(0.8), max_epochs=5, random_state=0).fit(X, y)
    >>> net.predict(X[:2]).shape
    (2,)
    """

    __init__ = with_default_criterion(PrunedNet, torch.nn.MSELoss, normalize_y=True)

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.normalize_y, (bool, np.bool_)):
            raise ValueError(f"normalize_y must be True or False, got {self.normalize_y!r}.")

    def _encode_y(self, y, *, reset: bool, sample_weight=None, classes=None):
        n_outputs = 1 if np.ndim(y) == 1 else np.shape(y)[1]
        if not reset and n_outputs != self.n_outputs_:
            raise ValueError(
                f"y has {n_outputs} target(s), but the fitted network predicts {self.n_outputs_}; "
                "partial_fit and fit with warm_start=True continue it. Call fit (warm_start=False) to "
                "train on other targets. The fitted model is unchanged."
            )
        # standardized in float64, then rounded to float32: a cast first would quantize a target with
        # a large offset (float32 spaces values near 1e9 by 64) or overflow one beyond float32's range
        values = np.asarray(y, dtype=np.float64)
        columns = values.reshape(len(values), -1)
        if reset:
            n_targets = columns.shape[1]
            mean, scale = np.zeros(n_targets), np.ones(n_targets)
            if self.normalize_y and len(columns):
                weights = _usable_weights(sample_weight, len(columns))
                mean = np.average(columns, axis=0, weights=weights)
                scale = np.sqrt(np.average((columns - mean) ** 2, axis=0, weights=weights))
                scale = np.where(scale > 0, scale, 1.0)
            self.y_mean_, self.y_scale_ = mean, scale
        standardized = ((columns - self.y_mean_) / self.y_scale_).reshape(values.shape)
        return super()._encode_y(standardized, reset=reset)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    @property
    def predict_proba(self):
        """Regressors have no ``predict_proba``; use :meth:`predict`."""
        raise AttributeError(f"{type(self).__name__} has no predict_proba; use predict.")

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataFrame, sparse matrix or tensor of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        if self.normalize_y and "y_mean_" not in self.__dict__ and self.initialized_:
            raise NotFittedError(
                f"This {type(self).__name__} was initialized, not fitted: its network predicts the target "
                "standardized with the y_mean_ and y_scale_ of a fit, which load_params does not restore "
                "(skorch's parameter files hold weights only), so its numbers would be wrong. Save and load "
                "the fitted estimator with skprune.save / skprune.load, which keep them, or fit it."
            )
        # float64 like every scikit-learn regressor (the network computes in float32)
        y_pred = PrunedNet.predict_proba(self, X).astype(np.float64)
        y_pred = y_pred * getattr(self, "y_scale_", 1.0) + getattr(self, "y_mean_", 0.0)
        if getattr(self, "_y_ndim", 2) == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1:
            return y_pred.ravel()
        return y_pred


register_builtin(PrunedNetRegressor)  # load may rebuild it from a file
