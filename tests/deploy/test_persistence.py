import json
import os
import pickle
import stat
import struct

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import skprune
from skprune import (
    MagnitudePruning,
    NeuronPruning,
    OneShot,
    PersistenceError,
    PrunedNet,
    PrunedNetClassifier,
    PrunedNetRegressor,
)

FAST = dict(max_epochs=5, batch_size=32, lr=0.01, random_state=0)


def _check_same(a, b, X):
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.get_params().keys() == b.get_params().keys()


def test_pruned_and_compacted_models_round_trip(clf_data, tmp_path):
    X, y = clf_data
    labels = np.array(["ant", "bee", "cat"])[y]
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    net = PrunedNetClassifier(
        pruner=NeuronPruning(0.5, schedule=OneShot()), module__hidden_layer_sizes=(16, 8), **FAST
    ).fit(frame, labels)
    for est in (net, net.compact()):
        path = tmp_path / "model.skp"
        skprune.save(est, path)
        loaded = skprune.load(path)
        _check_same(est, loaded, frame)
        np.testing.assert_array_equal(loaded.predict(frame), est.predict(frame))
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
        np.testing.assert_array_equal(loaded.feature_names_in_, est.feature_names_in_)
        assert loaded.module_.hidden_layer_sizes == est.module_.hidden_layer_sizes
        assert loaded.n_params_ == est.n_params_ and loaded.sparsity_ == est.sparsity_
        assert loaded.masks_.pruned.keys() == est.masks_.pruned.keys()
        for name, pruned in est.masks_.pruned.items():
            assert torch.equal(loaded.masks_.pruned[name], pruned)
        assert repr(loaded.pruner_) == repr(est.pruner_)
        assert len(loaded.history) == len(est.history)
        assert loaded.get_params()["module__hidden_layer_sizes"] == (16, 8)
        pickle.loads(pickle.dumps(loaded)).predict(frame)
    # the loaded estimator is a normal estimator: it can be refit
    skprune.load(path).set_params(max_epochs=1).fit(frame, labels)


def test_regressor_sequential_instance_and_random_state(reg_data, tmp_path):
    X, y = reg_data
    module = nn.Sequential(nn.Linear(8, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 1))
    net = PrunedNet(
        module=module,
        pruner=MagnitudePruning(0.5, schedule=OneShot()),
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        **dict(FAST, random_state=np.random.RandomState(3)),
    ).fit(X, y[:, None])
    skprune.save(net, tmp_path / "r.skp")
    loaded = skprune.load(tmp_path / "r.skp")
    _check_same(net, loaded, X)
    assert loaded.optimizer is torch.optim.SGD and loaded.optimizer__momentum == 0.9
    assert isinstance(loaded.random_state, np.random.RandomState)
    np.testing.assert_array_equal(loaded.random_state.get_state()[1], net.random_state.get_state()[1])
    # the module parameter is an instance with its own (initial) weights: kept too
    assert torch.equal(loaded.module[0].weight, module[0].weight)
    reg = PrunedNetRegressor(**FAST).fit(X, y)
    skprune.save(reg, tmp_path / "reg.skp")
    assert skprune.load(tmp_path / "reg.skp").predict(X).shape == (len(X),)


def test_unfitted_estimator_round_trips(tmp_path):
    est = PrunedNetClassifier(pruner=NeuronPruning(0.3, importance="l1"), module__hidden_layer_sizes=(5,))
    skprune.save(est, tmp_path / "u.skp")
    loaded = skprune.load(tmp_path / "u.skp")
    assert not loaded.initialized_
    assert repr(loaded) == repr(est)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _header(path):
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


def _write(path, header, body, resign=False):
    """Write a file from a header and a body; ``resign``: recompute the digest, as an attacker could."""
    if resign:
        from safetensors.torch import load as st_load

        from skprune.deploy._safefile import tensor_digest

        tensors = {}
        if any(k != "__metadata__" for k in header):
            plain = {k: v for k, v in header.items() if k != "__metadata__"}
            encoded = json.dumps(plain).encode()
            tensors = st_load(struct.pack("<Q", len(encoded)) + encoded + body)
        header["__metadata__"]["sha256"] = tensor_digest(header["__metadata__"]["config"], tensors)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)


