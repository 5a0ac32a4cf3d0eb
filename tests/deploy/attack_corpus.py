"""The attack corpus of skprune.load: hostile files, written from a genuine saved model.

Every case is a file that an attacker could hand to ``skprune.load`` (the
checksum recomputed, as anyone can). ``write_corpus(folder)`` writes them all
and returns ``{name: (path, expected message)}``; ``tests/deploy/test_attacks.py``
checks that each ends in ``PersistenceError`` with that message, within 2 s of
CPU and 200 MB of memory.

Run it as a script to measure each file's load (CPU seconds, wall seconds,
peak RSS growth)::

    PYTHONPATH=. python tests/deploy/attack_corpus.py
"""

from __future__ import annotations

import json
import os
import pickle
import re
import resource
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import skprune
from skprune import MagnitudePruning, OneShot, PrunedNetClassifier
from skprune.deploy._safefile import tensor_digest

__all__ = ["CASE_NAMES", "base_models", "build", "edit", "write_corpus", "measure"]

#: Every case :func:`write_corpus` writes, named after the behaviour its test checks.
CASE_NAMES = (
    # issue 22, case 1: code execution or files through torch.compile's options
    "compile_options_with_a_gcc_wrapper_never_reach_a_compiler",
    "compile_trace_debug_dir_chosen_by_the_file_is_never_used",
    # 2: a cache folder chosen by the file
    "pipeline_memory_naming_a_cache_folder_is_refused",
    # 3: memory bombs
    "unicode_array_padded_to_its_longest_string_is_charged_at_its_padded_size",
    "a_tensor_referenced_1500_times_is_charged_for_every_reference",
    # 4: construction time
    "rnn_with_10000_layers_is_not_on_the_allow_list",
    "mlp_with_50000_layers_is_refused_before_it_is_built",
    "linear_layer_declaring_more_than_its_stored_tensors_is_refused",
    # 5: the whole file read before the header
    "truncated_3g_file_is_refused_from_its_first_8_bytes",
    "header_longer_than_64_mb_is_refused_before_it_is_read",
    # 7: masks
    "masks_marking_nonzero_weights_as_pruned_are_refused",
    "masks_naming_parameters_that_do_not_exist_are_refused",
    "masks_of_the_wrong_shape_are_refused",
    "classes_that_disagree_with_the_output_layer_are_refused",
    # 8: every failure a PersistenceError
    "format_version_superscript_two_is_a_persistence_error",
    # 9: side effects of allow-listed values
    "function_transformer_calling_print_is_refused",
    "iterator_valid_num_workers_never_start_processes",
    "column_transformer_n_jobs_never_starts_a_pool",
    "skorch_data_loader_as_iterator_is_never_read",
    # typed values
    "a_negative_learning_rate_is_refused_by_the_schema",
    "a_string_as_max_epochs_is_refused_by_the_schema",
    "an_optimizer_group_with_a_negative_learning_rate_is_refused",
    "scikit_learn_parameters_are_checked_against_its_own_constraints",
    "pruner_parameters_are_checked_against_their_own_constraints",
    "dunder_attributes_are_never_set",
    # 10: scikit-learn estimators through skops.io
    "skops_entry_expanding_like_a_zip_bomb_is_refused_before_decompression",
    "skops_entry_that_is_not_an_archive_is_refused",
    # earlier cases
    "pickle_payload_is_never_unpickled",
    "torch_save_zip_archive_is_refused",
    "header_length_of_2_to_the_62_is_refused_from_the_first_8_bytes",
    "overlapping_tensor_offsets_are_refused",
    "huge_declared_tensor_shape_is_refused_before_allocation",
    "configuration_nested_100000_deep_is_refused",
    "dev_zero_is_not_a_regular_file",
    "symlink_to_dev_zero_is_not_a_regular_file",
    "fifo_is_refused_without_blocking",
)

