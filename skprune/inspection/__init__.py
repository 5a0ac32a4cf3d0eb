"""Looking at a fitted network: plots of per-layer sparsity and of the training history.

The per-layer table itself is :meth:`skprune.PrunedNet.pruning_report`
(built by :func:`skprune.nn.layer_table`).
"""

from ._plots import plot_history, plot_layer_sparsity

__all__ = ["plot_history", "plot_layer_sparsity"]