def test_malicious_pickle_payloads_are_refused_and_never_run(clf_data, tmp_path):
    X, y = clf_data
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    # 1. a plain pickle file
    (tmp_path / "a.skp").write_bytes(payload)
    with pytest.raises(PersistenceError, match="not a skprune file.*pickle"):
        skprune.load(tmp_path / "a.skp")
    # 2. a torch.save archive (a zip holding a pickle)
    torch.save({"weights": _Payload(marker)}, tmp_path / "b.skp")
    with pytest.raises(PersistenceError, match="not a skprune file.*ZIP"):
        skprune.load(tmp_path / "b.skp")
    # 3. a genuine skprune file whose weights part is replaced by the pickle
    net = PrunedNetClassifier(**FAST).fit(X, y)
    good = tmp_path / "good.skp"
    skprune.save(net, good)
    header, body = _header(good)
    name = next(k for k in header if k.startswith("module_."))
    header[name] = {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}
    _write(tmp_path / "c.skp", header, payload + body)
    with pytest.raises(PersistenceError, match="corrupted or was modified|overlaps|cannot be read"):
        skprune.load(tmp_path / "c.skp")
    # even with a matching checksum the bytes are only ever raw tensor data
    header["__metadata__"]["sha256"] = __import__("hashlib").sha256(payload + body).hexdigest()
    _write(tmp_path / "d.skp", header, payload + body)
    with pytest.raises(PersistenceError):
        skprune.load(tmp_path / "d.skp")
    assert not marker.exists()


def test_wrong_format_or_version_is_a_clear_error(clf_data, tmp_path):
    X, y = clf_data
    good = tmp_path / "good.skp"
    skprune.save(PrunedNetClassifier(**FAST).fit(X, y), good)
    header, body = _header(good)
    header["__metadata__"]["format_version"] = "99"
    _write(tmp_path / "v.skp", header, body)
    with pytest.raises(PersistenceError, match="format version 99.*Upgrade skprune"):
        skprune.load(tmp_path / "v.skp")
    header["__metadata__"]["format"] = "other"
    _write(tmp_path / "f.skp", header, body)
    with pytest.raises(PersistenceError, match="not a skprune file.*format marker 'other'"):
        skprune.load(tmp_path / "f.skp")
    (tmp_path / "t.skp").write_text("hello")
    with pytest.raises(PersistenceError, match="not a skprune file"):
        skprune.load(tmp_path / "t.skp")


class _MyNet(nn.Module):
    def __init__(self, n_features_in, n_outputs, width=4):
        super().__init__()
        self.width = width
        self.body = nn.Sequential(nn.Linear(n_features_in, width), nn.ReLU(), nn.Linear(width, n_outputs))

    def forward(self, X):
        return self.body(X)


def test_classes_outside_the_allow_list_need_registration(clf_data, tmp_path):
    X, y = clf_data
    net = PrunedNetClassifier(module=_MyNet, module__width=6, **FAST).fit(X, y)
    with pytest.raises(PersistenceError, match=r"register_serializable\(_MyNet\)"):
        skprune.save(net, tmp_path / "m.skp")
    assert not (tmp_path / "m.skp").exists()
    skprune.register_serializable(_MyNet)
    try:
        skprune.save(net, tmp_path / "m.skp")
        _check_same(net, skprune.load(tmp_path / "m.skp"), X)
    finally:
        skprune.deploy._allowlist._REGISTERED.clear()
    with pytest.raises(
        PersistenceError, match="'test_persistence._MyNet', which is not in skprune's allow-list"
    ):
        skprune.load(tmp_path / "m.skp")


def test_sparse_export_round_trips(clf_data, tmp_path):
    X, y = clf_data
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.9, schedule=OneShot()), **FAST).fit(X, y)
    sparse = skprune.to_sparse(net)
    skprune.save(sparse, tmp_path / "s.skp")
    loaded = skprune.load(tmp_path / "s.skp")
    assert loaded.module_.layers.fc0.weight.layout == torch.sparse_csr
    np.testing.assert_array_equal(loaded.predict_proba(X), sparse.predict_proba(X))


