"""Figures of a fitted network, counted from the weights: sparsity, parameters, report, features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._training._history import history_to_frame, measured_sparsity
from .nn._inputs import input_column_norms, input_layer
from .nn._summary import count_parameters, layer_table

__all__ = ["FittedFiguresMixin", "measured_sparsity"]


class FittedFiguresMixin:
    """Fitted attributes of :class:`~skprune.PrunedNet` that are computed from ``module_``.

    Every figure is counted from the weights themselves (exact zeros), never
    from what the pruner intended.
    """

    @property
    def sparsity_(self) -> float:
        """Fraction of Linear/Conv weights that are exactly zero."""
        self.check_is_fitted()
        return measured_sparsity(self.module_)

    @property
    def layer_sparsity_(self) -> dict:
        """Sparsity of each Linear/Conv layer (exact zeros), by layer name."""
        table = self.pruning_report()
        return dict(zip(table["layer"], table["sparsity"].astype(float)))

    @property
    def n_params_(self) -> int:
        """Number of parameters of the module."""
        self.check_is_fitted()
        return count_parameters(self.module_)[0]

    @property
    def n_nonzero_params_(self) -> int:
        """Number of parameters of the module that are not exactly zero."""
        self.check_is_fitted()
        return count_parameters(self.module_)[1]

    def pruning_report(self) -> pd.DataFrame:
        """Per-layer table counted from the weights (exact zeros).

        Returns
        -------
        pandas.DataFrame
            One row per Linear/Conv layer with columns ``layer``, ``type``,
            ``shape``, ``params``, ``nonzero`` (weights and bias),
            ``weight_params``, ``weight_nonzero``, ``sparsity`` and
            ``pruned`` (whether the layer has a pruning mask that removes at
            least one weight).
        """
        self.check_is_fitted()
        table = layer_table(self.module_)
        masked = {
            name.rsplit(".weight", 1)[0] if name != "weight" else ""
            for name, pruned in self.masks_.pruned.items()
            if bool(pruned.any())
        }
        table["pruned"] = table["layer"].isin(masked)
        return table

    def history_frame(self) -> pd.DataFrame:
        """Training history as a DataFrame, one row per epoch.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``epoch`` (1-based, continuing across ``partial_fit``
            and warm starts), with the columns skorch records: ``train_loss``,
            ``valid_loss`` and validation scores (e.g. ``valid_acc``) when
            there is a validation split, the measured ``sparsity`` after each
            epoch, other scalar entries (``event_*``) and the epoch's
            duration ``dur`` in seconds. skorch's ``*_best`` flags, batch
            counts and per-batch records are left out. See
            :func:`~skprune.plot_history` for a plot.
        """
        self.check_is_fitted()
        return history_to_frame(self.history)

    # ---------------------------------------------------- input features
    def _input_column_norms(self) -> np.ndarray:
        self.check_is_fitted()
        try:
            _, layer_name, layer = input_layer(self.module_, owner="feature_importances_")
        except ValueError as exc:
            raise AttributeError(str(exc)) from None
        n_features = getattr(self, "n_features_in_", layer.in_features)
        if layer.in_features != n_features:
            raise AttributeError(
                f"feature_importances_ maps input features to the columns of the first layer "
                f"{layer_name!r}, which takes {layer.in_features} inputs, but the data has "
                f"{n_features} features."
            )
        return input_column_norms(layer).cpu().numpy().astype(np.float64)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Importance of each input feature, from the network's first layer.

        The L2 norm of the feature's column of the first layer's weight,
        normalized to sum to 1: exactly zero for a feature removed by
        :class:`~skprune.InputPruning` (or whose weights are all pruned), so
        :class:`~sklearn.feature_selection.SelectFromModel` works on it.
        Defined when the first Linear/Conv layer is an ``nn.Linear`` taking
        ``n_features_in_`` inputs; ``AttributeError`` otherwise.

        Returns
        -------
        ndarray of shape ``(n_features_in_,)``
        """
        norms = self._input_column_norms()
        total = norms.sum()
        return norms / total if total > 0 else norms

    @property
    def selected_features_(self) -> np.ndarray:
        """Names of the input features the network still uses, in input order.

        The features whose first-layer column is not all zero: after
        :class:`~skprune.InputPruning` these are the selected features.
        Names come from ``feature_names_in_`` (DataFrame columns) or are
        ``x0, x1, ...`` as in scikit-learn's ``get_feature_names_out``.

        Returns
        -------
        ndarray of str objects
        """
        used = self._input_column_norms() > 0
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.array([f"x{i}" for i in range(len(used))], dtype=object)
        return np.asarray(names, dtype=object)[used]
