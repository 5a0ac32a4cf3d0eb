"""GPU checks (``device="cuda"``); skipped where no CUDA GPU exists.

Run on a GPU machine with ``python -m pytest tests/test_gpu.py -m gpu -q``.
"""

import contextlib
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch._dynamo.utils
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

import skprune
from skprune import (
    ChannelPruning,
    CombinedPruning,
    ConvNet,
    FunctionPruner,
    InputPruning,
    L1Pruning,
    LotteryTicket,
    MagnitudePruning,
    NeuronPruning,
    PrunedNetClassifier,
    PrunedNetCV,
    PrunedNetRegressor,
    RandomPruning,
    SNIPPruning,
    TaylorPruning,
)
from skprune._random import fit_generator
from skprune._training._data import ArrayDataset
from skprune._training._step import Trainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

FAST = dict(max_epochs=6, lr=0.01, batch_size=32, random_state=0, device="cuda")


def _gradient_change_score(weight, stats):
    return (weight * stats.grad_mean).abs() if stats is not None else weight.abs()


STRATEGIES = [
    MagnitudePruning(0.8),
    MagnitudePruning(0.8, scope="layer"),
    RandomPruning(0.8),
    TaylorPruning(0.8),
    SNIPPruning(0.8),
    L1Pruning(0.8, strength=1e-4),
    LotteryTicket(0.8, n_rounds=2),
    FunctionPruner(_gradient_change_score, sparsity=0.8, gradients=True),
    NeuronPruning(0.5),
    InputPruning(n_features=5),
    CombinedPruning([("inputs", InputPruning(n_features=5)), ("weights", MagnitudePruning(0.5))]),
]


@pytest.mark.parametrize("pruner", STRATEGIES, ids=lambda p: type(p).__name__)
def test_every_strategy_fits_and_predicts_on_gpu(clf_data, pruner):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=pruner, **FAST).fit(X, y)
    assert next(net.module_.parameters()).device.type == "cuda"
    assert all(m.device.type == "cuda" for m in net.masks_.pruned.values())
    assert net.score(X, y) > 0.5
    if "n_params_after" in (getattr(net, "compacted_during_fit_", None) or {}):  # neurons removed, not masked
        assert net.compacted_during_fit_["n_params_after"] < net.compacted_during_fit_["n_params_before"]
    else:
        assert net.sparsity_ > 0.0


def test_data_is_moved_to_the_device_once(clf_data, monkeypatch):
    X, y = clf_data
    seen = []
    original = ArrayDataset.__init__

    def spy(self, X, y=None, device="cpu", **kwargs):
        seen.append((X.device.type, None if y is None else y.device.type))
        original(self, X, y, device, **kwargs)

    monkeypatch.setattr(ArrayDataset, "__init__", spy)
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST).fit(X, y)
    net.predict(X)
    assert seen and all(x == "cuda" and y in ("cuda", None) for x, y in seen)


def test_regressor_and_cv_on_gpu(reg_data, clf_data):
    X, y = reg_data
    reg = PrunedNetRegressor(pruner=MagnitudePruning(0.5), **{**FAST, "max_epochs": 30}).fit(X, y)
    assert reg.score(X, y) > 0.5
    Xc, yc = clf_data
    cv = PrunedNetCV(
        PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST), sparsities=[0.0, 0.5, 0.8], cv=3
    )
    cv.fit(Xc, yc)
    assert cv.scores_path_.shape == (3, 3)
    search = GridSearchCV(
        PrunedNetClassifier(pruner=MagnitudePruning(0.5), **FAST), {"pruner__sparsity": [0.5, 0.9]}, cv=2
    )
    assert search.fit(Xc, yc).best_estimator_.module_.layers.fc0.weight.is_cuda


def test_compaction_and_save_load_on_gpu(clf_data, tmp_path):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=NeuronPruning(0.5), **FAST).fit(X, y)
    small = net.compact()
    assert np.abs(small.predict_proba(X) - net.predict_proba(X)).max() <= 1e-5
    skprune.save(small, tmp_path / "net.skp")
    loaded = skprune.load(tmp_path / "net.skp")
    np.testing.assert_allclose(loaded.predict_proba(X), small.predict_proba(X), atol=1e-6)


