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
