"""`polytask train / evaluate / predict` end to end on a tiny spec, and clean errors for bad inputs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from multitask_support import spec_dict, write_csv, write_spec
from polytask.cli import main


def _invoke(*args):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_csv(folder / "data.csv", missing_b=0.3)
    spec = write_spec(folder, spec_dict(steps=150))
    out = folder / "run"
    result = _invoke("train", str(spec), "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    return spec, out, result.output


def test_run_directory_holds_every_artefact(trained):
    _, out, text = trained
    for name in ("spec.yaml", "report.json", "metrics.jsonl", "saved_model/saved_model.pb", "checkpoints/checkpoint"):
        assert (out / name).exists(), name
    assert list((out / "tensorboard" / "train").glob("events.out.tfevents.*"))
    assert list((out / "tensorboard" / "validation").glob("events.out.tfevents.*"))
    report = json.loads((out / "report.json").read_text())
    assert report["steps"] == 150
    for key in ("wall_time_seconds", "graph_build_seconds", "steady_state_steps_per_second"):
        assert report[key] > 0, key
    assert report["parameters"]["shared"] > 0 and report["parameters"]["task_specific"] > 0
    test = report["metrics"]["test"]
    assert {"a/accuracy", "b/accuracy", "b/auc", "c/mse", "c/r2", "loss"} <= set(test)
    # Missing labels of b: those rows are left out of b only.
    assert report["tasks"]["b"]["unlabelled_train_rows"] > 0
    assert report["tasks"]["b"]["train_examples"] < report["tasks"]["a"]["train_examples"]
    assert "test metrics:" in text and "parameters:" in text


def test_the_run_spec_checks_as_cleanly_as_the_spec_it_came_from(trained, tmp_path):
    import shutil

    import yaml

    spec, out, _ = trained
    assert "(0 errors, 0 warnings)" in _invoke("check", str(spec)).output
    result = _invoke("check", str(out / "spec.yaml"))
    assert result.exit_code == 0 and "(0 errors, 0 warnings)" in result.output, result.output
    # A run whose spec.yaml still holds the meta-only defaults (as runs before this change wrote) resumes.
    old = shutil.copytree(out, tmp_path / "old")
    (old / "report.json").unlink()
    lines = (old / "spec.yaml").read_text().splitlines(keepends=True)
    content = yaml.safe_load("".join(lines))
    content["training"].update(meta_batch=4, eval_episodes=200)
    (old / "spec.yaml").write_text(lines[0] + yaml.safe_dump(content, sort_keys=False))
    result = _invoke("train", str(spec), "--out", str(old), "--resume", "--steps", "152", "--quiet")
    assert result.exit_code == 0, result.output


def test_inert_defaults_drop_only_what_the_author_did_not_write():
    from polytask.spec.checker import inert_defaults

    content = {"polytask": 1, "name": "x", "datasets": {"d": {"source": "csv", "path": "/nonexistent.csv"}},
               "tasks": {"t": {"dataset": "d", "target": "y", "loss": "mse"}},
               "structure": {"sharing": "hard", "trunk": [{"dense": {"units": 4}}]},
               "training": {"steps": 10, "batch_size": 8, "meta_batch": 4, "eval_episodes": 200}}
    assert "meta_batch" not in inert_defaults(content, {})["training"]
    kept = inert_defaults(content, {"training": {"meta_batch": 4}})["training"]
    assert kept["meta_batch"] == 4 and "eval_episodes" not in kept and kept["batch_size"] == 8
    assert content["training"]["meta_batch"] == 4  # the argument is not changed


def test_training_learns(trained):
    _, out, _ = trained
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    test = json.loads((out / "report.json").read_text())["metrics"]["test"]
    assert test["b/accuracy"] > 0.75 and test["c/r2"] > 0.5  # both are learnable from the features


def test_tensorboard_events_hold_the_logged_scalars(trained):
    import tensorflow as tf

    _, out, _ = trained
    events = next((out / "tensorboard" / "train").glob("events.out.tfevents.*"))
    tags = {value.tag for event in tf.compat.v1.train.summary_iterator(str(events)) for value in event.summary.value}
    assert {"loss", "loss/a", "loss/b", "loss/c"} <= tags


def test_evaluate_uses_the_saved_model_and_matches_the_report(trained):
    _, out, _ = trained
    result = _invoke("evaluate", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)["metrics"]
    reported = json.loads((out / "report.json").read_text())["metrics"]["test"]
    for key, value in reported.items():
        assert evaluated[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    text = _invoke("evaluate", str(out), "--split", "validation")
    assert text.exit_code == 0 and "validation split" in text.output


def test_saved_model_serves_each_task(trained):
    import tensorflow as tf

    _, out, _ = trained
    model = tf.saved_model.load(str(out / "saved_model"))
    assert set(model.signatures) == {"a", "b", "c"}
    x = tf.zeros((2, 6))
    assert model.signatures["a"](x=x)["probabilities"].shape == (2, 3)
    assert model.signatures["b"](x=x)["probability"].shape == (2,)
    assert model.signatures["c"](x=x)["prediction"].shape == (2, 1)


def test_predict_from_csv_and_npz(trained, tmp_path):
    spec, out, _ = trained
    rows = (spec.parent / "data.csv").read_text().splitlines()[:6]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    result = _invoke("predict", str(out), "--task", "a", str(tmp_path / "in.csv"))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "class,p_0,p_1,p_2" and len(lines) == 6
    probabilities = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)

    x = np.array([[float(v) for v in line.split(",")[:6]] for line in rows[1:]], np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    result = _invoke("predict", str(out), "--task", "c", str(tmp_path / "in.npz"), "--output", str(tmp_path / "c.csv"))
    assert result.exit_code == 0, result.output
    written = (tmp_path / "c.csv").read_text().splitlines()
    assert written[0] == "prediction" and len(written) == 6
    again = _invoke("predict", str(out), "--task", "c", str(tmp_path / "in.npz"), "--output", str(tmp_path / "c.csv"))
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output
    forced = _invoke("predict", str(out), "--task", "c", str(tmp_path / "in.npz"), "-o", str(tmp_path / "c.csv"),
                     "--force")
    assert forced.exit_code == 0, forced.output


def test_plan_text_and_json(trained):
    spec, _, _ = trained
    text = _invoke("plan", str(spec))
    assert text.exit_code == 0 and "Plan:" in text.output and "trunk" in text.output
    data = json.loads(_invoke("plan", str(spec), "--format", "json").output)
    assert data["sharing"] == "hard" and data["totals"]["total"] > 0


# --------------------------------------------------------------------------- bad inputs


def _error_of(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    return result.output


def test_predict_errors_are_messages(trained, tmp_path):
    _, out, _ = trained
    (tmp_path / "bad.csv").write_text("f0,f1\n1,2\n")
    assert "input columns" in _error_of(_invoke("predict", str(out), "--task", "a", str(tmp_path / "bad.csv")))
    (tmp_path / "text.csv").write_text("f0,f1,f2,f3,f4,f5\n1,2,x,4,5,6\n")
    assert "text.csv" in _error_of(_invoke("predict", str(out), "--task", "a", str(tmp_path / "text.csv")))
    assert "did you mean 'a'" in _error_of(_invoke("predict", str(out), "--task", "aa", str(tmp_path / "bad.csv")))
    assert "not a polytask run directory" in _error_of(_invoke("evaluate", str(tmp_path)))


def _train_error(folder: Path, spec: dict) -> str:
    path = write_spec(folder, spec)
    return _error_of(_invoke("train", str(path), "--out", str(folder / "run"), "--quiet"))


def test_non_numeric_csv_cell_is_a_clear_error(tmp_path):
    write_csv(tmp_path / "data.csv")
    lines = (tmp_path / "data.csv").read_text().splitlines()
    lines[5] = "oops," + lines[5].split(",", 1)[1]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    message = _train_error(tmp_path, spec_dict())
    assert "data.csv" in message and "oops" in message


def test_missing_csv_column_is_a_clear_error(tmp_path):
    spec = spec_dict()
    spec["tasks"]["c"]["target"] = "cc"
    message = _train_error(tmp_path, spec)
    assert "cc" in message


def test_a_task_with_no_labelled_training_rows_is_a_clear_error(tmp_path):
    write_csv(tmp_path / "data.csv", missing_b=1.0)
    message = _train_error(tmp_path, spec_dict())
    assert "task 'b' has no labelled rows in the train split" in message


def test_evaluating_an_empty_split_is_a_clear_error(tmp_path):
    spec = spec_dict(steps=2)
    spec["datasets"]["table"]["split"] = {"train": 0.8, "validation": 0.0, "test": 0.2}
    path = write_spec(tmp_path, spec)
    assert _invoke("train", str(path), "--out", str(tmp_path / "run"), "--quiet").exit_code == 0
    message = _error_of(_invoke("evaluate", str(tmp_path / "run"), "--split", "validation"))
    assert "validation split has no labelled rows" in message


def test_unreadable_image_is_a_clear_error(tmp_path):
    images = tmp_path / "images"
    for cls in ("cat", "dog"):
        (images / cls).mkdir(parents=True)
        from PIL import Image

        for i in range(4):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(images / cls / f"{i}.png")
    (images / "dog" / "broken.png").write_bytes(b"not an image at all")
    spec = {"polytask": 1, "name": "img", "datasets": {"pics": {"source": "image_folder", "path": "images",
                                                               "image_size": [8, 8]}},
            "tasks": {"kind": {"dataset": "pics", "target": "label", "loss": "cross_entropy"}},
            "structure": {"sharing": "hard", "trunk": [{"flatten": {}}, {"dense": {"units": 4}}]},
            "training": {"steps": 2}}
    message = _train_error(tmp_path, spec)
    assert "broken.png" in message


def test_resume_without_a_checkpoint_and_rerun_into_a_used_directory(trained, tmp_path):
    spec, out, _ = trained
    assert "no such run directory" in _error_of(_invoke("train", str(spec), "--out", str(tmp_path / "new"), "--resume", "--quiet"))
    assert "already holds a run" in _error_of(_invoke("train", str(spec), "--out", str(out), "--quiet"))


def test_baseline_independent_reports_each_task_alone(tmp_path):
    spec = spec_dict(steps=40, eval_every=40, checkpoint_every=40)
    del spec["tasks"]["c"]
    path = write_spec(tmp_path, spec)
    result = _invoke("train", str(path), "--out", str(tmp_path / "run"), "--quiet", "--baseline", "independent")
    assert result.exit_code == 0, result.output
    assert "multi-task vs each task trained alone" in result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    tasks = report["baseline"]["tasks"]
    assert set(tasks) == {"a", "b"}
    assert set(tasks["b"]) == {"accuracy", "auc"}  # every declared metric
    for name, rows in tasks.items():
        row = rows["accuracy"]
        assert row["higher_is_better"]
        assert row["multi_task"]["values"] == [report["metrics"]["test"][f"{name}/accuracy"]]
        assert row["multi_task"]["ci95"] is None  # one seed: no interval, no verdict
        assert row["verdict"] == "no detectable difference"
        alone = json.loads((tmp_path / "run" / "baseline" / name / "report.json").read_text())
        assert alone["steps"] == 40 and set(alone["tasks"]) == {name}
        assert row["independent"]["values"] == [alone["metrics"]["test"][f"{name}/accuracy"]]
        assert row["change"] == pytest.approx((row["multi_task"]["mean"] - row["independent"]["mean"])
                                              / row["independent"]["mean"])
        # the same inputs as in the multi-task run: the other task's target is not an input
        assert alone["parameters"]["shared"] == report["parameters"]["shared"]
    assert set(report["baseline"]["delta_m"]) >= {"mean", "ci95"}


def test_the_summary_names_the_rate_as_steady_state(tmp_path):
    from polytask.cli.train import summary_text

    text = summary_text({"name": "x", "steps": 100, "wall_time_seconds": 3.7,
                         "steady_state_steps_per_second": 2136.2}, tmp_path)
    assert "100 steps in 3.7s, 2136.2 steps/s steady state" in text


@pytest.mark.slow
def test_a_cpu_only_train_prints_nothing_that_looks_like_an_error(tmp_path):
    """TensorFlow's start-up lines (`E0000 ... failed call to cuInit: UNKNOWN ERROR (303)`) are
    filtered by polytask.cli._common.quiet_tensorflow; real errors still get through."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "POLYTASK_TF_LOGS")}
    spec = Path(__file__).resolve().parent / "specs" / "valid" / "csv_hard.yaml"
    run = subprocess.run([sys.executable, "-m", "polytask", "train", str(spec), "--steps", "3", "-q",
                          "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    for needle in ("E0000", "cuInit", "ERROR", "absl::InitializeLog"):
        assert needle not in run.stderr, run.stderr


def test_steps_override_below_the_warm_up_is_the_spec_rule_at_train_time(tmp_path):
    from polytask.spec.rules import warmup_problem

    valid = Path(__file__).resolve().parent / "specs" / "valid"
    shutil.copytree(valid.parent / "data", tmp_path / "data")
    (tmp_path / "valid").mkdir()
    spec = tmp_path / "valid" / "warm.yaml"
    spec.write_text((valid / "csv_hard.yaml").read_text().replace("decay_steps: 10}", "decay_steps: 10, warmup_steps: 20}"))
    result = CliRunner().invoke(main, ["train", str(spec), "--steps", "10", "--out", str(tmp_path / "run"),
                                       "--format", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "PT218" and error["message"] == warmup_problem(20, 10, "--steps")[0]
    assert error["line"] == 24
    assert not (tmp_path / "run").exists()


def test_a_run_without_test_rows_says_so(tmp_path):
    from polytask.cli.train import summary_text

    text = summary_text({"name": "x", "steps": 10, "wall_time_seconds": 1.0, "metrics": {"test": {}}}, tmp_path)
    assert "no test metrics" in text


@pytest.mark.parametrize("flags, says", [
    (["--baseline", "independent", "--groups-from", "."], "--baseline independent would ignore it"),
    (["--baseline", "independent", "--seed", "2147483647", "--seeds", "2"], "goes past the largest seed, 2147483647"),
])
def test_flags_that_would_be_ignored_or_overflow_are_usage_errors(tmp_path, flags, says):
    spec = write_spec(tmp_path, spec_dict(steps=2))
    result = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run"), "--quiet", *flags])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not (tmp_path / "run").exists()


def test_tensorflows_retracing_warning_is_not_shown(monkeypatch):
    """polytask builds one program per seed, baseline arm and group: TF's retracing warning is noise."""
    import logging

    from polytask.cli._common import quiet_tensorflow

    monkeypatch.delenv("POLYTASK_TF_LOGS", raising=False)
    quiet_tensorflow()
    logger = logging.getLogger("tensorflow")
    make = lambda text: logger.makeRecord("tensorflow", logging.WARNING, __file__, 1, text, (), None)  # noqa: E731
    assert not logger.filter(make("5 out of the last 13 calls to <f> triggered tf.function retracing. Tracing is"))
    assert logger.filter(make("a warning a user should see"))
