"""Deployment: compaction, exports (CSR, int8) and safe persistence."""

from ._compaction import compact_module
from ._export import compression_report, quantize_int8, to_sparse
from ._persistence import load, register_serializable, save

__all__ = [
    "compact_module",
    "compression_report",
    "load",
    "quantize_int8",
    "register_serializable",
    "save",
    "to_sparse",
]
