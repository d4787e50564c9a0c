"""Damaged run directories: resume falls back to the newest intact checkpoint (and still ends
in the uninterrupted run's weights), a damaged export is a clear error that says how to write it
again, and nothing polytask did not write is touched.

The run directories are trained once per module (tests/run_dir_support.py) and copied per test;
every verb runs in-process (tests/cli_support.invoke fails on a traceback).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from run_dir_support import STEPS, assert_final_weights, build_runs, copy_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return build_runs(tmp_path_factory.mktemp("runs"))


def _truncate(path: Path, fraction: float = 0.5) -> None:
    os.truncate(path, int(path.stat().st_size * fraction))


def test_a_truncated_newest_checkpoint_is_skipped_and_resume_is_exact(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    data = next((out / "checkpoints").glob("ckpt-40.data-*"))
    _truncate(data)
    size = data.stat().st_size
    result = runs.resume(out)
    assert result.exit_code == 0, result.output
    assert "skipped checkpoint ckpt-40" in result.output and data.name in result.output
    assert "continuing from ckpt-30" in result.output
    assert_final_weights(runs, out)
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_from_step"] == 30 and report["steps"] == STEPS


def test_a_missing_newest_index_and_a_garbled_state_file_fall_back(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    (out / "checkpoints" / "ckpt-40.index").unlink()
    (out / "checkpoints" / "checkpoint").write_bytes(b"\x00\xffnot a text proto {{{")
    result = runs.resume(out)
    assert result.exit_code == 0, result.output
    assert "ckpt-40.index is missing" in result.output
    assert_final_weights(runs, out)


def test_a_missing_state_file_is_no_reason_to_start_over(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    (out / "checkpoints" / "checkpoint").unlink()
    result = runs.resume(out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["resumed_from_step"] == 40
    assert_final_weights(runs, out)


def test_random_bytes_in_the_newest_checkpoint_are_found_by_the_checksum(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    data = next((out / "checkpoints").glob("ckpt-40.data-*"))
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size: only the checksum can tell
    data.write_bytes(bytes(content))
    result = runs.resume(out)
    assert result.exit_code == 0, result.output
    assert "checksum" in result.output and "ckpt-40" in result.output
    assert_final_weights(runs, out)


def test_no_intact_checkpoint_is_an_error_that_deletes_nothing(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    for data in (out / "checkpoints").glob("ckpt-*.data-*"):
        _truncate(data, 0.3)
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    result = runs.resume(out)
    assert result.exit_code == 1, result.output
    assert "no intact checkpoint" in result.output
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
def test_a_damaged_export_says_to_export_again_with_resume(runs, tmp_path, verb):
    out = copy_run(runs.finished, tmp_path / "run")
    _truncate(next((out / "saved_model" / "variables").glob("variables.data-*")))
    result = getattr(runs, verb)(out)
    assert result.exit_code == 1, result.output
    assert f"cannot load the SavedModel in {out / 'saved_model'}" in result.output
    assert f"--out {out} --resume" in result.output
    # ... and that is what writes it again.
    assert runs.resume(out).exit_code == 0
    assert getattr(runs, verb)(out).exit_code == 0


def test_out_at_a_folder_that_is_not_a_run_is_refused(runs, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "spec.yaml").write_text("my own notes\n")
    result = invoke_train(runs, folder)
    assert result.exit_code == 1, result.output
    assert f"{folder} is not empty and is not a polytask run directory" in result.output
    assert "choose another --out" in result.output
    assert (folder / "spec.yaml").read_text() == "my own notes\n"
    assert sorted(p.name for p in folder.iterdir()) == ["spec.yaml"]


@pytest.mark.parametrize("entries", [{"report.json": "{}\n", "notes.txt": "mine\n"},
                                     {"program.json": "[1, 2]\n"},
                                     {"inputs.json": "{\"mine\": 1}\n"},
                                     {"train.lock": "my lock\n", "inputs.json": "{\"files\": {}}\n"}])
def test_a_folder_with_names_polytask_uses_is_still_not_a_run(entries, tmp_path):
    from polytask.runtime.rundir import is_ours

    folder = tmp_path / "project"
    folder.mkdir()
    for name, text in entries.items():
        (folder / name).write_text(text)
    (folder / "checkpoints").mkdir()
    assert not is_ours(folder)


def test_a_run_stopped_before_its_spec_was_written_is_ours(tmp_path):
    from polytask.runtime.rundir import is_ours

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "train.lock").write_text("")
    assert is_ours(folder)
    (folder / "train.lock").write_text('{"pid": 1, "host": "h"}\n')
    (folder / "inputs.json").write_text('{"files": {}}\n')
    (folder / ".inputs.json.tmp-42").write_text("{")
    assert is_ours(folder)


def test_out_at_an_empty_folder_or_a_polytask_run_without_checkpoints_is_fine(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke_train(runs, empty, "--steps", "2").exit_code == 0
    half = tmp_path / "half"  # a run that died before its first checkpoint: its spec.yaml is polytask's
    half.mkdir()
    shutil.copy(runs.finished / "spec.yaml", half / "spec.yaml")
    assert invoke_train(runs, half, "--steps", "2").exit_code == 0


def invoke_train(runs, out, *extra):
    from cli_support import invoke

    return invoke("train", runs.spec, "--out", out, "--quiet", *extra)


def test_changed_data_is_refused_on_resume_naming_the_file(runs, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(runs.spec.parent / "data.csv", folder / "data.csv")
    spec = shutil.copy(runs.spec, folder / "spec.yaml")
    from cli_support import invoke

    assert invoke("train", spec, "--out", folder / "run", "--quiet", "--steps", "20").exit_code == 0
    os.utime(folder / "data.csv")  # touched, content unchanged: still the same data
    assert invoke("train", spec, "--out", folder / "run", "--quiet", "--steps", "30", "--resume").exit_code == 0
    lines = (folder / "data.csv").read_text().splitlines()
    (folder / "data.csv").write_text("\n".join(lines[:-40]) + "\n")  # fewer rows
    result = invoke("train", spec, "--out", folder / "run", "--quiet", "--steps", "40", "--resume")
    assert result.exit_code == 1, result.output
    assert "the data changed since" in result.output and str(folder / "data.csv") in result.output


def test_a_failed_checkpoint_write_names_the_path_and_keeps_the_last_good_one(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    blocker = out / "checkpoints" / "ckpt-50.data-00000-of-00001"
    blocker.mkdir()  # where TensorFlow must write a file (works as root too, unlike chmod)
    (blocker / "user-file").write_text("x")
    result = runs.resume(out)
    assert result.exit_code == 1, result.output
    # Named before TensorFlow tries (its own error blamed permissions and left a ckpt-50_temp folder).
    assert f"{blocker} is a folder where checkpoint ckpt-50's file goes" in result.output
    assert (blocker / "user-file").exists(), "never delete what polytask did not write"
    assert not list((out / "checkpoints").glob("*_temp*"))
    shutil.rmtree(blocker)
    result = runs.resume(out)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["resumed_from_step"] == 40
    assert_final_weights(runs, out)


def test_a_full_disk_while_writing_a_manifest_is_a_clear_error(runs, tmp_path, monkeypatch):
    import polytask.runtime.loop as loop

    out = copy_run(runs.interrupted, tmp_path / "run")

    def full(prefix):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{prefix}.sha256.json")

    monkeypatch.setattr(loop, "write_manifest", full)
    result = runs.resume(out)
    assert result.exit_code == 1, result.output
    assert "cannot write" in result.output and "ckpt-50.sha256.json" in result.output
    assert "No space left on device" in result.output
    monkeypatch.undo()
    assert runs.resume(out).exit_code == 0  # ckpt-50 (no manifest) is read back and verified
    assert_final_weights(runs, out)


def test_an_export_blocked_by_a_file_keeps_the_checkpoints(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    (out / "saved_model").write_text("not polytask's")
    result = runs.resume(out)
    assert result.exit_code == 1, result.output
    assert f"{out / 'saved_model'} is a file" in result.output
    assert (out / "saved_model").read_text() == "not polytask's"
    assert (out / "checkpoints" / f"ckpt-{STEPS}.sha256.json").exists()


def test_a_file_where_the_tensorboard_folder_goes_is_named(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    shutil.rmtree(out / "tensorboard")
    (out / "tensorboard").write_text("not a folder")
    result = runs.resume(out)
    assert result.exit_code == 1, result.output
    assert f"cannot write {out / 'tensorboard' / 'train'}" in result.output
    assert (out / "tensorboard").read_text() == "not a folder"


# --------------------------------------------------------------------------- property tests

DAMAGES = ("truncate", "random_bytes", "delete", "folder")


def _damage(path: Path, how: str, data) -> None:
    if how == "truncate":
        _truncate(path, data.draw(st.floats(0.0, 0.95), label="keep"))
    elif how == "random_bytes":
        size = max(path.stat().st_size, 1)
        path.write_bytes(data.draw(st.binary(min_size=1, max_size=min(size, 4096)), label="bytes"))
    elif how == "delete":
        path.unlink()
    else:
        path.unlink()
        path.mkdir()


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def _check_damaged_run(runs, tmp_root: Path, data) -> None:
    which = data.draw(st.sampled_from(["finished", "interrupted"]), label="run")
    source = getattr(runs, which)
    name = data.draw(st.sampled_from(_files(source)), label="file")
    how = data.draw(st.sampled_from(DAMAGES), label="damage")
    out = copy_run(source, tmp_root / f"case-{len(list(tmp_root.iterdir()))}")
    _damage(out / name, how, data)

    # Before resuming: every verb ends cleanly (invoke fails on a traceback).
    for verb in (runs.evaluate, runs.predict):
        assert verb(out).exit_code in (0, 1)
    resumed = runs.resume(out)
    # Only a folder put where a file belongs, or a damaged copy of the spec (the run cannot
    # tell whether it is the same spec), may stop the run; the message then names the path.
    if resumed.exit_code != 0:
        assert resumed.exit_code == 1, resumed.output
        assert how == "folder" or name == "spec.yaml", (which, name, how, resumed.output)
        assert Path(name).name in resumed.output, resumed.output
        return
    assert_final_weights(runs, out)
    for verb in (runs.evaluate, runs.predict):
        after = verb(out)
        assert after.exit_code == 0, (which, name, how, after.output)


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_damaging_any_file_never_gives_a_traceback(runs, tmp_path, data):
    _check_damaged_run(runs, tmp_path, data)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_damaging_any_file_never_gives_a_traceback_many(runs, tmp_path, data):
    _check_damaged_run(runs, tmp_path, data)


def test_following_the_reexport_hint_rewrites_the_export_without_training(runs, tmp_path):
    """The hint resumes from the run's own spec.yaml (its step count as trained), so following it
    re-exports the same model: it never trains on to the original spec's steps."""
    from cli_support import invoke

    out = copy_run(runs.finished, tmp_path / "run")
    for variables in (out / "saved_model" / "variables").iterdir():
        variables.unlink()
    spec_before = (out / "spec.yaml").read_bytes()
    checkpoints_before = sorted(p.name for p in (out / "checkpoints").iterdir())
    damaged = runs.predict(out)
    assert damaged.exit_code == 1, damaged.output
    command = f"polytask train {out / 'spec.yaml'} --out {out} --resume"
    assert command in damaged.output
    result = invoke(*command.split()[1:], "--quiet")
    assert result.exit_code == 0, result.output
    assert (out / "spec.yaml").read_bytes() == spec_before  # provenance kept
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == checkpoints_before  # nothing trained
    assert_final_weights(runs, out)
    assert runs.predict(out).exit_code == 0


