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
# The core distribution has neither TensorFlow nor the data extra (NumPy, scikit-learn, Pillow).
CORE_ONLY = ("import sys; sys.modules.update(dict.fromkeys(['tensorflow', 'numpy', 'sklearn', 'PIL', 'keras']));"
             " from polytask.cli import main; main()")


def run_without_tensorflow(*args):
    return subprocess.run([sys.executable, "-c", HIDE_TF, *args], cwd=ROOT, capture_output=True, text=True)


def run_core_only(*args):
    return subprocess.run([sys.executable, "-c", CORE_ONLY, *args], cwd=ROOT, capture_output=True, text=True)


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


@pytest.mark.parametrize("spec", ["examples/digits_hard.yaml", "tests/specs/valid/npz_hard.yaml",
                                  "tests/specs/valid/csv_hard.yaml", "tests/specs/valid/sklearn_pooled.yaml"])
def test_check_and_plan_need_only_the_core(spec):
    """`check` and `plan` read csv and npz data with the standard library (exact class counts)."""
    check = run_core_only("check", spec)
    assert check.returncode == 0, check.stdout + check.stderr
    plan = run_core_only("plan", spec, "--format", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    # the same plan as with NumPy installed
    full = subprocess.run([sys.executable, "-m", "polytask", "plan", spec, "--format", "json"], cwd=ROOT,
                          capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    assert plan.stdout == full.stdout


def test_npz_facts_without_numpy_match_the_loader(tmp_path):
    """The standard-library .npy reader gives the loader's facts: dtypes, shapes, classes, NaN rows,
    +-1 numbers, big-endian arrays."""
    np = pytest.importorskip("numpy")
    from data_support import describe, load

    path = tmp_path / "d.npz"
    x = np.arange(24, dtype=np.float64).reshape(6, 2, 2)
    x[1, 0, 1] = np.nan
    np.savez(path, x=x, y=np.array([0, 2, 1, -1, 2, 0], dtype=">i4"), sign=np.array([1, -1, 1, 1, -1, 1]),
             flag=np.array([True, False, True, True, False, False]), big=np.arange(6, dtype=np.int64) * 1000,
             text=np.array(["a", "b", "c", "d", "e", "f"]))
    dataset = {"source": "npz", "path": "d.npz"}
    assert describe(tmp_path, dataset) == load(tmp_path, dataset).info
