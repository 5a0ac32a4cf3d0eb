"""Default networks whose input and output sizes are inferred at ``fit``."""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.fx
from torch import nn

from ._dropout import Dropout

__all__ = ["MLP", "ConvNet", "ACTIVATIONS", "ResidualBlock"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def _positive_ints(value, name: str, example: str) -> tuple[int, ...]:
    """``value`` (one number or a sequence of them, numpy scalars included) as a tuple of Python ints."""
    if isinstance(value, numbers.Number) or (hasattr(value, "ndim") and value.ndim == 0):
        value = (value,)
    try:
        items = tuple(value)
        ok = all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and int(v) == v and v >= 1 for v in items
        )
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be positive integers, got {value!r}; for example use {example}.")
    return tuple(int(v) for v in items)


def _check_n_blocks(n_blocks, n_stages: int, name: str = "n_blocks") -> tuple[int, ...]:
    """``n_blocks`` (one count, or one per stage) as a tuple of ``n_stages`` ints >= 0."""
    items = (n_blocks,) * n_stages if isinstance(n_blocks, numbers.Number) else n_blocks
    try:
        items = tuple(items)
        ok = len(items) == n_stages and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 0 for v in items
        )
    except TypeError:
        ok = False
    if not ok:
        per = f" or a sequence of {n_stages} such integers (one per stage)" if n_stages > 1 else ""
        raise ValueError(f"{name} must be an integer >= 0{per}, got {n_blocks!r}; e.g. {name}=2.")
    return tuple(int(v) for v in items)


class ResidualBlock(nn.Module):
    """A residual block ``y = x + branch(x)``.

    The block of the residual :class:`MLP` and :class:`ConvNet`
    (``n_blocks > 0``). Its branch ends in a Linear/Conv layer or a
    BatchNorm, so :class:`~skprune.BlockPruning` can make it the identity by
    masking the branch's parameters, and :meth:`~skprune.PrunedNet.compact`
    deletes it.

    Parameters
    ----------
    branch : torch.nn.Module
        ``f``; its output has the shape of its input.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from skprune.nn import ResidualBlock
    >>> block = ResidualBlock(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)))
    >>> block(torch.zeros(2, 4)).shape
    torch.Size([2, 4])
    """

    def __init__(self, branch: nn.Module):
        super().__init__()
        self.branch = branch

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return ``X + branch(X)``."""
        return X + self.branch(X)


def _drop_missing_blocks(
    module: nn.Module, stages: dict[str, nn.Sequential], state_dict, prefix: str
) -> None:
    """Drop the trailing blocks of each stage that ``state_dict`` has no entry for.

    Compaction deletes removed residual blocks and renumbers the rest; a
    network rebuilt from its parameters (``skprune.load``, or
    ``load_state_dict`` with a compacted network's state) has the original
    number of blocks, and the surplus ones have no entry in the state.
    Only a whole network's state (one with the output layer) drops blocks.
    """
    if not any(key.startswith(f"{prefix}layers.output.") for key in state_dict):
        return  # not a whole network's state (a partial load): leave the blocks alone
    changed = False
    for stage_name, stage in stages.items():
        stage_prefix = f"{prefix}{stage_name}."
        present = {
            key[len(stage_prefix) :].split(".", 1)[0] for key in state_dict if key.startswith(stage_prefix)
        }
        n_keep = len(stage)
        while n_keep and str(n_keep - 1) not in present:
            n_keep -= 1
        while len(stage) > n_keep:
            del stage[len(stage) - 1]
            changed = True
    if changed:
        module.refresh_sizes()


class _DropsMissingBlocks:
    """Mixin: ``load_state_dict`` of a compacted state drops the blocks compaction deleted."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        _drop_missing_blocks(self, self._stages(), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _check_activation_and_dropout(activation: str, dropout: float) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not supported; choose one of {sorted(ACTIVATIONS)}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")


