"""The import graph between skprune's subpackages points one way: down.

Every module of the package belongs to one layer; a module may import from
its own layer and the layers below it, never from a layer above (function-
local imports count: they are arrows too, only hidden). The order is the one
``docs/guide/architecture.rst`` documents.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import skprune

PACKAGE = pathlib.Path(skprune.__file__).parent

#: Bottom first. A unit is a subpackage (``nn``) or a top-level module (``_estimator``).
LAYERS: list[tuple[str, set[str]]] = [
    # foundations: import nothing of skprune but each other
    (
        "foundations",
        {"_version", "_doc_link", "exceptions", "_random", "_validation", "_params", "_serializable"},
    ),
    ("networks", {"nn"}),
    ("pruners", {"pruners"}),  # the protocol, the mask store, the strategies, the schedules
    ("training", {"_training"}),  # the engine of one fit, data preparation, the training step
    # compaction, export, persistence: work on any fitted estimator by duck typing; the estimator's
    # compact() delegates here, and classes above register themselves with the allow-list
    ("deploy", {"deploy"}),
    ("estimators", {"_fitted_figures", "_estimator", "_classifier", "_regressor", "_unwrap"}),
    ("inspection", {"inspection"}),
    ("model_selection", {"model_selection"}),
    ("application", {"__init__", "__main__", "_cli", "_demo"}),
]

#: Upward arrows that another branch is removing; each entry says which and why.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


def _unit_of(module: str) -> str:
    """``skprune.nn._units`` -> ``nn``; ``skprune`` (the package root) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: pathlib.Path, root: pathlib.Path) -> tuple[str, str]:
    """Dotted name of the module at ``path`` and of the package its relative imports start from."""
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imported_modules(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> set[str]:
    """Every skprune module ``path`` imports, at any depth of its code (function bodies included)."""
    _, package = _module_name(path, root)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "skprune"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "skprune":
                continue
            if target == "skprune":  # from skprune import nn / from . import deploy: the names are units
                found |= {f"skprune.{alias.name}" for alias in node.names}
            else:
                found.add(target)
    return found


def import_edges(root: pathlib.Path = PACKAGE) -> dict[tuple[str, str], set[str]]:
    """``(importing unit, imported unit) -> files`` over the package, arrows within a unit left out."""
    units = {p.name for p in root.iterdir() if p.is_dir()} | {p.stem for p in root.glob("*.py")}
    edges: dict[tuple[str, str], set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        name, _ = _module_name(path, root)
        source = _unit_of(name)
        for target in imported_modules(path, root):
            unit = _unit_of(target)
            unit = unit if unit in units else "__init__"  # from skprune import PrunedNet: the package root
            if unit != source:
                edges.setdefault((source, unit), set()).add(str(path.relative_to(root.parent)))
    return edges


def _layer_index() -> dict[str, int]:
    return {unit: index for index, (_, units) in enumerate(LAYERS) for unit in units}


def test_every_subpackage_and_top_level_module_has_a_layer():
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in PACKAGE.glob("*.py")}
    unplaced = present - set(_layer_index())
    assert not unplaced, f"put these in a layer of LAYERS (and of docs/guide/architecture.rst): {unplaced}"
    assert not set(_layer_index()) - present, "LAYERS names units that no longer exist"


def test_no_import_points_up_a_layer():
    index = _layer_index()
    upward = {
        (source, target): sorted(files)
        for (source, target), files in import_edges().items()
        if index[target] > index[source] and (source, target) not in KNOWN_EXCEPTIONS
    }
    assert not upward, (
        "imports that point up the layers (move the code down, or pass the object in): "
        + "; ".join(f"{s} -> {t} in {f}" for (s, t), f in sorted(upward.items()))
    )


def test_known_exceptions_still_exist_so_the_list_only_shrinks():
    edges = import_edges()
    stale = [edge for edge in KNOWN_EXCEPTIONS if edge not in edges]
    assert not stale, f"these upward imports are gone; delete them from KNOWN_EXCEPTIONS: {stale}"


def test_the_protocol_and_the_mask_store_live_below_the_training_engine():
    edges = import_edges()
    assert ("_training", "pruners") in edges  # the engine uses the protocol ...
    assert ("pruners", "_training") not in edges  # ... which knows nothing of the engine
    from skprune import MaskStore
    from skprune._training._masks import MaskStore as old_path  # files pickled before the move

    assert MaskStore.__module__ == "skprune.pruners._masks"
    assert old_path is MaskStore


def test_the_checker_sees_relative_function_local_and_package_imports(tmp_path):
    package = tmp_path / "skprune"
    (package / "nn").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "nn" / "__init__.py").write_text("from .. import deploy\n")
    (package / "nn" / "_units.py").write_text(
        "import torch\n\ndef f():\n    from .._estimator import PrunedNet\n    import skprune.pruners._base\n"
        "    from skprune import PrunedNetClassifier\n"
    )
    for name in ("deploy", "pruners"):
        (package / name).mkdir()
    (package / "_estimator.py").write_text("")
    edges = import_edges(package)
    assert set(edges) == {("nn", "deploy"), ("nn", "_estimator"), ("nn", "pruners"), ("nn", "__init__")}


@pytest.mark.parametrize("edge", sorted(KNOWN_EXCEPTIONS))
def test_known_exceptions_point_up(edge):
    index = _layer_index()
    assert index[edge[1]] > index[edge[0]], f"{edge} does not point up; it needs no exception"
