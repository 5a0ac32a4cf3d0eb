import sys

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from skprune import (
    MagnitudePruning,
    OneShot,
    OneStandardErrorRule,
    PrunedNetClassifier,
    PrunedNetCV,
    plot_layer_sparsity,
    plot_sparsity_path,
)
from skprune.model_selection._rules import standard_error

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NET = dict(module__hidden_layer_sizes=(12, 8), batch_size=32, lr=0.02, random_state=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def path_search(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(), **NET)
    return PrunedNetCV(
        net, sparsities=[0.0, 0.6, 0.9], cv=3, dense_epochs=4, finetune_epochs=1, selection="1se"
    ).fit(X, y)


def test_path_plot_from_pruned_net_cv(path_search):
    ax = plot_sparsity_path(path_search)
    (container,) = ax.containers  # one error-bar line
    line = container.lines[0]
    np.testing.assert_allclose(line.get_xdata(), [0.0, 0.6, 0.9])
    np.testing.assert_allclose(line.get_ydata(), path_search.cv_results_["mean_test_score"])
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"chosen: sparsity {path_search.best_sparsity_:g}" in labels
    assert "best mean − 1 SE" in labels  # selection="1se" draws the threshold
    threshold = [ln for ln in ax.get_lines() if ln.get_label() == "best mean − 1 SE"][0]
    mean, se = path_search.cv_results_["mean_test_score"], path_search.cv_results_["se_test_score"]
    top = int(np.argmax(mean))
    assert threshold.get_ydata()[0] == pytest.approx(mean[top] - se[top])
    chosen = [ln for ln in ax.get_lines() if ln.get_label().startswith("chosen")][0]
    assert chosen.get_xdata()[0] == path_search.best_sparsity_
    assert ax.get_xlabel().startswith("sparsity")
    assert ax.get_ylabel() == "cross-validated accuracy"


def test_path_plot_from_grid_search_with_other_params(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(schedule=OneShot(at=0.5)), max_epochs=2, **NET)
    grid = GridSearchCV(
        net,
        {"pruner__sparsity": [0.0, 0.8], "alpha": [1e-4, 1e-2]},
        cv=2,
        refit=OneStandardErrorRule(),
    ).fit(X, y)
    fig, ax = plt.subplots()
    assert plot_sparsity_path(grid, ax=ax) is ax
    assert len(ax.containers) == 2  # one line per alpha
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "alpha=0.0001" in labels and "alpha=0.01" in labels and "best mean − 1 SE" in labels
    for container in ax.containers:
        np.testing.assert_allclose(container.lines[0].get_xdata(), [0.0, 0.8])
    # error bars are one standard error of the fold scores
    splits = np.column_stack([grid.cv_results_[f"split{k}_test_score"] for k in range(2)])
    se = standard_error(splits, axis=1)
    segments = ax.containers[0].lines[2][0].get_segments()
    first = np.flatnonzero(grid.cv_results_["param_alpha"] == 1e-4)
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], 2 * se[first], atol=1e-9)


def test_layer_sparsity_bars(path_search):
    ax = plot_layer_sparsity(path_search)
    table = path_search.best_estimator_.pruning_report()
    heights = [patch.get_height() for patch in ax.patches]
    np.testing.assert_allclose(heights, table["sparsity"].astype(float))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(table["layer"])
    with pytest.raises(TypeError, match="PrunedNet"):
        plot_layer_sparsity(object())


def test_missing_matplotlib_says_what_to_install(path_search, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'skprune\[plot\]'"):
        plot_sparsity_path(path_search)
