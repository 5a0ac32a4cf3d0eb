"""Which layers of a network hold prunable weights."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

__all__ = ["PRUNABLE_TYPES", "iter_prunable_weights", "refresh_sizes"]

#: Layer types whose ``weight`` is prunable.
PRUNABLE_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
)


def iter_prunable_weights(module: nn.Module) -> Iterator[tuple[str, str, nn.Module]]:
    """Yield ``(param_name, layer_name, layer)`` for each prunable weight.

    Layers are Linear and Conv layers, in ``named_modules`` order; the
    parameter name is ``f"{layer_name}.weight"``.

    Parameters
    ----------
    module : torch.nn.Module
        The network.

    Yields
    ------
    tuple of (str, str, torch.nn.Module)
        Parameter name, layer name and layer.

    Examples
    --------
    >>> from torch import nn
    >>> from skprune.nn import iter_prunable_weights
    >>> module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> [param for param, _, _ in iter_prunable_weights(module)]
    ['0.weight', '2.weight']
    """
    for layer_name, layer in module.named_modules():
        if isinstance(layer, PRUNABLE_TYPES) and isinstance(getattr(layer, "weight", None), nn.Parameter):
            param_name = f"{layer_name}.weight" if layer_name else "weight"
            yield param_name, layer_name, layer


def refresh_sizes(module: nn.Module) -> None:
    """Let every submodule that describes its own layer sizes update that description.

    After compaction or loading, layers may be smaller than the sizes a
    network was built with. A network class that records its sizes (such as
    :class:`~skprune.MLP` and :class:`~skprune.ConvNet`) defines
    ``refresh_sizes()``; it is called on every such submodule, innermost
    first, so ``get_params``-style attributes stay truthful.

    Parameters
    ----------
    module : torch.nn.Module
        The network, changed in place.

    Examples
    --------
    >>> from torch import nn
    >>> from skprune import MLP
    >>> from skprune.nn import refresh_sizes
    >>> mlp = MLP(n_features_in=4, n_outputs=2, hidden_layer_sizes=(8,))
    >>> mlp.layers.fc0 = nn.Linear(4, 5)          # a smaller hidden layer, e.g. after compaction
    >>> mlp.layers.output = nn.Linear(5, 2)
    >>> refresh_sizes(mlp)
    >>> mlp.hidden_layer_sizes
    (5,)
    """
    for sub in reversed(list(module.modules())):
        refresh = getattr(type(sub), "refresh_sizes", None)
        if callable(refresh):
            refresh(sub)