class _SmallConv(nn.Module):
    def __init__(self, n_outputs=2):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, n_outputs)

    def forward(self, X):
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(X.unflatten(1, (1, 6, 6))))), 1))


def test_compacted_conv_net_round_trips_with_registration(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.rand(80, 36).astype(np.float32)
    y = (X[:, :18].sum(1) > X[:, 18:].sum(1)).astype(int)
    net = PrunedNetClassifier(
        module=_SmallConv, pruner=skprune.ChannelPruning(0.5, schedule=OneShot()), **FAST
    ).fit(X, y)
    compact = net.compact()
    assert compact.module_.conv.out_channels == 3 and compact.module_.fc.in_features == 48
    skprune.register_serializable(_SmallConv)
    try:
        skprune.save(compact, tmp_path / "conv.skp")
        loaded = skprune.load(tmp_path / "conv.skp")
    finally:
        skprune.deploy._allowlist._REGISTERED.clear()
    assert loaded.module_.bn.num_features == 3 and loaded.module_.fc.in_features == 48
    _check_same(compact, loaded, X)


def test_files_cannot_set_internal_attributes_or_bring_file_writing_callbacks(clf_data, tmp_path):
    from skorch.callbacks import Checkpoint

    X, y = clf_data
    good = tmp_path / "good.skp"
    skprune.save(PrunedNetClassifier(**FAST).fit(X, y), good)
    header, body = _header(good)
    config = json.loads(header["__metadata__"]["config"])
    config["root"]["__net__"]["fitted"]["attributes"]["_modules"] = ["os"]
    header["__metadata__"]["config"] = json.dumps(config)
    _write(tmp_path / "attr.skp", header, body, resign=True)
    with pytest.raises(PersistenceError, match="attribute '_modules'"):
        skprune.load(tmp_path / "attr.skp")
    net = PrunedNetClassifier(callbacks=[("cp", Checkpoint(dirname=str(tmp_path / "cp")))], **FAST)
    with pytest.raises(PersistenceError, match="register_serializable"):
        skprune.save(net, tmp_path / "cp.skp")


def test_saved_file_gets_the_permissions_open_would_give_and_keeps_an_existing_files(tmp_path):
    X, y = np.random.RandomState(0).randn(40, 3).astype(np.float32), np.arange(40) % 2
    net = PrunedNetClassifier(max_epochs=1, random_state=0).fit(X, y)
    reference = tmp_path / "reference"
    reference.write_bytes(b"")  # what the umask gives a new file
    path = tmp_path / "net.skp"
    skprune.save(net, path)  # was 0o600 (mkstemp's mode) whatever the umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)
    os.chmod(path, 0o640)
    skprune.save(net, path)  # overwriting keeps the file's mode, as writing into it would
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    np.testing.assert_array_equal(skprune.load(path).predict(X), net.predict(X))


def test_save_to_a_folder_or_into_a_missing_folder_says_so_and_leaves_nothing(tmp_path):
    net = PrunedNetClassifier()
    with pytest.raises(IsADirectoryError, match="is a directory.*file path"):
        skprune.save(net, tmp_path)
    with pytest.raises(FileNotFoundError, match="folder .*missing.* does not exist"):
        skprune.save(net, tmp_path / "missing" / "net.skp")
    assert list(tmp_path.iterdir()) == []
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]


def test_skorch_callbacks_with_their_default_print_and_to_numpy_round_trip(tmp_path):
    from skorch.callbacks import BatchScoring, EarlyStopping, EpochScoring, LRScheduler

    X, y = np.random.RandomState(0).randn(60, 4).astype(np.float32), np.arange(60) % 2
    callbacks = [
        ("stop", EarlyStopping(monitor="train_loss", patience=3)),  # sink=print
        ("f1", EpochScoring("f1", lower_is_better=False, on_train=True)),  # target_extractor=to_numpy
        ("acc", BatchScoring("accuracy", on_train=True)),
        ("lr", LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2)),
    ]
    net = PrunedNetClassifier(callbacks=callbacks, max_epochs=3, lr=0.1, random_state=0).fit(X, y)
    skprune.save(net, tmp_path / "cb.skp")  # refused before: print and to_numpy were not allow-listed
    loaded = skprune.load(tmp_path / "cb.skp")
    _check_same(net, loaded, X)
    stop = dict(loaded.callbacks)["stop"]
    assert stop.sink is print and stop.patience == 3


