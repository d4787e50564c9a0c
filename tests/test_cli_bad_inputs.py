"""Bad inputs a user can give the CLI end in one clear message, never a traceback.

Each case here was found by running the verbs by hand with bad input; they stay fast (no
training, or a few steps on a tiny spec).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_support import invoke
from polytask.errors import DataError

SPECS = Path(__file__).resolve().parent / "specs"


@pytest.fixture
def specs(tmp_path):
    """tests/specs/{data,valid} copied into tmp_path, so cases can break the data."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    shutil.copytree(SPECS / "valid", tmp_path / "valid")
    return tmp_path


def test_an_undecodable_image_is_named_in_plain_words(specs):
    (specs / "data" / "shapes" / "circle" / "9.png").write_text("not an image")
    result = invoke("train", specs / "valid" / "images_protonet.yaml", "--steps", "1", "--out", specs / "run", "-q")
    assert result.exit_code == 1
    assert "cannot read image" in result.output and "9.png" in result.output
    assert "not an image Pillow can decode" in result.output
    assert "BytesIO" not in result.output  # Pillow's own message names its in-memory buffer


@pytest.mark.parametrize("content", ["x,y\n", None])
def test_a_few_shot_regression_set_without_rows_is_a_data_error(tmp_path, content):
    from polytask.runtime.meta_eval import _read_table

    if content is None:
        path = tmp_path / "support.npz"
        np.savez(path, x=np.zeros((0, 1)), y=np.zeros(0))
    else:
        path = tmp_path / "support.csv"
        path.write_text(content)
    with pytest.raises(DataError, match="has no rows"):
        _read_table(path, "support", need_y=True)


def _edited(specs: Path, name: str, old: str, new: str) -> Path:
    """A copy of valid/<name> with one text edit, next to it (so its relative data paths still work)."""
    text = (specs / "valid" / name).read_text()
    assert old in text
    path = specs / "valid" / f"edited_{name}"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("name, old, new, typo, key", [
    ("csv_hard.yaml", "sharing: hard", "sharnig: hard", "sharnig", "sharing"),
    ("csv_hard.yaml", "source: csv", "sourc: csv", "sourc", "source"),
    ("sinusoid_maml.yaml", "source: sinusoid", "sorce: sinusoid", "sorce", "source"),
])
def test_a_misspelled_choosing_key_is_named_not_reported_missing(specs, name, old, new, typo, key):
    """`sharnig: hard` used to read "missing required key 'sharing'", never naming the typo."""
    path = _edited(specs, name, old, new)
    result = invoke("check", path)
    assert result.exit_code == 1
    line = next(i for i, text in enumerate(path.read_text().splitlines(), start=1) if f"{typo}:" in text)
    assert f"{path}:{line}:" in result.output
    assert f"unknown key '{typo}'" in result.output and f"did you mean '{key}'?" in result.output
    assert "missing required key" not in result.output


def test_one_bad_task_of_two_adds_no_one_task_warnings(specs):
    """A typo in one task's loss left one valid task, and sampling/weighting then warned 'with one task'."""
    result = invoke("check", _edited(specs, "csv_hard.yaml", "loss: huber", "loss: hubber"))
    assert result.exit_code == 1
    assert "did you mean 'huber'?" in result.output
    assert "one task" not in result.output


@pytest.mark.parametrize("name, old, what", [
    ("csv_hard.yaml", "path: ../data/table.csv", "csv file"),
    ("npz_hard.yaml", "path: ../data/arrays.npz", "npz file"),
])
def test_a_folder_given_as_a_data_file_says_so(specs, name, old, what):
    result = invoke("plan", _edited(specs, name, old, "path: ../data"))
    assert result.exit_code == 1
    assert f"is a folder; `path` must be the {what} itself" in result.output
    assert "not found" not in result.output


@pytest.fixture
def exported_run(tmp_path):
    """A run directory with only the export's polytask.json: predict reads inputs before the model."""
    import json

    run = tmp_path / "run"
    (run / "saved_model").mkdir(parents=True)
    (run / "saved_model" / "polytask.json").write_text(json.dumps(
        {"tasks": {"label": {"loss": "cross_entropy", "metrics": [], "input_columns": ["a", "b", "c"]},
                   "score": {"loss": "huber", "metrics": [], "input_columns": ["a", "b", "c"]}},
         "input_shape": [3]}))
    return run


