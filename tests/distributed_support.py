"""Helpers for distribution tests: fresh TensorFlow processes, local clusters, cleanup.

Logical CPU devices and multi-worker collectives can only be configured before
TensorFlow initializes, so every distributed run happens in a child process. Children
run in their own session so a timeout kills them and anything they started; a hung
collective makes a test fail, never hang CI.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_ports(count: int) -> list[int]:
    """Ports free on localhost right now (bound together so they are distinct)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: Sequence[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of workers on localhost."""
    return json.dumps({
        "cluster": {"worker": [f"localhost:{port}" for port in ports]},
        "task": {"type": "worker", "index": index},
    })


def child_env(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> "Finished":
        assert self.returncode == 0, f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr[-4000:]}"
        return self


def _popen(argv: Sequence[str], env: Mapping[str, str], cwd: Optional[Path]) -> subprocess.Popen:
    return subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Kill a child started here and its process group (it runs in its own session)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def wait_all(procs: Sequence[subprocess.Popen], timeout: float) -> list[Finished]:
    """Wait for every process; on timeout kill them all and fail with their output."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results.append(Finished(proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        outputs = []
        for proc in procs:
            kill(proc)
            out, err = proc.communicate()
            outputs.append(f"--- pid {proc.pid} exit {proc.returncode}\n{out}\n{err[-3000:]}")
        raise AssertionError(f"processes still running after {timeout:.0f}s:\n" + "\n".join(outputs)) from None
    return results


def start(argv: Sequence[str], env: Optional[Mapping[str, str]] = None,
          cwd: Optional[Path] = None) -> subprocess.Popen:
    """Start one child process (finish it with `wait_all`)."""
    return _popen(argv, child_env(env), cwd)


def run(argv: Sequence[str], env: Optional[Mapping[str, str]] = None, timeout: float = 120,
        cwd: Optional[Path] = None) -> Finished:
    """Run one child process to completion (killed and failed after `timeout` seconds)."""
    return wait_all([start(argv, env, cwd)], timeout)[0]


def start_workers(argv: Sequence[str], workers: int = 2, env: Optional[Mapping[str, str]] = None,
                  cwd: Optional[Path] = None, ports: Optional[Sequence[int]] = None) -> list[subprocess.Popen]:
    """Start `workers` copies of `argv`, each with its TF_CONFIG, as one local cluster."""
    ports = list(ports) if ports is not None else free_ports(workers)
    return [
        _popen(argv, child_env({**(env or {}), "TF_CONFIG": tf_config(ports, index)}), cwd)
        for index in range(workers)
    ]


def run_workers(argv: Sequence[str], workers: int = 2, env: Optional[Mapping[str, str]] = None,
                timeout: float = 120, cwd: Optional[Path] = None) -> list[Finished]:
    """Run a local cluster of `workers` processes to completion."""
    return wait_all(start_workers(argv, workers, env, cwd), timeout)


def polytask(*args: str) -> list[str]:
    """argv for the polytask CLI in the current interpreter."""
    return [sys.executable, "-m", "polytask", *args]