def test_loaded_net_continues_its_learning_rate_schedule(tmp_path):
    from skorch.callbacks import LRScheduler

    X, y = np.random.RandomState(0).randn(60, 4).astype(np.float32), np.arange(60) % 2
    schedule = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    net = PrunedNetClassifier(callbacks=[("lr", schedule)], max_epochs=3, lr=0.1, random_state=0).fit(X, y)
    skprune.save(net, tmp_path / "lr.skp")
    loaded = skprune.load(tmp_path / "lr.skp")
    assert loaded.optimizer_.param_groups[0]["lr"] == net.optimizer_.param_groups[0]["lr"] == 0.05
    # the resumed scheduler needs the optimizer's initial_lr: partial_fit raised a KeyError before
    loaded.partial_fit(X, y)
    net.partial_fit(X, y)
    assert loaded.optimizer_.param_groups[0]["lr"] == net.optimizer_.param_groups[0]["lr"] == 0.0125


def test_a_net_saved_on_a_gpu_loads_on_the_default_device_and_save_says_device_was_not_kept(tmp_path):
    from skprune.deploy import RuntimeParametersNotSaved

    X, y = np.random.RandomState(0).randn(60, 4).astype(np.float32), np.arange(60) % 2
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5), max_epochs=2, random_state=0).fit(X, y)
    expected = net.predict_proba(X)
    net.__dict__["device"] = "cuda:99"  # as saved on a GPU machine: no such device here
    with pytest.warns(RuntimeParametersNotSaved, match=r"PrunedNetClassifier\.device"):
        skprune.save(net, tmp_path / "gpu.skp")
    loaded = skprune.load(tmp_path / "gpu.skp")
    assert loaded.device == "cpu" and loaded.sparsity_ == net.sparsity_
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    loaded.partial_fit(X, y)
    # an unfitted net: the device is runtime too, the default applies
    with pytest.warns(RuntimeParametersNotSaved):
        skprune.save(PrunedNetClassifier(device="cuda:99", compile=True), tmp_path / "u.skp")
    assert skprune.load(tmp_path / "u.skp").get_params()["device"] == "cpu"


def test_loss_class_weights_given_as_tensors_round_trip(tmp_path):
    X, y = np.random.RandomState(0).randn(60, 4).astype(np.float32), np.arange(60) % 2
    weight = torch.tensor([1.0, 3.0])
    for net in (
        PrunedNetClassifier(criterion__weight=weight, max_epochs=2, random_state=0),  # skorch's way
        PrunedNetClassifier(criterion=nn.CrossEntropyLoss(weight=weight), max_epochs=2, random_state=0),
    ):
        net.fit(X, y)
        # criterion__weight was refused ("register_serializable(Tensor)"); the instance was saved with
        # weight=True and failed to load
        skprune.save(net, tmp_path / "w.skp")
        loaded = skprune.load(tmp_path / "w.skp")
        _check_same(net, loaded, X)
        assert torch.equal(loaded.criterion_.weight, weight)
        assert torch.equal(loaded.set_params(max_epochs=1).fit(X, y).criterion_.weight, weight)
    pos_weight = torch.tensor([2.5])
    reg = PrunedNet(
        module=nn.Linear,
        module__in_features=4,
        module__out_features=1,
        criterion=nn.BCEWithLogitsLoss,
        criterion__pos_weight=pos_weight,
        max_epochs=1,
        random_state=0,
    ).fit(X, (y[:, None] * 1.0).astype(np.float32))
    skprune.save(reg, tmp_path / "p.skp")
    assert torch.equal(skprune.load(tmp_path / "p.skp").criterion_.pos_weight, pos_weight)


class _SharedLayer(nn.Module):
    """One Linear used twice (registered under two names), as weight-sharing networks do."""

    def __init__(self, n_features_in=4, n_outputs=1):
        super().__init__()
        self.hidden = nn.Linear(n_features_in, n_features_in)
        self.again = self.hidden
        self.out = nn.Linear(n_features_in, n_outputs)

    def forward(self, X):
        return self.out(torch.relu(self.again(torch.relu(self.hidden(X)))))