GCC_WRAPPER = 'native -wrapper "/bin/sh,-c,touch PWNED"'


def base_models():
    """A fitted pruned net, a Pipeline and a ColumnTransformer pipeline with a FunctionTransformer."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    rng = np.random.RandomState(0)
    X = rng.randn(60, 4).astype(np.float32)
    y = np.arange(60) % 3
    params = dict(max_epochs=1, batch_size=32, random_state=0, module__hidden_layer_sizes=(8,))
    net = PrunedNetClassifier(pruner=MagnitudePruning(0.5, schedule=OneShot()), **params).fit(X, y)
    pipe = make_pipeline(StandardScaler(), PrunedNetClassifier(**params)).fit(X, y)
    ct = ColumnTransformer([("log", FunctionTransformer(np.log1p), [0, 1])], remainder="passthrough")
    column = Pipeline([("ct", ct), ("net", PrunedNetClassifier(**params))]).fit(np.abs(X), y)
    from sklearn.linear_model import LogisticRegression

    linear = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    return {"net": net, "pipe": pipe, "column": column, "linear": linear}, X, y


def split(blob: bytes) -> tuple[dict, dict]:
    """The ``(metadata, tensors)`` of a file's bytes (metadata with ``config`` parsed)."""
    (n,) = struct.unpack("<Q", blob[:8])
    metadata = json.loads(blob[8 : 8 + n])["__metadata__"]
    metadata["config"] = json.loads(metadata["config"])
    return metadata, st_load(blob)


def build(metadata: dict, tensors: dict, sign: bool = True) -> bytes:
    """A file with this metadata (``config`` as a dict) and these tensors, signed as ``save`` does."""
    metadata = dict(metadata)
    config = metadata["config"]
    text = config if isinstance(config, str) else json.dumps(config)
    metadata["config"] = text
    if sign:
        metadata["sha256"] = tensor_digest(text, tensors)
    return st_save(tensors, metadata=metadata)


def edit(blob: bytes, config=None, tensors=None, **metadata_changes) -> bytes:
    """A re-signed copy of ``blob`` with ``config(cfg)`` / ``tensors(dict)`` applied in place."""
    metadata, stored = split(blob)
    if config is not None:
        config(metadata["config"])
    if tensors is not None:
        tensors(stored)
    metadata.update(metadata_changes)
    return build(metadata, stored)


def _net(cfg):
    return cfg["root"]["__net__"]


def _steps(cfg):
    return cfg["root"]["state"]["steps"]


def _step(cfg, index):
    return _steps(cfg)[index]["__tuple__"][1]


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_PICKLE",))