@pytest.mark.parametrize("name, write, message", [
    ("text.npz", lambda p: np.savez(p, x=np.array([["a", "b", "c"]])), "array 'x' holds text values"),
    ("complex.npz", lambda p: np.savez(p, x=np.zeros((2, 3), complex)), "holds complex128 values"),
    ("scalar.npz", lambda p: np.savez(p, x=np.float32(3)), "is a single value"),
    ("objects.npz", lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object)), "cannot be read without pickle"),
    ("garbage.npz", lambda p: p.write_bytes(b"garbage"), "is not an npz archive"),
    ("latin1.csv", lambda p: p.write_bytes(b"a,b,c\n\xe9,2,3\n"), "latin1.csv:"),
])
def test_predict_inputs_that_are_not_numbers_are_data_errors(tmp_path, exported_run, name, write, message):
    path = tmp_path / name
    write(path)
    result = invoke("predict", exported_run, path, "--task", "label")
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.count(name) == 1  # the file is named once


def test_resume_with_fewer_steps_than_done_says_so(specs):
    """It used to 'train' zero steps and print the old summary as if it had trained."""
    spec, out = specs / "valid" / "csv_hard.yaml", specs / "run"
    assert invoke("train", spec, "--steps", "3", "--out", out, "-q").exit_code == 0
    report = (out / "report.json").read_text()
    result = invoke("train", spec, "--steps", "2", "--out", out, "--resume", "-q")
    assert result.exit_code == 1
    assert "already at step 3, past the 2 steps asked for" in result.output and "--steps above 3" in result.output
    assert (out / "report.json").read_text() == report


def _with_label_cells(specs: Path, cells: dict) -> Path:
    """valid/csv_hard.yaml on a copy of table.csv whose `label` cells are replaced (row index -> cell)."""
    table = specs / "data" / "table.csv"
    lines = table.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("label")
    for i in range(1, len(lines)):
        row = lines[i].split(",")
        row[column] = cells.get(i - 1, cells.get("all", row[column]))
        lines[i] = ",".join(row)
    (specs / "data" / "edited.csv").write_text("\n".join(lines) + "\n")
    return _edited(specs, "csv_hard.yaml", "path: ../data/table.csv", "path: ../data/edited.csv")


@pytest.mark.parametrize("cells, says", [
    ({"all": ""}, "'label' holds no values (every cell is empty)"),
    ({0: "-1"}, "'label' holds negative values (down to -1)"),
    ({0: "5000"}, "'label' holds values up to 5000"),
])
def test_a_class_label_column_that_is_not_labels_says_why(specs, cells, says):
    """Each of these used to read "'label' holds continuous values", which none of them does."""
    result = invoke("check", _with_label_cells(specs, cells))
    assert result.exit_code == 1
    assert says in result.output
    assert "continuous" not in result.output


def test_a_header_only_csv_is_one_error(specs):
    (specs / "data" / "table.csv").write_text("a,b,c,label,score\n")
    result = invoke("check", specs / "valid" / "csv_hard.yaml")
    assert result.exit_code == 1
    assert "has a header but no rows" in result.output
    assert "(1 error," in result.output  # not followed by "'label' holds continuous values"


@pytest.mark.parametrize("content", ["{", "[]", "{}"])
def test_a_damaged_meta_export_is_a_run_error(tmp_path, content):
    run = tmp_path / "run"
    (run / "saved_model").mkdir(parents=True)
    (run / "saved_model" / "polytask_meta.json").write_text(content)
    result = invoke("evaluate", run, "--episodes", "2")
    assert result.exit_code == 1
    assert "polytask_meta.json" in result.output and "looks damaged" in result.output


@pytest.mark.parametrize("name", ["inputs", "inputs.xlsx"])
def test_predict_names_the_formats_it_reads(tmp_path, exported_run, name):
    (tmp_path / name).write_text("a,b,c\n1,2,3\n")
    result = invoke("predict", exported_run, tmp_path / name, "--task", "label")
    assert result.exit_code == 1
    assert "predict reads .csv and .npz inputs" in result.output
    assert "''" not in result.output  # was: unsupported input format ''


