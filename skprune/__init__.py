"""skprune: neural-network pruning as a scikit-learn hyperparameter.

The public API is re-exported here; the subpackages show the layers:
:mod:`skprune.nn` (networks and the unit graph), :mod:`skprune.pruners`
(strategies and schedules), :mod:`skprune.model_selection` (the CV path,
selection rules, scorers), :mod:`skprune.inspection` (reports and plots) and
:mod:`skprune.deploy` (compaction, exports, persistence).
"""

from ._classifier import PrunedNetClassifier
from ._estimator import PrunedNet
from ._regressor import PrunedNetRegressor
from ._training._log import TrainingLog
from ._version import __version__
from .deploy import (
    OnnxPredictor,
    compact_module,
    compression_report,
    get_untrusted_types,
    load,
    quantize_int8,
    register_serializable,
    save,
    to_onnx,
    to_sparse,
)
from .exceptions import CompactionError, PersistenceError, TrainingDivergedError
from .inspection import plot_history, plot_layer_sparsity
from .model_selection import (
    OneStandardErrorRule,
    PrunedNetCV,
    one_standard_error_index,
    plot_sparsity_path,
    sparsity_scorer,
)
from .nn import MLP, ConvNet
from .pruners import (
    BasePruner,
    BaseSchedule,
    BlockPruning,
    ChannelPruning,
    CombinedPruning,
    FunctionPruner,
    GradientStatistics,
    InputPruning,
    Iterative,
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    Polynomial,
    PruningContext,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)
from .pruners._masks import MaskStore

__all__ = [
    "BasePruner",
    "BaseSchedule",
    "BlockPruning",
    "ChannelPruning",
    "CombinedPruning",
    "CompactionError",
    "ConvNet",
    "FunctionPruner",
    "GradientStatistics",
    "InputPruning",
    "Iterative",
    "L1Pruning",
    "LotteryTicket",
    "MLP",
    "MagnitudePruning",
    "MaskStore",
    "NeuronPruning",
    "OneShot",
    "OneStandardErrorRule",
    "OnnxPredictor",
    "PersistenceError",
    "Polynomial",
    "PrunedNet",
    "PrunedNetCV",
    "PrunedNetClassifier",
    "PrunedNetRegressor",
    "PruningContext",
    "RandomPruning",
    "SNIPPruning",
    "TaylorPruning",
    "TrainingDivergedError",
    "TrainingLog",
    "__version__",
    "compact_module",
    "compression_report",
    "load",
    "one_standard_error_index",
    "plot_history",
    "plot_layer_sparsity",
    "plot_sparsity_path",
    "quantize_int8",
    "register_serializable",
    "get_untrusted_types",
    "save",
    "sparsity_scorer",
    "to_onnx",
    "to_sparse",
]

from ._serializable import register_builtin as _register_builtin  # noqa: E402

_register_builtin(PrunedNet, PrunedNetClassifier, PrunedNetRegressor)  # load may rebuild these from a file
