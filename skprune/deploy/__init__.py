"""Deployment: compaction, exports (CSR, ONNX, int8) and safe persistence."""

from ._compaction import compact_module
from ._export import compression_report, to_sparse
from ._onnx import to_onnx
from ._onnx_runtime import OnnxPredictor, quantize_int8
from ._persistence import RuntimeParametersNotSaved, get_untrusted_types, load, register_serializable, save

__all__ = [
    "OnnxPredictor",
    "RuntimeParametersNotSaved",
    "compact_module",
    "compression_report",
    "get_untrusted_types",
    "load",
    "quantize_int8",
    "register_serializable",
    "save",
    "to_onnx",
    "to_sparse",
]
