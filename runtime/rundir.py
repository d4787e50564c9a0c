"""The run directory: where a training run puts everything a user (or `evaluate`) reads back.

    RUN_DIR/
      spec.yaml              the resolved spec (every default filled in)
      program.json           what `evaluate` and `predict` need to rebuild inputs and outputs
      checkpoints/           tf.train.CheckpointManager files (its index file: `checkpoint`)
        best/                the best validation point, with early stopping
      tensorboard/           train/ and validation/ event files
      metrics.jsonl          one JSON object per log/eval point
      report.json            the final report
      saved_model/           the program's export: a SavedModel plus
        polytask.json          pooled and hard runs: tasks, input columns, class names
        polytask_meta.json     meta runs: what `evaluate` needs to adapt to new tasks
      baseline/<task>/       `--baseline independent`: a run directory per task trained alone
      seed-<s>/              `--seeds N`: a run directory per seed (RUN_DIR/report.json compares them)
      report/                `polytask report`: index.html and its PNG figures
      inputs.json            size, mtime and sha256 of every data file at the start of the run
      train.lock             while `polytask train` writes here: its pid, host and start time

`polytask train --out DIR` writes only into an empty (or new) folder or a folder that is
already a polytask run (`is_ours`), and only the names above.

This module is the one place these names are spelled; everything else (runtime, CLI) asks
`RunDir` for paths or uses the constants below. The two files inside saved_model/ are
written by the compiler's programs (`Program.export`), which sit below the runtime and
cannot import it, so their names are defined in `polytask.compiler.program` and only
re-used here.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import socket
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from polytask.compiler.program import EXPORT_INFO_FILE, META_EXPORT_INFO_FILE
from polytask.errors import RunError, UsageError

SPEC_FILE = "spec.yaml"
PROGRAM_FILE = "program.json"
CHECKPOINTS_DIR = "checkpoints"
#: The index file tf.train.CheckpointManager keeps in CHECKPOINTS_DIR (TensorFlow's name).
CHECKPOINT_STATE_FILE = "checkpoint"
#: In CHECKPOINTS_DIR: the best validation point, kept with early stopping.
BEST_CHECKPOINTS_DIR = "best"
TENSORBOARD_DIR = "tensorboard"
METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "report.json"
SAVED_MODEL_DIR = "saved_model"
BASELINE_DIR = "baseline"
GROUPS_DIR = "groups"  # --baseline groups: one run per suggested group, groups/group<k>/
REPORT_DIR = "report"
#: `--seeds N`: RUN_DIR/seed-<s>/ is the run directory of seed s.
SEED_DIR_PREFIX = "seed-"
#: What `polytask affinity --out DIR` writes into DIR; `polytask report` looks for it in
#: RUN_DIR and RUN_DIR/affinity/.
AFFINITY_FILE = "affinity.json"
AFFINITY_PNG = "affinity.png"
#: `train --baseline groups` without --groups-from measures the groups into RUN_DIR/affinity/.
AFFINITY_DIR = "affinity"
INPUTS_FILE = "inputs.json"
LOCK_FILE = "train.lock"
#: The export is written here first and renamed to SAVED_MODEL_DIR once complete.
PARTIAL_SUFFIX = ".partial"
#: The header of the spec.yaml polytask writes (how a run's spec.yaml tells itself from a user's).
SPEC_HEADER = "# resolved spec of "


def jsonable(value: Any) -> Any:
    """Plain JSON types: NumPy scalars become floats/ints, NaN/Inf become strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


RUN_MARKERS = (SPEC_FILE, REPORT_FILE, CHECKPOINTS_DIR, SAVED_MODEL_DIR, LOCK_FILE, INPUTS_FILE)
"""Entries of which at least one is in every directory `polytask train` wrote (the lock and
inputs.json come first: a run killed right after them is still a run, one without checkpoints)."""

