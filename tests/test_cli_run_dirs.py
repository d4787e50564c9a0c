"""Every verb that reads a run directory (evaluate, predict, train --resume, report) says clearly what is
wrong with it: missing, not a polytask run, or a run whose export is missing. No training here:
the run directories are laid out by hand, so these tests stay fast."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_support import invoke

SPECS = Path(__file__).resolve().parent / "specs"


@pytest.fixture
def spec(tmp_path):
    """A valid csv spec (with its data) in tmp_path."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "specs").mkdir()
    return str(shutil.copy(SPECS / "valid" / "csv_hard.yaml", tmp_path / "specs" / "csv_hard.yaml"))


def verbs(run_dir: Path, spec_path: str = "SPEC") -> dict[str, list[str]]:
    run = str(run_dir)
    return {
        "evaluate": ["evaluate", run],
        "report": ["report", run],
        "evaluate --episodes": ["evaluate", run, "--episodes", "10"],
        "evaluate --support": ["evaluate", run, "--support", run, "--query", run],
        "predict": ["predict", run, str(run_dir.parent / "in.csv"), "--task", "label"],
        "train --resume": ["train", spec_path, "--resume", "--out", run, "--steps", "2", "--quiet"],
    }


def test_a_missing_run_directory_is_named_for_every_verb(tmp_path, spec):
    missing = tmp_path / "runs" / "no-such-run"
    for name, args in verbs(missing, spec).items():
        result = invoke(*args)
        assert result.exit_code == 2, (name, result.output)  # a path argument that is not there, as for SPEC
        assert f"no such run directory: {missing}" in result.output, (name, result.output)
        assert "hint:" in result.output and "multi-task run" not in result.output, (name, result.output)
    assert not missing.exists(), "train --resume must not create a mistyped --out"


def test_a_close_sibling_is_suggested(tmp_path, spec):
    (tmp_path / "runs" / "csv-hard" / "checkpoints").mkdir(parents=True)
    result = invoke("evaluate", str(tmp_path / "runs" / "csv-hrad"))
    assert result.exit_code == 2
    assert f"did you mean {tmp_path / 'runs' / 'csv-hard'}?" in result.output


def test_a_directory_that_is_not_a_run_says_so(tmp_path, spec):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.png").write_bytes(b"not really")
    for name, args in verbs(folder, spec).items():
        result = invoke(*args)
        assert result.exit_code == 1, (name, result.output)
        assert "is not a polytask run directory" in result.output, (name, result.output)
        assert "polytask train" in result.output, (name, result.output)
    assert sorted(p.name for p in folder.iterdir()) == ["cat.png"], "nothing may be written into it"


def test_a_file_given_as_run_directory_is_a_usage_error(tmp_path, spec):
    a_file = tmp_path / "report.json"
    a_file.write_text("{}")
    for name, args in verbs(a_file, spec).items():
        result = invoke(*args)
        assert result.exit_code == 2, (name, result.output)
        assert "is a file" in result.output, (name, result.output)


def test_a_run_without_its_export_points_at_resume(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text("polytask: 1\n")
    (run / "program.json").write_text(json.dumps({"spec": "specs/tiny.yaml", "sharing": "hard"}))
    (tmp_path / "in.csv").write_text("a,b,c\n1,2,3\n")
    for args in (["predict", str(run), str(tmp_path / "in.csv"), "--task", "label"], ["evaluate", str(run)]):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert "has no exported model" in result.output
        # The run's own spec.yaml: it holds the settings and steps the run was started with.
        assert f"polytask train {run / 'spec.yaml'} --out {run} --resume" in result.output


def test_meta_options_on_a_multi_task_run_are_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "program.json").write_text(json.dumps({"spec": "x.yaml", "sharing": "hard"}))
    (run / "spec.yaml").write_text("polytask: 1\n")
    result = invoke("evaluate", str(run), "--episodes", "10")
    assert result.exit_code == 2  # options that do not go with this RUN_DIR: a usage error
    assert "apply to meta-learning runs only" in result.output and "is a multi-task run" in result.output


def test_predict_on_a_meta_run_points_at_few_shot_evaluate(tmp_path):
    run = tmp_path / "run"
    (run / "saved_model").mkdir(parents=True)
    (run / "saved_model" / "polytask_meta.json").write_text("{}")
    (tmp_path / "in.csv").write_text("x\n1\n")
    result = invoke("predict", str(run), str(tmp_path / "in.csv"), "--task", "any")
    assert result.exit_code == 1
    assert "is a meta-learning run" in result.output and "--support DIR --query DIR" in result.output


def test_a_new_run_into_an_existing_run_leaves_its_spec_alone(tmp_path, spec):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-5"\n')
    (run / "spec.yaml").write_text("# resolved spec of the spec this run was started with\n")
    result = invoke("train", spec, "--out", str(run), "--steps", "2", "--quiet")
    assert result.exit_code == 1
    assert "already holds a run" in result.output and "--resume" in result.output
    assert (run / "spec.yaml").read_text() == "# resolved spec of the spec this run was started with\n"


@pytest.mark.parametrize("left", [[], ["train.lock"], ["inputs.json", "train.lock"]])
def test_resume_of_a_run_killed_before_its_first_checkpoint_says_start_again(tmp_path, left):
    """kill -9 right after the run folder (or its lock and inputs.json) was made: --resume says
    there is no checkpoint and to start without --resume, which then works in that folder."""
    from multitask_support import write_spec

    spec = write_spec(tmp_path / "spec", steps=4, eval_every=2, checkpoint_every=2, log_every=2)
    out = tmp_path / "run"
    out.mkdir()
    for name in left:
        (out / name).write_text("{}\n")
    resumed = invoke("train", str(spec), "--out", str(out), "--resume", "--quiet")
    assert resumed.exit_code == 1 and "no checkpoint in" in resumed.output, resumed.output
    fresh = invoke("train", str(spec), "--out", str(out), "--quiet")
    assert fresh.exit_code == 0, fresh.output
