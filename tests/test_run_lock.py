"""One `polytask train` per run directory: train.lock refuses a second writer (naming it), and the
lock of a process that died (kill -9, a crash) is taken over with a notice."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cli_support import invoke
from multitask_support import write_spec
from polytask.errors import RunError
from polytask.runtime.rundir import LOCK_FILE, RunLock

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from polytask.runtime.rundir import RunLock
    lock = RunLock(Path(sys.argv[1]))
    lock.acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path):
    """A live process holding the lock of tmp_path/run."""
    run = tmp_path / "run"
    run.mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield run, process
    process.kill()
    process.wait()


def test_a_second_writer_is_refused_naming_the_first(holder):
    run, process = holder
    with pytest.raises(RunError) as caught:
        RunLock(run).acquire()
    assert f"pid {process.pid} on host " in caught.value.message
    assert "another `polytask train`" in caught.value.message
    assert str(run / LOCK_FILE) in caught.value.hint


def test_train_is_refused_while_another_train_writes_the_run(holder, tmp_path):
    run, process = holder
    spec = write_spec(tmp_path / "spec")
    result = invoke("train", spec, "--out", run, "--quiet", "--steps", "2")
    assert result.exit_code == 1, result.output
    assert f"pid {process.pid}" in result.output
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE], "the refused run writes nothing"


def test_the_lock_of_a_killed_process_is_stale(holder):
    run, process = holder
    process.kill()
    process.wait()  # reaped: its pid is gone (its flock went with it)
    notices = []
    lock = RunLock(run)
    lock.acquire(notice=notices.append)
    assert len(notices) == 1 and f"pid {process.pid}" in notices[0] and "stale" in notices[0]
    content = json.loads((run / LOCK_FILE).read_text())
    assert content["pid"] == os.getpid() and content["host"] and content["started"]
    lock.release()
    assert not (run / LOCK_FILE).exists()


def test_a_lock_file_naming_a_live_process_is_respected_without_flock(tmp_path, holder):
    """Where flock does not reach (some network file systems) the pid on this host still counts."""
    _, process = holder
    run = tmp_path / "other"
    run.mkdir()
    import socket

    (run / LOCK_FILE).write_text(json.dumps({"pid": process.pid, "host": socket.gethostname(), "started": "x"}))
    with pytest.raises(RunError, match=f"pid {process.pid}"):
        RunLock(run).acquire()


def test_a_garbled_lock_file_without_a_holder_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_bytes(b"\x00\xff garbage")
    notices = []
    lock = RunLock(tmp_path)
    lock.acquire(notice=notices.append)
    assert notices and "stale" in notices[0]
    lock.release()


@pytest.mark.parametrize("content", [{"pid": "abc"}, {}, {"pid": None}, {"pid": 0}, {"pid": -5}, {"pid": True},
                                     {"pid": 1.5}, {"pid": 10**30}])
def test_a_lock_file_on_this_host_with_no_real_pid_is_taken_over(tmp_path, content):
    """Hand-edited or foreign lock contents (no positive int pid) are stale, never a traceback."""
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"host": socket.gethostname(), **content}))
    notices = []
    lock = RunLock(tmp_path)
    lock.acquire(notice=notices.append)
    assert notices and "stale" in notices[0] and "None" not in notices[0]
    lock.release()