def test_shared_weights_are_saved_and_stay_shared(tmp_path):
    X = np.random.RandomState(0).randn(60, 4).astype(np.float32)
    net = PrunedNetRegressor(module=_SharedLayer, pruner=MagnitudePruning(0.5), max_epochs=2, random_state=0)
    net.fit(X, X[:, 0])
    skprune.register_serializable(_SharedLayer)
    try:
        skprune.save(net, tmp_path / "s.skp")  # raised safetensors' RuntimeError "Some tensors share memory"
        loaded = skprune.load(tmp_path / "s.skp")
    finally:
        skprune.deploy._allowlist._REGISTERED.clear()
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.module_.hidden.weight is loaded.module_.again.weight


def test_parameters_set_after_fit_do_not_change_the_loaded_network(tmp_path):
    X, y = np.random.RandomState(0).randn(60, 4).astype(np.float32), np.arange(60) % 2
    net = PrunedNetClassifier(module__hidden_layer_sizes=(8,), max_epochs=3, random_state=0).fit(X, y)
    expected = net.predict_proba(X)
    # set_params keeps the fitted network until the next fit: the module was built with ReLU
    net.set_params(module__activation="tanh", module__hidden_layer_sizes=(5,), criterion=nn.NLLLoss)
    np.testing.assert_array_equal(net.predict_proba(X), expected)
    skprune.save(net, tmp_path / "s.skp")
    loaded = skprune.load(tmp_path / "s.skp")
    # loaded before as a Tanh network carrying the ReLU-trained weights: other probabilities
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)
    assert isinstance(loaded.module_.layers.act0, nn.ReLU)
    assert loaded.get_params()["module__activation"] == "tanh" and loaded.criterion is nn.NLLLoss
    for est in (net, loaded):  # both still refuse to continue a network built with other values
        with pytest.raises(ValueError, match="module__activation.*changed after the network was fitted"):
            est.partial_fit(X, y)
    assert isinstance(loaded.set_params(criterion=nn.CrossEntropyLoss).fit(X, y).module_.layers.act0, nn.Tanh)


def test_each_subpackage_registers_its_types_and_the_allow_list_imports_none_of_them():
    import ast
    import inspect as inspect_module

    from skprune import model_selection, nn, pruners
    from skprune.deploy import _allowlist

    tree = ast.parse(inspect_module.getsource(_allowlist))
    imported = set()
    for node in ast.walk(tree):  # relative imports: from ..x import y, from .. import y
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            imported |= {node.module} if node.module else {alias.name for alias in node.names}
    assert imported <= {"_serializable", "exceptions"}, imported
    for package in (nn, pruners):
        for name in package.__all__:
            obj = getattr(package, name)
            if isinstance(obj, type):
                assert _allowlist.resolve(f"{obj.__module__}.{obj.__qualname__}") is obj
    for obj in (model_selection.PrunedNetCV, model_selection.sparsity_scorer, PrunedNetClassifier):
        assert _allowlist.resolve(f"{obj.__module__}.{obj.__qualname__}") is obj
    with pytest.raises(PersistenceError, match="allow-list"):
        _allowlist.resolve("skprune.model_selection._plots.plot_sparsity_path")  # draws: not pure


def test_a_fresh_interpreter_loads_a_net_through_skprune_deploy_alone(tmp_path):
    # import skprune is lazy: the estimators must still be on the allow-list when only deploy is imported
    import subprocess
    import sys

    X, y = np.random.RandomState(0).randn(40, 4).astype(np.float32), np.arange(40) % 2
    net = PrunedNetClassifier(module__hidden_layer_sizes=(8,), max_epochs=2, random_state=0).fit(X, y)
    skprune.save(net, tmp_path / "n.skp")
    code = (
        "import numpy as np; from skprune.deploy import load; "
        f"net = load({str(tmp_path / 'n.skp')!r}); "
        "print(type(net).__name__, *net.predict(np.zeros((2, 4), dtype=np.float32)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    expected = net.predict(np.zeros((2, 4), dtype=np.float32))
    assert out.split() == ["PrunedNetClassifier", *map(str, expected)]
