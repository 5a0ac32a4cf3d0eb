"""Nothing silently wrong, nothing lost (issue 14): one test per guarantee, named after it."""

from __future__ import annotations

import threading
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from torch import nn

from skprune import MagnitudePruning, PrunedNetClassifier, PrunedNetRegressor
from skprune._cli import main
from skprune._version import __version__
from skprune.exceptions import TrainingDivergedError
from skprune.pruners import Iterative, OneShot
from skprune.pruners._masks import MaskStore

FAST = dict(max_epochs=6, batch_size=32, random_state=0, module__hidden_layer_sizes=(16,))


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X).astype(np.float32), y


def _pruned_weights(net):
    """Values of every masked (pruned) weight entry."""
    params = dict(net.module_.named_parameters())
    return torch.cat([params[name].detach()[pruned] for name, pruned in net.masks_.pruned.items()])


# ---------------------------------------------------------------- item 2
def test_set_params_on_a_fitted_net_keeps_the_fitted_model(iris):
    X, y = iris
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.7), **FAST).fit(X, y)
    proba, sparsity = net.predict_proba(X), net.sparsity_
    net.set_params(module__dropout=0.1, criterion__label_smoothing=0.1)
    np.testing.assert_array_equal(net.predict_proba(X), proba)
    assert net.sparsity_ == sparsity
    assert net.get_params()["module__dropout"] == 0.1
    net.fit(X, y)  # the new values take effect at the next fit
    assert any(isinstance(m, nn.Dropout) for m in net.module_.modules())
    assert net.criterion_.label_smoothing == 0.1


def test_partial_fit_after_a_module_parameter_changed_raises_and_keeps_the_model(iris):
    X, y = iris
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.7), **FAST).fit(X, y)
    proba = net.predict_proba(X)
    net.set_params(module__hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match=r"module__hidden_layer_sizes changed after the network was fitted"):
        net.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"warm_start=True continues training the fitted network"):
        net.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(X), proba)
    net.set_params(module__hidden_layer_sizes=(16,), warm_start=False)  # back to the fitted value
    net.partial_fit(X, y)
    assert not np.array_equal(net.predict_proba(X), proba)


def test_set_params_of_the_optimizer_on_a_fitted_net_takes_effect_at_partial_fit(iris):
    X, y = iris
    net = PrunedNetClassifier(**FAST).fit(X, y)
    proba = net.predict_proba(X)
    net.set_params(optimizer=torch.optim.SGD)
    np.testing.assert_array_equal(net.predict_proba(X), proba)
    assert isinstance(net.optimizer_, torch.optim.Adam)
    net.partial_fit(X, y)
    assert isinstance(net.optimizer_, torch.optim.SGD)


# ---------------------------------------------------------------- item 3
@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_continuing_on_other_classes_raises_and_keeps_the_model(iris, how):
    X, y = iris
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    proba, classes = net.predict_proba(X), net.classes_.copy()
    y_other = np.where(y == 0, 10, 20)
    with pytest.raises(ValueError, match="labels not seen in the first fit"):
        if how == "warm_start":
            net.set_params(warm_start=True).fit(X, y_other)
        else:
            net.partial_fit(X, y_other)
    np.testing.assert_array_equal(net.classes_, classes)
    np.testing.assert_array_equal(net.predict_proba(X), proba)


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_continuing_on_twice_the_features_raises_and_keeps_the_model(iris, how):
    X, y = iris
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    proba = net.predict_proba(X)
    X_wide = np.hstack([X, X])
    with pytest.raises(ValueError, match="X has 8 features, but PrunedNetClassifier is expecting 4"):
        if how == "warm_start":
            net.set_params(warm_start=True).fit(X_wide, y)
        else:
            net.partial_fit(X_wide, y)
    assert net.n_features_in_ == 4
    np.testing.assert_array_equal(net.predict_proba(X), proba)


def test_continuing_a_regressor_on_another_number_of_targets_raises(iris):
    X, _ = iris
    net = PrunedNetRegressor(**FAST).fit(X, X[:, 0])
    pred = net.predict(X)
    with pytest.raises(ValueError, match="y has 2 target"):
        net.partial_fit(X, X[:, :2])
    np.testing.assert_array_equal(net.predict(X), pred)


