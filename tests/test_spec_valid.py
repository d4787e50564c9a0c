"""Valid specs: the fixture corpus under tests/specs/valid and every spec in examples/.

The examples are written by several people; this test parametrizes over whatever is
there (recursively), so a new example that does not pass `check` fails CI.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from polytask.spec import LoadedSpec, Spec, load_spec
from polytask.spec.checker import check_file

HERE = Path(__file__).parent
SHARED_DATA = Path(os.environ.get("POLYTASK_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
VALID = sorted((HERE / "specs" / "valid").glob("*.yaml"))
EXAMPLES_DIR = HERE.parent / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.rglob("*") if p.suffix in (".yaml", ".yml")) if EXAMPLES_DIR.is_dir() else []


@pytest.mark.parametrize("spec", VALID, ids=[p.name for p in VALID])
def test_valid_fixture_has_no_errors_and_no_warnings(spec: Path):
    result = check_file(spec)
    assert result.valid, "\n".join(map(str, result.diagnostics))
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))
    assert isinstance(result.spec, Spec)


@pytest.mark.parametrize("spec", EXAMPLES, ids=[str(p.relative_to(EXAMPLES_DIR)) for p in EXAMPLES])
def test_every_example_passes_check(spec: Path):
    # Examples may read ../shared/data (Omniglot); without it, everything but the data is checked.
    result = check_file(spec, check_data=SHARED_DATA.is_dir())
    assert result.valid, "\n".join(map(str, result.diagnostics))


def test_load_spec_returns_the_typed_spec_and_resolves_paths_next_to_the_file():
    loaded = load_spec(HERE / "specs" / "valid" / "csv_hard.yaml")
    assert isinstance(loaded, LoadedSpec)
    assert loaded.spec.structure.sharing == "hard"
    assert loaded.spec.training.weighting[1].kind == "pcgrad"
    assert loaded.resolve_path(loaded.spec.datasets["table"].path).resolve() == (HERE / "specs" / "data" / "table.csv").resolve()
    assert loaded.resolve_path(loaded.spec.datasets["table"].path).is_file()
    line = (HERE / "specs" / "valid" / "csv_hard.yaml").read_text().splitlines()[11]
    assert loaded.where("tasks", "score", "loss").endswith(f"csv_hard.yaml:12:{line.index('huber') + 1}")
    assert loaded.facts["table"].columns["label"].num_classes == 3


def test_relative_paths_resolve_against_the_spec_folder_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_file(HERE / "specs" / "valid" / "images_protonet.yaml").valid


def test_merge_keys_keep_positions_of_the_anchor():
    result = check_file(HERE / "specs" / "valid" / "anchors_and_merges.yaml")
    assert result.valid
    # `dataset` of task `first` comes from the anchor on line 6
    assert result.source_map.position(("tasks", "first", "dataset")).line == 6
    assert result.source_map.position(("tasks", "third", "target")).line == 12
    assert result.spec.tasks["second"].weight == 2.0 and result.spec.tasks["first"].metrics == ["rmse"]


def test_no_data_skips_reading_files(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text((HERE / "specs" / "valid" / "csv_hard.yaml").read_text().replace("../data/table.csv", "gone.csv"))
    assert [d.code for d in check_file(spec).diagnostics] == ["PT301"]
    assert check_file(spec, check_data=False).diagnostics == []
    loaded = load_spec(spec, check_data=False)
    assert loaded.spec.datasets["table"].path == "gone.csv"


def test_data_checks_see_an_edited_file(tmp_path):
    (tmp_path / "t.csv").write_text("a,label\n1.0,0\n2.0,1\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("polytask: 1\nname: t\ndatasets:\n  t: {source: csv, path: t.csv}\n"
                    "tasks:\n  label: {dataset: t, target: label, loss: cross_entropy}\n")
    assert check_file(spec).valid
    assert check_file(spec).valid  # from the probe cache
    (tmp_path / "t.csv").write_text("a,lbl\n1.0,0\n2.0,1\n3.0,1\n")
    assert [d.code for d in check_file(spec).diagnostics] == ["PT302"]


@pytest.mark.data
def test_omniglot_zips_are_counted_per_class(omniglot_zips, tmp_path):
    spec = tmp_path / "omniglot.yaml"
    def base(ways, queries, rotations):
        return ("polytask: 1\nname: omniglot\ndatasets:\n"
                f"  one: {{source: image_folder, path: {omniglot_zips[0]}, class_depth: 2}}\n"
                f"  two: {{source: image_folder, path: {omniglot_zips[1]}, class_depth: 2}}\n"
                f"family: {{source: classes, dataset: one, extra_datasets: [two], ways: {ways}, shots: 1, "
                f"queries: {queries}, rotations: {rotations}}}\nloss: cross_entropy\n"
                "structure: {sharing: meta, algorithm: protonet, model: [flatten]}\n")

    spec.write_text(base(ways=20, queries=19, rotations="[0, 90, 180, 270]"))
    result = check_file(spec)
    assert result.valid, [str(d) for d in result.diagnostics]
    assert len(result.facts["one"].class_counts) == 136 and set(result.facts["one"].class_counts) == {20}
    spec.write_text(base(ways=20, queries=20, rotations="[0]"))
    codes = sorted(d.code for d in check_file(spec).diagnostics)
    # 292 characters: 29 meta-validation classes (enough), but every class has 20 < 21 drawings
    assert codes == ["PT305"]
    spec.write_text(base(ways=40, queries=5, rotations="[0]"))
    assert [d.code for d in check_file(spec).diagnostics] == ["PT304"]  # meta-validation: 29 < 40


PLANNABLE = VALID + EXAMPLES


@pytest.mark.parametrize("spec", PLANNABLE, ids=[p.name for p in PLANNABLE])
def test_a_spec_that_passes_check_also_plans(spec: Path):
    """`check` and the compiler agree: nothing check accepts is refused by `polytask plan`."""
    plan_module = pytest.importorskip("polytask.compiler.plan")
    if spec in EXAMPLES and "shared/data" in spec.read_text() and not SHARED_DATA.is_dir():
        pytest.skip("needs ../shared/data")
    loaded = load_spec(spec)
    plan_module.build_plan(loaded)
