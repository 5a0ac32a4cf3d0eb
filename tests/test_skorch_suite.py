"""skorch's own test suite, run on skprune's nets (issue 23).

The installed skorch ships its tests (``skorch/tests``). A pytest run of a
subset of them (``MODULES``) in a subprocess swaps skorch's ``NeuralNet``,
``NeuralNetClassifier`` and ``NeuralNetRegressor`` for subclasses of
skprune's (``tests/skorch_suite/swap_plugin.py``, which also says which
skorch defaults they take), once dense (``pruner=None``) and once with
``MagnitudePruning(0.5)``. Nothing of skorch is copied into this repository.

Every test that fails there is listed, with a one-line reason, in
``tests/skorch_suite/expected_failures.txt``. The test here fails when

* a test that is not listed fails (a broken skorch contract),
* a listed test passes (the list must shrink with the fix),
* a listed test fails with ``AttributeError``, ``IndexError`` or
  ``TypeError`` raised inside skprune (a crash is never an expected
  difference).

Modules left out, and why, are in ``LEFT_OUT``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import skorch

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "skorch_suite"
EXPECTED = HERE / "expected_failures.txt"
SKORCH_TESTS = Path(skorch.__file__).resolve().parent / "tests"
CONFIGS = ("none", "magnitude")

#: skorch test modules run here (about a minute per configuration on one core)
MODULES = (
    "test_net.py",
    "test_classifier.py",
    "test_regressor.py",
    "test_scoring.py",
    "callbacks/test_training.py",
    "callbacks/test_scoring.py",
    "callbacks/test_lr_scheduler.py",
    "callbacks/test_regularization.py",
    "callbacks/test_all.py",
    "test_setter.py",
    "test_utils.py",
)

#: skorch test modules not run, with the reason
LEFT_OUT = {
    "callbacks/test_logging.py": "third-party loggers (TensorBoard, W&B, MLflow...) and PrintLog's exact "
    "table, which skprune's TrainingLog replaces on purpose (sparsity column)",
    "test_dataset.py": "skorch's Dataset/ValidSplit/CVSplit; skprune's default dataset is ArrayDataset",
    "test_helper.py": "SliceDict/SliceDataset/DataFrameTransformer helpers: skprune takes arrays, not "
    "dicts or datasets, as X (refused with a message)",
    "test_doctor.py": "SkorchDoctor, a debugging helper built on skorch's internals",
    "test_history.py": "History alone, with a minute of multiprocess history tests (one fits a net)",
    "test_toy.py": "toy module factories only, no net class involved",
    "test_cli.py": "command-line helpers (fire), optional dependency",
    "test_probabilistic.py": "GPyTorch nets, optional dependency",
    "test_hf.py": "Hugging Face tokenizers and accelerate, optional dependencies",
    "llm": "large language model classifiers, optional dependencies",
}

_CRASH = re.compile(r"^(AttributeError|IndexError|TypeError)\b")
_FRAME = re.compile(r"^(?P<path>\S+\.py):\d+: (?P<error>\w+)$", re.MULTILINE)


def expected_failures(config: str) -> dict[str, str]:
    """``{test id: reason}`` listed for ``config`` (lines ``[config] id  # reason`` apply to one only)."""
    listed = {}
    for number, raw in enumerate(EXPECTED.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        test, sep, reason = line.partition("  # ")
        if not sep or not reason.strip():
            raise ValueError(f"{EXPECTED.name}:{number}: each line is '<test id>  # <reason>', got {raw!r}.")
        match = re.match(r"^\[(\w+)\]\s+(.*)$", test.strip())
        if match and match.group(1) not in CONFIGS:
            raise ValueError(f"{EXPECTED.name}:{number}: unknown configuration {match.group(1)!r}.")
        if match is None or match.group(1) == config:
            listed[(match.group(2) if match else test).strip()] = reason.strip()
    return listed


def _test_id(case: ET.Element) -> str:
    parts = case.get("classname", "").split(".")
    module = next(i for i, part in enumerate(parts) if part.startswith("test_"))
    path = "/".join(parts[: module + 1]) + ".py"
    return "::".join([path, *parts[module + 1 :], case.get("name", "")])


def run_skorch_suite(config: str, tmp_path: Path) -> tuple[dict[str, str], set[str], set[str], str]:
    """Run the modules; return ``({failed id: failure text}, passed ids, collected ids, output)``."""
    junit = tmp_path / "junit.xml"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env.update(SKPRUNE_SKORCH_SUITE_PRUNER=config, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [
        sys.executable, "-m", "pytest", "-p", "swap_plugin", "-p", "no:cacheprovider", "-q",
        "-c", str(ini), "--rootdir", str(SKORCH_TESTS), f"--junitxml={junit}",
        *(str(SKORCH_TESTS / module) for module in MODULES),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    if not junit.exists():
        raise AssertionError(f"skorch's suite did not run:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    failed, passed, collected = {}, set(), set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        test = _test_id(case)
        collected.add(test)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failed[test] = f"{problem.get('message', '')}\n{problem.text or ''}"
        elif case.find("skipped") is None:
            passed.add(test)
    return failed, passed, collected, done.stdout[-2000:]


def _crashes_in_skprune(text: str) -> bool:
    """Whether a failure is an AttributeError/IndexError/TypeError raised in skprune's code."""
    frames = _FRAME.findall(text)
    if not frames or not _CRASH.match(text):
        return False
    path, error = frames[-1]
    failing_lines = [line[1:].strip() for line in text.splitlines() if line.startswith(">")]
    if failing_lines and failing_lines[-1].startswith("raise "):
        return False  # skprune refuses on purpose, with its own message
    return "/skprune/" in path.replace(os.sep, "/") and _CRASH.match(error) is not None


def test_the_expected_failures_file_is_well_formed():
    for config in CONFIGS:
        listed = expected_failures(config)
        assert all(test.split("::")[0] in MODULES for test in listed), "a listed test is in a module not run"


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_skorchs_own_suite_passes_on_skprunes_nets_but_for_the_listed_differences(config, tmp_path):
    failed, passed, collected, output = run_skorch_suite(config, tmp_path)
    listed = expected_failures(config)
    assert len(collected) > 500, f"too few skorch tests ran ({len(collected)}):\n{output}"
    unexpected = sorted(set(failed) - set(listed))
    assert not unexpected, (
        f"{len(unexpected)} skorch tests fail that {EXPECTED.name} does not list (config {config!r}):\n"
        + "\n".join(f"{test}\n    {failed[test].splitlines()[0][:300]}" for test in unexpected)
    )
    now_passing = sorted(set(listed) & passed)
    assert not now_passing, f"listed in {EXPECTED.name}, passing now; remove them:\n" + "\n".join(now_passing)
    stale = sorted(set(listed) - collected)
    assert not stale, f"listed in {EXPECTED.name} but not collected:\n" + "\n".join(stale)
    crashes = sorted(test for test in failed if _crashes_in_skprune(failed[test]))
    assert not crashes, "a crash inside skprune is not an expected difference:\n" + "\n".join(
        f"{test}\n    {failed[test].splitlines()[0][:300]}" for test in crashes
    )