def test_gpu_trained_model_unpickles_and_predicts_on_cpu_only_machine(clf_data, tmp_path):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=LotteryTicket(0.8, n_rounds=2), **FAST).fit(X, y)
    expected = net.predict_proba(X)
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(net))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import pickle, warnings, numpy as np, torch
        assert not torch.cuda.is_available()
        warnings.simplefilter("ignore")
        net = pickle.loads(open({str(tmp_path / "net.pkl")!r}, "rb").read())
        X = np.load({str(tmp_path / "X.npy")!r})
        proba = net.predict_proba(X)
        assert str(net.device) == "cpu", net.device
        assert np.abs(proba - np.load({str(tmp_path / "expected.npy")!r})).max() < 1e-4
        assert abs(net.sparsity_ - 0.8) < 0.01
        print("cpu ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**_env(), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert out.returncode == 0, out.stderr
    assert "cpu ok" in out.stdout


def test_channel_pruning_on_gpu():
    torch.manual_seed(0)
    X = np.random.RandomState(0).rand(64, 1 * 8 * 8).astype(np.float32)
    y = (X[:, :32].sum(axis=1) > X[:, 32:].sum(axis=1)).astype(int)

    class SmallConv(torch.nn.Module):
        def __init__(self, n_features_in, n_outputs):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Unflatten(1, (1, 8, 8)),
                torch.nn.Conv2d(1, 8, 3, padding=1),
                torch.nn.ReLU(),
                torch.nn.Flatten(),
                torch.nn.Linear(8 * 64, n_outputs),
            )

        def forward(self, X):
            return self.body(X)

    net = PrunedNetClassifier(module=SmallConv, pruner=ChannelPruning(0.5), **FAST).fit(X, y)
    assert net.module_.body[1].weight.is_cuda
    assert net.predict(X).shape == (64,)


def _env():
    import os

    return dict(os.environ)


def test_convnet_images_channel_pruning_compaction_on_gpu(digits, tmp_path, monkeypatch):
    # TF32 convolutions (cuDNN's default) pick kernels by shape: the compacted
    # network would differ by ~1e-3 for that reason alone
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)[:600]
    net = PrunedNetClassifier(
        module=ConvNet,
        module__channels=(8, 16),
        pruner=ChannelPruning(0.5),
        **{**FAST, "max_epochs": 8},
    ).fit(images, y[:600])
    assert all(p.is_cuda for p in net.module_.parameters())
    assert net.score(images, y[:600]) > 0.8
    small = net.compact()
    assert np.abs(small.predict_proba(images) - net.predict_proba(images)).max() <= 1e-5
    skprune.save(small, tmp_path / "conv.skp")
    loaded = skprune.load(tmp_path / "conv.skp")
    np.testing.assert_allclose(loaded.predict_proba(images), small.predict_proba(images), atol=1e-5)


def test_pretrained_module_instance_on_gpu_is_used_as_is(clf_data):
    from skprune import MLP

    X, y = clf_data
    dense = PrunedNetClassifier(**{**FAST, "max_epochs": 20}).fit(X, y)
    module = dense.module_  # already on cuda
    wrapped = PrunedNetClassifier(module=module, **{**FAST, "max_epochs": 1, "lr": 1e-12}).fit(X, y)
    assert wrapped.module_ is not module
    np.testing.assert_allclose(wrapped.predict_proba(X), dense.predict_proba(X), atol=1e-4)
    cpu_module = MLP(X.shape[1], 3).to("cpu")
    moved = PrunedNetClassifier(module=cpu_module, **FAST).fit(X, y)
    assert next(moved.module_.parameters()).is_cuda
    assert not next(cpu_module.parameters()).is_cuda


# ------------------------------------------------ compile="step" (issue 16)
def _image_data(n=512):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3, 8, 8), dtype=np.float32)
    y = (X.reshape(n, -1) @ rng.standard_normal((3 * 64, 3))).argmax(1)
    return X, y


