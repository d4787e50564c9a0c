"""Load a spec file into a validated `Spec` (minimal version; full diagnostics in progress).

Public contract used by the compiler, runtime and CLI:
    load_spec(path, check_data=True, allow_code=False) -> LoadedSpec   (raises SpecError)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from polytask.spec.models import Spec


@dataclass
class LoadedSpec:
    spec: Spec
    path: Path
    diagnostics: list = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve_path(self, value: str) -> Path:
        """Relative paths in a spec resolve against the spec file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


class SpecError(Exception):
    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def load_spec(path, check_data: bool = True, allow_code: bool = False) -> LoadedSpec:
    path = Path(path).resolve()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        spec = Spec.model_validate(data)
    except Exception as exc:  # replaced by positioned diagnostics
        raise SpecError([str(exc)]) from exc
    return LoadedSpec(spec=spec, path=path)
