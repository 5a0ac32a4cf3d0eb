"""scikit-learn's own estimator checks, with no expected failures.

Run ``python -m pytest tests/test_sklearn_checks.py -q`` to see the count of
checks passed.
"""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from skprune import MagnitudePruning, OneShot, PrunedNetClassifier, PrunedNetRegressor

ESTIMATORS = [
    PrunedNetClassifier(),
    PrunedNetRegressor(),
    PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.5, schedule=OneShot(at=0.5))),
    PrunedNetRegressor(pruner=MagnitudePruning(sparsity=0.5)),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    torch.set_num_threads(1)
    check(estimator)
