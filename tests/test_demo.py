import subprocess
import sys

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
