"""The hand-run benchmarks must still run: each is smoke-run at a tiny size.

Benchmarks are run by hand (never timed in tests), so nothing else notices when a spec rule
tightens under a bench's generated specs; this does.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO_ROOT


def test_bench_check_runs_on_its_own_specs():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "bench_check.py"), "--specs", "5", "--repeats", "1"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| in-process, --no-data |" in proc.stdout


@pytest.mark.slow  # 10 short trainings
def test_weighting_sweep_scores_methods_against_tasks_alone():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "weighting_sweep.py"), "--problems", "digits_hard",
                           "--seeds", "2", "--steps", "20", "--methods", "equal", "rlw"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| digits_hard: method | Delta_m % | digit accuracy | odd accuracy | high accuracy |")
    scored = {line.split(" | ")[0].lstrip("| "): line for line in rows[1:]}
    assert set(scored) == {"(each task alone)", "equal", "rlw"}
    assert " +/- " in scored["equal"]  # two seeds: a confidence interval


def test_bench_task_gradients_runs():
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "bench_task_gradients.py"), "--tasks", "2",
                           "--calls", "1", "--rounds", "1"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "| 2 | " in proc.stdout
