"""Export for inference: sparse (CSR) Linear weights and dynamic int8 quantization.

Masked zeros make a model sparse on paper only. Two post-training exports
turn them into real savings, each returning a fitted copy of the estimator
meant for ``predict`` (fitting it again rebuilds a dense module):

* :func:`to_sparse` stores the weights of sparse Linear layers as CSR
  tensors (values, 32-bit column indices and row pointers) and multiplies
  with ``torch.addmm`` on them. Smaller from about 70% sparsity on; whether
  it is faster than a dense matrix product depends on sparsity, shapes and
  the CPU (see ``benchmarks/inference.py``).
* :func:`~skprune.quantize_int8` (in :mod:`._onnx_runtime`) exports to ONNX and
  applies ONNX Runtime's dynamic quantization: int8 weights (4x smaller),
  activations quantized on the fly. (PyTorch's ``torch.ao`` dynamic
  quantization is deprecated; ONNX Runtime's is maintained and faster.)

:func:`compression_report` puts the masked, compacted, sparse and int8
variants side by side: stored parameters, serialized bytes and score.
"""

from __future__ import annotations

import copy
import io
import warnings

import pandas as pd
import torch
from torch import nn

from ..pruners._masks import MaskStore
from ._copying import copy_with_module
from ._onnx_runtime import quantize_int8
from ._schema import is_net
from ._sparse_linear import SparseLinear

__all__ = [
    "SparseLinear",
    "to_sparse",
    "compression_report",
    "state_bytes",
    "stored_values",
]


def _replace_layers(module: nn.Module, convert) -> nn.Module:
    for name, child in list(module.named_children()):
        new = convert(child)
        if new is not None:
            setattr(module, name, new)
        else:
            _replace_layers(child, convert)
    return module


def _inference_copy(estimator, module: nn.Module):
    """Fitted copy of ``estimator`` with ``module`` as ``module_`` (no optimizer, no masks)."""
    out, _ = copy_with_module(estimator, module)
    out.masks_ = MaskStore()
    return out


def to_sparse(estimator, *, min_sparsity: float = 0.5):
    """Return a copy whose sparse Linear layers hold CSR weights.

    Parameters
    ----------
    estimator : PrunedNet
        A fitted estimator (pruned, possibly compacted).
    min_sparsity : float, default=0.5
        Only Linear layers with at least this fraction of exact zeros are
        converted; denser ones stay dense (CSR would be larger and slower).

    Returns
    -------
    PrunedNet
        A fitted copy for ``predict``/``predict_proba`` on CPU, with
        :class:`SparseLinear` layers. The original is unchanged.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier, to_sparse
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.9), max_epochs=5, random_state=0).fit(X, y)
    >>> to_sparse(net).predict(X[:3]).shape
    (3,)
    """
    if not 0.0 <= float(min_sparsity) <= 1.0:
        raise ValueError(f"min_sparsity must be in [0, 1], got {min_sparsity!r}.")
    if not is_net(estimator):
        raise TypeError(
            f"to_sparse converts a fitted PrunedNet, got {type(estimator).__name__}: for a pipeline or "
            "a search, convert its net (pipeline[-1], search.best_estimator_)."
        )
    estimator.check_is_fitted()
    module = copy.deepcopy(estimator.module_).cpu()

    def convert(layer):
        if isinstance(layer, nn.Linear):
            weight = layer.weight.detach()
            sparsity = 1.0 - int(torch.count_nonzero(weight)) / max(weight.numel(), 1)
            return SparseLinear(layer) if sparsity >= min_sparsity else layer
        return None

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")
        module = _replace_layers(module, convert)
    out = _inference_copy(estimator, module.eval())
    out.device = "cpu"
    return out


def state_bytes(module: nn.Module) -> int:
    """Bytes of ``torch.save(module.state_dict())``: the stored size of the weights."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(module.state_dict(), buffer)
    return buffer.tell()


def stored_values(module: nn.Module) -> int:
    """Number of weight values stored (non-zeros only for CSR layers; int8 values count one each)."""
    total = 0
    for value in module.state_dict().values():
        if isinstance(value, tuple):  # packed quantized params
            total += sum(v.numel() for v in value if isinstance(v, torch.Tensor))
        elif isinstance(value, torch.Tensor):
            if value.layout == torch.sparse_csr:
                total += value.values().numel()
            elif value.dtype.is_floating_point or value.is_quantized:
                total += value.numel()
    return total


def compression_report(estimator, X, y, *, min_sparsity: float = 0.5) -> pd.DataFrame:
    """Compare the pruned model with its compacted, sparse (CSR) and int8 exports.

    Parameters
    ----------
    estimator : PrunedNet
        A fitted (pruned) estimator.
    X, y : array-like
        Data to score each variant on (``estimator.score``).
    min_sparsity : float, default=0.5
        Passed to :func:`to_sparse`.

    Returns
    -------
    pandas.DataFrame
        One row per variant (``masked``, ``compacted``, ``sparse``,
        ``int8``, ``compacted+int8``) with ``stored_values`` (float or int8
        values stored, zeros included for dense storage), ``bytes``
        (serialized state dict; the ONNX file for int8), ``size_ratio`` (bytes / masked bytes),
        ``score`` and ``score_change`` (vs the masked model). Variants that
        cannot be built (e.g. compaction of an unsupported graph) are
        reported with the reason in ``note``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skprune import MagnitudePruning, PrunedNetClassifier, compression_report
    >>> X, y = load_iris(return_X_y=True)
    >>> net = PrunedNetClassifier(pruner=MagnitudePruning(0.9), max_epochs=5, random_state=0).fit(X, y)
    >>> "variant" in compression_report(net, X, y).columns
    True
    """
    estimator.check_is_fitted()
    rows = []
    variants = [("masked", lambda: estimator)]
    variants.append(("compacted", estimator.compact))
    variants.append(("sparse", lambda: to_sparse(estimator, min_sparsity=min_sparsity)))
    variants.append(("int8", lambda: quantize_int8(estimator)))
    variants.append(("compacted+int8", lambda: quantize_int8(estimator.compact())))
    base_score = estimator.score(X, y)
    base_bytes = state_bytes(estimator.module_)
    for name, build in variants:
        try:
            variant = build()
        except ValueError as exc:
            rows.append({"variant": name, "note": str(exc)})
            continue
        if hasattr(variant, "module_"):
            size, values = state_bytes(variant.module_), stored_values(variant.module_)
        else:  # an ONNX Runtime predictor (int8)
            size, values = variant.n_bytes, variant.stored_values
        score = base_score if variant is estimator else variant.score(X, y)
        rows.append(
            {
                "variant": name,
                "stored_values": values,
                "bytes": size,
                "size_ratio": size / base_bytes,
                "score": score,
                "score_change": score - base_score,
                "note": "",
            }
        )
    columns = ["variant", "stored_values", "bytes", "size_ratio", "score", "score_change", "note"]
    return pd.DataFrame(rows, columns=columns)
