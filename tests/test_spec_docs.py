"""docs/spec-language.md and docs/data-sources.md stay true: generated tables up to date,
every code documented, every source and generator kind listed."""
from __future__ import annotations

from pathlib import Path

from polytask.spec.diagnostics import CODES
from polytask.spec.reference import update
from polytask.spec.registry import GENERATORS, SOURCES

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "spec-language.md"
DATA_DOC = DOCS / "data-sources.md"
README = DOCS.parent / "README.md"


def test_generated_tables_are_up_to_date():
    for doc in (DOC, DATA_DOC, README):
        text = doc.read_text()
        assert update(text) == text, f"{doc.name} is stale; run: python -m polytask.spec.reference --all"


def test_data_sources_doc_lists_every_source_and_generator_kind():
    text = DATA_DOC.read_text()
    assert "<!-- generated:sources -->" in text and "<!-- generated:generators -->" in text
    for name in SOURCES.names():
        assert f"| `{name}` |" in text and f"## {name}" in text, name
    for kind in GENERATORS.names():
        assert f"| `{kind}` |" in text and f"**{kind}**" in text, kind


def test_readme_lists_every_registered_name():
    from polytask.spec.registry import REGISTRIES

    text = README.read_text()
    block = text[text.index("<!-- generated:names -->"):text.index("<!-- end -->", text.index("<!-- generated:names -->"))]
    for registry in REGISTRIES.values():
        for name in registry.names():
            assert f"`{name}`" in block, (registry.kind, name)


def test_a_stale_data_sources_table_is_caught():
    text = DATA_DOC.read_text()
    stale = text.replace("| `csv` |", "| `csv_old` |", 1)
    assert stale != text and update(stale) == text


def test_every_code_is_in_the_table_and_every_source_is_described():
    text = DOC.read_text()
    for code in CODES:
        assert f"| {code} |" in text
    for source in SOURCES.names():
        assert f"#### source: {source}" in text and f"| `{source}` |" in text
    assert "# yaml-language-server: $schema=" in text


def test_committed_json_schema_is_up_to_date():
    from polytask.spec.schema import json_schema_text

    committed = Path(__file__).resolve().parent.parent / "spec" / "polytask.schema.json"
    assert committed.read_text() == json_schema_text(), "run: polytask schema -o spec/polytask.schema.json"