@pytest.mark.parametrize("network", ["mlp", "convnet"])
@pytest.mark.parametrize("pruner", [None, MagnitudePruning(0.8)], ids=["dense", "pruned"])
def test_graphed_step_matches_eager_step_on_gpu(clf_data, network, pruner, monkeypatch):
    # TF32 convolutions differ by shape, and cuDNN's default backward kernels are
    # not deterministic (two eager fits differ too): compare deterministic kernels
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    captures = []
    original = Trainer._capture
    monkeypatch.setattr(Trainer, "_capture", lambda self, size: (captures.append(size), original(self, size)))
    if network == "mlp":
        (X, y), extra = clf_data, {}
    else:
        (X, y), extra = _image_data(), {"module": ConvNet, "module__channels": (4, 8), "module__hidden": 16}
    kwargs = dict(FAST, max_epochs=5, pruner=pruner, **extra)
    eager = PrunedNetClassifier(compile=False, **kwargs).fit(X, y)
    graphed = PrunedNetClassifier(compile="step", **kwargs).fit(X, y)
    n_steps = len(pruner.get_schedule().steps(5)) if pruner is not None else 0
    assert 1 <= len(captures) <= n_steps + 1  # one capture, then one after each pruning step
    np.testing.assert_allclose(graphed.predict_proba(X), eager.predict_proba(X), atol=1e-4)
    assert set(graphed.masks_.pruned) == set(eager.masks_.pruned)
    for name, pruned in eager.masks_.pruned.items():
        assert torch.equal(graphed.masks_.pruned[name], pruned)
    if pruner is not None:
        assert graphed.sparsity_ == pytest.approx(eager.sparsity_)
    np.testing.assert_allclose(graphed.history[:, "train_loss"], eager.history[:, "train_loss"], rtol=1e-4)


def test_graphed_step_falls_back_to_eager_for_gradient_statistics_and_still_prunes(clf_data):
    net = PrunedNetClassifier(compile="step", pruner=TaylorPruning(0.8), **FAST).fit(*clf_data)
    assert net.sparsity_ == pytest.approx(0.8, abs=0.01)
    assert net.score(*clf_data) > 0.5


def test_compiled_step_with_inductor_on_cpu_matches_eager(clf_data):
    # Inductor's C++ build takes a minute on the 2 shared CPU cores where the
    # rest of the suite runs (tests/test_step.py uses aot_eager there); it runs here.
    X, y = clf_data
    kwargs = dict(FAST, device="cpu", max_epochs=5, pruner=MagnitudePruning(0.6))
    eager = PrunedNetClassifier(compile=False, **kwargs).fit(X, y)
    torch._dynamo.utils.counters.clear()
    compiled = PrunedNetClassifier(compile="step", **kwargs).fit(X, y)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 1
    np.testing.assert_allclose(compiled.predict_proba(X), eager.predict_proba(X), atol=1e-4)
    for name, pruned in eager.masks_.pruned.items():
        assert torch.equal(compiled.masks_.pruned[name], pruned)


class _GeneratorOffsets(Callback):
    """Records the fit generator's Philox offset at each epoch end (how many draws it has made)."""

    def initialize(self):
        self.offsets = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.offsets.append(fit_generator(torch.device("cuda")).get_offset())


