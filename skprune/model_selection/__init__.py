"""Choosing sparsity: the warm-started CV path, selection rules, scorers and the path plot."""

from ._cv import PrunedNetCV
from ._parallel import register_dask_backend
from ._plots import plot_sparsity_path
from ._rules import OneStandardErrorRule, one_standard_error_index
from ._scorers import sparsity_scorer

__all__ = [
    "OneStandardErrorRule",
    "PrunedNetCV",
    "one_standard_error_index",
    "plot_sparsity_path",
    "register_dask_backend",
    "sparsity_scorer",
]

from .._serializable import register_builtin  # noqa: E402  (load may rebuild these from a file)

register_builtin(PrunedNetCV, OneStandardErrorRule, one_standard_error_index, sparsity_scorer)
