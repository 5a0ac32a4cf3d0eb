"""verbose output, history_frame, plot_history and the HTML repr's documentation links."""

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.dataset import ValidSplit

import skprune
from skprune import (
    Iterative,
    MagnitudePruning,
    OneShot,
    PrunedNetClassifier,
    PrunedNetRegressor,
    TrainingLog,
    plot_history,
)
from skprune._doc_link import doc_version, public_module

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _fit(X, y, **params):
    defaults = dict(
        pruner=MagnitudePruning(sparsity=0.5, schedule=Iterative(n_steps=2, start=0.0, end=0.5)),
        max_epochs=4,
        batch_size=64,
        random_state=0,
        module__hidden_layer_sizes=(16,),
    )
    defaults.update(params)
    return PrunedNetClassifier(**defaults).fit(X, y)


def _table_rows(out):
    lines = [ANSI.sub("", line) for line in out.splitlines()]
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["epoch"])
    columns = lines[header].split()
    rows = [line.split() for line in lines[header + 2 :] if line.strip() and line.split()[0].isdigit()]
    return columns, rows


def test_verbose_1_prints_table_with_sparsity_column(clf_data, capsys):
    X, y = clf_data
    net = _fit(X, y, verbose=1, train_split=ValidSplit(5))
    captured = capsys.readouterr()
    columns, rows = _table_rows(captured.out)
    assert columns[0] == "epoch" and columns[-1] == "dur"
    assert columns[-2] == "sparsity"
    assert {"train_loss", "valid_loss", "valid_acc"} <= set(columns)
    assert len(rows) == 4
    # the printed sparsity is what the history recorded (measured from the weights)
    printed = [float(row[columns.index("sparsity")]) for row in rows]
    np.testing.assert_allclose(printed, net.history[:, "sparsity"], atol=1e-4)
    assert 0 < printed[0] < printed[-1] == pytest.approx(net.sparsity_, abs=1e-4)
    # no progress bar at verbose=1
    assert "batch/s" not in captured.err and "|" not in captured.err


def test_verbose_0_prints_nothing(clf_data, capsys):
    X, y = clf_data
    _fit(X, y, verbose=0, train_split=ValidSplit(5))
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_2_adds_progress_bar(clf_data, capsys):
    X, y = clf_data
    net = _fit(X, y, verbose=2, batch_size=100)
    captured = capsys.readouterr()
    columns, rows = _table_rows(captured.out)
    assert "sparsity" in columns and len(rows) == 4
    err = captured.err
    # 300 samples, batch 100: 3 batches per epoch, 4 epochs
    assert "12/12" in err
    assert "epoch 4/4" in err
    assert f"sparsity={net.sparsity_:.4f}" in err
    assert net.callbacks_[-1][1].bar_ is None  # closed at the end of the fit


def test_verbose_2_bar_total_with_validation_split(clf_data, capsys):
    X, y = clf_data
    _fit(X, y, verbose=2, batch_size=60, max_epochs=2, train_split=ValidSplit(5))
    err = capsys.readouterr().err
    # 240 training samples in batches of 60: 4 batches per epoch, the validation set not counted
    assert "8/8" in err


def test_sparsity_after_last_epoch_is_reported(clf_data, capsys):
    X, y = clf_data
    net = _fit(X, y, verbose=1, pruner=MagnitudePruning(sparsity=0.8, schedule=OneShot(at=1.0)))
    out = ANSI.sub("", capsys.readouterr().out)
    _, rows = _table_rows(out)
    assert float(rows[-1][-2]) == 0.0
    assert net.sparsity_ > 0.7
    assert f"pruned after the last epoch: sparsity {net.sparsity_:.4f}" in out
    assert net.history_frame()["sparsity"].iloc[-1] == pytest.approx(net.sparsity_)


def test_print_log_is_training_log_and_keeps_its_params(clf_data, capsys):
    X, y = clf_data
    net = _fit(X, y, verbose=1, callbacks__print_log__keys_ignored=["dur"])
    assert isinstance(dict(net.callbacks_)["print_log"], TrainingLog)
    columns, _ = _table_rows(capsys.readouterr().out)
    assert "dur" not in columns and columns[-1] == "sparsity"
    reg = PrunedNetRegressor().initialize_callbacks()
    assert isinstance(dict(reg.callbacks_)["print_log"], TrainingLog)


def test_training_log_custom_sink_always_receives_table(clf_data):
    X, y = clf_data
    lines = []
    _fit(X, y, verbose=0, max_epochs=2, callbacks__print_log__sink=lines.append)
    assert lines and "sparsity" in lines[0]


def test_history_frame(clf_data):
    X, y = clf_data
    net = _fit(X, y, train_split=ValidSplit(5))
    frame = net.history_frame()
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.name == "epoch"
    assert list(frame.index) == [1, 2, 3, 4]
    assert list(frame.columns) == ["train_loss", "valid_loss", "valid_acc", "sparsity", "dur"]
    np.testing.assert_allclose(frame["train_loss"], net.history[:, "train_loss"])
    np.testing.assert_allclose(frame["valid_acc"], net.history[:, "valid_acc"])
    sparsity = frame["sparsity"].to_numpy()
    # Iterative(2, start=0, end=0.5) over 4 epochs prunes before epochs 1 and 3
    assert 0 < sparsity[0] == sparsity[1] < sparsity[2] == sparsity[3] == pytest.approx(net.sparsity_)
    assert (frame["dur"] > 0).all()
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    # a copy: editing it leaves the history alone
    frame.loc[1, "train_loss"] = -1.0
    assert net.history[0, "train_loss"] > 0


