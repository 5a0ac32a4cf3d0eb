"""Image input, the ConvNet default module, and pruning a network the user already trained."""

import copy

import numpy as np
import pytest
import torch
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from torch import nn

import skprune
from skprune import (
    ChannelPruning,
    ConvNet,
    MagnitudePruning,
    OneShot,
    PrunedNetClassifier,
    PrunedNetRegressor,
)

SMALL = dict(module__channels=(8, 16), module__hidden=32, batch_size=64, lr=3e-3, random_state=0)


@pytest.fixture(scope="module")
def digit_images(digits):
    X, y = digits
    images = X.reshape(-1, 1, 8, 8)
    return train_test_split(images, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def pretrained(digit_images):
    """A ConvNet trained with plain PyTorch, outside skprune."""
    Xtr, Xte, ytr, yte = digit_images
    torch.manual_seed(0)
    module = ConvNet(64, 10, input_shape=(1, 8, 8), channels=(16, 32), hidden=64)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    X_t, y_t = torch.as_tensor(Xtr), torch.as_tensor(ytr)
    for _ in range(8):
        for batch in torch.randperm(len(X_t)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(module(X_t[batch]), y_t[batch]).backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():
        accuracy = float((module(torch.as_tensor(Xte)).argmax(1).numpy() == yte).mean())
    return module, accuracy


def test_convnet_on_images_infers_the_shape_and_learns(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(ConvNet, max_epochs=8, **SMALL).fit(Xtr, ytr)
    assert net.input_shape_ == (1, 8, 8) and net.n_features_in_ == 64
    assert not hasattr(net, "feature_names_in_")
    assert net.module_.input_shape == (1, 8, 8)
    assert net.score(Xte, yte) >= 0.95
    # a 3-D array is read as single-channel images
    np.testing.assert_allclose(net.predict_proba(Xte[:, 0]), net.predict_proba(Xte), atol=1e-6)
    # layer layout: conv -> bn -> act -> pool, then flatten -> fc -> output
    names = [name for name, _ in net.module_.layers.named_children()]
    assert names[:4] == ["conv0", "bn0", "act0", "pool0"] and names[-3:] == ["fc", "act_fc", "output"]


def test_flat_input_after_a_transformer_with_module_input_shape(digits):
    X, y = digits
    pipe = make_pipeline(
        StandardScaler(),
        PrunedNetClassifier(ConvNet, module__input_shape=(1, 8, 8), max_epochs=4, **SMALL),
    ).fit(X[:600], y[:600])
    assert pipe[-1].n_features_in_ == 64 and not hasattr(pipe[-1], "input_shape_")
    assert pipe.score(X[600:900], y[600:900]) >= 0.7
    # flat rows are read channels-first: the same network as on the images
    scaled = pipe[0].transform(X[:600])
    on_images = PrunedNetClassifier(ConvNet, max_epochs=4, **SMALL).fit(scaled.reshape(-1, 1, 8, 8), y[:600])
    test = pipe[0].transform(X[600:900])
    np.testing.assert_allclose(
        on_images.predict_proba(test.reshape(-1, 1, 8, 8)), pipe.predict_proba(X[600:900]), atol=1e-5
    )
    with pytest.raises(ValueError, match=r"module__input_shape=\(channels, height, width\)"):
        PrunedNetClassifier(ConvNet, max_epochs=1).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="has 48 values per sample, but the data has 64 features"):
        PrunedNetClassifier(ConvNet, module__input_shape=(3, 4, 4), max_epochs=1).fit(X[:100], y[:100])


def test_regressor_and_multichannel_images():
    rng = np.random.RandomState(0)
    X = rng.rand(120, 3, 6, 5).astype(np.float32)
    y = X[:, 0].mean((1, 2)) - X[:, 2].mean((1, 2))
    net = PrunedNetRegressor(ConvNet, max_epochs=3, **SMALL).fit(X, y)
    assert net.input_shape_ == (3, 6, 5) and net.module_.layers.conv0.in_channels == 3
    assert net.predict(X).shape == (120,)


def test_default_mlp_gets_images_flattened(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(max_epochs=5, random_state=0).fit(Xtr, ytr)
    assert net.module_.layers.fc0.in_features == 64
    assert net.score(Xte, yte) >= 0.9


def test_channel_pruning_compacts_a_convnet_and_persists(digit_images, tmp_path):
    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(
        ConvNet, pruner=ChannelPruning(0.5, schedule=OneShot(0.5)), max_epochs=6, compact_during_fit=False,
        **SMALL,
    ).fit(Xtr, ytr)
    compact = net.compact()
    assert compact.module_.channels == (4, 8) and compact.module_.hidden == 32
    assert compact.module_.layers.fc.in_features == 8 * 2 * 2
    assert np.abs(compact.predict_proba(Xte) - net.predict_proba(Xte)).max() <= 1e-5
    assert compact.n_params_ < net.n_params_
    path = tmp_path / "convnet.skp"
    skprune.save(compact, path)
    loaded = skprune.load(path)
    assert tuple(loaded.input_shape_) == (1, 8, 8) and loaded.module_.channels == (4, 8)
    np.testing.assert_array_equal(loaded.predict_proba(Xte), compact.predict_proba(Xte))


class _WeightsAtTrainBegin(Callback):
    """Record the module's weights and test accuracy when training starts."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def on_train_begin(self, net, **kwargs):
        self.state_ = copy.deepcopy(net.module_.state_dict())
        net.module_.eval()
        with torch.no_grad():
            pred = net.module_(torch.as_tensor(self.X)).argmax(1).numpy()
        self.accuracy_ = float((pred == self.y).mean())


def test_a_pretrained_module_is_not_reinitialized(pretrained, digit_images):
    Xtr, Xte, ytr, yte = digit_images
    module, accuracy = pretrained
    before = copy.deepcopy(module.state_dict())
    probe = _WeightsAtTrainBegin(Xte, yte)
    net = PrunedNetClassifier(
        module,
        pruner=MagnitudePruning(0.0),
        callbacks=[("probe", probe)],
        max_epochs=1,
        lr=1e-3,
        random_state=3,
    ).fit(Xtr, ytr)
    # the network the wrapper trains starts as the pretrained one, bit for bit
    assert probe.accuracy_ == accuracy
    for key, value in before.items():
        torch.testing.assert_close(probe.state_[key], value, rtol=0, atol=0)
    # the caller's module is untouched, and not shared with the estimator
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert net.module_ is not module and net.sparsity_ == 0.0


def test_pruning_and_fine_tuning_a_pretrained_module_keeps_accuracy(pretrained, digit_images):
    Xtr, Xte, ytr, yte = digit_images
    module, accuracy = pretrained
    assert accuracy >= 0.95
    net = PrunedNetClassifier(
        module,
        pruner=MagnitudePruning(0.8, schedule=OneShot(at=0)),
        max_epochs=4,
        lr=3e-3,
        random_state=0,
    ).fit(Xtr, ytr)
    assert net.sparsity_ == pytest.approx(0.8, abs=0.01)
    # the stated bound for this short fine-tuning: within 2 points of the pretrained network
    assert net.score(Xte, yte) >= accuracy - 0.02
    # it started from the trained weights: a fresh network's first-epoch loss is about ln(10) = 2.3
    assert net.history[0, "train_loss"] < 0.6


def test_a_user_module_class_with_images(digit_images):
    class Tiny(nn.Module):
        def __init__(self, n_outputs, width=6):
            super().__init__()
            self.conv = nn.Conv2d(1, width, 3, padding=1)
            self.out = nn.Linear(width * 64, n_outputs)

        def forward(self, x):
            return self.out(torch.relu(self.conv(x)).flatten(1))

    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(Tiny, pruner=MagnitudePruning(0.5), max_epochs=3, random_state=0).fit(Xtr, ytr)
    assert net.input_shape_ == (1, 8, 8) and net.sparsity_ == pytest.approx(0.5, abs=0.01)
    assert net.predict(Xte).shape == (len(Xte),)


# ------------------------------------------------------------- bad input
def test_channels_last_images_get_a_transpose_hint(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    last = Xtr.transpose(0, 2, 3, 1)  # (N, 8, 8, 1)
    with pytest.raises(ValueError, match=r"channels-last.*X.transpose\(0, 3, 1, 2\)"):
        PrunedNetClassifier(ConvNet, max_epochs=1).fit(last, ytr)
    with pytest.raises(ValueError, match=r"X.transpose\(0, 3, 1, 2\)"):
        PrunedNetClassifier(ConvNet, module__input_shape=(1, 8, 8), max_epochs=1).fit(last, ytr)
    net = PrunedNetClassifier(ConvNet, max_epochs=1, **SMALL).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"X.transpose\(0, 3, 1, 2\)"):
        net.predict(Xte.transpose(0, 2, 3, 1))
    # an explicit input_shape overrides the guess
    rgb_like = np.random.RandomState(0).rand(40, 5, 4, 3).astype(np.float32)
    fitted = PrunedNetClassifier(ConvNet, module__input_shape=(5, 4, 3), max_epochs=1, **SMALL)
    fitted.fit(rgb_like, np.arange(40) % 2)
    assert fitted.input_shape_ == (5, 4, 3)


def test_images_of_the_wrong_shape_are_refused_before_torch(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(ConvNet, max_epochs=1, **SMALL).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"expected images of shape \(n_samples, 1, 8, 8\).*\(10, 1, 7, 7\)"):
        net.predict(Xte[:10, :, :7, :7])
    with pytest.raises(ValueError, match=r"fitted on images.*X.reshape\(-1, 1, 8, 8\)"):
        net.predict(Xte.reshape(len(Xte), -1))
    with pytest.raises(ValueError, match=r"module__input_shape"):
        PrunedNetClassifier(ConvNet, module__input_shape=(1, 7, 7), max_epochs=1).fit(Xtr, ytr)
    with pytest.raises(ValueError, match=r"module__input_shape must be a \(channels, height, width\)"):
        PrunedNetClassifier(ConvNet, module__input_shape=(8, 8), max_epochs=1).fit(Xtr, ytr)
    bad = Xtr.copy()
    bad[0, 0, 0, 0] = np.nan
    previous = net.predict_proba(Xte)
    with pytest.raises(ValueError, match="NaN or infinity"):
        net.fit(bad, ytr)
    np.testing.assert_array_equal(net.predict_proba(Xte), previous)  # fitted state kept
    with pytest.raises(ValueError, match="Found input variables with inconsistent numbers of samples"):
        PrunedNetClassifier(ConvNet, max_epochs=1).fit(Xtr, ytr[:-1])
    with pytest.raises(ValueError, match="numeric images"):
        PrunedNetClassifier(ConvNet, max_epochs=1).fit(Xtr.astype(str), ytr)


def test_a_pretrained_module_instance_that_does_not_fit_the_images(pretrained, digit_images):
    Xtr, Xte, ytr, yte = digit_images
    module, _ = pretrained
    with pytest.raises(ValueError, match=r"expected images of shape \(n_samples, 1, 8, 8\)"):
        PrunedNetClassifier(module, max_epochs=1).fit(Xtr[:, :, :6, :6], ytr)


def test_a_module_on_the_meta_device_is_refused(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    with torch.device("meta"):
        module = ConvNet(64, 10, input_shape=(1, 8, 8), channels=(4,), hidden=8)
    with pytest.raises(ValueError, match="'meta' device"):
        PrunedNetClassifier(module, max_epochs=1).fit(Xtr, ytr)


def test_a_module_instance_is_copied_to_the_estimator_device_and_float32(pretrained, digit_images):
    """An instance elsewhere (another device, float64) is copied to ``device`` in float32 (documented)."""
    Xtr, Xte, ytr, yte = digit_images
    module = copy.deepcopy(pretrained[0]).double()
    net = PrunedNetClassifier(module, max_epochs=1, random_state=0).fit(Xtr, ytr)
    parameter = next(net.module_.parameters())
    assert parameter.device.type == "cpu" and parameter.dtype == torch.float32
    assert next(module.parameters()).dtype == torch.float64  # the caller's module is untouched
    assert net.score(Xte, yte) >= 0.9


def test_grid_search_over_sparsity_on_images(digit_images):
    from sklearn.model_selection import GridSearchCV

    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(ConvNet, pruner=MagnitudePruning(0.5), max_epochs=2, **SMALL)
    search = GridSearchCV(net, {"pruner__sparsity": [0.5, 0.8]}, cv=2).fit(Xtr[:400], ytr[:400])
    best = search.best_estimator_
    assert best.input_shape_ == (1, 8, 8)
    assert best.sparsity_ == pytest.approx(search.best_params_["pruner__sparsity"], abs=0.01)
    assert search.predict(Xte).shape == (len(Xte),)


def test_partial_fit_keeps_to_the_kind_of_data_fit_saw(digit_images):
    Xtr, Xte, ytr, yte = digit_images
    net = PrunedNetClassifier(ConvNet, max_epochs=1, **SMALL).fit(Xtr, ytr)
    net.partial_fit(Xtr[:100], ytr[:100])
    with pytest.raises(ValueError, match=r"fitted on images.*X.reshape\(-1, 1, 8, 8\)"):
        net.partial_fit(Xtr.reshape(len(Xtr), -1), ytr)
    with pytest.raises(ValueError, match=r"expected images of shape \(n_samples, 1, 8, 8\)"):
        net.partial_fit(Xtr[:, :, :6, :6], ytr)
    flat = PrunedNetClassifier(ConvNet, module__input_shape=(1, 8, 8), max_epochs=1, **SMALL)
    flat.fit(Xtr.reshape(len(Xtr), -1), ytr)
    with pytest.raises(ValueError, match=r"fitted on flat rows of 64 features"):
        flat.partial_fit(Xtr, ytr)