class MLP(_DropsMissingBlocks, nn.Module):
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
        Dropout probability after each hidden activation (a
        :class:`~skprune.nn.Dropout`: during a fit it draws from the fit's
        own generator, seeded by ``random_state``).
    n_blocks : int, default=0
        Residual blocks ``x + fc_b(act(fc_a(x)))`` after the last hidden
        layer, each as wide as it (``0``: a plain MLP). Their depth is what
        :class:`~skprune.BlockPruning` searches, e.g. ``module__n_blocks=4``
        with ``pruner__n_blocks_to_remove=[0, 1, 2, 3]`` in a grid.

    Notes
    -----
    The layers live in one flat ``nn.Sequential`` named ``layers`` with
    readable names (``fc0``, ``act0``, ..., ``output``), which keeps the
    per-layer pruning report and structured compaction simple. The
    residual blocks are ``layers.blocks.0``, ``layers.blocks.1``, ...
    (:class:`~skprune.nn.ResidualBlock`); after compaction deleted some,
    ``n_blocks`` counts those left.

    Examples
    --------
    The default network of the estimators; its sizes are inferred at ``fit``:

    >>> from skprune import MLP, PrunedNetClassifier
    >>> net = PrunedNetClassifier(module=MLP, module__hidden_layer_sizes=(64, 32))
    >>> MLP(n_features_in=4, n_outputs=3, hidden_layer_sizes=(8,))
    MLP(
      (layers): Sequential(
        (fc0): Linear(in_features=4, out_features=8, bias=True)
        (act0): ReLU()
        (output): Linear(in_features=8, out_features=3, bias=True)
      )
    )
    """

    def __init__(
        self,
        n_features_in: int,
        n_outputs: int,
        hidden_layer_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        n_blocks: int = 0,
    ):
        super().__init__()
        hidden_layer_sizes = _positive_ints(hidden_layer_sizes, "hidden_layer_sizes", "(100,) or (256, 128)")
        _check_activation_and_dropout(activation, dropout)
        (n_blocks,) = _check_n_blocks(n_blocks, 1, "n_blocks (module__n_blocks)")
        if n_blocks and not hidden_layer_sizes:
            raise ValueError(
                f"n_blocks={n_blocks} needs a hidden layer for the residual blocks to follow; "
                "pass hidden_layer_sizes=(64,) for example."
            )
        self.n_features_in = int(n_features_in)
        self.n_outputs = int(n_outputs)
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = float(dropout)
        self.n_blocks = n_blocks

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width = self.n_features_in
        for i, size in enumerate(hidden_layer_sizes):
            layers[f"fc{i}"] = nn.Linear(width, int(size))
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if self.dropout > 0:
                layers[f"drop{i}"] = Dropout(self.dropout)
            width = int(size)
        if n_blocks:
            layers["blocks"] = nn.Sequential(*(self._block(width) for _ in range(n_blocks)))
        layers["output"] = nn.Linear(width, self.n_outputs)
        self.layers = nn.Sequential(layers)

    def _block(self, width: int) -> ResidualBlock:
        branch: OrderedDict[str, nn.Module] = OrderedDict()
        branch["fc_a"] = nn.Linear(width, width)
        branch["act"] = ACTIVATIONS[self.activation]()
        if self.dropout > 0:
            branch["drop"] = Dropout(self.dropout)
        branch["fc_b"] = nn.Linear(width, width)
        return ResidualBlock(nn.Sequential(branch))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return raw outputs (logits for classification)."""
        return self.layers(X)

    def refresh_sizes(self) -> None:
        """Make ``hidden_layer_sizes`` and ``n_blocks`` describe the layers (after compaction or resizing)."""
        self.hidden_layer_sizes = tuple(
            layer.out_features
            for name, layer in self.layers.named_children()
            if isinstance(layer, nn.Linear) and name != "output"
        )
        self.n_blocks = len(self._stages().get("layers.blocks", ()))

    def _stages(self) -> dict[str, nn.Sequential]:
        blocks = getattr(self.layers, "blocks", None)
        return {"layers.blocks": blocks} if isinstance(blocks, nn.Sequential) else {}


def check_input_shape(input_shape, *, name: str = "input_shape") -> tuple[int, int, int]:
    """Return ``input_shape`` as a ``(C, H, W)`` tuple of positive ints, or raise."""
    try:
        shape = tuple(int(v) for v in input_shape)
        ok = len(shape) == 3 and all(v >= 1 and v == w for v, w in zip(shape, input_shape))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"{name} must be a (channels, height, width) tuple of positive integers, got "
            f"{input_shape!r}; for 8x8 grey-scale images use (1, 8, 8)."
        )
    return shape


def as_images(X: torch.Tensor, input_shape: tuple[int, int, int]) -> torch.Tensor:
    """Return ``X`` as a batch of images shaped ``(N, *input_shape)``.

    Accepts images ``(N, C, H, W)`` of that shape, single-channel images
    ``(N, H, W)`` when ``C == 1``, and flat rows ``(N, C*H*W)`` (as left by
    scikit-learn transformers), which are reshaped in C-order (channels
    first). Anything else raises a ``ValueError`` saying what to change.
    Wrapped for :mod:`torch.fx`, so traced modules (compaction) see one node.
    """
    shape = tuple(input_shape)
    got = tuple(X.shape[1:])
    if got == shape:
        return X
    if X.dim() == 2 and got[0] == math.prod(shape):
        return X.reshape(X.shape[0], *shape)
    if X.dim() == 3 and shape[0] == 1 and got == shape[1:]:
        return X.unsqueeze(1)
    hint = ""
    if X.dim() == 4 and got == (shape[1], shape[2], shape[0]):
        hint = (
            " It looks channels-last (N, H, W, C): pass X.transpose(0, 3, 1, 2) (or X.permute(0, 3, 1, 2))."
        )
    raise ValueError(
        f"ConvNet expects images of shape (n_samples, {', '.join(map(str, shape))}) or flat rows of "
        f"{math.prod(shape)} features (input_shape={shape}), got an input of shape {tuple(X.shape)}.{hint}"
    )