def test_evaluate_after_the_data_moved_points_at_the_runs_spec(specs, exported_run):
    import yaml

    spec = yaml.safe_load((specs / "valid" / "csv_hard.yaml").read_text())
    spec["datasets"]["table"]["path"] = str(specs / "moved" / "table.csv")
    (exported_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = invoke("evaluate", exported_run)
    assert result.exit_code == 1
    assert "table.csv" in result.output and f"paths in the run's {exported_run / 'spec.yaml'}" in result.output
    assert "relative paths are resolved" not in result.output  # the run's copy holds absolute paths


@pytest.mark.parametrize("kind", ["csv", "npz", "npz-nan", "npz-inf"])
def test_predict_inputs_that_overflow_float32_name_the_cell(tmp_path, kind):
    import warnings

    from polytask.runtime.serving import read_inputs

    values = {"csv": 1e39, "npz": 1e39, "npz-nan": np.nan, "npz-inf": np.inf}[kind]
    if kind == "csv":
        path = tmp_path / "x.csv"
        path.write_text("a,b,c\n1,2,3\n1,2,1e39\n")
        where = "3:3"
    else:
        path = tmp_path / "x.npz"
        np.savez(path, x=np.array([[1.0, 2.0, 3.0], [1.0, 2.0, values]]))
        where = "[1, 2]"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataError) as info:
            read_inputs(path, {"input_columns": ["a", "b", "c"]}, [3])
    assert where in str(info.value)


def test_training_npz_values_beyond_float32_or_complex_are_data_errors(tmp_path):
    from polytask.compiler.data.sources.npz import read_npz

    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([[1.0, 1e39]]), y=np.array([0]))
    with pytest.raises(DataError, match=r"at \[0, 1\] holds 1e\+39"):
        read_npz(path)
    np.savez(path, x=np.array([[1 + 2j]]), y=np.array([0]))
    with pytest.raises(DataError, match="complex128"):
        read_npz(path)


@pytest.mark.parametrize("verb", ["check", "plan", "train"])
def test_a_device_as_the_spec_is_refused_in_plain_words(verb):
    result = invoke(verb, "/dev/null")
    assert result.exit_code == 1
    assert "/dev/null is a character device, not a regular file" in result.output
    assert "cannot read /dev/null is" not in result.output


def test_an_npz_predict_input_without_arrays_says_so(tmp_path):
    import zipfile

    from polytask.runtime.serving import read_inputs

    path = tmp_path / "empty.npz"
    zipfile.ZipFile(path, "w").close()
    with pytest.raises(DataError, match="holds no arrays"):
        read_inputs(path, {"input_columns": ["a"]}, [1])


def test_a_damaged_training_npz_leaves_no_open_file(tmp_path):
    import gc
    import warnings

    from polytask.compiler.data.sources.npz import read_npz

    path = tmp_path / "d.npz"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(DataError):
            read_npz(path)
        gc.collect()


def test_predict_csv_inputs_ignore_other_columns_and_place_empty_cells(tmp_path):
    from polytask.runtime.serving import read_inputs

    info = {"input_columns": ["a", "b", "c"]}
    path = tmp_path / "x.csv"
    path.write_text("c,b,id,a\n3,2,row-1,1\n")  # any order; a text column predict does not need
    assert read_inputs(path, info, [3]).tolist() == [[1.0, 2.0, 3.0]]
    path.write_text("\n\na,b,c\n\n1,2,\n")
    with pytest.raises(DataError) as error:
        read_inputs(path, info, [3])
    assert error.value.where == f"{path}:5:3"


# --------------------------------------------------------------------------- hostile round (outputs)


def test_schema_output_does_not_replace_a_file_polytask_did_not_write(tmp_path):
    foreign = tmp_path / "notes.txt"
    foreign.write_text("keep me\n")
    result = invoke("schema", "-o", foreign)
    assert result.exit_code == 1 and "not a polytask schema" in result.output
    assert foreign.read_text() == "keep me\n"
    ours = tmp_path / "polytask.schema.json"
    assert invoke("schema", "-o", ours).exit_code == 0
    assert invoke("schema", "-o", ours).exit_code == 0  # refreshing its own schema is fine