def _bytes_tensor(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def write_corpus(folder) -> dict[str, tuple[str, str]]:
    """Write every attack file into ``folder``; return ``{case: (path, expected message regex)}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models, _, _ = base_models()
    good = {}
    for name, model in models.items():
        skprune.save(model, folder / f"good_{name}.skp")
        good[name] = (folder / f"good_{name}.skp").read_bytes()
    net, pipe, column, linear = good["net"], good["pipe"], good["column"], good["linear"]
    cases: dict[str, tuple[bytes | None, str]] = {}

    def params(cfg):
        return _net(cfg)["estimator"]["params"]

    def set_params(**values):
        return lambda cfg: params(cfg).update(values)

    # 1. code execution through torch.compile's options (gcc -wrapper), files written where the file says
    cases["compile_options_with_a_gcc_wrapper_never_reach_a_compiler"] = (
        edit(net, set_params(compile=True, compile__options={"__dict__": {"cpp.march": GCC_WRAPPER}})),
        "runtime parameter",
    )
    cases["compile_trace_debug_dir_chosen_by_the_file_is_never_used"] = (
        edit(
            net,
            set_params(
                compile=True,
                compile__options={"__dict__": {"trace.enabled": True, "trace.debug_dir": str(folder)}},
            ),
        ),
        "runtime parameter",
    )
    # 2. a cache folder chosen by the file (joblib unpickles what it finds there)
    cases["pipeline_memory_naming_a_cache_folder_is_refused"] = (
        edit(pipe, lambda cfg: cfg["root"]["state"].update(memory=str(folder / "cache"))),
        "runtime parameter",
    )

    # 3. memory bombs: padded unicode arrays, one tensor referenced many times
    def unicode_bomb(cfg):
        _net(cfg)["fitted"]["attributes"]["_classes"] = {
            "__ndarray__": ["a"] * 100_000 + ["x" * 4000],
            "dtype": "<U",
        }

    cases["unicode_array_padded_to_its_longest_string_is_charged_at_its_padded_size"] = (
        edit(net, unicode_bomb),
        "more than",
    )

    def many_references(cfg):
        params(cfg)["criterion__weight"] = [{"__tensor__": "values.0"}] * 1500

    cases["a_tensor_referenced_1500_times_is_charged_for_every_reference"] = (
        edit(net, many_references, lambda t: t.update({"values.0": torch.zeros(2**16)})),
        "more than",
    )
    # 4. construction work: RNN(num_layers=10000), an MLP of 50,000 layers, a Linear bigger than its tensors
    cases["rnn_with_10000_layers_is_not_on_the_allow_list"] = (
        edit(
            net,
            set_params(
                module={
                    "__module__": "torch.nn.modules.rnn.RNN",
                    "params": {"input_size": 4, "hidden_size": 8, "num_layers": 10000},
                    "state": "objects.0.",
                }
            ),
        ),
        "allow-list",
    )
    cases["mlp_with_50000_layers_is_refused_before_it_is_built"] = (
        edit(net, set_params(module__hidden_layer_sizes={"__tuple__": [1] * 50_000})),
        "more than",
    )
    cases["linear_layer_declaring_more_than_its_stored_tensors_is_refused"] = (
        edit(
            net,
            set_params(
                module={
                    "__module__": "torch.nn.modules.linear.Linear",
                    "params": {"in_features": 100_000, "out_features": 100_000},
                    "state": "objects.0.",
                }
            ),
        ),
        "declares tensor",
    )
    # 7. masks that disagree with the weights
    cases["masks_marking_nonzero_weights_as_pruned_are_refused"] = (
        edit(
            net,
            tensors=lambda t: t.update(
                {k: torch.full_like(v, 255) for k, v in t.items() if k.startswith("masks_.")}
            ),
        ),
        "not zero",
    )

    def ghost_mask(cfg):
        shapes = _net(cfg)["fitted"]["mask_shapes"]
        shapes["ghost.weight"] = [8, 4]

    cases["masks_naming_parameters_that_do_not_exist_are_refused"] = (
        edit(net, ghost_mask, lambda t: t.update({"masks_.ghost.weight": torch.zeros(4, dtype=torch.uint8)})),
        "not a parameter",
    )

    def transposed_mask(cfg):
        shapes = _net(cfg)["fitted"]["mask_shapes"]
        key = next(iter(shapes))
        shapes[key] = list(reversed(shapes[key]))

    cases["masks_of_the_wrong_shape_are_refused"] = (edit(net, transposed_mask), "has shape")

    def two_of_three_classes(cfg):
        _net(cfg)["fitted"]["attributes"]["_classes"] = {"__ndarray__": [0, 1], "dtype": "<i8"}

    cases["classes_that_disagree_with_the_output_layer_are_refused"] = (
        edit(net, two_of_three_classes),
        "output layer",
    )
    # 8. a format version that str.isdigit accepts and int() does not
    cases["format_version_superscript_two_is_a_persistence_error"] = (
        edit(net, format_version="\u00b2"),
        "invalid format_version",
    )

    # 9. side effects through allow-listed values
    def print_function(cfg):
        transformer = cfg["root"]["state"]["steps"][0]["__tuple__"][1]["state"]["transformers"]
        transformer[0]["__tuple__"][1]["state"]["func"] = {"__ref__": "builtins.print"}

    cases["function_transformer_calling_print_is_refused"] = (edit(column, print_function), "allow-list")
    cases["iterator_valid_num_workers_never_start_processes"] = (
        edit(net, set_params(iterator_valid__num_workers=8)),
        "runtime parameter",
    )
    cases["column_transformer_n_jobs_never_starts_a_pool"] = (
        edit(column, lambda cfg: _step(cfg, 0)["state"].update(n_jobs=4)),
        "runtime parameter",
    )
    cases["skorch_data_loader_as_iterator_is_never_read"] = (
        edit(net, set_params(iterator_valid={"__ref__": "torch.utils.data.dataloader.DataLoader"})),
        "runtime parameter",
    )
    # typed values
    cases["a_negative_learning_rate_is_refused_by_the_schema"] = (edit(net, set_params(lr=-1.0)), "must be")
    cases["a_string_as_max_epochs_is_refused_by_the_schema"] = (
        edit(net, set_params(max_epochs="10")),
        "must be",
    )
    cases["an_optimizer_group_with_a_negative_learning_rate_is_refused"] = (
        edit(net, lambda cfg: _net(cfg)["fitted"].update(optimizer_groups=[{"__dict__": {"lr": -5.0}}])),
        "optimizer setting",
    )
    cases["scikit_learn_parameters_are_checked_against_its_own_constraints"] = (
        edit(pipe, lambda cfg: _step(cfg, 0)["state"].update(with_mean="yes")),
        "invalid parameter",
    )
    cases["pruner_parameters_are_checked_against_their_own_constraints"] = (
        edit(net, lambda cfg: params(cfg)["pruner"]["params"].update(sparsity=2.0)),
        "invalid parameter",
    )
    cases["dunder_attributes_are_never_set"] = (
        edit(pipe, lambda cfg: _step(cfg, 0)["state"].update(__class__="x")),
        "never sets",
    )

    # 10. skops entries: a zip bomb, garbage
    import io
    import zipfile

    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("schema.json", b" " * (64 * 2**20))
    cases["skops_entry_expanding_like_a_zip_bomb_is_refused_before_decompression"] = (
        edit(linear, tensors=lambda t: t.update({"sklearn.0": _bytes_tensor(bomb.getvalue())})),
        "expands",
    )
    cases["skops_entry_that_is_not_an_archive_is_refused"] = (
        edit(linear, tensors=lambda t: t.update({"sklearn.0": _bytes_tensor(b"not a zip" * 100)})),
        "not valid",
    )

    # earlier cases: pickles, archives, headers, offsets, shapes, nesting
    cases["pickle_payload_is_never_unpickled"] = (pickle.dumps(_Payload()), "pickle")
    torch.save({"weight": torch.zeros(3)}, folder / "torch_save.pt")
    cases["torch_save_zip_archive_is_refused"] = ((folder / "torch_save.pt").read_bytes(), "ZIP")
    cases["header_length_of_2_to_the_62_is_refused_from_the_first_8_bytes"] = (
        struct.pack("<Q", 2**62) + b"{}" * 8,
        "not a skprune file",
    )

    def overlap(blob):
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + n])
        entries = [k for k in header if k != "__metadata__"]
        size = {k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0] for k in entries}
        large = max(entries, key=size.get)
        small = next(k for k in entries if k != large and 0 < size[k] <= size[large])
        start = header[large]["data_offsets"][0]
        header[small]["data_offsets"] = [start, start + size[small]]  # inside the large tensor's bytes
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + blob[8 + n :]

    cases["overlapping_tensor_offsets_are_refused"] = (overlap(net), "overlaps|declares")

    def huge_shape(blob):
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + n])
        name = next(k for k in header if k != "__metadata__")
        header[name]["shape"] = [2**40, 2**40]
        text = json.dumps(header).encode()
        return struct.pack("<Q", len(text)) + text + blob[8 + n :]

    cases["huge_declared_tensor_shape_is_refused_before_allocation"] = (
        huge_shape(net),
        "invalid description",
    )

    def deep(cfg):
        _net(cfg)["fitted"]["attributes"]["deep_"] = "DEEP"

    metadata, stored = split(net)
    deep(metadata["config"])
    text = json.dumps(metadata["config"]).replace('"DEEP"', "[" * 100_000 + "]" * 100_000)
    metadata["config"] = text
    cases["configuration_nested_100000_deep_is_refused"] = (build(metadata, stored), "nested deeper")

    out = {}
    for name, (blob, message) in cases.items():
        path = folder / f"{name}.skp"
        path.write_bytes(blob)
        out[name] = (str(path), message)
    # 5. a sparse file of 3 GB (truncate -s 3G) and a 70 MB header length over a sparse file
    sparse = folder / "truncated_3g_file_is_refused_from_its_first_8_bytes.skp"
    with open(sparse, "wb") as f:
        f.truncate(3 * 2**30)
    out[sparse.stem] = (str(sparse), "not a skprune file")
    oversized = folder / "header_longer_than_64_mb_is_refused_before_it_is_read.skp"
    with open(oversized, "wb") as f:
        f.write(struct.pack("<Q", 70 * 2**20))
        f.truncate(71 * 2**20)
    out[oversized.stem] = (str(oversized), "not a skprune file")
    # non-regular files
    if os.path.exists("/dev/zero"):
        out["dev_zero_is_not_a_regular_file"] = ("/dev/zero", "not a regular file")
        link = folder / "symlink_to_dev_zero.skp"
        if not link.is_symlink():
            link.symlink_to("/dev/zero")
        out["symlink_to_dev_zero_is_not_a_regular_file"] = (str(link), "not a regular file")
    if hasattr(os, "mkfifo"):
        fifo = folder / "fifo.skp"
        if not fifo.exists():
            os.mkfifo(fifo)
        out["fifo_is_refused_without_blocking"] = (str(fifo), "not a regular file")
    assert set(out) <= set(CASE_NAMES), sorted(set(out) - set(CASE_NAMES))
    return out


def _peak_rss_kb() -> int:
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(corpus: dict[str, tuple[str, str]]) -> dict[str, dict]:
    """Load every file; its CPU and wall seconds, peak RSS growth (MB) and the error it ended in."""
    results = {}
    for name, (path, _) in corpus.items():
        _reset_peak()
        before_rss = _peak_rss_kb() if _reset_peak() else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu = time.process_time()
        wall = time.perf_counter()
        try:
            skprune.load(path)
            error = None
        except Exception as exc:  # recorded, judged by the caller
            error = f"{type(exc).__name__}: {exc}"
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        after_rss = _peak_rss_kb() if os.path.exists("/proc/self/status") else before_rss
        results[name] = {
            "cpu_s": round(cpu, 3),
            "wall_s": round(wall, 3),
            "rss_growth_mb": round(max(after_rss - before_rss, 0) / 1024, 1),
            "error": error,
        }
    return results


if __name__ == "__main__":
    import tempfile

    torch.set_num_threads(1)
    folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="skprune-attacks-")
    corpus = write_corpus(folder)
    results = measure(corpus)
    if "--json" in sys.argv:
        print(json.dumps(results))
    else:
        print(f"{'case':78s} {'cpu s':>6s} {'wall s':>6s} {'RSS MB':>7s}  refused")
        for name, r in sorted(results.items(), key=lambda kv: -kv[1]["rss_growth_mb"]):
            refused = "yes" if (r["error"] or "").startswith("PersistenceError") else f"NO: {r['error']}"
            print(f"{name:78s} {r['cpu_s']:6.2f} {r['wall_s']:6.2f} {r['rss_growth_mb']:7.1f}  {refused}")
