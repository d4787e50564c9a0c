"""`polytask report RUN_DIR`: the page shows every section its run has, reads with 30 tasks,
never writes over files it did not write, and never imports TensorFlow.

Run directories are synthetic (tests/report_support.py, in the formats training writes) so
these tests stay fast; one slow test reports on a real trained run."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cli_support import invoke
from report_support import meta_run, multitask_run, seeds_run, task_names

SPECS = Path(__file__).resolve().parent / "specs"


def _images(page: Path) -> list[Path]:
    return [page.parent / src for src in re.findall(r'<img src="([^"]+)"', page.read_text(encoding="utf-8"))]


def _png_sizes(paths: list[Path]) -> list[tuple[int, int]]:
    sizes = []
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG", path
            sizes.append(image.size)
    return sizes


@pytest.fixture(scope="module")
def thirty(tmp_path_factory):
    """A 30-task run with a 3-seed baseline and an affinity file, and its report."""
    run = multitask_run(tmp_path_factory.mktemp("runs") / "thirty", tasks=30)
    result = invoke("report", str(run), "--format", "json")
    assert result.exit_code == 0, result.output
    return run, json.loads(result.output)


def test_every_section_of_a_30_task_run_is_on_the_page(thirty):
    run, written = thirty
    page = Path(written["page"])
    assert page == run / "report" / "index.html"
    text = page.read_text(encoding="utf-8")
    for anchor in ("curves", "metrics", "baseline", "affinity", "plan"):
        assert f'id="{anchor}"' in text, anchor
    assert 'id="adaptation"' not in text, "a multi-task run has no adaptation curve"
    report = json.loads((run / "report.json").read_text())
    # The final metrics table: one row per task with its test accuracy.
    table = text.split('id="final-metrics"', 1)[1].split("</table>", 1)[0]
    for name in task_names(30):
        value = report["metrics"]["test"][f"{name}/accuracy"]
        assert re.search(rf"<td>{name}</td><td>[^<]*</td><td>{value:.4g}</td>", table) or \
            re.search(rf"<td>{name}</td>.*?<td>{value:.4g}</td>", table), name
    # The baseline with its intervals over seeds, and delta_m.
    cell = report["baseline"]["tasks"]["task_07"]["accuracy"]
    mt = cell["multi_task"]
    assert f"{mt['mean']:.4g} ± {mt['ci95']:.4g}" in text
    assert "Δm" in text and "+1.20% ± 0.80%" in text
    assert cell["verdict"] in text
    # The plan: the trunk is shared by all 30 tasks, each head by one.
    assert "all 30 tasks" in text and "head[task_29]" in text
    # With this many rows the tables get a filter box.
    assert 'data-table="final-metrics"' in text and 'data-table="baseline-table"' in text


def test_figures_are_real_pngs_sized_for_30_tasks(thirty):
    run, written = thirty
    page = Path(written["page"])
    images = _images(page)
    assert sorted(p.name for p in images) == sorted(Path(p).name for p in written["images"])
    assert {p.name for p in images} == {"curves_loss.png", "curves_metrics.png", "baseline.png", "affinity.png"}
    sizes = dict(zip((p.name for p in images), _png_sizes(images)))
    # 31 panels (all tasks + 30) in a grid of 6 columns: 6 rows, wider than tall but not a strip.
    width, height = sizes["curves_loss.png"]
    assert 1000 < width < 2000 and 0.5 < height / width < 1.2, sizes
    # One row per task in the baseline chart.
    assert sizes["baseline.png"][1] > 30 * 20


def test_the_affinity_heatmap_orders_tasks_by_group():
    from polytask.runtime.report import affinity_order

    content = {"tasks": ["a", "b", "c", "d"], "affinity": [[0] * 4] * 4, "groups": [["c", "a"], ["d"]]}
    assert affinity_order(content) == [2, 0, 3, 1]
    overlapping = {**content, "groups": [["c", "a"], ["a", "d"]]}  # `polytask affinity --overlap`
    assert affinity_order(overlapping) == [2, 0, 3, 1]


def test_a_meta_run_shows_its_adaptation_curve_with_the_band(tmp_path):
    run = meta_run(tmp_path / "meta", steps_in_curve=6)
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    page = run / "report" / "index.html"
    text = page.read_text(encoding="utf-8")
    assert 'id="adaptation"' in text and "95% confidence" in text
    table = text.split('id="adaptation-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 6  # header + one row per inner step
    assert "0.5 ± 0.2" in table  # step 5: 3 / (1 + 5)
    assert "adaptation.png" in {p.name for p in _images(page)}
    assert 'id="plan"' in text and "layer0_dense" in text
    assert 'id="baseline"' not in text


def test_a_seeds_run_draws_every_seed_and_the_groups_arm(tmp_path):
    run = seeds_run(tmp_path / "seeds", tasks=4, seeds=3)
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    text = (run / "report" / "index.html").read_text(encoding="utf-8")
    assert "did not finish" not in text
    # Final metrics: the mean of the seed runs' test metrics.
    tests = [json.loads((run / f"seed-{s}" / "report.json").read_text())["metrics"]["test"] for s in range(3)]
    mean = sum(t["task_02/accuracy"] for t in tests) / 3
    assert "mean over 3 seeds" in text and f"{mean:.4g}" in text
    # Curves from all three seeds, the plan from the first one.
    assert 'alt="Loss per task: train (line) and validation (dots), 3 seeds"' in text
    assert 'id="curves"' in text and 'id="plan"' in text and "head[task_03]" in text
    # The groups arm and both Δm lines.
    assert "groups vs alone" in text and "-2.0%" in text and "hurts" in text
    assert "Δm of multi-task" in text and "-0.70% ± 1.10%" in text
    assert "Δm of suggested groups" in text and "+2.50% ± 0.90%" in text
    assert {p.name for p in _images(run / "report" / "index.html")} == {"curves_loss.png", "curves_metrics.png",
                                                                        "baseline.png"}


def test_curves_merge_one_line_per_seed():
    from polytask.runtime.report import learning_series, merge_sources

    records = [{"step": 10, "split": "train", "loss": 1.0, "loss/a": 0.5},
               {"step": 20, "split": "validation", "a/loss": 0.6, "a/accuracy": 0.7, "loss": 0.6}]
    merged = merge_sources({"seed 0": learning_series(records, ["a"]), "seed 1": learning_series(records, ["a"])})
    assert merged["a"]["train loss"] == [[(10, 0.5)], [(10, 0.5)]]
    assert merged["a"]["validation accuracy"] == [[(20, 0.7)], [(20, 0.7)]]
    assert merged["all"]["validation loss"] == [[(20, 0.6)], [(20, 0.6)]]


def test_a_single_seed_baseline_in_the_older_layout_is_shown(tmp_path):
    from polytask.runtime.report import baseline_rows

    rows = baseline_rows({"kind": "independent", "tasks": {"a": {
        "metric": "accuracy", "higher_is_better": True, "multi_task": 0.9, "independent": 0.8,
        "relative_change": 0.125, "multi_task_better": True}}})
    assert rows == [{"task": "a", "metric": "accuracy", "multi_task": 0.9, "multi_task_ci95": None,
                     "independent": 0.8, "independent_ci95": None, "seeds": None, "change": 0.125,
                     "verdict": "sharing helps", "higher_is_better": True}]


def test_an_unfinished_run_gets_its_curves_and_a_notice(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=3, affinity=False)
    (run / "report.json").unlink()
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 450, "split": "tra')  # killed mid-write
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    assert "did not finish" in result.output and "1 unreadable line(s)" in result.output
    text = (run / "report" / "index.html").read_text()
    assert 'id="curves"' in text and 'id="metrics"' not in text


def test_a_foreign_out_folder_is_refused_and_left_alone(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=3, affinity=False)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("my own page")
    for args in (("report", str(run), "--out", str(out)), ("report", str(run), "--out", str(out), "--format", "json")):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert "did not write" in result.output
    error = json.loads(result.output)["error"]
    assert "did not write" in error["message"] and error["hint"]
    assert [p.name for p in out.iterdir()] == ["index.html"] and (out / "index.html").read_text() == "my own page"


def test_rerunning_replaces_its_own_files_only(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=4)
    assert invoke("report", str(run)).exit_code == 0
    out = run / "report"
    assert (out / "affinity.png").exists()
    (run / "affinity.json").unlink()
    assert invoke("report", str(run)).exit_code == 0
    assert not (out / "affinity.png").exists(), "a figure the new report no longer has is removed"
    (out / "notes.txt").write_text("mine")
    result = invoke("report", str(run))
    assert result.exit_code == 1 and "notes.txt" in result.output
    assert (out / "notes.txt").read_text() == "mine"


def test_bad_affinity_files_are_clear_errors(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=3, affinity=False)
    result = invoke("report", str(run), "--affinity", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "no such affinity file" in result.output
    (run / "affinity.json").write_text(json.dumps({"tasks": ["a", "b"], "affinity": [[1, 2]]}))
    result = invoke("report", str(run))
    assert result.exit_code == 1 and "square 'affinity' matrix" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = invoke("report", str(run), "--affinity", str(bad))
    assert result.exit_code == 1 and f"cannot read {bad} as an affinity file" in result.output
    assert "polytask affinity SPEC --out DIR" in result.output and "train again" not in result.output


def test_groups_are_found_in_a_groups_run_directory(tmp_path):
    from polytask.errors import PolytaskError
    from polytask.runtime.affinity import load_groups

    run = tmp_path / "run"
    (run / "affinity").mkdir(parents=True)
    with pytest.raises(PolytaskError, match="no affinity.json at") as info:
        load_groups(run)
    assert "--baseline groups" in info.value.hint
    content = {"tasks": ["a", "b"], "affinity": [[0, 1], [1, 0]], "groups": [["a", "b"]]}
    (run / "affinity" / "affinity.json").write_text(json.dumps(content))
    assert load_groups(run)["groups"] == [["a", "b"]]
    assert load_groups(run / "affinity")["file"] == str(run / "affinity" / "affinity.json")
    (run / "affinity" / "affinity.json").write_text(json.dumps({**content, "groups": "ab"}))
    with pytest.raises(PolytaskError, match="'groups' must be lists of its task names"):
        load_groups(run)


def test_report_does_not_import_tensorflow(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=2)
    code = ("import sys; from polytask.cli import main; sys.argv = ['polytask', 'report', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (run / "report" / "index.html").exists()


@pytest.mark.slow
def test_a_real_trained_run(tmp_path):
    shutil.copytree(SPECS / "data", tmp_path / "data")
    (tmp_path / "specs").mkdir()
    spec = shutil.copy(SPECS / "valid" / "csv_hard.yaml", tmp_path / "specs" / "csv_hard.yaml")
    run = tmp_path / "run"
    result = invoke("train", spec, "--out", str(run), "--steps", "60", "--quiet")
    assert result.exit_code == 0, result.output
    result = invoke("report", str(run), "--format", "json")
    assert result.exit_code == 0, result.output
    page = Path(json.loads(result.output)["page"])
    text = page.read_text(encoding="utf-8")
    report = json.loads((run / "report.json").read_text())
    for key in report["metrics"]["test"]:
        if "/" in key:
            assert f"<td>{key.split('/')[0]}</td>" in text
    assert 'id="plan"' in text and 'id="curves"' in text
    assert all(w > 0 and h > 0 for w, h in _png_sizes(_images(page)))


def test_without_matplotlib_it_names_the_extra(tmp_path, monkeypatch):
    run = multitask_run(tmp_path / "run", tasks=2, affinity=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    result = invoke("report", str(run))
    assert result.exit_code == 1
    assert "matplotlib" in result.output and "polytask[report]" in result.output
    assert not (run / "report").exists()


def test_a_finished_run_without_its_report_json_is_not_called_unfinished(tmp_path):
    run = multitask_run(tmp_path / "run", tasks=3, affinity=False)
    (run / "report.json").unlink()
    (run / "saved_model").mkdir(exist_ok=True)
    (run / "saved_model" / "polytask.json").write_text("{}")
    result = invoke("report", str(run))
    assert result.exit_code == 0, result.output
    assert "did not finish" not in result.output and "the export is there" in result.output


@pytest.mark.parametrize("content, says", [
    ({"tasks": ["a", "b"], "affinity": [[1, "x"], [0, 1]]}, "affinity[0][1] is 'x', not a finite number"),
    ({"tasks": ["a", "b"], "affinity": [[1, 0], [float("inf"), 1]]}, "affinity[1][0] is inf"),
    ({"tasks": ["a", "b"], "affinity": [[1, 0], [0, 1]], "groups": [[0, 7]]}, "'groups' must be lists of its task names"),
])
def test_a_damaged_affinity_file_is_named_by_report(tmp_path, content, says):
    import json

    run = multitask_run(tmp_path / "run", tasks=2, affinity=False)
    bad = tmp_path / "affinity.json"
    bad.write_text(json.dumps(content))
    result = invoke("report", str(run), "--affinity", str(bad))
    assert result.exit_code == 1 and says in result.output, result.output
