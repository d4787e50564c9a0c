"""What every verb shares (polytask/cli/_common.py): `--format json` prints exactly one JSON
object on stdout, also on error; usage errors exit 2 in every verb; paths that are not
regular files are refused at once, never read (a FIFO would block forever)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cli_support import invoke

SPECS = Path(__file__).resolve().parent / "specs"
ERROR_KEYS = {"code", "message", "hint", "file", "line", "column"}


def one_json_object(output: str) -> dict:
    document = json.loads(output)  # raises if stdout holds anything but one JSON document
    assert isinstance(document, dict)
    return document


@pytest.fixture
def specs(tmp_path):
    shutil.copytree(SPECS / "data", tmp_path / "data")
    shutil.copytree(SPECS / "valid", tmp_path / "valid")
    return tmp_path


@pytest.mark.parametrize("args, code", [
    (["check", "nope.yaml"], 2),
    (["plan", "nope.yaml"], 2),
    (["train", "nope.yaml"], 2),
    (["evaluate", "no-run"], 2),
    (["report", "no-run"], 2),
    (["report", "no-run", "--affinity", "nope.json"], 2),
    (["evaluate", "no-run", "--support", "s"], 2),
    (["predict", "fake-run", "nope.csv", "--task", "t"], 2),
    (["predict", "no-run", "nope.csv", "--task", "t"], 2),
    (["plan", "--no-such-option", "x.yaml"], 2),
    (["init", "--pattern", "no-such-pattern"], 2),
    (["schema", "--output", "/no/such/folder/schema.json"], 2),
])
def test_every_verb_writes_one_json_error_object(tmp_path, monkeypatch, args, code):
    monkeypatch.chdir(tmp_path)
    fake_run(tmp_path / "fake-run")
    result = invoke(*args, "--format", "json")
    assert result.exit_code == code, result.output
    error = one_json_object(result.stdout)["error"]
    assert set(error) >= ERROR_KEYS and error["message"]


def test_a_spec_error_in_json_carries_the_first_diagnostic_and_its_position(specs):
    spec = SPECS / "invalid" / "csv_bad_cell.yaml"
    result = invoke("plan", spec, "--format", "json")
    assert result.exit_code == 1
    error = one_json_object(result.stdout)["error"]
    assert (error["code"], error["line"], error["file"]) == ("PT306", 5, str(spec))
    assert error["diagnostics"][0]["code"] == "PT306"


def test_successful_verbs_write_one_json_object(specs, tmp_path):
    assert one_json_object(invoke("plan", specs / "valid" / "csv_hard.yaml", "--format", "json").stdout)
    assert one_json_object(invoke("check", specs / "valid" / "csv_hard.yaml", "--format", "json").stdout)["valid"]
    assert "properties" in one_json_object(invoke("schema", "--format", "json").stdout)
    wrote = one_json_object(invoke("init", tmp_path / "new.yaml", "--format", "json").stdout)
    assert wrote["wrote"] == str(tmp_path / "new.yaml")


def test_a_missing_spec_is_the_same_usage_error_in_check_and_plan(tmp_path):
    codes = {verb: invoke(verb, tmp_path / "missing.yaml").exit_code for verb in ("check", "plan", "train")}
    assert set(codes.values()) == {2}, codes


def test_episode_options_with_a_support_set_are_a_usage_error(tmp_path):
    for extra in (["--support", "s"], ["--query", "q"], ["--support", "s", "--query", "q", "--episodes", "3"]):
        result = invoke("evaluate", tmp_path / "no-run", *extra)
        assert result.exit_code == 2, (extra, result.output)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_spec_is_refused_not_read(fifo):
    for verb in ("check", "plan", "train"):
        result = invoke(verb, fifo)
        assert result.exit_code in (1, 2), result.output
        assert "FIFO" in result.output


def test_a_fifo_data_file_is_refused_by_check_and_train(specs):
    data = specs / "data" / "table.csv"
    data.unlink()
    os.mkfifo(data)
    spec = specs / "valid" / "csv_hard.yaml"
    result = invoke("check", spec)
    assert result.exit_code == 1 and "FIFO" in result.output, result.output
    result = invoke("train", spec, "--out", specs / "run", "-q")
    assert result.exit_code == 1 and "FIFO" in result.output, result.output


def test_a_fifo_in_an_image_folder_is_refused_by_check(specs):
    spec = specs / "valid" / "images_protonet.yaml"
    image = next((specs / "data" / "shapes").rglob("*.png"))
    image.unlink()
    os.mkfifo(image)
    result = invoke("check", spec)
    assert result.exit_code == 1 and "FIFO" in result.output and image.name in result.output, result.output
    assert "images_protonet.yaml:" in result.output  # positioned at the dataset


def fake_run(path: Path) -> Path:
    """A folder that passes the run-directory check (its contents are never reached)."""
    path.mkdir()
    (path / "spec.yaml").write_text("polytask: 1\n")
    return path


def test_fifo_predict_inputs_and_outputs_are_refused(tmp_path, fifo):
    run = fake_run(tmp_path / "run")
    result = invoke("predict", run, fifo, "--task", "t")
    assert result.exit_code == 1 and "FIFO" in result.output
    good = tmp_path / "in.csv"
    good.write_text("a\n1\n")
    result = invoke("predict", run, good, "--task", "t", "--output", fifo)
    assert result.exit_code == 1 and "FIFO" in result.output


def test_predict_help_says_which_input_columns_it_needs():
    text = invoke("predict", "--help").output
    assert "input columns" in text and "features:" in text and "input_columns" in text
