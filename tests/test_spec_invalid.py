"""Every spec in tests/specs/invalid/ is rejected with the code and line its header names.

Each file starts with `# expect: PT102 line 7` (optionally `col 12`; several `# expect:`
lines allowed). A file that cannot hold a comment (an empty file) is listed in NO_HEADER.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from polytask.spec import load_spec, SpecError
from polytask.spec.checker import check_file

INVALID = Path(__file__).parent / "specs" / "invalid"
NO_HEADER = {"empty.yaml": [("PT004", 1, None)]}
EXPECT = re.compile(rb"#\s*expect:\s*(PT\d{3})\s+line\s+(\d+)(?:\s+col\s+(\d+))?")


def expectations(path: Path) -> list[tuple[str, int, int | None]]:
    if path.name in NO_HEADER:
        return NO_HEADER[path.name]
    found = [(m[1].decode(), int(m[2]), int(m[3]) if m[3] else None) for m in EXPECT.finditer(path.read_bytes())]
    assert found, f"{path.name} has no '# expect: PTxxx line N' header"
    return found


SPECS = sorted(INVALID.glob("*.yaml"))


def test_corpus_is_large_and_covers_every_stage():
    codes = {code for spec in SPECS for code, _, _ in expectations(spec)}
    assert len(SPECS) >= 60
    for prefix in ("PT0", "PT1", "PT2", "PT3"):
        assert sum(c.startswith(prefix) for c in codes) >= 5, prefix


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_invalid_spec_reports_expected_code_and_line(spec: Path):
    result = check_file(spec)
    assert not result.valid
    got = [(d.code, d.line, d.column) for d in result.diagnostics]
    for code, line, column in expectations(spec):
        matches = [g for g in got if g[0] == code and g[1] == line and (column is None or g[2] == column)]
        assert matches, f"expected {code} at line {line}" + (f" col {column}" if column else "") + \
            f"; got:\n" + "\n".join(str(d) for d in result.diagnostics)
    assert all(d.code != "PT900" for d in result.diagnostics), result.diagnostics
    for d in result.diagnostics:
        assert d.line is not None and d.line >= 1 and d.column >= 1
        assert d.file == str(spec)


@pytest.mark.parametrize("spec", SPECS[:5], ids=[s.name for s in SPECS[:5]])
def test_load_spec_raises_spec_error_with_the_same_diagnostics(spec: Path):
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert info.value.diagnostics == check_file(spec).diagnostics
    assert expectations(spec)[0][0] in str(info.value)
