"""Diagnostics: one record per problem found in a spec, and the formats they are printed in.

A `Diagnostic` carries a stable code (`PT102`), a severity, where it is (file, line,
column; 1-based) and what to do about it (message, hint). Codes never change meaning once
released; the table `CODES` is the single source of truth (docs/spec-language.md lists it).

Formatters turn a list of diagnostics into text for people, JSON for programs, or GitHub
Actions workflow commands (`::error file=...,line=...,col=...::message`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Optional, Sequence

ERROR = "error"
WARNING = "warning"
INFO = "info"
SEVERITIES = (ERROR, WARNING, INFO)
MAX_REPORTS = 200  # per stage (schema, rules): a file with 60,000 unknown keys lists the first 200


@dataclass(frozen=True)
class Code:
    """A diagnostic code: what kind of problem, and its default severity."""

    code: str
    severity: str
    title: str


def _codes(*entries: tuple[str, str, str]) -> dict[str, Code]:
    return {code: Code(code, severity, title) for code, severity, title in entries}


CODES: Mapping[str, Code] = _codes(
    # PT0xx: the file and its YAML
    ("PT001", ERROR, "file cannot be read"),
    ("PT002", ERROR, "file is not UTF-8 text"),
    ("PT003", ERROR, "file is too large"),
    ("PT004", ERROR, "file is empty"),
    ("PT005", ERROR, "YAML syntax error"),
    ("PT006", ERROR, "duplicate key"),
    ("PT007", ERROR, "tag not allowed (e.g. !!python/object)"),
    ("PT008", ERROR, "aliases expand too much, recurse, or nest too deeply"),
    ("PT009", ERROR, "document is not a mapping"),
    ("PT010", ERROR, "more than one YAML document"),
    ("PT011", ERROR, "key is not a plain scalar"),
    ("PT020", WARNING, "an installed plugin cannot be used (failed to import, or reuses a name)"),
    ("PT099", INFO, "more problems than listed (the first 200 per stage are shown)"),
    # PT1xx: schema (types, names, ranges)
    ("PT101", ERROR, "required key missing"),
    ("PT102", ERROR, "unknown key"),
    ("PT103", ERROR, "wrong type"),
    ("PT104", ERROR, "value out of range or badly formed"),
    ("PT105", ERROR, "value not one of the allowed choices"),
    ("PT106", ERROR, "unknown variant (source, sharing, kind, ...)"),
    ("PT107", ERROR, "invalid combination of values"),
    ("PT108", ERROR, "unsupported spec format version"),
    # PT2xx: cross-field rules
    ("PT201", ERROR, "task names clash"),
    ("PT202", ERROR, "reference to an undeclared dataset"),
    ("PT203", ERROR, "nothing to learn: no tasks and no family"),
    ("PT204", ERROR, "target not provided by the dataset"),
    ("PT205", ERROR, "loss does not fit the target"),
    ("PT206", ERROR, "metric does not fit the loss"),
    ("PT207", ERROR, "pooled sharing: task spaces differ and no task descriptor"),
    ("PT208", ERROR, "shared-input sharing (hard, experts, columns): tasks have different input spaces"),
    ("PT209", ERROR, "meta sharing: family or loss missing"),
    ("PT210", ERROR, "family or tasks do not fit the sharing pattern"),
    ("PT211", ERROR, "family dataset is not a class-structured image dataset"),
    ("PT212", ERROR, "algorithm settings invalid"),
    ("PT213", ERROR, "loss weighting refers to unknown tasks or takes no parameters"),
    ("PT214", ERROR, "feature column conflicts (unknown, or also the target)"),
    ("PT215", WARNING, "setting has no effect here"),
    ("PT216", WARNING, "early stopping metric is not reported"),
    ("PT217", WARNING, "dataset declared but not used"),
    ("PT218", ERROR, "training cadence or schedule inconsistent"),
    ("PT219", ERROR, "image datasets pooled by a family differ"),
    ("PT220", ERROR, "layer cannot be used in a per-task head"),
    ("PT221", ERROR, "layer does not fit its input (shape), or has no form for this model"),
    ("PT222", ERROR, "early stopping without validation rows"),
    ("PT223", ERROR, "classification target holds one class"),
    ("PT224", WARNING, "no test rows: training reports no test metrics"),
    ("PT225", ERROR, "loss weighting needs a validation split that a task's dataset does not have"),
    ("PT226", WARNING, "training batch larger than the training split"),
    ("PT230", ERROR, "sharing pattern settings do not fit (experts, k, stages, trunk kind)"),
    # PT3xx: cheap data checks (skipped with --no-data)
    ("PT301", ERROR, "data file or folder not found"),
    ("PT302", ERROR, "column not in the csv header"),
    ("PT303", ERROR, "array not in the npz file"),
    ("PT304", ERROR, "not enough classes for the episode's ways"),
    ("PT305", ERROR, "not enough examples per class for shots + queries"),
    ("PT306", ERROR, "data file cannot be read"),
    ("PT307", ERROR, "arrays or columns have different numbers of rows"),
    ("PT308", ERROR, "input column has missing (empty) cells"),
    # PT4xx: user code (source: python)
    ("PT401", WARNING, "Python callable not imported (code execution is opt-in)"),
    ("PT402", ERROR, "Python callable cannot be imported"),
    # PT9xx: polytask itself
    ("PT900", ERROR, "internal error in polytask (please report it)"),
)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in one spec file. `line`/`column` are 1-based; None only if the file cannot be read."""

    code: str
    message: str
    file: str = "<spec>"
    line: Optional[int] = 1
    column: Optional[int] = 1
    hint: Optional[str] = None
    severity: str = ""
    path: Optional[str] = None  # dotted spec path such as training.optimizer.adam, when known

    def __post_init__(self) -> None:
        if not self.severity:
            object.__setattr__(self, "severity", CODES[self.code].severity if self.code in CODES else ERROR)

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column or 1}"

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity} {self.code}: {self.message}"
        return f"{text}\n  hint: {self.hint}" if self.hint else text


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diagnostics)