def test_predict_output_does_not_replace_the_input_or_a_run_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text("polytask: 1\nname: x\n")
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b\n1,2\n")
    result = invoke("predict", run, "--task", "t", rows, "--output", rows)
    assert result.exit_code == 2 and "is the INPUT file" in result.output
    assert rows.read_text() == "a,b\n1,2\n"
    linked = tmp_path / "linked.csv"
    os.link(rows, linked)  # the same file under another name, even with --force
    result = invoke("predict", run, "--task", "t", rows, "--output", linked, "--force")
    assert result.exit_code == 2 and "is the INPUT file" in result.output
    assert rows.read_text() == "a,b\n1,2\n"
    result = invoke("predict", run, "--task", "t", rows, "--output", run / "spec.yaml")
    assert result.exit_code == 2 and "is a file of RUN_DIR" in result.output
    assert (run / "spec.yaml").read_text() == "polytask: 1\nname: x\n"
    foreign = tmp_path / "notes.csv"
    foreign.write_text("keep me\n")
    result = invoke("predict", run, "--task", "t", rows, "--output", foreign)
    assert result.exit_code == 1 and "already exists" in result.output and "--force" in result.output
    assert foreign.read_text() == "keep me\n"


@pytest.mark.parametrize("option", ["--out", "--spec-out"])
def test_affinity_output_below_a_file_is_refused_before_the_run(specs, option):
    blocker = specs / "file.txt"
    blocker.write_text("x\n")
    result = invoke("affinity", specs / "valid" / "csv_hard.yaml", "--steps", "1", "-q", option, blocker / "sub")
    assert result.exit_code == 1 and "is a file, not a folder" in result.output
    assert "inter-task affinity" not in result.output  # refused before measuring
    assert blocker.read_text() == "x\n"


