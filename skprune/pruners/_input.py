"""Input pruning: feature selection learned together with the network.

A group-lasso penalty on each input feature's outgoing weights (one column
of the first layer) pushes the columns of useless features towards zero
during training; the weakest columns are then removed (kept at exactly zero)
until the requested number of features remains.
"""

from __future__ import annotations

import math
import numbers

import torch
from sklearn.base import BaseEstimator
from torch import nn

from .._doc_link import DocLinkMixin
from .._training._masks import MaskStore
from ..nn._inputs import input_column_norms, input_layer
from ._base import PruningContext
from ._schedules import BaseSchedule, Iterative

__all__ = ["InputPruning"]


class InputPruning(DocLinkMixin, BaseEstimator):
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
        Give this or ``fraction``, not both.
    fraction : float or None, default=None
        Share of the input features to keep, in ``(0, 1]``; the count kept is
        ``max(1, round(fraction * n_features_in_))``.
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

    #: Column norms need no gradient statistics.
    requires_gradient_statistics: bool = False

    def __init__(
        self,
        n_features: int | None = None,
        fraction: float | None = None,
        *,
        strength: float = 1e-3,
        schedule: BaseSchedule | None = None,
    ):
        self.n_features = n_features
        self.fraction = fraction
        self.strength = strength
        self.schedule = schedule

    # ------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        """Check the parameters (called by the estimator at ``fit``)."""
        name = type(self).__name__
        if self.n_features is None and self.fraction is None:
            raise ValueError(
                f"{name} needs to know how many input features to keep: pass n_features "
                "(a count, e.g. n_features=10) or fraction (a share of the columns, e.g. "
                "fraction=0.1); both are None."
            )
        if self.n_features is not None and self.fraction is not None:
            raise ValueError(
                f"{name} got both n_features={self.n_features!r} and fraction={self.fraction!r}; "
                "pass only one of them (set the other to None)."
            )
        if self.n_features is not None:
            if not isinstance(self.n_features, numbers.Integral) or isinstance(self.n_features, bool):
                raise TypeError(
                    f"{name}(n_features=...) must be an integer count of features to keep, "
                    f"got {self.n_features!r}; for a share use fraction=..."
                )
            if self.n_features < 1:
                raise ValueError(f"{name}(n_features={self.n_features!r}) must keep at least 1 feature.")
        if self.fraction is not None:
            if not isinstance(self.fraction, numbers.Real) or isinstance(self.fraction, bool):
                raise TypeError(f"{name}(fraction=...) must be a number in (0, 1], got {self.fraction!r}.")
            if not 0.0 < float(self.fraction) <= 1.0:
                raise ValueError(
                    f"{name}(fraction={self.fraction!r}) must be in (0, 1]: it is the share of "
                    "input features kept (0.1 keeps 10% of them)."
                )
        strength = self.strength
        if (
            not isinstance(strength, numbers.Real)
            or isinstance(strength, bool)
            or not math.isfinite(float(strength))
            or float(strength) < 0.0
        ):
            raise ValueError(f"{name}(strength={strength!r}) must be a finite number >= 0.")
        if self.schedule is not None and not isinstance(self.schedule, BaseSchedule):
            raise TypeError(
                f"{name}(schedule=...) must be a schedule such as OneShot() or Iterative(), "
                f"got {self.schedule!r}."
            )

    def _validate_n_features(self, n_features_in: int) -> None:
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
                "or fraction=... for a share of the columns."
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
        self._validate_n_features(n_features_in)
        if self.n_features is not None:
            return int(self.n_features)
        return min(n_features_in, max(1, int(round(float(self.fraction) * n_features_in))))

    def get_schedule(self) -> BaseSchedule:
        """Return the schedule in use (``Iterative(5, 0.3, 0.7)`` when none was given)."""
        return self.schedule if self.schedule is not None else Iterative(n_steps=5, start=0.3, end=0.7)

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
        self._validate_n_features(layer.in_features)
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
    def penalty(self, module: nn.Module) -> torch.Tensor | None:
        """Group-lasso term ``strength * sum_j ||W[:, j]||_2`` of the input layer.

        Returns ``None`` when ``strength == 0``. Removed columns are zero and
        add nothing (their gradient is zero, not NaN).
        """
        strength = float(self.strength)
        if strength == 0.0:
            return None
        _, _, layer = input_layer(module, owner=type(self).__name__)
        return strength * torch.linalg.vector_norm(layer.weight, dim=0).sum()
