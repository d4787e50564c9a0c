"""The wording users see for the most common mistakes: what, where, and how to fix it."""
from __future__ import annotations

from polytask.spec.checker import check_source


def only(text: str):
    result = check_source(text, "spec.yaml", check_data=False)
    errors = [d for d in result.diagnostics if d.is_error]
    assert len(errors) == 1, [str(d) for d in result.diagnostics]
    return errors[0]


HEAD = "polytask: 1\nname: msg\ndatasets:\n  digits: {source: sklearn, name: digits}\n"
TASK = "tasks:\n  digit: {dataset: digits, target: target, loss: cross_entropy}\n"


def test_percent_instead_of_fraction():
    d = only(HEAD.replace("digits}", "digits, split: {train: 80, test: 0.2}}") + TASK)
    assert d.code == "PT104" and (d.line, d.column) == (4, 58)
    assert d.message == "datasets.digits.split.train must be at most 1.0 (got 80)"
    assert d.hint == "fractions are written between 0 and 1: 0.8, not 80"


def test_scalar_where_a_list_is_expected():
    d = only(HEAD + TASK.replace("cross_entropy}", "cross_entropy, metrics: accuracy}"))
    assert (d.code, d.line) == ("PT103", 6) and d.hint == "write a list, even of one item: [accuracy]"


def test_unknown_choice_suggests_the_nearest_and_lists_the_rest():
    d = only(HEAD + TASK.replace("cross_entropy}", "crossentropy}"))
    assert d.message == "tasks.digit.loss: 'crossentropy' is not allowed (did you mean 'cross_entropy'?)"
    assert "binary_cross_entropy" in d.hint


def test_unknown_key_far_from_every_choice_lists_the_allowed_keys():
    d = only(HEAD + TASK + "training: {zzz: 1}\n")
    assert d.message == "unknown key 'zzz' in training" and d.hint.startswith("allowed here: steps, batch_size")


def test_unknown_source_and_layer_kind():
    d = only(HEAD.replace("source: sklearn", "source: sklern") + TASK)
    assert d.message == "unknown source 'sklern' in datasets.digits (did you mean 'sklearn'?)"
    d = only(HEAD + TASK + "structure: {sharing: hard, trunk: [{dens: {units: 3}}]}\n")
    assert d.message == "unknown layer kind 'dens' in structure.trunk[0] (did you mean 'dense'?)"


def test_bad_task_name_suggests_an_identifier():
    d = only(HEAD + TASK.replace("digit:", "my digit:"))
    assert d.code == "PT104" and d.hint == "for example 'my_digit'" and d.column == 3


def test_yaml_booleans_and_quoted_versions():
    d = only("polytask: 1\nname: no\n" + HEAD.split("\n", 2)[2] + TASK)
    assert d.code == "PT103" and "quote the value" in d.hint
    d = only("polytask: '1'\nname: x\n" + HEAD.split("\n", 2)[2] + TASK)
    assert d.code == "PT103" and d.message == "the format version is a number: write `polytask: 1`, not '1'"
    assert only("polytask: 3\nname: x\n" + HEAD.split("\n", 2)[2] + TASK).code == "PT108"


def test_a_key_in_the_wrong_section_says_where_it_belongs():
    d = only(HEAD + TASK + "training:\n  learning_rate: 0.1\n")
    assert d.message == "unknown key 'learning_rate' in training"
    assert d.hint.startswith("'learning_rate' belongs in structure.inner, training.optimizer.adam")
    d = only(HEAD + TASK + "shots: 5\n")
    assert d.hint == "'shots' belongs in family (with source: classes) or family (with source: sinusoid)"


import re as _re

import pytest as _pytest


@_pytest.mark.parametrize("bad", ["tâche", "tâche_é", "🎉", "日本語", "1st", "ß-x"])
def test_a_bad_task_name_hint_suggests_a_name_that_passes(bad):
    spec = HEAD + f'tasks:\n  "{bad}": {{dataset: digits, target: target, loss: cross_entropy}}\n'
    d = only(spec)
    assert d.code == "PT104"
    suggested = _re.fullmatch(r"for example '(.*)'", d.hint)[1]
    fixed = spec.replace(f'"{bad}"', suggested)
    assert check_source(fixed, "spec.yaml", check_data=False).valid, suggested


@_pytest.mark.parametrize("bad", ["tâche", "🎉", "-x", "a b"])
def test_a_bad_run_name_hint_suggests_a_name_that_passes(bad):
    spec = HEAD.replace("name: msg", f'name: "{bad}"') + TASK
    d = only(spec)
    suggested = _re.fullmatch(r"for example '(.*)'", d.hint)[1]
    assert check_source(spec.replace(f'"{bad}"', suggested), "spec.yaml", check_data=False).valid, suggested


def test_the_auc_hint_on_a_one_class_target_speaks_of_the_one_class():
    from pathlib import Path

    spec = Path(__file__).parent / "specs" / "invalid" / "one_class_target.yaml"
    text = spec.read_text().replace("metrics: [accuracy]", "metrics: [accuracy, auc]")
    result = check_source(text, str(spec), spec.parent)
    auc = [d for d in result.diagnostics if d.code == "PT206"]
    assert auc and "one class" in auc[0].message and "more than two" not in (auc[0].hint or "")


def test_no_test_rows_is_a_warning_that_no_test_metrics_will_be_reported():
    text = HEAD.replace("digits}", "digits, split: {train: 1.0, test: 0.0}}") + TASK
    result = check_source(text, "spec.yaml", check_data=False)
    assert result.valid
    (d,) = [d for d in result.diagnostics if d.code == "PT224"]
    assert d.severity == "warning" and "no test metrics" in d.message and "'digit'" in d.message


def test_semicolons_read_with_the_default_delimiter_say_which_delimiter(tmp_path):
    from polytask.compiler.data.sources.csv import read_csv
    from polytask.errors import DataError

    path = tmp_path / "t.csv"
    path.write_text("a;b;label\n0.1;0.2;0\n0.3;0.1;1\n")
    with _pytest.raises(DataError) as info:
        read_csv(path, ",")
    assert info.value.hint == "it looks like ';'-separated: set `delimiter: ';'`"
    path.write_text("a\tb\n1\t2\n3\t4\n")
    with _pytest.raises(DataError) as info:
        read_csv(path, ",")
    assert "'\\t'-separated" in info.value.hint
    path.write_text("a,b\n1,2\n3,x\n")  # a real bad cell: no delimiter guess
    with _pytest.raises(DataError) as info:
        read_csv(path, ",")
    assert "separated" not in (info.value.hint or "")


def test_a_csv_value_that_overflows_float32_names_the_cell(tmp_path):
    import warnings

    from polytask.compiler.data.sources.csv import read_csv
    from polytask.errors import DataError

    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3,1e39\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "overflow encountered in cast"
        with _pytest.raises(DataError) as info:
            read_csv(path, ",")
    assert info.value.where == f"{path}:3:2" and "1e+39" in info.value.message