# ---------------------------------------------------------------- item 6
class _InterruptingAdam(torch.optim.Adam):
    """Adam that raises KeyboardInterrupt right after its n-th step (before the masks are applied)."""

    interrupt_at = 10

    def step(self, closure=None):
        loss = super().step(closure)
        self.n_steps = getattr(self, "n_steps", 0) + 1
        if self.n_steps == self.interrupt_at:
            raise KeyboardInterrupt
        return loss


def test_interrupt_right_after_an_optimizer_step_keeps_pruned_weights_exactly_zero(iris):
    X, y = iris
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.8, schedule=OneShot(at=0.0)), optimizer=_InterruptingAdam, **FAST
    )
    net.fit(X, y)  # 5 steps per epoch: the 10th is the last of epoch 2, after the one pruning step
    pruned = _pruned_weights(net)
    assert pruned.numel() > 0
    assert torch.count_nonzero(pruned) == 0
    assert net.stopped_early_ and net.n_epochs_completed_ == 1


class _StopAfter(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epochs:
            raise KeyboardInterrupt


def test_interrupt_before_the_schedule_finished_warns_and_records_the_epoch(iris):
    X, y = iris
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.9, schedule=Iterative(n_steps=3, start=0.2, end=0.8)),
        callbacks=[("stop", _StopAfter(2))],
        **FAST,
    )
    with pytest.warns(UserWarning, match=r"before the pruning schedule finished.*instead of the target 0\.9"):
        net.fit(X, y)
    assert net.stopped_early_ is True
    assert net.n_epochs_completed_ == 2
    assert net.sparsity_ < 0.9  # honest: counted from the weights
    complete = PrunedNetClassifier(pruner=MagnitudePruning(0.9), **FAST).fit(X, y)
    assert complete.stopped_early_ is False and complete.n_epochs_completed_ == FAST["max_epochs"]


class _InterruptibleModule(nn.Module):
    interrupt = False

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        if _InterruptibleModule.interrupt:
            raise KeyboardInterrupt
        self.fc = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.fc(X)


def test_interrupt_while_the_module_is_built_restores_the_previous_model(iris, monkeypatch):
    X, y = iris
    net = PrunedNetClassifier(_InterruptibleModule, max_epochs=2, random_state=0).fit(X, y)
    proba = net.predict_proba(X)
    monkeypatch.setattr(_InterruptibleModule, "interrupt", True)
    with pytest.raises(KeyboardInterrupt):
        net.fit(np.hstack([X, X]), y)
    assert net.n_features_in_ == 4
    np.testing.assert_array_equal(net.predict_proba(X), proba)


def test_a_partial_fit_that_diverges_restores_the_fitted_model(iris):
    X, y = iris
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    proba, n_epochs = net.predict_proba(X), len(net.history)
    net.set_params(lr=1e3)  # applies to the running optimizer
    with pytest.raises(TrainingDivergedError):
        net.partial_fit(X, y)
    np.testing.assert_array_equal(net.predict_proba(X), proba)
    assert len(net.history) == n_epochs
    net.set_params(lr=1e-3).partial_fit(X, y)  # the restored optimizer still drives the restored module
    assert not np.array_equal(net.predict_proba(X), proba)
    assert torch.count_nonzero(_pruned_weights(net)) == 0


# ---------------------------------------------------------------- item 7
def test_explosive_finite_loss_raises_training_diverged_naming_the_learning_rate(iris):
    X, y = iris
    with pytest.raises(TrainingDivergedError, match=r"epoch 1 grew to .*learning rate is the likely cause"):
        PrunedNetClassifier(lr=1e3, **FAST).fit(X, y)


def test_training_on_extreme_scale_inputs_warns_to_scale_them(iris):
    X, y = iris
    with pytest.warns(UserWarning, match=r"inputs reach \|X\| = .*e\+30.*StandardScaler"):
        PrunedNetClassifier(**FAST).fit(X * 1e30, y)


