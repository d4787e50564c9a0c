"""Safe YAML reading that remembers where every value came from.

`read_yaml(data, filename)` turns the bytes of a spec file into plain Python values
(dicts, lists, str, int, float, bool, None) plus a `SourceMap` from spec paths such as
`("training", "optimizer", "adam", "learning_rate")` to 1-based line and column, so a
problem found later (by pydantic or a cross-field rule) can be reported as file:line:col.

It walks PyYAML's event stream itself (libyaml when available) instead of using a
constructor, which lets it, in one pass and without recursion:
- refuse duplicate keys (PyYAML silently keeps the last one),
- refuse every tag except the plain YAML types (`!!python/object` and friends never run),
- count the size the document would have once aliases are expanded, and stop as soon as
  it passes a limit (an alias bomb is refused in microseconds, before any expansion),
- bound nesting depth and file size, and refuse empty files, non-mapping documents,
  several documents in one file and bytes that are not UTF-8.
Mapping keys are always kept as the text written (`yes:` stays the key "yes").
Merge keys (`<<: *defaults`) work as in YAML 1.1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Optional

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from polytask.spec.diagnostics import Diagnostic

MAX_BYTES = 1_000_000
MAX_NODES = 100_000
MAX_DEPTH = 100
MAX_DUPLICATE_REPORTS = 100

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}
_COLLECTION_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_RESOLVED: dict = {}  # (text, implicit) -> tag: implicit resolution is a pure function
_PLAIN_VALUES: dict = {}  # (text, implicit) -> value of an untagged scalar: also pure, and immutable


class Position(NamedTuple):
    """A 1-based line and column in the spec file."""

    line: int
    column: int


Path = tuple  # a spec path: str keys and int list indices


@dataclass
class SourceMap:
    """Where each key and value of a spec came from."""

    keys: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    root: Position = Position(1, 1)

    def position(self, path: Iterable, prefer: str = "value") -> Position:
        """Position of the node at `path`, or of its deepest existing ancestor.

        `prefer="key"` points at the key of a mapping entry (unknown or missing keys),
        `prefer="value"` at the value itself (wrong types, bad values).
        """
        path = tuple(path)
        while path:
            first, second = (self.keys, self.values) if prefer == "key" else (self.values, self.keys)
            if path in first:
                return first[path]
            if path in second:
                return second[path]
            path = path[:-1]
            prefer = "key"  # an ancestor is best shown by its key: "training: ..."
        return self.root

    def __contains__(self, path) -> bool:
        path = tuple(path)
        return path in self.values or path in self.keys


@dataclass
class Document:
    """A parsed spec: the plain data, where each part came from, and YAML-level problems."""

    data: Any
    source_map: SourceMap
    diagnostics: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.data is not None and not any(d.is_error for d in self.diagnostics)


class _Fatal(Exception):
    def __init__(self, code: str, message: str, position: Position, hint: Optional[str] = None):
        super().__init__(message)
        self.code, self.message, self.position, self.hint = code, message, position, hint


_new_tuple = tuple.__new__  # Position(...) goes through a Python-level __new__; the reader makes one per event


def _pos(mark) -> Position:
    if mark is None:
        return Position(1, 1)
    return _new_tuple(Position, (mark.line + 1, mark.column + 1))


def _position_of_offset(text: str, offset: int) -> Position:
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Position(line, column)


def _decode(data: bytes, filename: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _Fatal(
            "PT002",
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            Position(line, column),
            hint="save the file as UTF-8 (spec files are UTF-8 text)",
        ) from None


class _Frame:
    __slots__ = ("kind", "path", "start", "anchor", "value", "entry_start", "key", "key_pos",
                 "explicit", "merges", "index", "size")

    def __init__(self, kind, path, start, anchor, entry_start):
        self.kind = kind  # "map" | "seq" | "key" (a complex key being skipped)
        self.path = path
        self.start = start
        self.anchor = anchor
        self.entry_start = entry_start
        self.value = {} if kind == "map" else []
        self.key = None  # pending key of a mapping
        self.key_pos = None
        self.explicit = {}  # key -> line of its first occurrence
        self.merges = []  # (position, value, entry range) of `<<` values, applied at the end
        self.index = 0
        self.size = 1


class _Reader:
    """One pass over the event stream: builds values and positions, enforces the limits."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename
        self.entries: list[tuple[Path, str, Position]] = []  # (path, "k"|"v", position)
        self.anchors: dict[str, tuple] = {}  # name -> (value, size, path, entry range, is_scalar)
        self.open_anchors: set[str] = set()
        self.total = 0
        self.diagnostics: list[Diagnostic] = []
        self.root: Any = None
        self.root_pos = Position(1, 1)
        self.documents = 0
        self.empty = True
        self.duplicates = 0

    # -- helpers
    def _diag(self, code, message, position, hint=None, path=None):
        self.diagnostics.append(
            Diagnostic(code, message, file=self.filename, line=position.line, column=position.column,
                       hint=hint, path=path)
        )

    def _count(self, n: int, position: Position) -> None:
        self.total += n
        if self.total > MAX_NODES:
            if self.anchors:
                raise _Fatal(
                    "PT008",
                    f"the document would expand to more than {MAX_NODES:,} values once aliases are expanded",
                    position,
                    hint="aliases (*name) copy what their anchor (&name) holds; this looks like an alias bomb",
                )
            raise _Fatal("PT008", f"the document holds more than {MAX_NODES:,} values", position,
                         hint="a spec declares data, it does not contain it; point to data files instead")

    def _scalar(self, event) -> Any:
        if event.tag is None:
            cache_key = (event.value, event.implicit)
            try:
                return _PLAIN_VALUES[cache_key]
            except KeyError:
                value = self._construct(event)
                if len(_PLAIN_VALUES) < 4096:
                    _PLAIN_VALUES[cache_key] = value
                return value
        return self._construct(event)

    def _construct(self, event) -> Any:
        tag = event.tag
        position = _pos(event.start_mark)
        if tag is None or tag == "!":
            if tag == "!" or not event.implicit[0]:
                return event.value  # quoted or non-specific: a string
            cache_key = (event.value, event.implicit)
            tag = _RESOLVED.get(cache_key)
            if tag is None:
                tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
                if len(_RESOLVED) < 4096:
                    _RESOLVED[cache_key] = tag
            if tag not in _PLAIN_TAGS and tag != _MERGE:
                return event.value  # timestamps, !!binary-looking text: keep the text
            if tag == _MERGE:
                return event.value
        elif tag not in _PLAIN_TAGS:
            raise self._bad_tag(tag, position)
        if tag == _STR:
            return event.value
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        try:
            return _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except Exception:
            short = tag.rsplit(":", 1)[-1]
            raise _Fatal("PT005", f"'{event.value}' is not a valid !!{short}", position) from None

    def _bad_tag(self, tag: str, position: Position) -> _Fatal:
        shown = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag
        return _Fatal(
            "PT007",
            f"tag '{shown}' is not allowed in a spec",
            position,
            hint="specs hold plain mappings, lists, strings, numbers and booleans; "
            "Python objects are never constructed from YAML (use `source: python` with --allow-code)",
        )

    # -- the event loop
    def read(self) -> Any:
        loader = _Loader(self.text)
        try:
            return self._read_events(loader.get_event)
        finally:
            loader.dispose()

    def _read_events(self, next_event) -> Any:
        stack: list[_Frame] = []
        skip = (yaml.StreamStartEvent, yaml.DocumentEndEvent)
        ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        while True:
            event = next_event()
            etype = type(event)
            if etype is yaml.StreamEndEvent or event is None:
                break
            if etype is yaml.ScalarEvent and stack and self._plain_scalar(stack, event):
                continue
            if etype is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise _Fatal(
                        "PT010",
                        "a spec file holds one YAML document; found a second one",
                        _pos(event.start_mark),
                        hint="remove the `---` line and what follows, or move it to its own file",
                    )
                continue
            if etype in skip:
                continue
            if etype in ends:
                frame = stack.pop()
                value = self._finish(frame)
                self._place(stack, value, frame.size, frame.start, frame.path, frame.anchor, frame.entry_start,
                            is_collection=True, event_end=True)
                continue
            position = _pos(event.start_mark)
            # What the next node is: a key, or a value at some path.
            parent = stack[-1] if stack else None
            if parent is not None and parent.kind == "map" and parent.key is None:
                self._key(parent, event, position, stack)
                continue
            path = self._child_path(parent)
            if len(stack) >= MAX_DEPTH:
                raise _Fatal("PT008", f"the document nests deeper than {MAX_DEPTH} levels", position)
            if isinstance(event, yaml.AliasEvent):
                self._alias(stack, event.anchor, path, position)
            elif isinstance(event, yaml.ScalarEvent):
                self._count(1, position)
                value = self._scalar(event)
                if parent is None and value in (None, "") and event.implicit[0] and event.value == "":
                    self.root_pos = position
                    self.root = None
                    continue
                start = len(self.entries)
                self.entries.append((path, "v", position))
                self._place(stack, value, 1, position, path, event.anchor, start, is_collection=False)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
                if event.tag not in (None, "!") and event.tag not in _COLLECTION_TAGS:
                    raise self._bad_tag(event.tag, position)
                self._count(1, position)
                if event.anchor:
                    self.open_anchors.add(event.anchor)
                start = len(self.entries)
                self.entries.append((path, "v", position))
                stack.append(_Frame(kind, path, position, event.anchor, start))
        if self.documents == 0 or (self.root is None and self.empty):
            raise _Fatal("PT004", "the file has no content", Position(1, 1),
                         hint="run `polytask init` for a commented starter spec")
        return self.root

    def _plain_scalar(self, stack: list, event) -> bool:
        """The common cases, kept short because most events are these: a plain key, or an
        untagged scalar value without an anchor. False leaves the event to the general path."""
        parent = stack[-1]
        mark = event.start_mark
        position = _new_tuple(Position, (mark.line + 1, mark.column + 1))
        if parent.kind == "map":
            key = parent.key
            if key is None:
                self._key(parent, event, position, stack)
                return True
            if key == "<<":
                return False
            path = parent.path + (key,)
        else:
            path = parent.path + (parent.index,)
        if event.tag is not None or event.anchor is not None or len(stack) >= MAX_DEPTH:
            return False
        self.total += 1
        if self.total > MAX_NODES:
            self._count(0, position)
        value = self._scalar(event)
        self.entries.append((path, "v", position))
        parent.size += 1
        if parent.kind == "map":
            parent.value[parent.key] = value
            parent.key = None
        else:
            parent.value.append(value)
            parent.index += 1
        return True

    def _child_path(self, parent: Optional[_Frame]) -> Path:
        if parent is None:
            return ()
        if parent.kind == "map":
            return parent.path + (parent.key,)
        return parent.path + (parent.index,)

    def _key(self, parent: _Frame, event, position: Position, stack) -> None:
        if isinstance(event, yaml.ScalarEvent):
            if event.tag not in (None, "!") and event.tag not in _PLAIN_TAGS:
                raise self._bad_tag(event.tag, position)
            key = event.value
            is_merge = event.tag is None and event.implicit[0] and key == "<<"
        elif isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors and self.anchors[event.anchor][4]:
            key, is_merge = str(self.anchors[event.anchor][0]), False
        else:
            raise _Fatal(
                "PT011",
                "a key must be a plain name, not a list or mapping",
                position,
                hint="write `name: value`; complex keys (`? [a, b]`) are not part of the spec language",
            )
        if is_merge:
            parent.key = "<<"
        else:
            if key in parent.explicit:
                self.duplicates += 1
                if self.duplicates <= MAX_DUPLICATE_REPORTS:
                    self._diag(
                        "PT006",
                        f"duplicate key '{key}'" + (f" in {_dotted(parent.path)}" if parent.path else ""),
                        position,
                        hint=f"'{key}' is already set at line {parent.explicit[key]}; "
                        "YAML would silently keep only the last one, so remove one of them",
                        path=_dotted(parent.path + (key,)),
                    )
            else:
                parent.explicit[key] = position.line
            parent.key = key
        parent.key_pos = position
        self.entries.append((parent.path + (parent.key,), "k", position))

    def _alias(self, stack, anchor: str, path: Path, position: Position) -> None:
        if anchor in self.open_anchors and anchor not in self.anchors:
            raise _Fatal("PT008", f"alias *{anchor} refers to the node that contains it (a cycle)", position)
        if anchor not in self.anchors:
            raise _Fatal("PT005", f"alias *{anchor} has no anchor &{anchor} before it", position,
                         hint="define `&name` on a value before using `*name`")
        value, size, def_path, (lo, hi), _ = self.anchors[anchor]
        self._count(size, position)
        start = len(self.entries)
        cut = len(def_path)
        for entry_path, kind, entry_pos in self.entries[lo:hi]:
            if entry_path == def_path and kind == "v":
                self.entries.append((path, "v", position))
            else:
                self.entries.append((path + entry_path[cut:], kind, entry_pos))
        self._place(stack, value, size, position, path, None, start, is_collection=False)

    def _place(self, stack, value, size, position, path, anchor, entry_start, is_collection, event_end=False):
        if anchor:
            self.anchors[anchor] = (value, size, path, (entry_start, len(self.entries)), not is_collection
                                    and not isinstance(value, (dict, list)))
            self.open_anchors.discard(anchor)
        if not stack:
            self.root = value
            self.root_pos = position
            self.empty = False
            return
        parent = stack[-1]
        parent.size += size
        if parent.kind == "seq":
            parent.value.append(value)
            parent.index += 1
            return
        key, parent.key = parent.key, None
        if key == "<<" and "<<" not in parent.explicit:
            parent.merges.append((position, value, (entry_start, len(self.entries)), path))
        else:
            parent.value[key] = value

    def _finish(self, frame: _Frame):
        if frame.kind != "map" or not frame.merges:
            return frame.value
        merged: dict = {}
        # Later merge sources lose to earlier ones; explicit keys win over all of them.
        for position, value, (lo, hi), merge_path in reversed(frame.merges):
            sources = value if isinstance(value, list) else [value]
            for source in reversed(sources):
                if not isinstance(source, dict):
                    raise _Fatal("PT005", "a merge key `<<` takes a mapping or a list of mappings", position)
                merged.update(source)
            cut = len(merge_path)
            for entry_path, kind, entry_pos in self.entries[lo:hi]:
                rest = entry_path[cut:]
                if rest and isinstance(value, list):
                    rest = rest[1:]
                if rest and rest[0] not in frame.explicit:
                    self.entries.append((frame.path + rest, kind, entry_pos))
        merged.update(frame.value)
        return merged


