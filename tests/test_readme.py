"""README stays true: its specs pass `check`, and every CLI verb it lists exists (and vice versa)."""
from __future__ import annotations

import re
import shutil

from click.testing import CliRunner

from conftest import EXAMPLES, REPO_ROOT
from polytask.cli import main
from polytask.spec import load_spec

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_specs_are_valid(tmp_path):
    specs = _spec_blocks()
    assert len(specs) >= 2
    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLES / "data" / "digits_multitask.csv", tmp_path / "data")
    for number, text in enumerate(specs):
        path = tmp_path / f"readme_{number}.yaml"
        path.write_text(text, encoding="utf-8")
        load_spec(path)  # raises SpecError with positioned diagnostics if README drifted


def _spec_blocks() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", README, re.S)
    return [b for b in blocks if b.lstrip().startswith(("polytask:", "# yaml-language-server"))]


def test_readme_typo_example_matches_check_output(tmp_path):
    text = _spec_blocks()[0]  # "A spec"
    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLES / "data" / "digits_multitask.csv", tmp_path / "data")
    (tmp_path / "spec.yaml").write_text(text.replace("{adam: {learning_rate", "{adam: {lerning_rate"))
    result = CliRunner().invoke(main, ["check", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 1
    shown = re.search(r"spec\.yaml:\d+:\d+: error PT102: .*", README).group(0)
    assert shown.split("spec.yaml", 1)[1] in result.output


def test_every_cli_verb_is_documented():
    documented = set(re.findall(r"^\| `polytask (\w+)", README, re.M))
    sections = set(re.findall(r"^### (\w+)$", README, re.M))
    assert documented == set(main.commands) <= sections
