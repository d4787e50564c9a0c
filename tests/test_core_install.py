"""Without TensorFlow (the core install), the TensorFlow verbs say which extra to install.

`.ci/core-install` checks the same on a real core-only venv; here TensorFlow is hidden from
one subprocess (`sys.modules['tensorflow'] = None` makes it unimportable and unfindable).
"""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HIDE_TF = "import sys; sys.modules['tensorflow'] = None; from polytask.cli import main; main()"


def run_without_tensorflow(*args):
    return subprocess.run([sys.executable, "-c", HIDE_TF, *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("args", [
    ["train", "examples/digits_hard.yaml", "--out", "{tmp}/run"],
    ["evaluate", "{tmp}/run"],
    ["predict", "{tmp}/run", "examples/data/digits_multitask.csv", "--task", "digit"],
])
def test_tensorflow_verbs_name_the_extra(tmp_path, args):
    result = run_without_tensorflow(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"`polytask {args[0]}` needs TensorFlow" in lines[0] and "polytask[tensorflow]" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing written


def test_check_and_plan_need_no_tensorflow():
    check = run_without_tensorflow("check", "examples/")
    assert check.returncode == 0, check.stdout + check.stderr
    plan = run_without_tensorflow("plan", "examples/digits_hard.yaml")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "parameters" in plan.stdout