def _dotted(path: Iterable) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


dotted = _dotted


def read_yaml(data: bytes | str, filename: str = "<spec>") -> Document:
    """Parse one spec document. Never raises for bad input: problems come back as diagnostics."""
    source_map = SourceMap()

    def fail(code, message, position, hint=None) -> Document:
        diag = Diagnostic(code, message, file=filename, line=position.line, column=position.column, hint=hint)
        return Document(data=None, source_map=source_map, diagnostics=[diag])

    if len(data) > MAX_BYTES:
        return fail("PT003", f"the file is {len(data):,} bytes; specs are limited to {MAX_BYTES:,}",
                    Position(1, 1), hint="a spec declares data, it does not contain it; point to data files instead")
    try:
        text = _decode(data, filename) if isinstance(data, bytes) else data
    except _Fatal as exc:
        return fail(exc.code, exc.message, exc.position, exc.hint)
    if not text.strip():
        return fail("PT004", "the file is empty", Position(1, 1),
                    hint="run `polytask init` for a commented starter spec")
    reader = _Reader(text, filename)
    try:
        root = reader.read()
    except _Fatal as exc:
        return Document(None, source_map, reader.diagnostics + [
            Diagnostic(exc.code, exc.message, file=filename, line=exc.position.line,
                       column=exc.position.column, hint=exc.hint)])
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        message = f"YAML syntax error: {problem}"
        if exc.context:
            message += f" ({exc.context}" + (f" at line {exc.context_mark.line + 1}" if exc.context_mark else "") + ")"
        hint = None
        if mark is not None:
            lines = text.splitlines()
            line_text = lines[mark.line] if 0 <= mark.line < len(lines) else ""
            if "\t" in line_text[: mark.column + 1] or "tab" in problem.lower():
                hint = "YAML indentation uses spaces, not tabs"
        return fail("PT005", message, _pos(mark), hint)
    except yaml.reader.ReaderError as exc:
        position = _position_of_offset(text, int(getattr(exc, "position", 0) or 0))
        return fail("PT005", f"YAML cannot contain this character: {exc.reason} "
                    f"(#x{int(exc.character) if isinstance(exc.character, int) else 0:04x})", position)
    except yaml.YAMLError as exc:
        return fail("PT005", f"YAML error: {exc}", Position(1, 1))
    if reader.duplicates > MAX_DUPLICATE_REPORTS:
        reader.diagnostics.append(Diagnostic(
            "PT006", f"{reader.duplicates - MAX_DUPLICATE_REPORTS:,} more duplicate keys not listed", file=filename,
            line=reader.diagnostics[-1].line, column=reader.diagnostics[-1].column))
    for path, kind, position in reader.entries:
        (source_map.keys if kind == "k" else source_map.values)[path] = position
    source_map.root = reader.root_pos
    if root is None and not reader.diagnostics:
        return fail("PT004", "the file has no content (only comments or `null`)", Position(1, 1),
                    hint="run `polytask init` for a commented starter spec")
    if not isinstance(root, dict):
        kind = "a list" if isinstance(root, list) else f"a single {type(root).__name__} value"
        return Document(None, source_map, reader.diagnostics + [
            Diagnostic("PT009", f"the document is {kind}; a spec is a mapping of keys such as `polytask:` "
                       "and `name:`", file=filename, line=reader.root_pos.line, column=reader.root_pos.column,
                       hint="start from `polytask init`")])
    return Document(root, source_map, reader.diagnostics)
