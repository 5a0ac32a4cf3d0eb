"""The attack corpus: hostile files end in PersistenceError, fast and small; runtime never comes from a file.

The files are written by ``attack_corpus.py`` (next to this file) from genuine
saved models, each re-signed as an attacker would. Every numbered case of
issue 22 has a file named after the behaviour it checks.
"""

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from attack_corpus import CASE_NAMES, base_models, edit, write_corpus
from skorch import NeuralNet

import skprune
from skprune import PersistenceError, PrunedNet, PrunedNetClassifier, PrunedNetRegressor
from skprune.deploy import RuntimeParametersNotSaved
from skprune.deploy._runtime import NET_PARAMETER_FAMILIES, NET_PARAMETERS, RUNTIME, net_parameter_kind

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("attacks"))


@pytest.fixture(scope="module")
def models():
    return base_models()


@pytest.mark.skipif(os.name != "posix", reason="FIFOs and /dev/zero are POSIX")
def test_the_corpus_holds_every_named_case(corpus):
    assert set(corpus) == set(CASE_NAMES)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_attack_file_is_refused_with_a_persistence_error(corpus, case):
    if case not in corpus:
        pytest.skip(f"{case} needs a POSIX system (/dev/zero, mkfifo)")
    path, message = corpus[case]
    with pytest.raises(PersistenceError, match=message):
        skprune.load(path)


def test_every_attack_file_is_refused_within_2_cpu_seconds_and_200_mb(corpus):
    """Loads run in a fresh process; its own peak-RSS counter is reset before each file."""
    folder = Path(next(iter(corpus.values()))[0]).parent
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc to measure each load's peak memory")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    )
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run(
        [sys.executable, str(HERE / "attack_corpus.py"), str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=300,  # a hang would end here, far from any timing noise
        env=env,
        check=True,
    )
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == set(corpus)
    for name, result in results.items():
        assert result["error"] and result["error"].startswith("PersistenceError"), (name, result)
        assert result["rss_growth_mb"] < 200, (name, result)
        assert result["cpu_s"] < 2, (name, result)  # CPU time: not affected by other processes


# --- model versus runtime -------------------------------------------------------------------------


def test_every_estimator_parameter_is_classified_as_model_or_runtime():
    """Fails when PrunedNet (or skorch under it) gains a parameter or a prefix family nobody classified."""
    for cls in (PrunedNet, PrunedNetClassifier, PrunedNetRegressor):
        for name in inspect.signature(cls).parameters:
            if name != "kwargs":
                assert name in NET_PARAMETERS, f"{cls.__name__}.{name} is not classified"
        for name in cls().get_params(deep=False):
            assert net_parameter_kind(name) in ("model", "runtime"), f"{cls.__name__}.{name}"
        for prefix in cls().prefixes_:
            assert prefix in NET_PARAMETER_FAMILIES, f"{cls.__name__}: {prefix}__* is not classified"
    for name in inspect.signature(NeuralNet).parameters:  # skorch's own, inherited
        if name != "kwargs":
            assert name in NET_PARAMETERS, f"skorch's NeuralNet.{name} is not classified"
    for name in (
        "compile",
        "compile__options",
        "compile__mode",
        "device",
        "iterator_train__num_workers",
        "iterator_valid__num_workers",
        "iterator_valid__pin_memory",
        "callbacks__print_log__sink",
        "verbose",
        "torch_load_kwargs",
    ):
        assert net_parameter_kind(name) == RUNTIME, name
    for name in ("module__hidden_layer_sizes", "optimizer__momentum", "criterion__weight", "lr", "pruner"):
        assert net_parameter_kind(name) == "model", name


def test_save_warns_which_runtime_parameters_it_did_not_keep_and_load_applies_the_defaults(models, tmp_path):
    (fitted, X, y) = models
    from sklearn.base import clone
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    net = clone(fitted["net"]).set_params(
        compile=True,
        compile__mode="max-autotune",
        iterator_valid__num_workers=8,
        verbose=1,
    )
    pipe = Pipeline(
        [
            ("ct", ColumnTransformer([("s", StandardScaler(), [0, 1])], remainder="passthrough", n_jobs=4)),
            ("net", net),
        ],
        memory=str(tmp_path / "cache"),
    )
    with pytest.warns(RuntimeParametersNotSaved) as record:
        skprune.save(pipe, tmp_path / "p.skp")
    message = str(record[0].message)
    for name in ("compile", "compile__mode", "iterator_valid__num_workers", "verbose", "n_jobs", "memory"):
        assert name in message, name
    loaded = skprune.load(tmp_path / "p.skp")
    params = loaded.get_params()
    assert params["memory"] is None and params["ct__n_jobs"] is None
    assert params["net__compile"] == "auto" and params["net__verbose"] == 0  # the defaults
    assert "net__compile__mode" not in params and "net__iterator_valid__num_workers" not in params
    # a save without runtime settings says nothing
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeParametersNotSaved)
        skprune.save(fitted["net"], tmp_path / "n.skp")