def test_a_normal_pruned_fit_raises_no_divergence_or_scale_warning(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), lr=1e-2, **{**FAST, "max_epochs": 10})
        net.fit(X * 100, y)  # unscaled but not extreme
    assert net.score(X * 100, y) > 0.8


# ---------------------------------------------------------------- item 8
def test_lbfgs_with_pruning_keeps_converging_after_pruning(iris):
    X, y = iris
    net = PrunedNetClassifier(
        pruner=MagnitudePruning(0.9),
        optimizer=torch.optim.LBFGS,
        lr=0.1,
        batch_size=-1,
        max_epochs=12,
        random_state=0,
    ).fit(X, y)
    losses = net.history[:, "train_loss"]
    assert net.sparsity_ == pytest.approx(0.9, abs=0.01)
    assert losses[-1] < 0.2 * losses[0]  # before the fix it ended ~10x above the start
    assert torch.count_nonzero(_pruned_weights(net)) == 0


def test_pruning_resets_the_whole_state_of_an_optimizer_that_is_not_elementwise():
    layer = nn.Linear(3, 2)
    optimizer = torch.optim.LBFGS(layer.parameters())

    def closure():
        optimizer.zero_grad()
        loss = layer(torch.ones(4, 3)).pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    assert optimizer.state  # history of the dense problem
    masks = MaskStore()
    masks.update({"weight": torch.tensor([[True, False, True], [True, True, True]])})
    masks.mask_optimizer_state(layer, optimizer)
    assert not optimizer.state


# ---------------------------------------------------------------- item 9
class _UserDropoutNet(nn.Module):
    """A user's module with torch's own nn.Dropout (draws from the global RNG)."""

    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features_in, 32), nn.ReLU(), nn.Dropout(0.3))
        self.out = nn.Linear(32, n_outputs)

    def forward(self, X):
        return self.out(self.body(X))


