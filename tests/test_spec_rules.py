"""Cross-field rules that the invalid corpus does not pin down: warnings, partial specs, --no-data."""
from __future__ import annotations

from pathlib import Path

import pytest

from polytask.spec.checker import check_source

DATA = Path(__file__).parent / "specs" / "valid"  # base folder: ../data/... resolves to tests/specs/data

HEAD = "polytask: 1\nname: rules\n"
DIGITS = "datasets:\n  digits: {source: sklearn, name: digits}\n"
TASK = "tasks:\n  digit: {dataset: digits, target: target, loss: cross_entropy}\n"
SINUSOID_META = ("family: {source: sinusoid}\nloss: mse\n"
                 "structure:\n  sharing: meta\n  algorithm: ALGO\n  model: [{dense: {units: 8}}]\nEXTRA")


def diags(text: str, **kwargs):
    result = check_source(text, "spec.yaml", DATA, **kwargs)
    assert all(d.code != "PT900" for d in result.diagnostics), result.diagnostics
    return result


def codes(text: str, **kwargs) -> list[str]:
    return sorted(d.code for d in diags(text, **kwargs).diagnostics)


def test_schema_errors_and_rule_errors_are_reported_together():
    text = HEAD + DIGITS + ("tasks:\n  a: {dataset: digits, target: target, loss: crossentropy}\n"
                            "  b: {dataset: digitz, target: target, loss: mse}\n"
                            "  c: {dataset: digits, target: nope, loss: mse}\n")
    result = diags(text)
    assert sorted((d.code, d.line) for d in result.diagnostics) == [("PT105", 6), ("PT202", 7), ("PT204", 8)]
    assert not result.valid


def test_an_invalid_structure_does_not_cause_pooled_rules_to_fire():
    text = HEAD + "datasets:\n  iris: {source: sklearn, name: iris}\n  wine: {source: sklearn, name: wine}\n" \
        "tasks:\n  a: {dataset: iris, target: target, loss: cross_entropy}\n" \
        "  b: {dataset: wine, target: target, loss: cross_entropy}\nstructure: {sharing: hard}\n"
    assert codes(text) == ["PT101"]  # the missing trunk only, not a pooled-sharing complaint


@pytest.mark.parametrize("algorithm,extra,expected", [
    ("maml", "  reptile_step_size: 0.5\n", ["PT215"]),
    ("reptile", "  reptile_step_size: 0.5\n", []),
    ("protonet", "  inner: {steps: 2}\n", ["PT212", "PT215"]),
    ("maml", "  inner: {steps: 5, eval_steps: 2}\n", ["PT215"]),
])
def test_algorithm_settings(algorithm, extra, expected):
    assert codes(HEAD + SINUSOID_META.replace("ALGO", algorithm).replace("EXTRA", extra)) == expected


def test_settings_without_effect_are_warnings_and_keep_the_spec_valid():
    meta = HEAD + SINUSOID_META.replace("ALGO", "maml").replace("EXTRA", "") + \
        "training: {batch_size: 32, weighting: uncertainty}\n"
    result = diags(meta)
    assert result.valid and sorted(d.code for d in result.diagnostics) == ["PT215", "PT215"]
    multi = HEAD + DIGITS + TASK + "training: {meta_batch: 8, sampling: uniform}\n"
    assert codes(multi) == ["PT215", "PT215"] and diags(multi).valid


def test_early_stopping_metric_must_be_reported_and_mode_fit_it():
    text = HEAD + DIGITS.replace("digits}", "digits, split: {train: 0.7, validation: 0.1, test: 0.2}}") + "tasks:\n  digit: {dataset: digits, target: target, loss: cross_entropy, " \
        "metrics: [accuracy]}\ntraining:\n  early_stopping: {metric: digit/acuracy}\n"
    (d,) = diags(text).diagnostics
    assert d.code == "PT216" and "did you mean 'digit/accuracy'" in d.message
    text = text.replace("digit/acuracy}", "digit/accuracy}")
    assert codes(text) == ["PT215"]  # accuracy with mode min
    assert codes(text.replace("digit/accuracy}", "digit/accuracy, mode: max}")) == []


def test_early_stopping_needs_validation_rows_of_the_watched_task():
    two = HEAD + "datasets:\n  a: {source: sklearn, name: digits}\n" \
        "  b: {source: sklearn, name: digits, split: {train: 0.7, validation: 0.1, test: 0.2}}\n" \
        "tasks:\n  x: {dataset: a, target: target, loss: cross_entropy}\n" \
        "  y: {dataset: b, target: target, loss: cross_entropy}\n" \
        "structure: {sharing: hard, trunk: [{dense: {units: 4}}]}\ntraining:\n  early_stopping: {metric: %s}\n"
    assert codes(two % "x/loss") == ["PT222"]
    assert codes(two % "y/loss") == []
    assert codes(two % "loss") == []  # the weighted sum has y's validation rows


