"""scikit-learn's own estimator checks; the only expected failures are the sample-weight equivalence checks.

Like scikit-learn's own ``MLPClassifier`` (which marks them expected to
fail too), shuffled mini-batches make weights of 2 differ from repeated
rows by the batch composition; with full-batch training they are equal up
to float rounding, which ``tests/test_sample_weight.py`` asserts.

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


SAMPLE_WEIGHT_REASON = "shuffled mini-batches differ; equivalence holds full-batch (test_sample_weight.py)"
EXPECTED_FAILED = {
    "check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_REASON,
    "check_sample_weight_equivalence_on_sparse_data": SAMPLE_WEIGHT_REASON,
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda estimator: EXPECTED_FAILED)
def test_sklearn_compatible_estimator(estimator, check):
    torch.set_num_threads(1)
    check(estimator)
