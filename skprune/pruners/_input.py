"""Input pruning: feature selection learned together with the network.

A group-lasso penalty on each input feature's outgoing weights (one column
of the first layer) pushes the columns of useless features towards zero
during training; the weakest columns are then removed (kept at exactly zero)
until the requested number of features remains.
"""

from __future__ import annotations

import numbers
import warnings

import torch
from sklearn.base import clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from ..nn._inputs import input_column_norms, input_layer
from ._masks import MaskStore
from ._protocol import PrunerProtocol, PruningContext
from ._schedules import BaseSchedule, Iterative, OneShot

__all__ = ["InputPruning"]


class InputPruning(PrunerProtocol):
    """Remove whole input features: prune columns of the first layer.

    During training the loss gets a group-lasso penalty
    ``strength * sum_j ||W[:, j]||_2`` over the columns of the first layer's
    weight ``W`` (column ``j`` carries input feature ``j``), which drives the
    columns of unhelpful features towards zero. At the scheduled steps the
    columns with the smallest L2 norm are removed (their weights stay
    exactly zero from then on) until ``n_features`` columns remain; the
    remaining epochs fine-tune the network on the selected features.

    The fitted estimator's ``feature_importances_`` is then zero for every
    removed feature, so :class:`sklearn.feature_selection.SelectFromModel`
    with a tiny threshold keeps exactly the selected features, and
    ``selected_features_`` lists their names.

    Parameters
    ----------
    n_features : int or None, default=None
        Number of input features to keep, ``1 <= n_features <= n_features_in_``.
        Give this or ``sparsity``, not both.
    sparsity : float or None, default=None
        Share of the input features to remove, in ``[0, 1)``, as for every
        pruner; the count kept is ``max(1, round((1 - sparsity) * n_features_in_))``.
        This is the parameter a :class:`~skprune.PrunedNetCV` path varies.
    strength : float, default=1e-3
        Weight of the group-lasso penalty, ``>= 0`` (``0`` removes columns by
        norm alone). The penalty is added to the mean loss of each training
        batch, so like :class:`~sklearn.linear_model.Lasso`'s ``alpha`` it does
        not grow with the number of samples or the batch size. All columns
        have the same size, so no per-group ``sqrt(size)`` factor is used. It
        also applies while fine-tuning, as a mild shrinkage of kept features.
    schedule : BaseSchedule or None, default=None
        When columns are removed. ``None`` is
        ``Iterative(n_steps=5, start=0.3, end=0.7)``: the penalty acts alone
        for the first 30% of the epochs, then the weakest columns go in five
        equal steps, and the last 30% of the epochs fine-tune. Use
        ``OneShot(at=...)`` to remove all columns in a single step.
    fraction : float or None, optional
        Deprecated: the share of features to *keep*; use ``sparsity=1 - fraction``.
        Removed in 0.3.

    See Also
    --------
    CombinedPruning : use with weight pruning of the other layers, e.g.
        ``CombinedPruning([("inputs", InputPruning(10)), ("weights", MagnitudePruning(0.8))])``.

    Notes
    -----
    The first layer is the first Linear/Conv layer of the module in
    ``named_modules`` order; it must be an ``nn.Linear``. The pruner prunes
    only that layer: every other layer is left to other pruners.

    Examples
    --------
    >>> from skprune import PrunedNetClassifier, InputPruning
    >>> net = PrunedNetClassifier(pruner=InputPruning(n_features=10), max_epochs=40)
    """

    _parameter_constraints: dict = {
        "n_features": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "sparsity": [Interval(numbers.Real, 0.0, 1.0, closed="left"), None],
        "strength": [Interval(numbers.Real, 0.0, None, closed="left")],
        "schedule": [HasMethods(["steps"]), None],
        "fraction": [Interval(numbers.Real, 0.0, 1.0, closed="right"), StrOptions({"deprecated"})],
    }

    def __init__(
        self,
        n_features: int | None = None,
        sparsity: float | None = None,
        *,
        strength: float = 1e-3,
        schedule: BaseSchedule | None = None,
        fraction="deprecated",
    ):
        self.n_features = n_features
        self.sparsity = sparsity
        self.strength = strength
        self.schedule = schedule
        self.fraction = fraction

    # ------------------------------------------------------------ validation
    def _check_params_together(self) -> None:
        name = type(self).__name__
        if self.fraction != "deprecated":
            warnings.warn(
                f"{name}(fraction=...) is deprecated and will be removed in 0.3: it is the share of "
                f"features kept; use sparsity=1 - fraction (the share removed, as for every pruner).",
                FutureWarning,
                stacklevel=4,
            )
        given = [
            f"{key}={value!r}"
            for key, value in (("n_features", self.n_features), ("sparsity", self._removed_share))
            if value is not None
        ]
        if not given:
            raise ValueError(
                f"{name} needs to know how many input features to keep: pass n_features "
                "(a count, e.g. n_features=10) or sparsity (the share of columns removed, e.g. "
                "sparsity=0.9); both are None."
            )
        if len(given) > 1:
            raise ValueError(
                f"{name} got {' and '.join(given)}; pass only one of them (set the other to None)."
            )

    @property
    def _removed_share(self) -> float | None:
        """``sparsity``, or ``1 - fraction`` for the deprecated ``fraction``."""
        if self.fraction != "deprecated":
            return 1.0 - float(self.fraction)
        return None if self.sparsity is None else float(self.sparsity)

    def check_n_features(self, n_features_in: int) -> None:
        """Check ``n_features`` against the number of columns of the data.

        Raises
        ------
        ValueError
            If ``n_features`` is larger than ``n_features_in``.
        """
        if self.n_features is not None and self.n_features > n_features_in:
            raise ValueError(
                f"{type(self).__name__}(n_features={self.n_features}) asks to keep more features "
                f"than the data has ({n_features_in}); use n_features <= {n_features_in}, "
                "or sparsity=... for a share of the columns."
            )

    def _n_keep(self, n_features_in: int) -> int:
        """Return how many of ``n_features_in`` input features are kept.

        Parameters
        ----------
        n_features_in : int
            Number of input features of the network.

        Returns
        -------
        int
        """
        self.check_n_features(n_features_in)
        if self.n_features is not None:
            return int(self.n_features)
        return min(n_features_in, max(1, int(round((1.0 - self._removed_share) * n_features_in))))

    def get_schedule(self) -> BaseSchedule:
        """Return the schedule in use (``Iterative(5, 0.3, 0.7)`` when none was given)."""
        return self.schedule if self.schedule is not None else Iterative(n_steps=5, start=0.3, end=0.7)

    def at_path_level(self, level: float, at: float) -> InputPruning:
        """A copy that removes the share ``level`` of the features once, at fraction ``at`` of a fit."""
        return clone(self).set_params(
            n_features=None, sparsity=float(level), fraction="deprecated", schedule=OneShot(at=at)
        )

    # ------------------------------------------------------------- selection
    def select_layers(self, module: nn.Module) -> list[tuple[str, str, nn.Module]]:
        """Return the input layer as ``[(param_name, layer_name, layer)]``.

        Raises
        ------
        ValueError
            If the first layer is not an ``nn.Linear`` or has fewer inputs
            than ``n_features``.
        """
        param_name, layer_name, layer = input_layer(module, owner=type(self).__name__)
        self.check_n_features(layer.in_features)
        return [(param_name, layer_name, layer)]

    @torch.no_grad()
    def compute_masks(
        self, module: nn.Module, masks: MaskStore, context: PruningContext
    ) -> dict[str, torch.Tensor]:
        """Return the keep mask of the input layer with the weakest columns removed.

        ``context.target`` is the fraction of the final removal reached at
        this step: ``round(target * (n_in - n_keep))`` columns are removed,
        the ones of smallest L2 norm among the columns still in use. Removed
        columns stay removed, and entries pruned by another pruner stay
        pruned.
        """
        [(param_name, _, layer)] = self.select_layers(module)
        weight = layer.weight.detach()
        keep = masks.keep_mask(param_name, weight)
        n_in = weight.shape[1]
        n_remove_final = n_in - self._n_keep(n_in)
        removed = ~keep.any(dim=0)
        n_remove = max(int(round(float(context.target) * n_remove_final)), int(removed.sum()))
        n_remove = min(n_remove, n_in)
        norms = input_column_norms(layer).to(weight.device)
        norms = torch.where(removed, torch.full_like(norms, -torch.inf), norms)
        column_keep = torch.ones(n_in, dtype=torch.bool, device=weight.device)
        if n_remove > 0:
            order = torch.argsort(norms, stable=True)
            column_keep[order[:n_remove]] = False
        return {param_name: keep & column_keep.unsqueeze(0)}

    # ----------------------------------------------------------------- hooks
    def penalty(self, module: nn.Module, **kwargs) -> torch.Tensor | None:
        """Group-lasso term ``strength * sum_j ||W[:, j]||_2`` of the input layer.

        Returns ``None`` when ``strength == 0``. Removed columns are zero and
        add nothing (their gradient is zero, not NaN).
        """
        strength = float(self.strength)
        if strength == 0.0:
            return None
        _, _, layer = input_layer(module, owner=type(self).__name__)
        return strength * torch.linalg.vector_norm(layer.weight, dim=0).sum()