def test_edited_runtime_parameters_load_with_defaults_or_are_refused_and_reach_no_compiler_cache_or_pool(
    models, tmp_path, monkeypatch
):
    """Format 2 files held runtime parameters: load ignores them (format 3 files holding one are refused)."""
    fitted, X, y = models
    skprune.save(fitted["net"], tmp_path / "net.skp")
    skprune.save(fitted["pipe"], tmp_path / "pipe.skp")
    skprune.save(fitted["column"], tmp_path / "column.skp")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "output.pkl").write_bytes(b"planted")
    wrapper = 'native -wrapper "/bin/sh,-c,touch PWNED"'

    def runtime_net(cfg):
        cfg["root"]["__net__"]["estimator"]["params"].update(
            compile=True,
            compile__options={"__dict__": {"cpp.march": wrapper, "trace.debug_dir": str(tmp_path / "t")}},
            iterator_valid__num_workers=8,
            device="cuda:99",
        )

    def runtime_pipe(cfg):
        cfg["root"]["state"]["memory"] = str(cache)

    def runtime_column(cfg):
        cfg["root"]["state"]["steps"][0]["__tuple__"][1]["state"]["n_jobs"] = 4

    def compile_must_not_run(*args, **kwargs):
        raise AssertionError("torch.compile was reached")

    monkeypatch.setattr(torch, "compile", compile_must_not_run)
    monkeypatch.chdir(tmp_path)
    for name, change in (("net", runtime_net), ("pipe", runtime_pipe), ("column", runtime_column)):
        blob = (tmp_path / f"{name}.skp").read_bytes()
        (tmp_path / f"{name}_v3.skp").write_bytes(edit(blob, change))
        with pytest.raises(PersistenceError, match="runtime parameter"):
            skprune.load(tmp_path / f"{name}_v3.skp")
        (tmp_path / f"{name}_v2.skp").write_bytes(edit(blob, change, format_version="2"))
        loaded = skprune.load(tmp_path / f"{name}_v2.skp")
        params = loaded.get_params()
        # the default ("auto": a CUDA graph on GPUs, never torch.compile), not what the file said
        assert all(value == "auto" for key, value in params.items() if key.endswith("compile"))
        assert not any("compile__" in key or "num_workers" in key for key in params)
        assert params.get("memory") is None and params.get("ct__n_jobs") is None
        assert all(value == "cpu" for key, value in params.items() if key.endswith("device"))
        X_in = np.abs(X) if name == "column" else X
        np.testing.assert_array_equal(loaded.predict_proba(X_in), fitted[name].predict_proba(X_in))
        loaded.fit(X_in, y)  # a refit: no cache folder is used, no pool is started
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "t").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["output.pkl"]


# --- construction is bounded by the stored tensors -------------------------------------------------


def test_a_registered_module_class_cannot_be_made_to_build_more_than_its_tensors(models, tmp_path):
    from skprune.deploy import _allowlist

    fitted, _, _ = models
    skprune.save(fitted["net"], tmp_path / "net.skp")

    def rnn(cfg):
        cfg["root"]["__net__"]["estimator"]["params"]["module"] = {
            "__module__": "torch.nn.modules.rnn.RNN",
            "params": {"input_size": 4, "hidden_size": 8, "num_layers": 10000},
            "state": "objects.0.",
        }

    (tmp_path / "rnn.skp").write_bytes(edit((tmp_path / "net.skp").read_bytes(), rnn))
    skprune.register_serializable(torch.nn.RNN)  # even a class the user trusts
    try:
        with pytest.raises(PersistenceError, match="registers more than"):
            skprune.load(tmp_path / "rnn.skp")
    finally:
        _allowlist._REGISTERED.pop("torch.nn.modules.rnn.RNN")


def test_modules_are_built_on_the_meta_device_and_given_the_stored_tensors(tmp_path):
    X = np.random.RandomState(0).randn(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    module = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    net = PrunedNetClassifier(module=module, max_epochs=1, random_state=0).fit(X, y)
    skprune.save(net, tmp_path / "s.skp")
    created = []
    original = torch.nn.Linear.reset_parameters

    def spy(self):
        created.append(self.weight.device.type)
        return original(self)

    torch.nn.Linear.reset_parameters = spy
    try:
        loaded = skprune.load(tmp_path / "s.skp")
    finally:
        torch.nn.Linear.reset_parameters = original
    assert created and set(created) == {"meta"}  # no layer was initialized with real memory
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


# --- save writes only regular files ----------------------------------------------------------------


def test_save_refuses_fifos_devices_and_symlinks_and_leaves_them_as_they_were(models, tmp_path):
    fitted, _, _ = models
    fifo = tmp_path / "fifo.skp"
    os.mkfifo(fifo)
    with pytest.raises(PersistenceError, match="not a regular file"):
        skprune.save(fitted["net"], fifo)
    assert fifo.is_fifo()
    target = tmp_path / "real.skp"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.skp"
    link.symlink_to(target)
    with pytest.raises(PersistenceError, match="symbolic link"):
        skprune.save(fitted["net"], link)
    assert link.is_symlink() and target.read_bytes() == b"keep me"
    with pytest.raises(PersistenceError, match="not a regular file"):
        skprune.save(fitted["net"], "/dev/null")  # as root this replaced /dev/null
    assert Path("/dev/null").is_char_device()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