def test_evaluate_on_a_seeds_folder_or_a_baseline_arm_says_what_it_is(runs, tmp_path):
    from cli_support import invoke

    seeds = tmp_path / "seeds"
    copy_run(runs.finished, seeds / "seed-0")
    (seeds / "report.json").write_text("{}")
    result = invoke("evaluate", seeds)
    assert result.exit_code == 1 and "is a --seeds comparison" in result.output
    assert str(seeds / "seed-0") in result.output and "--resume" not in result.output
    multi = copy_run(runs.finished, tmp_path / "multi")
    arm = copy_run(runs.interrupted, multi / "baseline" / "a")
    result = invoke("predict", arm, runs.inputs, "--task", "a")
    assert result.exit_code == 1 and "is a baseline arm of" in result.output and "--resume" not in result.output
    shutil.rmtree(multi / "saved_model")
    (multi / "spec.yaml").unlink()  # a folder that happens to be called baseline, not a run's arm
    assert "is a baseline arm" not in invoke("predict", arm, runs.inputs, "--task", "a").output


def test_resuming_below_the_done_steps_of_an_unexported_run_says_how_to_export_it(runs, tmp_path):
    out = copy_run(runs.interrupted, tmp_path / "run")
    result = runs.resume(out, "--steps", "30")
    assert result.exit_code == 1 and "already at step 40" in result.output
    assert "--steps 40 exports the run as it is" in result.output and "polytask evaluate" not in result.output
    assert runs.resume(out, "--steps", "40").exit_code == 0 and runs.predict(out).exit_code == 0