def sort_key(diagnostic: Diagnostic) -> tuple:
    return (diagnostic.file, diagnostic.line or 0, diagnostic.column or 0, diagnostic.code, diagnostic.message)


# --------------------------------------------------------------------------- formatters


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary_line(results: Sequence[tuple[str, Sequence[Diagnostic]]]) -> str:
    """`3 files checked: 2 valid, 1 invalid (2 errors, 1 warning)`."""
    files = len(results)
    invalid = sum(1 for _, diags in results if has_errors(diags))
    errors = sum(1 for _, diags in results for d in diags if d.severity == ERROR)
    warnings = sum(1 for _, diags in results for d in diags if d.severity == WARNING)
    counts = f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
    return f"{_plural(files, 'file')} checked: {files - invalid} valid, {invalid} invalid ({counts})"


def format_text(results: Sequence[tuple[str, Sequence[Diagnostic]]], summary: bool = True) -> str:
    """One line per diagnostic (`file:line:col: severity CODE: message`), hints indented, a summary."""
    lines = []
    for _, diagnostics in results:
        for d in sorted(diagnostics, key=sort_key):
            lines.append(str(d))
    if summary:
        lines.append(summary_line(results))
    return "\n".join(lines)


def format_json(results: Sequence[tuple[str, Sequence[Diagnostic]]]) -> str:
    """A stable JSON document: files with their diagnostics, plus counts."""
    files = []
    for path, diagnostics in results:
        files.append(
            {
                "path": path,
                "valid": not has_errors(diagnostics),
                "diagnostics": [d.to_dict() for d in sorted(diagnostics, key=sort_key)],
            }
        )
    all_diags = [d for _, diags in results for d in diags]
    document = {
        "format": "polytask-check/1",
        "valid": all(f["valid"] for f in files),
        "files": files,
        "summary": {
            "files": len(files),
            "valid": sum(1 for f in files if f["valid"]),
            "invalid": sum(1 for f in files if not f["valid"]),
            "errors": sum(1 for d in all_diags if d.severity == ERROR),
            "warnings": sum(1 for d in all_diags if d.severity == WARNING),
        },
    }
    return json.dumps(document, indent=2)


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(results: Sequence[tuple[str, Sequence[Diagnostic]]]) -> str:
    """GitHub Actions workflow commands: `::error file=F,line=L,col=C,title=CODE::message`."""
    commands = {ERROR: "error", WARNING: "warning", INFO: "notice"}
    lines = []
    for _, diagnostics in results:
        for d in sorted(diagnostics, key=sort_key):
            props = [f"file={_escape_property(d.file)}"]
            if d.line is not None:
                props.append(f"line={d.line}")
                props.append(f"col={d.column or 1}")
            props.append(f"title={_escape_property(d.code)}")
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            lines.append(f"::{commands.get(d.severity, 'error')} {','.join(props)}::{_escape_data(message)}")
    lines.append(summary_line(results))
    return "\n".join(lines)


FORMATTERS = {"text": format_text, "json": format_json, "github": format_github}