def test_report_on_a_report_json_of_the_wrong_shape_is_a_run_error(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text('{"name": "x", "metrics": 5}\n')
    result = invoke("report", run)
    assert result.exit_code == 1 and "unexpected shape" in result.output


def test_learn_step_sizes_with_reptile_is_only_the_no_effect_warning(tmp_path):
    spec = tmp_path / "spec.yaml"
    source = (SPECS.parent.parent / "examples" / "meta" / "sinusoid_reptile.yaml").read_text()
    assert "inner:" in source
    spec.write_text(source.replace("inner: {", "inner: {learn_step_sizes: true, ", 1))
    result = invoke("check", spec)
    assert "PT215" in result.output and "learn_step_sizes has no effect" in result.output
    assert "PT212" not in result.output and result.exit_code == 0


def test_report_on_a_damaged_seed_report_says_so(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "run"
    (run / "seed-0").mkdir(parents=True)
    (run / "report.json").write_text('{"name": "x", "seeds": [0]}\n')
    (run / "seed-0" / "report.json").write_text('{"metrics": [1]}\n')
    result = invoke("report", run)
    assert result.exit_code == 0 and "is damaged" in result.output


def test_report_never_deletes_outside_its_folder_whatever_the_manifest_says(tmp_path):
    pytest.importorskip("matplotlib")
    from polytask.runtime.report import MANIFEST

    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text('{"name": "x", "metrics": {"test": {"loss": 1.0}}}\n')
    assert invoke("report", run).exit_code == 0
    manifest = run / "report" / MANIFEST
    (run / "report" / "sub").mkdir()
    manifest.write_text('{"files": ["index.html", "sub", "../report.json"]}\n')
    result = invoke("report", run)
    assert (run / "report.json").is_file() and (run / "report" / "sub").is_dir()
    assert result.exit_code == 1 and "did not write (sub)" in result.output  # the folder is not ours
    manifest.write_text('{"files": [["unhashable"]]}\n')
    assert invoke("report", run).exit_code == 1


def test_seeds_do_not_replace_a_report_json_already_in_out(specs):
    out = specs / "mine"
    out.mkdir()
    (out / "report.json").write_text("my own notes\n")
    result = invoke("train", specs / "valid" / "csv_hard.yaml", "--steps", "1", "-q", "--out", out,
                    "--baseline", "independent", "--seeds", "2")
    assert result.exit_code == 1 and "already holds a run (report.json" in result.output
    assert (out / "report.json").read_text() == "my own notes\n" and not (out / "seed-0").exists()


def test_the_groups_baseline_writes_nothing_into_a_foreign_out(specs):
    out = specs / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("x\n")
    result = invoke("train", specs / "valid" / "csv_hard.yaml", "--steps", "1", "-q", "--out", out,
                    "--baseline", "groups")
    assert result.exit_code == 1 and "is not a polytask run directory" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # no affinity/ measured and left behind


def test_evaluate_reads_a_program_json_that_is_not_an_object_without_a_traceback(tmp_path):
    """Found by the second hostile round: program.json holding `[1, 2, 3]` crashed evaluate."""
    from polytask.cli.evaluate import _is_meta_run

    (tmp_path / "program.json").write_text("[1, 2, 3]\n")
    assert _is_meta_run(tmp_path) is False
    (tmp_path / "program.json").write_text('{"sharing": "meta"}\n')
    assert _is_meta_run(tmp_path) is True


@pytest.mark.parametrize("edit, says", [
    (lambda info: info["tasks"]["label"].update(input_columns=5), "tasks.label.input_columns"),
    (lambda info: info.update(tasks={}), "tasks"),
    (lambda info: info["tasks"]["label"].pop("loss"), "tasks.label.loss"),
    (lambda info: info.update(input_shape="abc"), "input_shape"),
])
def test_a_hand_edited_export_description_is_named_not_a_traceback(tmp_path, exported_run, edit, says):
    import json

    info_file = exported_run / "saved_model" / "polytask.json"
    info = json.loads(info_file.read_text())
    edit(info)
    info_file.write_text(json.dumps(info))
    (tmp_path / "in.csv").write_text("a,b,c\n1,2,3\n")
    for verb in (["predict", exported_run, tmp_path / "in.csv", "--task", "label"], ["evaluate", exported_run]):
        result = invoke(*verb)
        assert result.exit_code == 1, result.output
        assert "not the export description polytask writes" in result.output and f"({says}" in result.output


def test_evaluate_of_a_spec_whose_task_the_export_lacks_says_the_files_disagree(specs, exported_run):
    import json

    import yaml

    spec = yaml.safe_load((specs / "valid" / "csv_hard.yaml").read_text())
    spec["datasets"]["table"]["path"] = str(specs / "data" / "table.csv")
    (exported_run / "spec.yaml").write_text(yaml.safe_dump(spec))
    info_file = exported_run / "saved_model" / "polytask.json"
    info = json.loads(info_file.read_text())
    del info["tasks"]["score"]
    info_file.write_text(json.dumps(info))
    result = invoke("evaluate", exported_run)
    assert result.exit_code == 1, result.output
    assert "which its export" in result.output and "from different runs" in result.output
    assert "--resume" not in result.output  # resuming from a foreign spec.yaml only fails again


@pytest.mark.parametrize("name, write, says, absent", [
    ("cols.npz", lambda p: np.savez(p, a=np.ones(3), b=np.ones(2), c=np.ones(3)),
     ["different numbers of rows ('a' 3, 'b' 2)"], None),
    ("x.npz", lambda p: np.savez(p, x=np.ones((2, 3, 1), np.float32)),  # 3 values per row, not shaped [3]
     ["inputs have shape [3, 1] per row, the model takes [3]", "(rows, 3)"], None),
    ("noheader.csv", lambda p: p.write_text("1,2,3\n4,5,6\n7,8,9\n"),  # its first row was silently dropped
     ["holds numbers, not column names", "a, b, c"], None),
    ("noheader_repeats.csv", lambda p: p.write_text("1,1,3\n4,5,6\n"), ["the file may have no header row"], None),
    ("semi.csv", lambda p: p.write_text("a;b;c\n1;2;3\n"),  # predict has no delimiter setting
     ["it looks like ';'-separated", "save it with ','"], "set `delimiter"),
    ("nan.csv", lambda p: p.write_text("a,b,c\n1,nan,3\n"), ["a missing value ('nan')"], "empty cell"),
])
def test_predict_inputs_that_cannot_be_read_as_given_say_why(tmp_path, exported_run, name, write, says, absent):
    write(tmp_path / name)
    result = invoke("predict", exported_run, tmp_path / name, "--task", "label")
    assert result.exit_code == 1, result.output
    assert all(text in result.output for text in says), result.output
    assert absent is None or absent not in result.output