def test_history_frame_continues_with_partial_fit(clf_data):
    X, y = clf_data
    net = _fit(X, y, max_epochs=2, pruner=None)
    net.partial_fit(X, y)
    frame = net.history_frame()
    assert list(frame.index) == [1, 2, 3, 4]
    assert list(frame.columns) == ["train_loss", "sparsity", "dur"]
    assert (frame["sparsity"] == 0).all()


def test_history_frame_keeps_custom_scalar_entries(clf_data):
    from skorch.callbacks import EpochScoring

    X, y = clf_data
    net = _fit(
        X,
        y,
        max_epochs=2,
        train_split=ValidSplit(5),
        callbacks=[("train_acc", EpochScoring("accuracy", on_train=True, name="train_acc"))],
    )
    frame = net.history_frame()
    assert "train_acc" in frame.columns and "train_acc_best" not in frame.columns


def test_history_frame_before_fit_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        PrunedNetClassifier().history_frame()


def test_plot_history(clf_data):
    plt = pytest.importorskip("matplotlib.pyplot")
    X, y = clf_data
    net = _fit(X, y, train_split=ValidSplit(5))
    ax = plot_history(make_pipeline(StandardScaler(), clone(net)).fit(X, y))
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train_loss", "valid_loss"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1, 2, 3, 4])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss"
    twin = ax.sparsity_axis
    assert twin is not None and twin.get_ylim() == (0, 1.05)
    assert ax.get_zorder() > twin.get_zorder()  # losses are drawn over the shaded sparsity
    np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), net.history[:, "sparsity"], atol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train_loss", "valid_loss", "sparsity"]
    plt.close("all")

    fig, given = plt.subplots()
    ax = plot_history(net, ax=given, metrics="valid_acc", sparsity=False)
    assert ax is given and ax.sparsity_axis is None
    assert [line.get_label() for line in ax.get_lines()] == ["valid_acc"]
    assert ax.get_ylabel() == "valid_acc"
    with pytest.raises(ValueError, match=r"metrics \['valid_f1'\].*available"):
        plot_history(net, ax=given, metrics=["valid_f1"])
    plt.close("all")


# ----------------------------------------------------------- HTML repr links
PUBLIC_ESTIMATORS = [
    getattr(skprune, name)
    for name in skprune.__all__
    if isinstance(getattr(skprune, name), type) and issubclass(getattr(skprune, name), BaseEstimator)
]


def _instance(cls):
    if cls is skprune.PrunedNetCV:
        return cls(PrunedNetClassifier())
    if cls is skprune.CombinedPruning:
        return cls([MagnitudePruning()])
    if cls in (skprune.BasePruner, skprune.BaseSchedule):
        return None
    return cls()


@pytest.mark.parametrize("cls", PUBLIC_ESTIMATORS, ids=lambda c: c.__name__)
def test_doc_link_points_at_skprune_docs(cls):
    estimator = _instance(cls)
    if estimator is None:
        pytest.skip("abstract base class")
    version = doc_version()
    expected = f"https://skprune.readthedocs.io/en/{version}/api/generated/skprune.{cls.__name__}.html"
    assert estimator._get_doc_link() == expected
    html = estimator._repr_html_()
    assert f'href="{expected}"' in html


def test_doc_link_of_nested_pruner_in_pipeline_html():
    from sklearn.utils import estimator_html_repr

    pipe = make_pipeline(StandardScaler(), PrunedNetClassifier(pruner=MagnitudePruning(sparsity=0.9)))
    html = estimator_html_repr(pipe)
    assert "skprune.PrunedNetClassifier.html" in html
    assert "scikit-learn.org" in html  # StandardScaler keeps sklearn's own link


def test_doc_link_of_user_subclass_is_empty():
    class MyPruner(MagnitudePruning):
        pass

    assert MyPruner()._get_doc_link() == ""


def test_doc_version_and_public_module():
    assert doc_version("0.1.0") == "0.1.0"
    assert doc_version("0.2.0.dev3") == "latest"
    assert doc_version("0.1.0+g1234") == "latest"
    assert doc_version("1.0rc1") == "latest"
    assert public_module(MagnitudePruning) == "skprune"
    assert public_module(TrainingLog) == "skprune"
    from skprune.pruners import StructuredPruner

    assert public_module(StructuredPruner) == "skprune.pruners"


def test_training_log_copies_without_its_bar():
    import copy
    import pickle

    from tqdm import tqdm

    log = TrainingLog().initialize()
    log.bar_ = tqdm(total=3, disable=True)
    assert copy.deepcopy(log).bar_ is None
    assert pickle.loads(pickle.dumps(log)).bar_ is None
    assert log.bar_ is not None  # the original keeps its bar
    log.bar_.close()
