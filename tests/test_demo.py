import os
import subprocess
import sys

import pytest

from skprune import PrunedNetCV
from skprune._cli import main
from skprune._demo import DEFAULT_SPARSITIES, run_demo


def test_demo_chooses_by_the_one_standard_error_rule_and_says_why():
    from skprune import one_standard_error_index

    lines = []
    search = run_demo(sparsities=(0.0, 0.5, 0.9), cv=2, max_epochs=3, n_jobs=1, print_fn=lines.append)
    text = "\n".join(lines)
    assert isinstance(search, PrunedNetCV) and search.selection == "1se"
    assert search.best_index_ == one_standard_error_index(
        search.cv_results_, sparsity="param_prunednetclassifier__pruner__sparsity"
    )
    assert f"chosen: sparsity {search.best_sparsity_:g} by the one-standard-error rule" in text
    for column in ["sparsity", "measured", "mean_accuracy", "std", "se", "rank", "within_1se"]:
        assert column in text
    assert "share a rank" in text  # ties are explained
    assert "per-layer report" in text
    assert search.best_estimator_[-1].pruning_report().shape[0] == 3


def test_demo_reads_no_deprecated_attribute():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # e.g. PrunedNetCV.sparsity_, now best_sparsity_
        run_demo(sparsities=(0.0, 0.9), cv=2, max_epochs=1, n_jobs=1, print_fn=lambda line: None)


def test_demo_reports_weights_pruned_apart_from_parameters_nonzero():
    lines = []
    search = run_demo(sparsities=(0.0, 0.9), cv=2, max_epochs=2, n_jobs=1, print_fn=lines.append)
    model = search.best_estimator_[-1]
    report = model.pruning_report()
    weights, nonzero = int(report["weight_params"].sum()), int(report["weight_nonzero"].sum())
    text = "\n".join(lines)
    assert f"{weights - nonzero:,} of {weights:,} weights pruned" in text
    assert f"{model.n_nonzero_params_:,} of {model.n_params_:,} parameters are nonzero" in text
    assert weights < model.n_params_  # biases are parameters, not weights


def test_demo_prints_a_progress_line_for_every_fold_and_sparsity():
    out = subprocess.run(
        [sys.executable, "-m", "skprune", "demo", "--cv", "2", "--max-epochs", "1", "--n-jobs", "1"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    progress = [line for line in out.stderr.splitlines() if "a held-out fold scored at sparsity" in line]
    assert len(progress) == 2 * len(DEFAULT_SPARSITIES)
    assert "chosen: sparsity" in out.stdout


def test_cli_rejects_bad_arguments(capsys):
    try:
        main(["demo", "--cv", "1"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "--cv must be >= 2" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "skprune", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "demo" in out.stdout


_HEAVY = ("torch", "sklearn", "skorch", "pandas", "scipy")

#: Runs ``skprune`` as ``python -m skprune ARG`` does (runpy), then prints the heavy modules it imported.
_IMPORTS_OF = r"""
import runpy, sys
flag, watched = sys.argv[1], set(sys.argv[2].split(","))
sys.argv = ["skprune", flag]
try:
    runpy.run_module("skprune", run_name="__main__", alter_sys=True)
except SystemExit as exit_:
    assert exit_.code in (0, None), exit_.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & watched)
sys.stderr.write("HEAVY=" + ",".join(heavy) + "\n")
"""


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_neither_torch_nor_sklearn_nor_skorch(flag):
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTS_OF, flag, ",".join(_HEAVY)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "skprune" in out.stdout
    heavy = out.stderr.rsplit("HEAVY=", 1)[1].strip()
    assert heavy == "", f"`skprune {flag}` imported {heavy}"


def test_the_lazy_package_exports_every_public_name_and_subpackage():
    import skprune

    assert set(skprune._EXPORTS) == set(skprune.__all__) - {"__version__"}
    for name in skprune.__all__:
        assert getattr(skprune, name) is not None
    assert set(skprune.__all__) <= set(dir(skprune))
    from skprune.nn import MLP

    assert skprune.MLP is MLP and skprune.nn.MLP is MLP
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        skprune.not_a_name  # noqa: B018
