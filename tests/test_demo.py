import subprocess
import sys

import pytest

from skprune._cli import main
from skprune._demo import run_demo


def test_demo_prints_results_table():
    lines = []
    search = run_demo(
        sparsities=(0.0, 0.9), alphas=(1e-4,), cv=2, max_epochs=3, n_jobs=1, print_fn=lines.append
    )
    text = "\n".join(lines)
    for column in ["sparsity", "alpha", "mean_accuracy", "std_accuracy", "nonzero_params"]:
        assert column in text
    assert "per-layer report" in text
    assert search.best_estimator_[-1].pruning_report().shape[0] == 3
    nonzero = search.cv_results_["mean_test_nonzero_params"]
    assert nonzero[1] < 0.2 * nonzero[0]


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
