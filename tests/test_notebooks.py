"""The example notebooks run green, are stored without outputs, and the quickstart shows its table and plots.

Each notebook runs in a fresh ``python3`` kernel of *this* interpreter
(``sys.executable``, with ipykernel installed alongside), whatever kernels
are installed on the machine, with one torch/BLAS thread and this checkout
of skprune importable.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
QUICKSTART = EXAMPLES / "01_quickstart.ipynb"
#: per cell; every notebook runs in well under a minute on 2 cores
CELL_TIMEOUT = 120
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _kernel_manager(tmp_path: Path):
    """A KernelManager running ipykernel on ``sys.executable`` (not an installed ``python3`` spec)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = tmp_path / "kernels" / "skprune-test"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (skprune tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)], ensure_native_kernel=False)
    return KernelManager(kernel_name="skprune-test", kernel_spec_manager=specs)


def _kernel_env() -> dict:
    env = dict(os.environ)
    # this checkout of skprune, whether installed or run from the source tree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = "1"  # small networks train fastest on one thread; CI has 2 cores
    env.pop("MPLBACKEND", None)  # the kernel's inline backend draws image/png outputs
    return env


def execute(path: Path, tmp_path: Path):
    """Execute a notebook in ``tmp_path`` (files it writes land there) and return it."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        km=_kernel_manager(tmp_path),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=_kernel_env())
    return notebook


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return data.get("text/plain", "")


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert QUICKSTART.name in names
    assert len(names) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stored_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} stores outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} stores an execution count"
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_quickstart_prints_table_with_sparsity_and_draws_images(tmp_path):
    notebook = execute(QUICKSTART, tmp_path)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]

    # skorch's per-epoch table, printed by verbose=1, with the sparsity as a column
    text = ANSI.sub("", "".join(_text(o) for o in outputs if o.output_type == "stream"))
    lines = text.splitlines()
    header = next((line for line in lines if line.split()[:1] == ["epoch"]), None)
    assert header is not None, f"no per-epoch table in the output:\n{text[:2000]}"
    columns = header.split()
    assert {"train_loss", "valid_loss", "valid_acc", "sparsity", "dur"} <= set(columns)
    rows = [line.split() for line in lines if re.fullmatch(r"\s*\d+(\s+[-+0-9.e]+)+\s*", line)]
    assert [int(row[0]) for row in rows] == list(range(1, 13))
    sparsity = [float(row[columns.index("sparsity")]) for row in rows]
    assert sparsity[0] < sparsity[-1] and sparsity[-1] > 0.8  # gradual pruning shows up in the table

    # at least one plot, as an image
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert images, "the quickstart drew no image/png output"
    # the fitted pipeline's HTML repr, with the "?" link to skprune's documentation
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs if "data" in o)
    assert "skprune.readthedocs.io" in html and "PrunedNetClassifier" in html
    # history_frame is shown as a DataFrame table
    assert "<table" in html and "sparsity" in html


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p != QUICKSTART], ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    notebook = execute(path, tmp_path)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
    assert list(tmp_path.glob("*.skp")) == []  # notebooks clean up the files they write
