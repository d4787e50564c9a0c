"""The positioned YAML reader: values, positions, and refusals (no spec semantics here)."""
from __future__ import annotations

import pytest

from polytask.spec import source
from polytask.spec.checker import check_source
from polytask.spec.source import Position, read_yaml


def codes(document):
    return [d.code for d in document.diagnostics]


def test_values_and_positions_of_keys_and_values():
    doc = read_yaml("a: 1\nb:\n  c: [x, {d: 2.5}]\n  'e': true\n")
    assert doc.data == {"a": 1, "b": {"c": ["x", {"d": 2.5}], "e": True}}
    sm = doc.source_map
    assert sm.position(("b", "c", 1, "d")) == Position(3, 14)
    assert sm.position(("b", "c", 1, "d"), prefer="key") == Position(3, 11)
    assert sm.position(("b", "e"), prefer="key") == Position(4, 3)
    # a path that does not exist points at its deepest existing ancestor's key
    assert sm.position(("b", "c", 7, "zzz")) == Position(3, 3)


def test_keys_are_kept_as_written_and_timestamps_stay_text():
    doc = read_yaml("yes: 1\non: 2\n1: 3\nnull: 4\nwhen: 2024-01-01\n")
    assert doc.data == {"yes": 1, "on": 2, "1": 3, "null": 4, "when": "2024-01-01"}


def test_utf8_bom_and_non_ascii_text_are_fine():
    doc = read_yaml("\ufeffname: café\n".encode("utf-8"))
    assert doc.ok and doc.data == {"name": "café"}
    assert read_yaml(b"\xef\xbb\xbfname: x\n").data == {"name": "x"}


def test_non_utf8_reports_the_line_and_column_of_the_bad_byte():
    doc = read_yaml(b"a: 1\nname: caf\xe9\n")
    assert codes(doc) == ["PT002"]
    assert (doc.diagnostics[0].line, doc.diagnostics[0].column) == (2, 10)


def test_every_duplicate_key_is_reported_and_the_rest_still_read():
    doc = read_yaml("a: 1\nb: {x: 1, x: 2}\na: 3\nc: [{k: 1, k: 2}]\n")
    assert codes(doc) == ["PT006", "PT006", "PT006"]
    assert [d.line for d in doc.diagnostics] == [2, 3, 4]
    assert doc.data is not None


def test_duplicate_key_and_schema_errors_are_reported_together():
    result = check_source("polytask: 1\nname: x\nname: y\nseeed: 1\n")
    assert {d.code for d in result.diagnostics} >= {"PT006", "PT102"}


def test_merge_keys_explicit_keys_win_and_positions_follow_the_anchor():
    doc = read_yaml("base: &b {x: 1, y: 2}\nother: &o {y: 5, z: 6}\nd:\n  <<: [*b, *o]\n  x: 9\n")
    assert doc.data["d"] == {"x": 9, "y": 2, "z": 6}
    assert doc.source_map.position(("d", "x")).line == 5
    assert doc.source_map.position(("d", "z")).line == 2


@pytest.mark.parametrize("text", ["!!python/object:os.system {}", "!!python/name:os.system", "!custom 3",
                                  "!!binary aGVsbG8=", "!!set {a, b}"])
def test_tags_other_than_plain_types_are_refused(text):
    doc = read_yaml(f"a: {text}\n")
    assert codes(doc) == ["PT007"] and doc.data is None


def test_plain_type_tags_are_allowed():
    assert read_yaml("a: !!str 1\nb: !!float 2\nc: !!int '3'\n").data == {"a": "1", "b": 2.0, "c": 3}
    assert codes(read_yaml("a: !!int abc\n")) == ["PT005"]


def test_alias_bomb_is_refused_before_expansion(monkeypatch):
    # Count how many values the reader materialises: an expanding reader would need 9**9.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    placed = []
    original = source._Reader._place

    def counting(self, *args, **kwargs):
        placed.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(source._Reader, "_place", counting)
    doc = read_yaml("\n".join(levels) + "\n")
    assert codes(doc) == ["PT008"]
    assert len(placed) < 200  # values placed in the result: the bomb was never expanded


def test_recursive_alias_and_deep_nesting_are_refused():
    assert codes(read_yaml("a: &a [1, *a]\n")) == ["PT008"]
    assert codes(read_yaml("a: " + "[" * 500 + "]" * 500 + "\n")) == ["PT008"]
    assert codes(read_yaml("a: *nope\n")) == ["PT005"]


def test_size_limit(monkeypatch):
    monkeypatch.setattr(source, "MAX_BYTES", 100)
    assert codes(read_yaml("a: " + "x" * 200 + "\n")) == ["PT003"]


@pytest.mark.parametrize("text,code", [("", "PT004"), ("   \n\n", "PT004"), ("# only\n", "PT004"), ("~\n", "PT004"),
                                       ("- a\n", "PT009"), ("just text\n", "PT009"), ("a: 1\n---\nb: 2\n", "PT010"),
                                       ("? [a]\n: 1\n", "PT011"), ("a: [1\n", "PT005"), ("a: b\x00\n", "PT005")])
def test_unreadable_documents(text, code):
    doc = read_yaml(text)
    assert codes(doc) == [code] and doc.data is None
    assert all(d.line >= 1 and d.column >= 1 for d in doc.diagnostics)


def test_tab_indentation_gets_a_hint():
    (diag,) = read_yaml("a:\n\tb: 1\n").diagnostics
    assert diag.code == "PT005" and diag.line == 2 and "tab" in (diag.hint or "").lower()


def test_large_documents_list_the_first_problems_and_count_the_rest():
    text = "polytask: 1\nname: x\n" + "".join(f"k{i}: 1\n" for i in range(5000))
    result = check_source(text)
    codes_seen = [d.code for d in result.diagnostics]
    assert codes_seen.count("PT102") == 200 and "PT099" in codes_seen
    (more,) = [d for d in result.diagnostics if d.code == "PT099"]
    assert "4,800 more" in more.message and more.line >= 1


def test_many_duplicate_keys_are_capped():
    doc = read_yaml("a: 1\n" * 1000)
    assert len(doc.diagnostics) == source.MAX_DUPLICATE_REPORTS + 1
    assert "899 more duplicate keys" in doc.diagnostics[-1].message


def test_a_large_flat_document_is_refused_with_a_plain_message():
    doc = read_yaml("".join(f"k{i}: [1, 2, 3, 4]\n" for i in range(25000)))
    assert codes(doc) == ["PT008"] and "more than 100,000 values" in doc.diagnostics[0].message
    assert "alias" not in doc.diagnostics[0].message
