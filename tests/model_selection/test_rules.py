"""The one-standard-error rule on hand-built cv_results_ whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GridSearchCV

from skprune import MagnitudePruning, OneShot, OneStandardErrorRule, PrunedNetClassifier, sparsity_scorer
from skprune.model_selection._rules import best_score_index, one_standard_error_index, standard_error


def make_results(sparsities, fold_scores, key="param_pruner__sparsity", metric="score", extra=None):
    """cv_results_ like GridSearchCV's from per-candidate fold scores."""
    fold_scores = np.asarray(fold_scores, dtype=float)
    results = {key: np.ma.masked_array(sparsities, dtype=object)}
    results["params"] = [{key[len("param_") :]: s} for s in sparsities]
    for k in range(fold_scores.shape[1]):
        results[f"split{k}_test_{metric}"] = fold_scores[:, k]
    results[f"mean_test_{metric}"] = fold_scores.mean(axis=1)
    results[f"std_test_{metric}"] = fold_scores.std(axis=1)
    results.update(extra or {})
    return results


def folds(mean, half_spread):
    """Four fold scores: mean +- half_spread, twice each."""
    return [mean - half_spread, mean - half_spread, mean + half_spread, mean + half_spread]


# four folds at mean +- d: std(ddof=1) = d * sqrt(4/3), SE = d * sqrt(4/3) / 2 = d / sqrt(3)
SE_PER_D = 1 / np.sqrt(3)


def test_standard_error_matches_definition():
    scores = np.array([[0.9, 0.8, 0.85, 0.95], [1.0, 1.0, 1.0, 1.0]])
    expected = scores.std(axis=1, ddof=1) / 2
    np.testing.assert_allclose(standard_error(scores, axis=1), expected)
    np.testing.assert_allclose(standard_error(folds(0.5, 0.03)), 0.03 * SE_PER_D)
    # NaN folds (failed fits) are left out; one finite score gives 0
    np.testing.assert_allclose(standard_error([0.8, np.nan, 0.9]), np.std([0.8, 0.9], ddof=1) / np.sqrt(2))
    assert standard_error([0.8, np.nan]) == 0.0


def test_one_se_picks_sparsest_within_one_se():
    # best is 0.5 (mean 0.95, SE 0.03/sqrt(3) = 0.0173) -> threshold 0.9327
    results = make_results(
        [0.0, 0.5, 0.8, 0.9, 0.95],
        [folds(0.94, 0.01), folds(0.95, 0.03), folds(0.94, 0.01), folds(0.935, 0.05), folds(0.90, 0.01)],
    )
    assert one_standard_error_index(results) == 3  # 0.935 >= 0.9327, 0.90 is not
    assert best_score_index(results["mean_test_score"], results["param_pruner__sparsity"]) == 1
    assert OneStandardErrorRule()(results) == 3


def test_one_se_uses_the_best_candidates_se_not_the_others():
    # candidate 2 has a huge SE but a mean below best - SE(best): excluded
    results = make_results([0.2, 0.6, 0.9], [folds(0.90, 0.0), folds(0.80, 0.3), folds(0.85, 0.3)])
    assert one_standard_error_index(results) == 0
    # a mean exactly at the threshold is within one SE
    d = 0.03
    results = make_results([0.2, 0.6], [folds(0.90, d), folds(0.90 - d * SE_PER_D, 0.0)])
    assert one_standard_error_index(results) == 1


def test_one_se_equals_best_when_nothing_sparser_is_close():
    results = make_results([0.5, 0.9, 0.99], [folds(0.80, 0.01), folds(0.95, 0.001), folds(0.70, 0.01)])
    assert one_standard_error_index(results) == 1
    assert best_score_index(results["mean_test_score"], results["param_pruner__sparsity"]) == 1


def test_best_breaks_ties_toward_larger_sparsity_and_ignores_nan():
    assert best_score_index([0.9, 0.9, 0.8], [0.1, 0.5, 0.9]) == 1
    assert best_score_index([np.nan, 0.7, 0.8], [0.1, 0.5, 0.9]) == 2
    with pytest.raises(ValueError, match="every candidate failed"):
        best_score_index([np.nan, np.nan], [0.1, 0.5])


