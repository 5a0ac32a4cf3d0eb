"""In-memory data path: convert once, slice tensors per batch.

skorch's default path wraps data in a per-sample ``Dataset`` and collates
each batch from single rows. For small in-memory data that per-sample
overhead dominates training time. :class:`ArrayDataset` keeps the whole
design matrix as one tensor (or one scipy sparse matrix) and
:class:`BatchIterator` yields batches as slices of it. In shuffled order,
the rows of several batches (up to :data:`GATHER_BYTES`) are gathered into
one contiguous block with one ``index_select`` and the batches are views of
that block: the same rows in the same order as indexing every batch, at one
gather per block instead of two per batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import DataLoader, Subset

__all__ = ["ArrayDataset", "BatchIterator", "batch_without_weights", "split_weights", "to_tensor_once"]

#: bytes of feature rows gathered at once in shuffled order (the batches are views of the block):
#: large enough to amortize the gather, small enough to stay in cache and add little memory
GATHER_BYTES = 1 << 22


def split_weights(y):
    """``(targets, sample weights)`` of a batch's ``y``; weights are ``None`` when the fit has none.

    A dataset built with ``sample_weight`` yields ``y`` as the pair
    ``(targets, weights)``; :meth:`PrunedNet.get_loss` splits it here.
    """
    if isinstance(y, (tuple, list)) and len(y) == 2 and isinstance(y[1], torch.Tensor):
        return y[0], y[1]
    return y, None


def batch_without_weights(batch):
    """``(X, targets)`` of a batch whose ``y`` carries the fit's sample weights, else ``batch`` itself.

    With ``sample_weight`` (or ``class_weight``) a batch carries ``y`` as
    ``(targets, weights)`` for the loss; scoring callbacks (``valid_acc``, a
    user's ``EpochScoring``) collect the batch's ``y`` as targets.
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        targets, weight = split_weights(batch[1])
        if weight is not None:
            return (batch[0], targets)
    return batch


def to_tensor_once(data, dtype: torch.dtype, device: str | torch.device = "cpu"):
    """Convert validated array data to a tensor on ``device`` (no copy if possible).

    scipy sparse matrices are kept sparse (as CSR) and densified per batch.
    """
    if data is None:
        return None
    if sp.issparse(data):
        return data.tocsr()
    if isinstance(data, torch.Tensor):
        return data.to(device=device, dtype=dtype)
    array = np.asarray(data)
    if not array.flags.writeable or any(stride < 0 for stride in array.strides):
        # torch cannot wrap read-only memory without a warning, nor negative strides
        # (a reversed view such as X[::-1]) at all
        array = array.copy()
    return torch.as_tensor(array, dtype=dtype).to(device)


class ArrayDataset(SkorchDataset):
    """A dataset that holds the whole ``X`` (and ``y``) in memory.

    A skorch ``Dataset`` for skorch's helpers: its ``X`` and ``y`` are the
    data as given to ``fit`` (``data``), which skorch's ``EpochScoring`` and
    ``BatchScoring`` hand to a scorer when caching is off; batches are
    sliced from the converted tensors ``features`` and ``targets``.

    Parameters
    ----------
    X : torch.Tensor or scipy.sparse.csr_matrix
        Features, first axis is samples.
    y : torch.Tensor or None
        Targets, first axis is samples.
    device : str or torch.device
        Device batches are moved to (sparse batches are densified on it).
    sample_weight : torch.Tensor or None
        One weight per sample; when given, batches yield ``y`` as the pair
        ``(targets, weights)`` (see :func:`split_weights`).
    data : tuple or None
        ``(X, y)`` as the user gave them to ``fit`` (``X``, ``y`` of this
        dataset); ``None``: the tensors themselves.

    Attributes
    ----------
    features, targets : the converted ``X`` and ``y``.
    """

    def __init__(self, X, y=None, device="cpu", sample_weight=None, data=None):
        if not isinstance(X, torch.Tensor) and not sp.issparse(X):
            X = to_tensor_once(X, torch.float32, device)  # arrays, as skorch's Dataset takes them
        if y is not None and not isinstance(y, (torch.Tensor, tuple, list)):
            y = torch.as_tensor(np.asarray(y)).to(device)
        self.features = X
        self.targets = y
        self.device = device
        self.sample_weight = sample_weight
        self.data = data

    @property
    def X(self):
        """``X`` as given to ``fit`` (the features tensor when not known)."""
        return self.features if self.data is None else self.data[0]

    @property
    def y(self):
        """``y`` as given to ``fit`` (the targets tensor when not known)."""
        return self.targets if self.data is None else self.data[1]

    def __len__(self) -> int:
        return self.features.shape[0]

    def take(self, index):
        """Return the batch ``(X[index], y[index])`` as tensors."""
        if sp.issparse(self.features):
            if isinstance(index, torch.Tensor):
                index = index.cpu().numpy()
            Xb = torch.as_tensor(self.features[index].toarray(), dtype=torch.float32)
            Xb = Xb.to(self.device)
        else:
            if isinstance(index, torch.Tensor) and index.device != self.features.device:
                index = index.to(self.features.device)
            Xb = _rows(self.features, index)
        if self.targets is None:
            return Xb, None
        if isinstance(index, np.ndarray):
            index = torch.as_tensor(index)
        if isinstance(index, torch.Tensor) and index.device != self.targets.device:
            index = index.to(self.targets.device)
        if self.sample_weight is not None:
            return Xb, (_rows(self.targets, index), _rows(self.sample_weight, index))
        return Xb, _rows(self.targets, index)

    def __getitem__(self, i):
        Xi, yi = self.take(slice(i, i + 1))
        Xi = Xi[0]
        if yi is None:
            return Xi, torch.zeros(0)
        if isinstance(yi, tuple):
            return Xi, (yi[0][0], yi[1][0])
        return Xi, yi[0]


def _resolve(dataset) -> tuple[ArrayDataset, torch.Tensor | None] | None:
    """Return the underlying ArrayDataset and index for fast slicing, if any."""
    if isinstance(dataset, ArrayDataset):
        return dataset, None
    if isinstance(dataset, Subset):
        inner = _resolve(dataset.dataset)
        if inner is None:
            return None
        base, base_index = inner
        index = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
        if base_index is not None:
            index = base_index[index]
        return base, index
    return None


class BatchIterator:
    """Iterate over mini-batches of a dataset by slicing tensors.

    Used in place of :class:`torch.utils.data.DataLoader` for an
    :class:`ArrayDataset` (or a ``Subset`` of one, as produced by skorch's
    ``ValidSplit``). Any other dataset falls back to a ``DataLoader``.

    Parameters
    ----------
    dataset : Dataset
        The data.
    batch_size : int
        Samples per batch; the last batch may be smaller.
    shuffle : bool
        Draw a new permutation every epoch.
    generator : torch.Generator or None
        Source of randomness for the permutation.
    drop_last : bool
        Drop the last incomplete batch.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 128,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        **loader_kwargs,
    ):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.loader_kwargs = loader_kwargs

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.drop_last:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def epoch_index(self) -> tuple[ArrayDataset, torch.Tensor | None]:
        """The dataset to slice and this epoch's row order (``None``: rows in order).

        Draws the epoch's permutation (as iterating does) and moves it to the
        data's device once. Only for an :class:`ArrayDataset` or a ``Subset``
        of one.
        """
        resolved = _resolve(self.dataset)
        if resolved is None:
            raise TypeError(f"epoch_index needs an ArrayDataset, got {type(self.dataset).__name__}.")
        base, index = resolved
        if self.shuffle:
            order = torch.randperm(len(self.dataset), generator=self.generator)
            index = order if index is None else index[order]
        features = base.features
        if index is not None and isinstance(features, torch.Tensor) and index.device != features.device:
            index = index.to(features.device)  # one transfer per epoch, not per batch
        return base, index

    def __iter__(self) -> Iterator:
        resolved = _resolve(self.dataset)
        if resolved is None:
            loader = DataLoader(
                self.dataset,
                batch_size=self.batch_size,
                shuffle=self.shuffle,
                generator=self.generator,
                drop_last=self.drop_last,
                **self.loader_kwargs,
            )
            yield from loader
            return
        base, index = self.epoch_index()
        n = len(self.dataset)
        size = self.batch_size
        stop = n - (n % size) if self.drop_last else n
        if index is None:  # rows in order: every batch is a view of the data
            for start in range(0, stop, size):
                yield base.take(slice(start, min(start + size, n)))
            return
        features = base.features
        if not isinstance(features, torch.Tensor) or features.layout != torch.strided:
            # sparse rows: densified batch by batch
            for start in range(0, stop, size):
                yield base.take(index[start : start + size])
            return
        row_bytes = features[:1].numel() * features.element_size()
        block = size * max(1, GATHER_BYTES // max(1, size * row_bytes))
        for block_start in range(0, stop, block):
            block_stop = min(block_start + block, stop)
            Xb, yb = base.take(index[block_start:block_stop])  # one gather for several batches
            for start in range(0, block_stop - block_start, size):
                yield _slice_rows(Xb, start, start + size), _slice_rows(yb, start, start + size)


def _rows(tensor: torch.Tensor, index):
    """``tensor[index]``; a 1-D integer tensor index goes through ``index_select`` (the same rows, faster)."""
    if isinstance(index, torch.Tensor) and index.dim() == 1 and index.dtype in (torch.int64, torch.int32):
        return torch.index_select(tensor, 0, index)
    return tensor[index]


def _slice_rows(part, start: int, stop: int):
    """Rows ``start:stop`` of a batch part: a tensor, ``None`` or ``(targets, weights)``."""
    if part is None:
        return None
    if isinstance(part, tuple):
        return tuple(p[start:stop] for p in part)
    return part[start:stop]


from .._serializable import register_builtin  # noqa: E402  (load may rebuild these from a file)

register_builtin(ArrayDataset, BatchIterator)
