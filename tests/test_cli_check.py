"""`polytask check`, `polytask schema` and `polytask init` from the outside: exit codes, output
formats, and that none of them imports TensorFlow (run in subprocesses with it blocked)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from polytask.cli import main

HERE = Path(__file__).parent
REPO = HERE.parent
VALID = HERE / "specs" / "valid"
INVALID = HERE / "specs" / "invalid"
EXAMPLES = REPO / "examples"

# Runs the CLI with TensorFlow (and friends) unimportable; any attempt ends the process with 97.
BLOCKED_RUNNER = r"""
import atexit, os, sys
BLOCKED = ("tensorflow", "keras", "tf_keras", "tensorboard", "jax", "torch")
attempts = []
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is blocked by the test")
        return None
sys.meta_path.insert(0, Blocker())
def report():
    loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
    if attempts or loaded:
        sys.stderr.write("BLOCKED-IMPORT: " + ", ".join(attempts + loaded) + "\n")
        sys.stderr.flush()
        os._exit(97)
atexit.register(report)
from polytask.cli import main
sys.argv = ["polytask"] + sys.argv[1:]
main()
"""


def run_blocked(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", BLOCKED_RUNNER, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------- without TensorFlow


def test_check_valid_specs_without_tensorflow_importable():
    proc = run_blocked("check", str(VALID))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BLOCKED-IMPORT" not in proc.stderr
    assert f"{len(list(VALID.glob('*.yaml')))} files checked" in proc.stdout


def test_check_invalid_specs_without_tensorflow_importable_exits_1():
    proc = run_blocked("check", "--format", "json", str(INVALID))
    assert proc.returncode == 1, proc.stderr
    assert "BLOCKED-IMPORT" not in proc.stderr
    assert json.loads(proc.stdout)["summary"]["invalid"] == len(list(INVALID.glob("*.yaml")))


def test_check_examples_passes_without_tensorflow_importable():
    if not EXAMPLES.is_dir() or not any(p.suffix in (".yaml", ".yml") for p in EXAMPLES.rglob("*")):
        pytest.skip("no examples yet")
    shared = Path(os.environ.get("POLYTASK_SHARED_DATA", REPO.parent / "shared" / "data"))
    proc = run_blocked("check", "examples/", *([] if shared.is_dir() else ["--no-data"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BLOCKED-IMPORT" not in proc.stderr


def test_schema_and_init_without_tensorflow_importable(tmp_path):
    proc = run_blocked("schema")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["title"].startswith("polytask spec")
    proc = run_blocked("init", "--pattern", "meta", str(tmp_path / "meta.yaml"))
    assert proc.returncode == 0, proc.stderr


def test_the_blocker_really_blocks():
    proc = subprocess.run([sys.executable, "-c", BLOCKED_RUNNER.replace("from polytask.cli import main",
                                                                       "import tensorflow\nfrom polytask.cli import main"),
                           "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "blocked" in proc.stderr


# --------------------------------------------------------------------------- check: exit codes and formats


def test_misspelled_key_gives_one_line_with_position_wrong_key_and_right_key():
    spec = INVALID / "typo_learning_rate.yaml"
    result = invoke("check", str(spec))
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first == (f"{spec}:11:7: error PT102: unknown key 'lerning_rate' in training.optimizer.adam "
                     "(did you mean 'learning_rate'?)")
    assert result.output.splitlines()[-1] == "1 file checked: 0 valid, 1 invalid (1 error, 0 warnings)"


def test_exit_codes(tmp_path):
    assert invoke("check", str(VALID / "sklearn_pooled.yaml")).exit_code == 0
    assert invoke("check", str(INVALID / "duplicate_key.yaml")).exit_code == 1
    assert invoke("check", str(VALID / "sklearn_pooled.yaml"), str(INVALID / "duplicate_key.yaml")).exit_code == 1
    missing = CliRunner().invoke(main, ["check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
    assert CliRunner().invoke(main, ["check"]).exit_code == 2
    assert CliRunner().invoke(main, ["check", "--format", "xml", str(VALID)]).exit_code == 2
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert CliRunner().invoke(main, ["check", str(empty_dir)]).exit_code == 2


def test_folders_are_searched_recursively_for_yaml_and_yml(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    text = (VALID / "sklearn_pooled.yaml").read_text()
    (tmp_path / "a" / "one.yaml").write_text(text)
    (tmp_path / "a" / "b" / "two.yml").write_text(text)
    (tmp_path / ".hidden" / "bad.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("ignored")
    result = invoke("check", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "2 files checked: 2 valid" in result.output


def test_json_format_is_machine_readable():
    result = invoke("check", "--format", "json", str(INVALID / "typo_layer.yaml"), str(VALID / "sklearn_pooled.yaml"))
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["valid"] is False
    assert document["summary"] == {"files": 2, "valid": 1, "invalid": 1, "errors": 1, "warnings": 0}
    bad = document["files"][0]
    (diag,) = bad["diagnostics"]
    assert diag["code"] == "PT102" and diag["line"] == 12 and diag["column"] == 7 and diag["severity"] == "error"
    assert "dropout" in diag["message"]
    assert set(diag) == {"code", "message", "file", "line", "column", "hint", "severity", "path"}


def test_github_format_emits_workflow_commands():
    result = invoke("check", "--format", "github", str(INVALID / "split_sum.yaml"))
    assert result.exit_code == 1
    line = result.output.splitlines()[0]
    assert line.startswith(f"::error file={INVALID / 'split_sum.yaml'},line=8,col=12,title=PT107::")
    assert "\n" not in line


def test_github_format_escapes_newlines_commas_and_colons():
    from polytask.spec.diagnostics import Diagnostic, format_github

    text = format_github([("a,b:c.yaml", [Diagnostic("PT102", "50% wrong", file="a,b:c.yaml", line=3, column=4,
                                                     hint="fix\nit")])])
    assert text.splitlines()[0] == "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=PT102::50%25 wrong%0Ahint: fix%0Ait"


def test_warnings_pass_unless_strict(tmp_path):
    spec = tmp_path / "spec.yaml"
    text = (VALID / "sklearn_pooled.yaml").read_text()
    spec.write_text(text.replace("datasets:\n", "datasets:\n  unused: {source: sklearn, name: iris}\n"))
    result = invoke("check", str(spec))
    assert result.exit_code == 0 and "warning PT217" in result.output
    assert invoke("check", "--strict", str(spec)).exit_code == 1


def test_no_data_flag_skips_data_checks(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text((VALID / "csv_hard.yaml").read_text().replace("../data/table.csv", "absent.csv"))
    assert invoke("check", str(spec)).exit_code == 1
    assert invoke("check", "--no-data", str(spec)).exit_code == 0


def test_skip_non_specs_ignores_other_yaml(tmp_path):
    (tmp_path / "workflow.yml").write_text("on: push\njobs: {}\n")
    (tmp_path / "spec.yaml").write_text((VALID / "sklearn_pooled.yaml").read_text())
    assert invoke("check", str(tmp_path)).exit_code == 1
    result = invoke("check", "--skip-non-specs", str(tmp_path))
    assert result.exit_code == 0 and "1 file checked" in result.output


def test_unreadable_bytes_and_binary_files_are_diagnostics_not_tracebacks(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(bytes(range(256)) * 4)
    result = invoke("check", str(spec))
    assert result.exit_code == 1 and "PT002" in result.output


# --------------------------------------------------------------------------- python callables


def test_python_source_is_never_imported_without_allow_code(tmp_path):
    marker = tmp_path / "imported.txt"
    (tmp_path / "userdata.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nprint('noise from user code')\n"
        "def load():\n    return {'x': [[1.0]] * 4, 'y': [0, 1, 0, 1]}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("polytask: 1\nname: code\ndatasets:\n  d: {source: python, callable: userdata:load}\n"
                    "tasks:\n  t: {dataset: d, target: y, loss: cross_entropy}\n")
    result = invoke("check", str(spec))
    assert result.exit_code == 0 and "warning PT401" in result.output
    assert not marker.exists()
    marker.unlink(missing_ok=True)
    proc = run_blocked("check", "--allow-code", "--format", "json", str(spec))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["valid"] is True  # user code's print went to stderr
    assert "noise from user code" in proc.stderr
    assert marker.exists()


def test_python_source_that_cannot_be_imported_is_an_error_with_allow_code(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("polytask: 1\nname: code\ndatasets:\n  d: {source: python, callable: no_such_module_xyz:load}\n"
                    "tasks:\n  t: {dataset: d, target: y, loss: cross_entropy}\n")
    result = invoke("check", "--allow-code", str(spec))
    assert result.exit_code == 1 and "PT402" in result.output and ":4:" in result.output


# --------------------------------------------------------------------------- schema


def test_schema_is_valid_json_schema_and_accepts_the_valid_specs(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    out = tmp_path / "schema.json"
    result = invoke("schema", "--output", str(out))
    assert result.exit_code == 0
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted(EXAMPLES.rglob("*.yaml")) if EXAMPLES.is_dir() else []
    for spec in sorted(VALID.glob("*.yaml")) + examples:
        errors = list(validator.iter_errors(yaml.safe_load(spec.read_text())))
        assert not errors, f"{spec.name}: {errors[0].message}"
    bad = yaml.safe_load((INVALID / "typo_learning_rate.yaml").read_text())
    assert list(validator.iter_errors(bad))


def test_schema_to_stdout_matches_file_output(tmp_path):
    out = tmp_path / "schema.json"
    invoke("schema", "-o", str(out))
    assert invoke("schema").output == out.read_text()


# --------------------------------------------------------------------------- init


@pytest.mark.parametrize("pattern", ["pooled", "hard", "meta"])
def test_init_writes_a_commented_starter_that_passes_check(tmp_path, pattern):
    target = tmp_path / f"{pattern}.yaml"
    result = invoke("init", "--pattern", pattern, str(target))
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert text.count("#") >= 10 and f"sharing: {pattern}" in text
    check = invoke("check", "--strict", str(target))
    assert check.exit_code == 0, check.output
    from polytask.spec import load_spec

    loaded = load_spec(target)
    assert loaded.spec.structure.sharing == pattern
    plan = pytest.importorskip("polytask.compiler.plan")
    plan.build_plan(loaded)  # the starter is something the compiler builds, not just something check accepts


def test_init_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "spec.yaml"
    target.write_text("mine")
    result = CliRunner().invoke(main, ["init", str(target)])
    assert result.exit_code == 1 and "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "mine"
    assert CliRunner().invoke(main, ["init", "--force", str(target)]).exit_code == 0
    assert target.read_text().startswith("# polytask spec")


def test_init_into_a_folder_uses_polytask_yaml(tmp_path):
    assert CliRunner().invoke(main, ["init", str(tmp_path)]).exit_code == 0
    assert (tmp_path / "polytask.yaml").is_file()


def test_pre_commit_hook_definition():
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "polytask-check"]
    assert hook["entry"].startswith("polytask check")
    assert hook["language"] == "python"
    assert "yaml" in hook["types"]