def test_graphed_step_with_dropout_draws_new_masks_at_every_replay_on_gpu(clf_data, monkeypatch):
    # skprune.nn.Dropout draws from the fit's own CUDA generator; a replayed graph must
    # advance it at every step (else every replay reuses the captured masks, or capture fails)
    captures = []
    original = Trainer._capture
    monkeypatch.setattr(Trainer, "_capture", lambda self, size: (captures.append(size), original(self, size)))
    kwargs = dict(FAST, max_epochs=4, module__dropout=0.5, pruner=MagnitudePruning(0.5))
    eager_offsets, graphed_offsets = _GeneratorOffsets(), _GeneratorOffsets()
    eager = PrunedNetClassifier(callbacks=[eager_offsets], compile=False, **kwargs).fit(*clf_data)
    graphed = PrunedNetClassifier(callbacks=[graphed_offsets], compile="step", **kwargs).fit(*clf_data)
    assert captures, "the graphed fit ran eager steps only"
    offsets = graphed_offsets.offsets
    assert all(later > earlier for earlier, later in zip(offsets, offsets[1:]))
    assert offsets == eager_offsets.offsets  # the same draws as the eager fit, step for step
    X = clf_data[0]
    np.testing.assert_allclose(graphed.predict_proba(X), eager.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(graphed.history[:, "train_loss"], eager.history[:, "train_loss"], rtol=1e-4)


# ------------------------------------------- compile="auto", the default (issue 27)
class _BatchListener(Callback):
    def on_batch_end(self, net, **kwargs):
        pass


def test_default_compile_auto_replays_a_cuda_graph_and_matches_eager_on_gpu(clf_data, monkeypatch, capsys):
    captures = []
    original = Trainer._capture
    monkeypatch.setattr(Trainer, "_capture", lambda self, size: (captures.append(size), original(self, size)))
    X, y = clf_data
    kwargs = dict(FAST, max_epochs=5, pruner=MagnitudePruning(0.8))
    with warnings_as_errors():  # the default says nothing when it runs the graph
        auto = PrunedNetClassifier(verbose=1, **kwargs).fit(X, y)
    eager = PrunedNetClassifier(compile=False, **kwargs).fit(X, y)
    assert auto.compile == "auto" and captures
    assert (auto.training_step_, auto.training_step_reason_) == ("cuda_graph", None)
    assert (eager.training_step_, eager.training_step_reason_) == ("eager", "compile=False")
    assert "training step (compile='auto'): CUDA graph" in capsys.readouterr().out
    np.testing.assert_allclose(auto.predict_proba(X), eager.predict_proba(X), atol=1e-4)
    np.testing.assert_allclose(auto.history[:, "train_loss"], eager.history[:, "train_loss"], rtol=1e-4)
    for name, pruned in eager.masks_.pruned.items():
        assert torch.equal(auto.masks_.pruned[name], pruned)


@pytest.mark.parametrize(
    "extra, reason",
    [
        (dict(callbacks=[("listener", _BatchListener())]), "a callback listens to training batches"),
        (dict(optimizer=torch.optim.RMSprop), "RMSprop is not capturable"),
    ],
    ids=["batch-listener", "optimizer"],
)
def test_default_compile_auto_falls_back_to_eager_silently_and_says_why_on_gpu(clf_data, extra, reason):
    X, y = clf_data
    with warnings_as_errors():
        net = PrunedNetClassifier(**dict(FAST, max_epochs=3), **extra).fit(X, y)
    assert net.training_step_ == "eager"
    assert reason in net.training_step_reason_


def test_default_compile_auto_falls_back_for_sample_weights_on_gpu(clf_data):
    X, y = clf_data
    net = PrunedNetClassifier(**dict(FAST, max_epochs=2)).fit(X, y, sample_weight=np.ones(len(y)))
    assert (net.training_step_, net.training_step_reason_) == ("eager", "sample weights")


@pytest.mark.parametrize(
    "pruner, why",
    [
        (TaylorPruning(0.8), "gradients"),
        (NeuronPruning(0.5, importance="apoz"), "activations"),
    ],
    ids=["gradients", "activations"],
)
def test_default_compile_auto_graphs_the_epochs_after_the_pruners_statistics_on_gpu(clf_data, pruner, why):
    X, y = clf_data
    # compact_during_fit=False: the masked network's sparsity is checked (tests below cover compaction)
    net = PrunedNetClassifier(pruner=pruner, compact_during_fit=False, **FAST).fit(X, y)
    assert net.training_step_ == "cuda_graph"
    assert net.training_step_reason_.startswith("eager for ") and why in net.training_step_reason_
    assert net.sparsity_ > 0.3 and net.score(X, y) > 0.5


@contextlib.contextmanager
def warnings_as_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        yield


# ------------------------------------------------ compaction during fit (issue 27)
def _deterministic_cudnn(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


@pytest.mark.parametrize("compile", [False, "step"], ids=["eager", "graphed"])
def test_compaction_during_fit_on_gpu_predicts_as_the_masked_fit_compacted(clf_data, compile, monkeypatch):
    _deterministic_cudnn(monkeypatch)
    captures = []
    original = Trainer._capture
    monkeypatch.setattr(Trainer, "_capture", lambda self, size: (captures.append(size), original(self, size)))
    X, y = clf_data
    kwargs = dict(FAST, module__hidden_layer_sizes=(64, 32), compile=compile,
                  pruner=NeuronPruning(0.5, schedule=skprune.OneShot(at=0.5)))
    on = PrunedNetClassifier(**kwargs).fit(X, y)
    off = PrunedNetClassifier(compact_during_fit=False, **kwargs).fit(X, y).compact()
    assert on.module_.hidden_layer_sizes == (32, 16) and "n_params_after" in on.compacted_during_fit_
    assert next(on.module_.parameters()).device.type == "cuda"
    if compile == "step":  # captured for the full network, then again for the compacted one
        assert len(captures) >= 2
    np.testing.assert_allclose(on.predict_proba(X), off.predict_proba(X), atol=1e-4)


def test_channel_pruning_compacted_during_fit_on_gpu_with_sgd_momentum(monkeypatch):
    _deterministic_cudnn(monkeypatch)
    X, y = _image_data()
    kwargs = dict(FAST, module=ConvNet, module__channels=(8, 8), module__n_blocks=1, module__hidden=16,
                  optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                  pruner=ChannelPruning(0.5, schedule=skprune.OneShot(at=0.5)))
    on = PrunedNetClassifier(**kwargs).fit(X, y)
    off = PrunedNetClassifier(compact_during_fit=False, **kwargs).fit(X, y).compact()
    assert on.module_.channels == off.module_.channels == (4, 4)
    np.testing.assert_allclose(on.predict_proba(X), off.predict_proba(X), atol=1e-4)


# ------------------------------------------------ batched cross-validation (issue 27)
@pytest.mark.parametrize("pruner", [MagnitudePruning(), TaylorPruning()], ids=lambda p: type(p).__name__)
def test_batched_cv_on_gpu_equals_sequential(clf_data, pruner, monkeypatch):
    from skprune.model_selection import _batched
    from skprune.model_selection._batched import _StackedTraining

    replays, captures = [], []
    original = _StackedTraining._graph_step
    monkeypatch.setattr(
        _StackedTraining, "_graph_step", lambda self, *a: (replays.append(1), original(self, *a))[1]
    )
    capture = _batched.capture_graph
    monkeypatch.setattr(_batched, "capture_graph", lambda *a: (captures.append(1), capture(*a))[1])
    X, y = clf_data
    net = PrunedNetClassifier(pruner=pruner, **{**FAST, "max_epochs": 4, "batch_size": 45})
    params = dict(sparsities=[0.0, 0.5, 0.9], cv=3, scoring="neg_log_loss", refit=False)
    sequential = PrunedNetCV(net, batch_folds=False, **params).fit(X, y)
    batched = PrunedNetCV(net, batch_folds=True, **params).fit(X, y)
    assert batched.batched_ and not sequential.batched_
    np.testing.assert_allclose(batched.scores_path_, sequential.scores_path_, atol=1e-3)
    np.testing.assert_array_equal(batched.fitted_sparsity_path_, sequential.fitted_sparsity_path_)
    assert batched.best_sparsity_ == sequential.best_sparsity_
    assert replays  # the steady-state batched step ran as a CUDA graph (compile="auto")
    # magnitude: captured for the dense fit, then once more when its last step masked the weights (the
    # levels' new masks are copied into the captured ones); Taylor observes gradients eagerly until its
    # first level's step, then captures once
    assert len(captures) == {"MagnitudePruning": 2, "TaylorPruning": 1}[type(pruner).__name__]