@pytest.mark.parametrize(
    "params",
    [dict(module__dropout=0.3), dict(module=_UserDropoutNet)],
    ids=["MLP dropout", "user nn.Dropout"],
)
def test_fits_in_two_threads_equal_the_sequential_fit(iris, params):
    X, y = iris
    base = PrunedNetClassifier(
        pruner=MagnitudePruning(0.5), max_epochs=8, batch_size=16, random_state=0, **params
    )
    expected = clone(base).fit(X, y).module_.state_dict()
    nets = [clone(base) for _ in range(4)]
    barrier = threading.Barrier(len(nets))

    def fit(net):
        barrier.wait()
        net.fit(X, y)

    threads = [threading.Thread(target=fit, args=(net,)) for net in nets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for net in nets:
        for name, value in net.module_.state_dict().items():
            torch.testing.assert_close(value, expected[name], rtol=0, atol=0)


def test_grid_search_with_the_threading_backend_gives_the_sequential_cv_scores(iris):
    X, y = iris
    net = PrunedNetClassifier(max_epochs=4, batch_size=16, random_state=0, module__dropout=0.3)
    grid = {"pruner": [MagnitudePruning(0.5), MagnitudePruning(0.8)]}
    sequential = GridSearchCV(net, grid, cv=2).fit(X, y).cv_results_
    with joblib.parallel_backend("threading", n_jobs=2):
        threaded = GridSearchCV(net, grid, cv=2, n_jobs=2).fit(X, y).cv_results_
    for key in ("split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(threaded[key], sequential[key])


def test_a_fit_leaves_the_callers_global_torch_rng_alone(iris):
    X, y = iris
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    PrunedNetClassifier(module=_UserDropoutNet, max_epochs=2, random_state=0).fit(X, y)
    torch.testing.assert_close(torch.rand(3), expected)


# --------------------------------------------------------------- item 11
def test_meta_device_is_refused_with_a_clear_error(iris):
    X, y = iris
    with pytest.raises(ValueError, match="device='meta' holds tensor shapes but no values"):
        PrunedNetClassifier(device="meta", **FAST).fit(X, y)


class _TupleNet(nn.Module):
    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.fc = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        out = self.fc(X)
        return out, out.detach()


def test_a_module_returning_a_tuple_gets_a_clear_error(iris):
    X, y = iris
    with pytest.raises(TypeError, match=r"returned a tuple \(Tensor, Tensor\).*Return only that tensor"):
        PrunedNetClassifier(_TupleNet, max_epochs=1).fit(X, y)


class _TiedNet(nn.Module):
    def __init__(self, n_features_in, n_outputs):
        super().__init__()
        self.enc = nn.Linear(n_features_in, n_features_in)
        self.dec = nn.Linear(n_features_in, n_features_in)
        self.dec.weight = self.enc.weight
        self.out = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.out(torch.relu(self.dec(torch.relu(self.enc(X)))))


def test_tied_weights_get_a_clear_error_and_untied_layers_can_be_pruned(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"Layers \['enc', 'dec'\] share one weight tensor.*\['out'\]"):
        PrunedNetClassifier(_TiedNet, pruner=MagnitudePruning(0.5), max_epochs=1).fit(X, y)
    net = PrunedNetClassifier(_TiedNet, pruner=MagnitudePruning(0.5, layers="out"), max_epochs=1).fit(X, y)
    assert net.layer_sparsity_["out"] == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("lr", [True, "0.1", -1.0, float("nan")])
def test_an_lr_that_is_not_a_positive_number_is_refused(iris, lr):
    X, y = iris
    with pytest.raises(ValueError, match="lr must be a positive number"):
        PrunedNetClassifier(lr=lr, max_epochs=1).fit(X, y)


def test_demo_with_zero_jobs_gives_a_usage_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--n-jobs", "0"])
    assert exc.value.code == 2
    assert "--n-jobs: must not be 0" in capsys.readouterr().err


def test_version_flag_prints_the_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"skprune {__version__}"


def test_a_string_column_without_an_encoder_is_named_in_the_error():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0], "quality": ["nice", "bad", "nice", "bad"]})
    with pytest.raises(ValueError, match=r"column 'quality' of X holds 'nice'.*OneHotEncoder"):
        PrunedNetClassifier(max_epochs=1).fit(X, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"column 1 of X holds 'nice'"):
        PrunedNetClassifier(max_epochs=1).fit(X.to_numpy(), [0, 1, 0, 1])


def test_pruning_report_says_not_pruned_for_a_layer_at_sparsity_zero(iris):
    X, y = iris
    # one weight of 112: global ranking leaves one of the two layers untouched
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.01), **FAST).fit(X, y)
    report = net.pruning_report()
    assert (report["sparsity"] == 0).any() and (report["sparsity"] > 0).any()
    np.testing.assert_array_equal(report["pruned"], report["sparsity"] > 0)


def test_classifier_predict_proba_is_float64_like_scikit_learn(iris):
    X, y = iris
    proba = PrunedNetClassifier(max_epochs=1).fit(X, y).predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


def test_warm_start_fit_of_an_initialized_net_keeps_loaded_weights_and_learns_the_data():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    dense = PrunedNetClassifier(**FAST).fit(X, y)
    net = PrunedNetClassifier(
        module__n_features_in=4, module__n_outputs=3, pruner=MagnitudePruning(0.5, schedule=OneShot(at=0.5)),
        warm_start=True, **{**FAST, "max_epochs": 2},
    ).initialize()
    net.module_.load_state_dict(dense.module_.state_dict())
    net.fit(X, y)  # initialized, never fitted: the data is learned, the loaded weights are kept
    assert list(net.classes_) == [0, 1, 2] and net.n_features_in_ == 4
    # not re-initialized: two epochs at lr 1e-3 leave the surviving weights near the loaded ones
    after, loaded = net.module_.layers.fc0.weight.detach(), dense.module_.layers.fc0.weight.detach()
    kept = after != 0
    assert torch.allclose(after[kept], loaded[kept], atol=0.05)
    assert net.score(X, y) > 0.6  # a constant model scores 0.33
    assert net.sparsity_ == pytest.approx(0.5, abs=0.05)
