""""Did you mean ...?" for misspelled keys, names and choices."""
from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Iterable, Optional


def closest(word: object, choices: Iterable[object], cutoff: float = 0.6) -> Optional[str]:
    """The choice nearest to `word` (case-insensitive first, then by similarity), or None."""
    if not isinstance(word, str):
        word = str(word)
    options = [str(c) for c in choices]
    if not word or not options:
        return None
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    normalized = {o.lower().replace("-", "_").replace(" ", "_"): o for o in options}
    key = word.lower().replace("-", "_").replace(" ", "_")
    if key in normalized and normalized[key] != word:
        return normalized[key]
    match = difflib.get_close_matches(word, [o for o in options if o != word], n=1, cutoff=cutoff)
    if match:
        return match[0]
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match and lowered[match[0]] != word else None


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """` (did you mean 'x'?)` or the empty string."""
    match = closest(word, choices)
    return f" (did you mean '{match}'?)" if match else ""


def one_of(choices: Iterable[object], limit: int = 12) -> str:
    """`a, b or c` for hints, shortened when there are many."""
    items = [str(c) for c in choices]
    if len(items) > limit:
        items = items[:limit] + ["..."]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def as_text(value, *, yes_no: bool = False, thousands: bool = False) -> str:
    """A setting as people read it: YAML-like (`true`, `null`, `[a, b]`, `{k: v}`) by default;
    `yes_no` and `thousands` (1,761) for `polytask plan`'s settings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return ("yes" if value else "no") if yes_no else ("true" if value else "false")
    if isinstance(value, int):
        return f"{value:,}" if thousands else str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(as_text(v, yes_no=yes_no, thousands=thousands) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {as_text(v, yes_no=yes_no, thousands=thousands)}" for k, v in value.items()) + "}"
    return str(value)


def ascii_name(value: object, allowed: str = "A-Za-z0-9_", fill: str = "_", fallback: str = "name",
               max_length: int = 64) -> str:
    """A name made of `allowed` characters that looks like `value`: accents dropped ('tâche' ->
    'tache'), other characters replaced by `fill`, and `fallback` when nothing is left
    (an emoji); it starts with a letter, so it passes identifier and run-name patterns alike."""
    folded = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    name = re.sub(f"[^{allowed}]+", fill, folded).strip(fill + "_.-")
    if not name:
        name = fallback
    if not name[0].isalpha():
        name = f"{fallback}{fill}{name}"
    return name[:max_length]
