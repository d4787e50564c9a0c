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

This module is the one place these names are spelled; everything else (runtime, CLI) asks
`RunDir` for paths or uses the constants below. The two files inside saved_model/ are
written by the compiler's programs (`Program.export`), which sit below the runtime and
cannot import it, so their names are defined in `polytask.compiler.program` and only
re-used here.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from polytask.compiler.program import EXPORT_INFO_FILE, META_EXPORT_INFO_FILE
from polytask.errors import RunError

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
REPORT_DIR = "report"
#: `--seeds N`: RUN_DIR/seed-<s>/ is the run directory of seed s.
SEED_DIR_PREFIX = "seed-"
#: What `polytask affinity --out DIR` writes into DIR; `polytask report` looks for it in
#: RUN_DIR and RUN_DIR/affinity/.
AFFINITY_FILE = "affinity.json"


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


RUN_MARKERS = (SPEC_FILE, REPORT_FILE, CHECKPOINTS_DIR, SAVED_MODEL_DIR)
"""Entries of which at least one is in every directory `polytask train` wrote (spec.yaml comes first)."""

TRAIN_HINT = "pass the --out directory of a `polytask train` run (default: runs/<spec name>)"


def existing_run(path, *, option: str = "RUN_DIR") -> Path:
    """`path` as a Path once it is known to be a run directory; a `RunError` saying what it is otherwise.

    The one check every verb that reads a run (evaluate, predict, train --resume) makes first,
    so a typo in the path gets "no such run directory", not a message about a missing file in it.
    """
    root = Path(path)
    if not root.exists():
        siblings = [p.name for p in root.parent.iterdir() if p.is_dir()] if root.parent.is_dir() else []
        import difflib

        close = difflib.get_close_matches(root.name, siblings, n=1)
        hint = (f"did you mean {root.parent / close[0]}? " if close else "") + TRAIN_HINT
        raise RunError(f"{option}: no such run directory: {root}", hint=hint)
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

    def create(self) -> None:
        if not self.writer:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"cannot create run directory {self.root}: {exc.strerror}",
                           hint="choose a writable --out directory") from None

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
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line).get("step", 0)) <= after_step:
                    kept.append(line)
            except (ValueError, TypeError, AttributeError):
                continue
        self.metrics_file.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write_json(self, path: Path, content: Mapping[str, Any]) -> None:
        if not self.writer:
            return
        path.write_text(json.dumps(jsonable(content), indent=2) + "\n", encoding="utf-8")

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
