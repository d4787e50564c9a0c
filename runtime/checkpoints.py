"""Checkpoints that are known to be whole, and the choice of one to resume from.

After every save the loop writes `ckpt-N.sha256.json` next to `ckpt-N.index`: the sha256
and size of each of the checkpoint's files. It is written last and atomically (a temporary
file renamed into place), so a checkpoint with a manifest was complete when it was written,
and one whose files no longer match it was damaged afterwards. A checkpoint without a
manifest (killed between the save and the manifest, or written before manifests existed) is
checked by reading every tensor in it.

`newest_intact` walks the checkpoints of a folder from the newest step down -- found from the
files themselves, not only from TensorFlow's `checkpoint` index file, which may itself be
garbled or missing -- and returns the first that passes, with what it skipped and why.
Nothing is deleted: a skipped checkpoint stays on disk (training that reaches its step
again writes a new one in its place).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from polytask.runtime.rundir import CHECKPOINT_STATE_FILE, atomic_write_text

MANIFEST_SUFFIX = ".sha256.json"
_PREFIX = "ckpt"
_NAME = re.compile(rf"^{_PREFIX}-(\d+)(\.index|\.data-\d+-of-\d+|{re.escape(MANIFEST_SUFFIX)})$")


def prefix_of(directory: Path, step: int) -> Path:
    """The path prefix TensorFlow gives checkpoint `step` (`ckpt-N`, what `restore` takes)."""
    return Path(directory) / f"{_PREFIX}-{step}"


def manifest_of(prefix) -> Path:
    return Path(f"{prefix}{MANIFEST_SUFFIX}")


def checkpoint_files(prefix) -> list[Path]:
    """The index and data files of checkpoint `prefix` that are on disk."""
    prefix = Path(prefix)
    if not prefix.parent.is_dir():
        return []
    return sorted(p for p in prefix.parent.glob(f"{prefix.name}.*")
                  if p.name == f"{prefix.name}.index" or p.name.startswith(f"{prefix.name}.data-"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(prefix) -> None:
    """Record the checksums of checkpoint `prefix` (call right after TensorFlow wrote it)."""
    files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)} for p in checkpoint_files(prefix)}
    atomic_write_text(manifest_of(prefix), json.dumps({"files": files}, indent=1) + "\n")


def remove_manifest(prefix) -> None:
    """Drop the manifest of a checkpoint TensorFlow's manager rotated out (both are polytask's)."""
    try:
        manifest_of(prefix).unlink()
    except FileNotFoundError:
        pass


def steps_on_disk(directory: Path) -> list[int]:
    """Steps that any checkpoint file (or the index file) mentions, newest first."""
    directory = Path(directory)
    steps: set[int] = set()
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError:
        return []
    for name in names:
        match = _NAME.match(name)
        if match:
            steps.add(int(match.group(1)))
    steps.update(_steps_in_state_file(directory / CHECKPOINT_STATE_FILE))
    return sorted(steps, reverse=True)


def _steps_in_state_file(path: Path) -> set[int]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {int(m) for m in re.findall(rf'"{_PREFIX}-(\d+)"', text)}


def verify(prefix) -> Optional[str]:
    """None when checkpoint `prefix` is whole; otherwise why not (which file, what is wrong)."""
    prefix = Path(prefix)
    index = Path(f"{prefix}.index")
    if not index.is_file():
        return f"{index.name} is missing" if not index.exists() else f"{index.name} is not a file"
    manifest = manifest_of(prefix)
    if manifest.exists():
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))["files"]
            recorded = {str(name): (int(v["size"]), str(v["sha256"])) for name, v in recorded.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{manifest.name} is unreadable"
        if not any(name.endswith(".index") for name in recorded):
            return f"{manifest.name} is unreadable"
        for name, (size, digest) in sorted(recorded.items()):
            path = prefix.parent / name
            if not path.is_file():
                return f"{name} is missing" if not path.exists() else f"{name} is not a file"
            try:
                if path.stat().st_size != size:
                    return f"{name} has {path.stat().st_size} bytes, {size} were written"
                if _sha256(path) != digest:
                    return f"{name} differs from what was written (checksum)"
            except OSError as exc:
                return f"{name} cannot be read ({exc.strerror})"
        return None
    return _readable(prefix)


def _readable(prefix: Path) -> Optional[str]:
    """None when TensorFlow can read every tensor of the checkpoint."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype != tf.variant:  # a data iterator's state: only `restore` can read it
                reader.get_tensor(name)  # checks the tensor's crc32c too
    except Exception as exc:  # TensorFlow raises many kinds (OpError, IndexError, ValueError) on damage
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        return f"TensorFlow cannot read it ({first})"
    return None


@dataclass
class Choice:
    """The checkpoint to continue from (None: none is intact) and those skipped on the way."""

    prefix: Optional[Path]
    step: Optional[int]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint name, reason)
    intact_older: list[Path] = field(default_factory=list)

    def notices(self, directory: Path) -> list[str]:
        if self.prefix is None:
            return []
        return [f"skipped checkpoint {name} in {directory}: {reason}; continuing from "
                f"{self.prefix.name} (training writes {name} again when it reaches that step)" for name, reason in self.skipped]


def newest_intact(directory: Path, *, collect_older: bool = False) -> Choice:
    """The newest checkpoint in `directory` that passes `verify`.

    `collect_older`: also verify the older ones, so the index file can list them again.
    """
    directory = Path(directory)
    choice = Choice(None, None)
    for step in steps_on_disk(directory):
        prefix = prefix_of(directory, step)
        if choice.prefix is None:
            reason = verify(prefix)
            if reason is None:
                choice.prefix, choice.step = prefix, step
                if not collect_older:
                    break
            else:
                choice.skipped.append((prefix.name, reason))
        elif verify(prefix) is None:
            choice.intact_older.append(prefix)
    return choice


def point_state_file_at(directory: Path, choice: Choice) -> None:
    """Make TensorFlow's `checkpoint` index file name `choice` as the latest (and the intact older ones).

    Needed when the file is garbled or missing, or names a damaged newer checkpoint: the
    CheckpointManager reads it when it starts, and must neither fail on it nor later rotate
    away checkpoints it does not know.
    """
    latest = choice.prefix.name
    kept = [p.name for p in reversed(choice.intact_older)] + [latest]
    wanted = f'model_checkpoint_path: "{latest}"\n' + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in kept)
    state = Path(directory) / CHECKPOINT_STATE_FILE
    try:
        current = state.read_text(encoding="utf-8") if state.is_file() else None
    except (OSError, UnicodeDecodeError):
        current = None
    if current is not None and current.startswith(f'model_checkpoint_path: "{latest}"\n') and _parses(state):
        return
    if state.is_dir():  # something put a folder where TensorFlow's file goes: not ours to remove
        from polytask.errors import RunError

        raise RunError(f"{state} is a folder; it must be TensorFlow's checkpoint index file",
                       hint=f"move {state} away and run --resume again")
    atomic_write_text(state, wanted)


def _parses(state: Path) -> bool:
    import tensorflow as tf

    try:
        return tf.train.get_checkpoint_state(str(state.parent)) is not None
    except Exception:  # a garbled text proto
        return False