def test_one_se_order_of_rows_does_not_matter_and_other_params_break_ties():
    # two alphas per sparsity, rows shuffled; within one SE of best: (0.9, alpha=1e-3) and (0.9, alpha=1e-4)
    rows = [
        (0.9, 1e-4, folds(0.93, 0.0)),
        (0.5, 1e-4, folds(0.95, 0.06)),  # best, SE 0.0346 -> threshold 0.9154
        (0.95, 1e-4, folds(0.90, 0.0)),
        (0.9, 1e-3, folds(0.94, 0.0)),
        (0.5, 1e-3, folds(0.91, 0.0)),
    ]
    results = make_results(
        [r[0] for r in rows],
        [r[2] for r in rows],
        key="param_net__pruner__sparsity",
    )
    results["params"] = [{"net__pruner__sparsity": r[0], "net__alpha": r[1]} for r in rows]
    assert one_standard_error_index(results) == 3  # sparsity 0.9, higher mean of the two


def test_one_se_works_on_dataframes_multi_metric_and_measured_sparsity():
    results = make_results(
        [0.5, 0.8, 0.9],
        [folds(0.95, 0.03), folds(0.94, 0.0), folds(0.90, 0.0)],
        metric="accuracy",
        extra={"mean_test_sparsity": np.array([0.49, 0.81, 0.9]), "mean_test_r2": np.zeros(3)},
    )
    with pytest.raises(ValueError, match="multi-metric.*metric=<name>"):
        one_standard_error_index(results)
    with pytest.raises(ValueError, match="metric='f1' is not in cv_results"):
        one_standard_error_index(results, metric="f1")
    assert one_standard_error_index(results, metric="accuracy") == 1
    assert one_standard_error_index(pd.DataFrame(results), metric="accuracy") == 1
    assert OneStandardErrorRule(metric="accuracy", sparsity="mean_test_sparsity")(results) == 1


def test_one_se_clear_errors_on_malformed_results():
    results = make_results([0.5, 0.9], [folds(0.9, 0.0), folds(0.9, 0.0)], key="param_alpha")
    with pytest.raises(ValueError, match="no 'param_...pruner__sparsity' key"):
        one_standard_error_index(results)
    results = make_results([0.5, 0.9], [folds(0.9, 0.0), folds(0.9, 0.0)])
    del results["split0_test_score"], results["split1_test_score"]
    del results["split2_test_score"], results["split3_test_score"]
    with pytest.raises(ValueError, match="split<k>_test_score"):
        one_standard_error_index(results)
    results = make_results([0.5, 0.9], [folds(0.9, 0.0), folds(0.9, 0.0)])
    results["param_pruner__sparsity"] = np.ma.masked_array([0.5, 0.9], mask=[False, True], dtype=object)
    with pytest.raises(ValueError, match="no value for candidates \\[1\\]"):
        one_standard_error_index(results)
    with pytest.raises(TypeError, match="dict of arrays or a DataFrame"):
        one_standard_error_index([1, 2, 3])


def test_refit_callable_in_grid_search_with_sparsity_scorer(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(schedule=OneShot(at=0.5)),
        max_epochs=4,
        batch_size=32,
        lr=0.01,
        random_state=0,
    )
    search = GridSearchCV(
        net,
        {"pruner__sparsity": [0.0, 0.5, 0.9]},
        cv=3,
        scoring={"accuracy": "accuracy", "sparsity": sparsity_scorer},
        refit=OneStandardErrorRule(metric="accuracy"),
    ).fit(X, y)
    expected = one_standard_error_index(search.cv_results_, metric="accuracy")
    assert search.best_index_ == expected
    np.testing.assert_allclose(search.cv_results_["mean_test_sparsity"], [0.0, 0.5, 0.9], atol=2e-3)
    assert search.best_estimator_.pruner.sparsity == search.cv_results_["param_pruner__sparsity"][expected]
    assert sparsity_scorer(search.best_estimator_) == pytest.approx(
        search.cv_results_["mean_test_sparsity"][expected], abs=2e-3
    )