TRAIN_HINT = "pass the --out directory of a `polytask train` run (default: runs/<spec name>)"


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` so that it is either the old or the new content, even after a kill -9 or a power cut."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink()
        except OSError:
            pass
        raise
    fsync_directory(path.parent)


@contextlib.contextmanager
def writing(path, tf_errors: bool = True):
    """Turn a failed write (read-only file system, disk full, permission, a folder in the way) into
    a `RunError` naming `path`; the checkpoints written before stay as they are.

    `tf_errors`: also TensorFlow's file errors (for blocks that only write, like a checkpoint save).
    """
    import tensorflow as tf

    file_errors = (tf.errors.PermissionDeniedError, tf.errors.FailedPreconditionError, tf.errors.NotFoundError,
                   tf.errors.ResourceExhaustedError, tf.errors.UnknownError, tf.errors.AlreadyExistsError,
                   tf.errors.InternalError, tf.errors.DataLossError) if tf_errors else ()
    try:
        yield
    except OSError as exc:
        where = exc.filename or path
        raise RunError(f"cannot write {where}: {exc.strerror or exc}",
                       hint=f"make {Path(path).parent} writable (and check free disk space); "
                       "the last good checkpoint is kept, continue with --resume") from None
    except file_errors as exc:
        first = (exc.message or str(exc)).strip().splitlines()[0][:300]
        raise RunError(f"cannot write {path}: {first}",
                       hint=f"make {Path(path).parent} writable (and check free disk space); "
                       "the last good checkpoint is kept, continue with --resume") from None


def fsync_directory(directory: Path) -> None:
    """Make renames in `directory` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_ours(root: Path) -> bool:
    """True when `root` is missing, empty, or was written by `polytask train` (so train may write in it)."""
    root = Path(root)
    if not root.exists():
        return True
    try:
        entries = {p.name for p in root.iterdir()}
    except OSError:
        return False
    if not entries:
        return True
    if SPEC_FILE in entries:  # written right after the lock and inputs.json, before anything else
        try:
            with (root / SPEC_FILE).open(encoding="utf-8", errors="replace") as handle:
                return handle.read(len(SPEC_HEADER)) == SPEC_HEADER
        except OSError:
            return False
    # A run stopped before it wrote spec.yaml holds only its lock, inputs.json and their temporary files;
    # a folder that merely has entries of the same names (a user's own checkpoints/ or report.json) is not ours.
    started = {name for name in entries if not name.startswith(f".{INPUTS_FILE}.tmp-")}
    if started and started <= {LOCK_FILE, INPUTS_FILE}:
        return all(_json_object_with(root / name, key, empty_ok=name == LOCK_FILE)
                   for name, key in ((LOCK_FILE, "pid"), (INPUTS_FILE, "files")) if name in started)
    # What `train --seeds N` / `--baseline groups` write before the first run's own files.
    seeds = {name for name in entries if name.startswith(SEED_DIR_PREFIX)}
    if entries <= seeds | {AFFINITY_DIR} and all(is_ours(root / name) for name in seeds) \
            and (AFFINITY_DIR not in entries or _only(root / AFFINITY_DIR, {AFFINITY_FILE, AFFINITY_PNG})):
        return True
    return False


def _json_object_with(path: Path, key: str, empty_ok: bool = False) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
        if empty_ok and not text.strip():  # the lock file between its creation and its first write
            return True
        content = json.loads(text)
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and key in content


def _only(folder: Path, names: set) -> bool:
    try:
        return folder.is_dir() and {p.name for p in folder.iterdir()} <= names
    except OSError:
        return False


def existing_run(path, *, option: str = "RUN_DIR") -> Path:
    """`path` as a Path once it is known to be a run directory; a `RunError` saying what it is otherwise
    (a `UsageError`, exit 2, when nothing is there).

    The one check every verb that reads a run (evaluate, predict, train --resume) makes first,
    so a typo in the path gets "no such run directory", not a message about a missing file in it.
    """
    root = Path(path)
    if not root.exists():
        siblings = [p.name for p in root.parent.iterdir() if p.is_dir()] if root.parent.is_dir() else []
        import difflib

        close = difflib.get_close_matches(root.name, siblings, n=1)
        hint = (f"did you mean {root.parent / close[0]}? " if close else "") + TRAIN_HINT
        raise UsageError(f"{option}: no such run directory: {root}", hint=hint)  # as a missing SPEC: exit 2
    if not root.is_dir():
        raise RunError(f"{option}: {root} is a file, not a run directory", hint=TRAIN_HINT)
    if not any((root / marker).exists() for marker in RUN_MARKERS):
        raise RunError(f"{option}: {root} is not a polytask run directory (it has no {', '.join(RUN_MARKERS)})",
                       hint=TRAIN_HINT)
    return root


class RunDir:
    """Paths of one run directory; only the writer (the chief) touches the disk."""

    def __init__(self, root: Path, writer: bool = True):
        self.root = Path(root)
        self.writer = writer

    spec_file = property(lambda self: self.root / SPEC_FILE)
    program_file = property(lambda self: self.root / PROGRAM_FILE)
    checkpoints = property(lambda self: self.root / CHECKPOINTS_DIR)
    checkpoint_state = property(lambda self: self.checkpoints / CHECKPOINT_STATE_FILE)
    best_checkpoints = property(lambda self: self.checkpoints / BEST_CHECKPOINTS_DIR)
    tensorboard = property(lambda self: self.root / TENSORBOARD_DIR)
    metrics_file = property(lambda self: self.root / METRICS_FILE)
    report_file = property(lambda self: self.root / REPORT_FILE)
    saved_model = property(lambda self: self.root / SAVED_MODEL_DIR)
    export_info_file = property(lambda self: self.saved_model / EXPORT_INFO_FILE)
    meta_export_info_file = property(lambda self: self.saved_model / META_EXPORT_INFO_FILE)

    def tensorboard_dir(self, split: str) -> Path:
        """The TensorBoard run folder of a split ('train' or 'validation')."""
        return self.tensorboard / split

    def baseline(self, task: str) -> Path:
        """The run directory of `task` trained alone (`--baseline independent`)."""
        return self.root / BASELINE_DIR / task

    inputs_file = property(lambda self: self.root / INPUTS_FILE)
    lock_file = property(lambda self: self.root / LOCK_FILE)
    saved_model_partial = property(lambda self: self.root / (SAVED_MODEL_DIR + PARTIAL_SUFFIX))

    def create(self) -> None:
        if not self.writer:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create run directory {self.root}: {exc.strerror}",
                           hint="choose a writable --out directory") from None
        if not self.root.is_dir():
            raise RunError(f"cannot create run directory {self.root}: a file is in the way",
                           hint="choose another --out directory")

    def log_metrics(self, record: Mapping[str, Any]) -> None:
        if not self.writer:
            return
        with self.metrics_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(jsonable(record)) + "\n")

    def truncate_metrics(self, after_step: int) -> None:
        """On resume, drop records logged after the checkpoint so the log has no duplicate steps."""
        if not self.writer or not self.metrics_file.exists():
            return
        kept = []
        for line in self.metrics_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if int(json.loads(line).get("step", 0)) <= after_step:
                    kept.append(line)
            except (ValueError, TypeError, AttributeError):
                continue
        atomic_write_text(self.metrics_file, "".join(line + "\n" for line in kept))

    def write_json(self, path: Path, content: Mapping[str, Any]) -> None:
        if not self.writer:
            return
        atomic_write_text(path, json.dumps(jsonable(content), indent=2) + "\n")

    def write_report(self, report: Mapping[str, Any]) -> None:
        self.write_json(self.report_file, report)

    def read_json(self, path: Path, what: str) -> dict:
        if not path.exists():
            raise RunError(
                f"{self.root} has no {path.name}",
                hint=f"{what}; is {self.root} a directory written by `polytask train`?",
            )
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"cannot read {path}: {exc}", hint="the run directory looks damaged; train again") from None


def _process_start(pid: int) -> Optional[str]:
    """When process `pid` started (Linux: clock ticks since boot), to tell it from a later process
    that got the same pid; None where /proc does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder_pid(holder: Optional[dict]) -> Optional[int]:
    """The lock holder's pid when the lock file names a real one (a positive int); else None."""
    pid = holder.get("pid") if isinstance(holder, dict) else None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


class RunLock:
    """`train.lock`: at most one `polytask train` writes a run directory at a time.

    The lock is an advisory `flock` on the file (the kernel drops it when the process dies, so a
    crash or kill -9 leaves no lock behind, only a stale file) plus the holder's pid, host and
    start time in the file, to name the holder when refusing, and as a second check where
    `flock` does not reach (a lock file of a live process on this host is respected even then).
    """

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_FILE
        self._fd: Optional[int] = None

    def acquire(self, notice=None) -> None:
        import fcntl

        for _ in range(5):
            try:
                fd = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o644)
            except IsADirectoryError:
                raise RunError(f"{self.path} is a folder; polytask keeps its lock file there",
                               hint=f"move {self.path} away") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = self._read(fd)
                os.close(fd)
                raise self._refusal(holder) from None
            if os.fstat(fd).st_ino != _inode(self.path):  # the holder removed it between open and flock
                os.close(fd)
                continue
            holder = self._read(fd)
            pid = _holder_pid(holder)
            if pid is not None and holder.get("host") == socket.gethostname() and pid != os.getpid() \
                    and _alive(pid) and holder.get("process_start") in (None, _process_start(pid)):
                os.close(fd)
                raise self._refusal(holder)
            if holder and notice is not None:
                started = f" (started {holder['started']})" if holder.get("started") else ""
                notice(f"{self.path}: the lock of pid {pid if pid is not None else '?'} on {holder.get('host', '?')}{started} "
                       "is stale (that process is gone, or the lock file is not one polytask wrote); taking it over")
            info = {"pid": os.getpid(), "host": socket.gethostname(),
                    "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "process_start": _process_start(os.getpid()), "command": " ".join(sys.argv)}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            self._fd = fd
            return
        raise RunError(f"could not take the lock {self.path}: other processes keep replacing it",
                       hint="make sure only one `polytask train` uses this --out directory")

    @staticmethod
    def _read(fd: int) -> Optional[dict]:
        try:
            data = os.pread(fd, 4096, 0)
            holder = json.loads(data.decode("utf-8")) if data.strip() else None
        except (OSError, ValueError):
            return {"pid": "?", "host": "?", "started": "?"}
        if holder is None or isinstance(holder, dict):
            return holder
        return {"pid": "?", "host": "?", "started": "?"}

    def _refusal(self, holder: Optional[dict]) -> RunError:
        holder = holder or {}
        who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, started {holder.get('started', '?')}"
        command = holder.get("command")
        return RunError(f"{self.path.parent} is being written by another `polytask train` ({who}"
                        + (f": {command}" if command else "") + ")",
                        hint="wait for it to finish (or stop it), or choose another --out directory; "
                        f"if that process is gone, delete {self.path}")

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if os.fstat(self._fd).st_ino == _inode(self.path):
                self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def _inode(path: Path) -> Optional[int]:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None
