"""Default networks whose input and output sizes are inferred at ``fit``."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "ACTIVATIONS"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Module):
    """Multi-layer perceptron with scikit-learn-like parameters.

    ``n_features_in`` and ``n_outputs`` are filled in by the estimator from
    the training data, so only the architecture needs choosing, e.g.
    ``module__hidden_layer_sizes=(256, 128)`` in a grid.

    Parameters
    ----------
    n_features_in : int
        Number of input features (set by the estimator at ``fit``).
    n_outputs : int
        Number of outputs: classes for a classifier, targets for a regressor
        (set by the estimator at ``fit``).
    hidden_layer_sizes : sequence of int, default=(100,)
        Width of each hidden layer, as in :class:`sklearn.neural_network.MLPClassifier`.
    activation : {"relu", "tanh", "logistic", "identity", "gelu", "leaky_relu"}, default="relu"
        Non-linearity after each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Notes
    -----
    The layers live in one flat ``nn.Sequential`` named ``layers`` with
    readable names (``fc0``, ``act0``, ..., ``output``), which keeps the
    per-layer pruning report and structured compaction simple.
    """

    def __init__(
        self,
        n_features_in: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        if isinstance(hidden_layer_sizes, int):
            hidden_layer_sizes = (hidden_layer_sizes,)
        hidden_layer_sizes = tuple(hidden_layer_sizes)
        if any(int(h) != h or h < 1 for h in hidden_layer_sizes):
            raise ValueError(
                "hidden_layer_sizes must be positive integers, got "
                f"{hidden_layer_sizes!r}; for example use (100,) or (256, 128)."
            )
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is not supported; choose one of {sorted(ACTIVATIONS)}."
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.n_features_in = int(n_features_in)
        self.n_outputs = int(n_outputs)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = float(dropout)

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = self.n_features_in
        for i, size in enumerate(hidden_layer_sizes):
            layers[f"fc{i}"] = nn.Linear(width, int(size))
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if self.dropout > 0:
                layers[f"drop{i}"] = nn.Dropout(self.dropout)
            width = int(size)
        layers["output"] = nn.Linear(width, self.n_outputs)
        self.layers = nn.Sequential(layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return raw outputs (logits for classification)."""
        return self.layers(X)
