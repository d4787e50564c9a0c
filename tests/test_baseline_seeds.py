"""`polytask train --baseline independent|groups --seeds N`: statistics, verdicts and per-seed runs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from multitask_support import spec_dict, write_spec
from polytask.cli import main
from polytask.runtime import baseline


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_summary_uses_student_t_with_n_minus_1_degrees_of_freedom():
    values = [1.0, 2.0, 4.0]
    stats = baseline.summary(values)
    sd = np.std(values, ddof=1)
    assert stats["mean"] == pytest.approx(7 / 3)
    assert stats["ci95"] == pytest.approx(4.302652729911275 * sd / np.sqrt(3))  # t_{0.975, 2}
    assert baseline.summary([5.0])["ci95"] is None
    assert baseline.t_quantile(0.975, 1) == pytest.approx(12.706204736174698)


def test_verdict_only_when_the_paired_interval_excludes_zero():
    clear = baseline.summary([0.05, 0.06, 0.055])
    assert baseline.verdict(clear, higher_is_better=True) == "helps"
    assert baseline.verdict(clear, higher_is_better=False) == "hurts"
    noisy = baseline.summary([0.05, -0.04, 0.02])
    assert baseline.verdict(noisy, higher_is_better=True) == "no detectable difference"


def test_delta_m_follows_the_formula():
    arm = [{"a": {"accuracy": 0.9}, "c": {"mse": 1.0}}]
    single = [{"a": {"accuracy": 0.8}, "c": {"mse": 2.0}}]
    value = baseline.delta_m(arm, single, {"a": "accuracy", "c": "mse"}, {"a": True, "c": False})[0]
    assert value == pytest.approx(((0.9 - 0.8) / 0.8 - (1.0 - 2.0) / 2.0) / 2 * 100)


def test_compare_pairs_seeds():
    per_seed = [{"seed": s, "metrics": {"a": ["accuracy"]}, "multi_task": {"a": {"accuracy": m}},
                 "independent": {"a": {"accuracy": i}}} for s, m, i in [(0, 0.9, 0.8), (1, 0.7, 0.6), (2, 0.8, 0.71)]]
    row = baseline.compare(per_seed)["tasks"]["a"]["accuracy"]
    # the arms' own intervals overlap, but the paired differences are consistently positive
    assert row["multi_task"]["mean"] - row["multi_task"]["ci95"] < row["independent"]["mean"]
    assert row["verdict"] == "helps"
    assert row["difference"]["mean"] == pytest.approx(np.mean([0.1, 0.1, 0.09]))


@pytest.mark.slow
def test_two_seeds_with_groups_from_an_affinity_run(tmp_path):
    spec = spec_dict(steps=30, eval_every=30, checkpoint_every=30)
    path = write_spec(tmp_path, spec)
    affinity_out = tmp_path / "aff"
    first = _invoke("affinity", str(path), "--steps", "20", "--groups", "2", "--out", str(affinity_out), "--quiet")
    assert first.exit_code == 0, first.output
    result = _invoke("train", str(path), "--out", str(tmp_path / "runs"), "--quiet", "--baseline", "groups",
                     "--seeds", "2", "--groups-from", str(affinity_out))
    assert result.exit_code == 0, result.output
    assert "mean ± 95% CI" in result.output and "Delta_m" in result.output
    report = json.loads((tmp_path / "runs" / "report.json").read_text())
    assert report["seeds"] == [3, 4]
    for seed in (3, 4):
        assert (tmp_path / "runs" / f"seed-{seed}" / "report.json").exists()
        for task in "abc":
            assert (tmp_path / "runs" / f"seed-{seed}" / "baseline" / task / "report.json").exists()
    row = report["baseline"]["tasks"]["a"]["accuracy"]
    for arm in ("multi_task", "independent", "groups"):
        assert len(row[arm]["values"]) == 2 and row[arm]["ci95"] is not None
    assert row["verdict"] in ("helps", "hurts", "no detectable difference")
    seed3 = json.loads((tmp_path / "runs" / "seed-3" / "report.json").read_text())
    assert row["multi_task"]["values"][0] == seed3["metrics"]["test"]["a/accuracy"]
    assert set(report["baseline"]["delta_m"]) >= {"mean", "ci95"}
    assert "groups_delta_m" in report["baseline"]
    again = _invoke("train", str(path), "--out", str(tmp_path / "runs"), "--quiet", "--baseline", "independent",
                    "--seeds", "2")
    assert again.exit_code == 1 and "already holds a run" in again.output


@pytest.mark.slow
def test_parallel_seeds_match_sequential_ones(tmp_path):
    spec = spec_dict(steps=20, eval_every=20, checkpoint_every=20)
    del spec["tasks"]["c"]
    path = write_spec(tmp_path, spec)
    reports = []
    for parallel, out in ((1, "seq"), (2, "par")):
        result = _invoke("train", str(path), "--out", str(tmp_path / out), "--quiet", "--baseline", "independent",
                         "--seeds", "2", "--parallel", str(parallel))
        assert result.exit_code == 0, result.output
        reports.append(json.loads((tmp_path / out / "report.json").read_text()))
    for task in ("a", "b"):
        seq, par = (r["baseline"]["tasks"][task]["accuracy"] for r in reports)
        np.testing.assert_allclose(seq["multi_task"]["values"], par["multi_task"]["values"], atol=1e-6)
        np.testing.assert_allclose(seq["independent"]["values"], par["independent"]["values"], atol=1e-6)


def test_seeds_without_baseline_is_a_usage_error(tmp_path):
    path = write_spec(tmp_path, spec_dict(steps=5))
    result = _invoke("train", str(path), "--seeds", "2")
    assert result.exit_code == 2 and "--baseline" in result.output


@pytest.mark.slow
def test_groups_baseline_measures_the_groups_when_none_are_given(tmp_path):
    path = write_spec(tmp_path, spec_dict(steps=30, eval_every=30, checkpoint_every=30))
    result = _invoke("train", str(path), "--out", str(tmp_path / "run"), "--quiet", "--baseline", "groups")
    assert result.exit_code == 0, result.output
    assert "vs suggested groups" in result.output
    saved = json.loads((tmp_path / "run" / "affinity" / "affinity.json").read_text())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert sorted(t for g in saved["groups"] for t in g) == ["a", "b", "c"]
    row = report["baseline"]["tasks"]["c"]["mse"]
    assert row["groups"]["values"] and row["groups_vs_multi_task"]["verdict"] == "no detectable difference"
