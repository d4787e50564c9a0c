"""Load a spec file into a validated `Spec`, or raise `SpecError` with every problem in it.

Public contract used by the compiler, runtime and CLI:

    loaded = load_spec(path, check_data=True, allow_code=False)   # raises SpecError
    loaded.spec            # the validated polytask.spec.models.Spec
    loaded.diagnostics     # warnings (errors raise)
    loaded.resolve_path(p) # relative paths resolve against the spec file's folder
    loaded.facts           # what the data checks learned per dataset (polytask.spec.facts.Facts)

`check_data=False` skips reading data files (headers, listings); `allow_code=True` allows
importing `module:attr` references (it stays recorded on the result, so later stages can
refuse to run user code the caller did not allow).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from polytask.errors import PolytaskError
from polytask.spec.checker import CheckResult, check_file
from polytask.spec.diagnostics import Diagnostic, format_text
from polytask.spec.models import Spec


@dataclass
class LoadedSpec:
    """A validated spec plus where it came from (for paths and messages)."""

    spec: Spec
    path: Path
    diagnostics: list = field(default_factory=list)
    allow_code: bool = False
    facts: dict = field(default_factory=dict)
    source_map: Optional[object] = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve_path(self, value: str) -> Path:
        """Relative paths in a spec resolve against the spec file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def where(self, *path) -> str:
        """`file:line:col` of a spec path such as ("tasks", "digit", "target"), for messages."""
        if self.source_map is None:
            return str(self.path)
        position = self.source_map.position(path)
        return f"{self.path}:{position.line}:{position.column}"


class SpecError(PolytaskError):
    """A spec with errors: `diagnostics` holds every problem (errors and warnings)."""

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if not isinstance(d, Diagnostic) or d.is_error]
        count = len(errors)
        files = sorted({d.file for d in self.diagnostics if isinstance(d, Diagnostic)})
        title = f"{files[0] if len(files) == 1 else 'the spec'} has {count} error{'s' if count != 1 else ''}:"
        super().__init__("\n".join([title] + [str(d) for d in self.diagnostics]),
                         hint="run `polytask check` on it for the same list")

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict:
        """The first error's code and position, plus every diagnostic (`polytask check --format json`'s)."""
        first = next((d for d in self.diagnostics if isinstance(d, Diagnostic) and d.is_error), None)
        out = super().to_dict()
        if first is not None:
            errors = sum(1 for d in self.diagnostics if isinstance(d, Diagnostic) and d.is_error)
            more = f" (and {errors - 1} more error{'s' if errors > 2 else ''}: see diagnostics)" if errors > 1 else ""
            out.update(code=first.code, message=first.message + more, hint=first.hint, file=first.file,
                       line=first.line, column=first.column)
        out["diagnostics"] = [d.to_dict() for d in self.diagnostics if isinstance(d, Diagnostic)]
        return out


def load_spec(path, check_data: bool = True, allow_code: bool = False) -> LoadedSpec:
    """Read, validate and check a spec file. Raises SpecError listing every problem."""
    result: CheckResult = check_file(path, check_data=check_data, allow_code=allow_code)
    if not result.valid:
        raise SpecError(result.diagnostics)
    return LoadedSpec(spec=result.spec, path=Path(path).resolve(), diagnostics=result.diagnostics,
                      allow_code=allow_code, facts=result.facts, source_map=result.source_map)


__all__ = ["LoadedSpec", "SpecError", "load_spec", "format_text"]