torch.fx.wrap("as_images")


class ConvNet(_DropsMissingBlocks, nn.Module):
    """Small convolutional network for images, with scikit-learn-like parameters.

    Blocks ``Conv2d -> [BatchNorm2d] -> activation -> [MaxPool2d(2)]``, one
    per entry of ``channels``, then ``Flatten -> Linear(hidden) ->
    activation -> [Dropout] -> Linear(n_outputs)``. ``n_features_in``,
    ``n_outputs`` and, for data shaped ``(n_samples, C, H, W)``,
    ``input_shape`` are filled in by the estimator at ``fit``.

    Parameters
    ----------
    n_features_in : int
        Number of input values per sample, ``C * H * W`` (set by the
        estimator at ``fit``).
    n_outputs : int
        Number of outputs: classes for a classifier, targets for a regressor
        (set by the estimator at ``fit``).
    input_shape : tuple of int (C, H, W) or None, default=None
        Shape of one image. Inferred at ``fit`` from 4-D data (or 3-D data,
        read as single-channel ``(N, H, W)``). Needed for flat data, e.g.
        after a scikit-learn transformer: ``module__input_shape=(1, 8, 8)``;
        flat rows are reshaped channels-first (C-order).
    channels : sequence of int, default=(32, 64)
        Output channels of each convolution block.
    kernel_size : int, default=3
        Square kernel of every convolution; padding keeps the spatial size
        (``kernel_size // 2``, so use an odd size).
    hidden : int, default=128
        Width of the fully connected layer after the convolutions; ``0``
        connects the flattened feature map straight to the output layer.
    batch_norm : bool, default=True
        Whether each convolution is followed by ``BatchNorm2d``.
    dropout : float, default=0.0
        Dropout probability before the output layer.
    activation : {"relu", "tanh", "logistic", "identity", "gelu", "leaky_relu"}, default="relu"
        Non-linearity after each block and the hidden layer.
    pool : bool, default=True
        Whether a block ends with 2x2 max pooling (skipped once the feature
        map is smaller than 2x2).
    n_blocks : int or sequence of int, default=0
        Residual blocks ``x + bn_b(conv_b(act(bn_a(conv_a(x)))))`` after
        each stage's activation, before its pooling: one count for every
        stage, or one per entry of ``channels``. ``0`` is a plain ConvNet.
        :class:`~skprune.BlockPruning` removes whole blocks, so a grid over
        ``pruner__n_blocks_to_remove`` searches the depth.

    Notes
    -----
    The layers live in one flat ``nn.Sequential`` named ``layers``
    (``conv0``, ``bn0``, ``act0``, ``pool0``, ..., ``flatten``, ``fc``,
    ``act_fc``, ``drop``, ``output``; the residual blocks of stage ``i``
    are ``res{i}.0``, ``res{i}.1``, ...): the layout that
    :class:`~skprune.ChannelPruning` and :func:`~skprune.compact_module`
    follow, so removed channels can be physically deleted. After compaction
    ``channels``, ``hidden`` and ``n_blocks`` describe the smaller network
    (``n_blocks`` stays one int while every stage has as many blocks left,
    else it becomes one count per stage).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skprune import ConvNet, PrunedNetClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> images = (X / 16).reshape(-1, 1, 8, 8)
    >>> net = PrunedNetClassifier(ConvNet, module__channels=(8, 16), max_epochs=2,
    ...                           random_state=0).fit(images, y)
    >>> net.input_shape_
    (1, 8, 8)
    """

    def __init__(
        self,
        n_features_in: int,
        n_outputs: int,
        input_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        hidden: int = 128,
        batch_norm: bool = True,
        dropout: float = 0.0,
        activation: str = "relu",
        pool: bool = True,
        n_blocks: int | Sequence[int] = 0,
    ):
        super().__init__()
        if input_shape is None:
            raise ValueError(
                f"ConvNet needs the image shape: got flat data with {n_features_in} features and "
                "input_shape=None. Fit on an array shaped (n_samples, channels, height, width), or pass "
                "module__input_shape=(channels, height, width), e.g. (1, 8, 8) for 64 grey-scale pixels."
            )
        input_shape = check_input_shape(input_shape, name="input_shape (module__input_shape)")
        if int(n_features_in) != math.prod(input_shape):
            raise ValueError(
                f"module__input_shape={input_shape} has {math.prod(input_shape)} values per sample, but "
                f"the data has {n_features_in} features; pass an input_shape whose product is "
                f"{n_features_in}."
            )
        channels = _positive_ints(channels, "channels", "(32, 64)")
        if not channels:
            raise ValueError(f"channels must be a non-empty sequence of positive integers, got {channels!r}.")
        if int(kernel_size) != kernel_size or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive integer, got {kernel_size!r}.")
        if int(hidden) != hidden or hidden < 0:
            raise ValueError(f"hidden must be an integer >= 0 (0: no hidden layer), got {hidden!r}.")
        _check_activation_and_dropout(activation, dropout)
        blocks = _check_n_blocks(n_blocks, len(channels), "n_blocks (module__n_blocks)")
        self.n_features_in = int(n_features_in)
        self.n_outputs = int(n_outputs)
        self.n_blocks = int(n_blocks) if isinstance(n_blocks, numbers.Integral) else blocks
        self.input_shape = input_shape
        self.channels = tuple(int(c) for c in channels)
        self.kernel_size = int(kernel_size)
        self.hidden = int(hidden)
        self.batch_norm = bool(batch_norm)
        self.dropout = float(dropout)
        self.activation = activation
        self.pool = bool(pool)

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        width, height, in_channels = input_shape[2], input_shape[1], input_shape[0]
        for i, out_channels in enumerate(self.channels):
            layers[f"conv{i}"] = nn.Conv2d(
                in_channels, out_channels, self.kernel_size, padding=self.kernel_size // 2
            )
            if self.batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(out_channels)
            layers[f"act{i}"] = ACTIVATIONS[activation]()
            if blocks[i]:
                layers[f"res{i}"] = nn.Sequential(*(self._block(out_channels) for _ in range(blocks[i])))
            if self.pool and min(height, width) >= 2:
                layers[f"pool{i}"] = nn.MaxPool2d(2)
                height, width = height // 2, width // 2
            in_channels = out_channels
        layers["flatten"] = nn.Flatten()
        n_flat = in_channels * height * width
        if self.hidden:
            layers["fc"] = nn.Linear(n_flat, self.hidden)
            layers["act_fc"] = ACTIVATIONS[activation]()
            n_flat = self.hidden
        if self.dropout > 0:
            layers["drop"] = Dropout(self.dropout)
        layers["output"] = nn.Linear(n_flat, self.n_outputs)
        self.layers = nn.Sequential(layers)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return raw outputs (logits for classification) for images or flat rows."""
        return self.layers(as_images(X, self.input_shape))

    def _block(self, channels: int) -> ResidualBlock:
        branch: OrderedDict[str, nn.Module] = OrderedDict()
        padding = self.kernel_size // 2
        branch["conv_a"] = nn.Conv2d(channels, channels, self.kernel_size, padding=padding)
        if self.batch_norm:
            branch["bn_a"] = nn.BatchNorm2d(channels)
        branch["act"] = ACTIVATIONS[self.activation]()
        branch["conv_b"] = nn.Conv2d(channels, channels, self.kernel_size, padding=padding)
        if self.batch_norm:
            branch["bn_b"] = nn.BatchNorm2d(channels)
        return ResidualBlock(nn.Sequential(branch))

    def _stages(self) -> dict[str, nn.Sequential]:
        return {
            f"layers.{name}": child
            for name, child in self.layers.named_children()
            if name.startswith("res") and isinstance(child, nn.Sequential)
        }

    def refresh_sizes(self) -> None:
        """Make ``channels``, ``hidden`` and ``n_blocks`` describe the layers (after compaction)."""
        self.channels = tuple(layer.out_channels for layer in self.layers if isinstance(layer, nn.Conv2d))
        fc = getattr(self.layers, "fc", None)
        self.hidden = fc.out_features if fc is not None else 0
        stages = self._stages()
        counts = tuple(len(stages.get(f"layers.res{i}", ())) for i in range(len(self.channels)))
        if isinstance(self.n_blocks, numbers.Integral) and len(set(counts)) > 1:
            self.n_blocks = counts
        elif isinstance(self.n_blocks, numbers.Integral):
            self.n_blocks = counts[0] if counts else 0
        else:
            self.n_blocks = counts