def test_weighting_rules():
    two = HEAD + "datasets:\n  m: {source: synthetic, generator: {kind: mmoe}}\n" \
        "tasks:\n  a: {dataset: m, target: task_0, loss: mse}\n  b: {dataset: m, target: task_1, loss: mse}\n" \
        "structure: {sharing: hard, trunk: [{dense: {units: 4}}]}\n"
    assert codes(two + "training: {weighting: [gradnorm, pcgrad]}\n") == []
    assert codes(two + "training: {weighting: [equal, dwa]}\n") == ["PT107"]
    assert codes(two + "training: {weighting: [pcgrad, pcgrad]}\n") == ["PT107"]
    assert codes(two + "training: {weighting: {uncertainty: {init: 1}}}\n") == ["PT102"]  # takes no parameters
    one = HEAD + DIGITS + TASK + "training: {weighting: gradnorm}\n"
    assert codes(one) == ["PT215"]
    # Representation-gradient methods: one gradient space per chain, and a shared representation.
    assert codes(two + "training: {weighting: [graddrop, {mgda: {upper_bound: true}}]}\n") == []
    assert codes(two + "training: {weighting: [graddrop, pcgrad]}\n") == ["PT107"]
    pooled = two.replace("sharing: hard, trunk:", "sharing: pooled, descriptor: onehot, model:")
    assert codes(pooled + "training: {weighting: [{cagrad: {rep_grad: true}}]}\n") == ["PT210"]
    assert codes(pooled + "training: {weighting: [cagrad, imtl]}\n") == []
    # the hint names the setting that switches each method back to parameter gradients, if any
    hints = {kind: diags(pooled + f"training: {{weighting: [{setting}]}}\n").diagnostics[0].hint
             for kind, setting in [("cagrad", "{cagrad: {rep_grad: true}}"),
                                   ("mgda", "{mgda: {upper_bound: true}}"), ("graddrop", "graddrop")]}
    assert "`rep_grad: false`" in hints["cagrad"] and "`upper_bound: false`" in hints["mgda"]
    assert "graddrop has no other form" in hints["graddrop"] and "false" not in hints["graddrop"]


def test_data_rules_need_data_checks_but_static_facts_do_not():
    csv_float = HEAD + "datasets:\n  t: {source: csv, path: ../data/table.csv}\n" \
        "tasks:\n  s: {dataset: t, target: score, loss: cross_entropy}\n"
    assert codes(csv_float) == ["PT205"]
    assert codes(csv_float, check_data=False) == []
    sklearn_float = HEAD + "datasets:\n  d: {source: sklearn, name: diabetes}\n" \
        "tasks:\n  s: {dataset: d, target: target, loss: cross_entropy}\n"
    assert codes(sklearn_float, check_data=False) == ["PT205"]


def test_pooled_tasks_with_a_descriptor_may_differ():
    text = HEAD + "datasets:\n  w: {source: synthetic, generator: {kind: sinusoid, tasks: 2}}\n" \
        "tasks:\n  a: {dataset: w, target: task_0, loss: mse}\n  b: {dataset: w, target: task_1, loss: mse}\n"
    assert codes(text) == ["PT207"]
    assert codes(text + "structure: {sharing: pooled, descriptor: embedding}\n") == []


def test_tfrecord_schema_gives_static_facts(tmp_path):
    text = HEAD + "datasets:\n  r:\n    source: tfrecord\n    path: data-*.tfrecord\n" \
        "    schema: {x: {shape: [4]}, y: {dtype: int64}, z: {dtype: string}}\n    features: [x]\n" \
        "tasks:\n  a: {dataset: r, target: y, loss: cross_entropy}\n  b: {dataset: r, target: z, loss: mse}\n" \
        "  c: {dataset: r, target: w, loss: mse}\n" \
        "structure: {sharing: hard, trunk: [{dense: {units: 4}}]}\n"
    result = check_source(text, "spec.yaml", tmp_path)
    assert sorted((d.code, d.line) for d in result.diagnostics) == [("PT204", 12), ("PT205", 11), ("PT301", 6)]
    (tmp_path / "data-0.tfrecord").write_bytes(b"")
    assert sorted(d.code for d in check_source(text, "spec.yaml", tmp_path).diagnostics) == ["PT204", "PT205"]


def test_a_key_of_another_variant_in_the_same_place_is_not_said_to_belong_there():
    """mmoe's experts.count in a cgc spec: the hint lists cgc's keys, not "'count' belongs in structure.experts"."""
    text = ("polytask: 1\nname: x\ndatasets:\n  m: {source: synthetic, generator: {kind: mmoe}}\n"
            "tasks:\n  a: {dataset: m, target: task_0, loss: mse}\n  b: {dataset: m, target: task_1, loss: mse}\n"
            "structure:\n  sharing: cgc\n  experts: {shared: 2, per_task: 1, count: 3, layers: [{dense: {units: 4}}]}\n")
    [diagnostic] = check_source(text, "spec.yaml", Path(".")).diagnostics
    assert diagnostic.code == "PT102" and "unknown key 'count' in structure.experts" in diagnostic.message
    assert "belongs in structure.experts" not in (diagnostic.hint or "")
    assert "shared, per_task or layers" in diagnostic.hint


def test_a_null_weighting_is_called_a_missing_list():
    text = ("polytask: 1\nname: x\ndatasets:\n  d: {source: sklearn, name: digits}\n"
            "tasks:\n  t: {dataset: d, target: target, loss: cross_entropy}\ntraining:\n  weighting: null\n")
    [diagnostic] = check_source(text, "spec.yaml", Path(".")).diagnostics
    assert diagnostic.code == "PT103" and diagnostic.message == "training.weighting should be a list, got null"
