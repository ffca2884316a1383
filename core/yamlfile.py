"""Safe YAML loading that remembers where each value came from, and schema checks that report every problem.

Every data file (playbooks, rules and rule tests, infrastructure, decision policy, replies, reply words and
examples) is read here and nowhere else, and a file is checked while it is parsed, event by event, before any
value is built from it, so that no file costs more than these bounds, whatever it holds:

- at most `Limits.max_bytes` (8 MiB), `max_nodes` (500,000 values: keys, items and scalars) and `max_depth` (32
  levels of nested lists and mappings): room for about 9,000 learned rules in one file, and at most about 100 MB
  of memory while a file is read;
- no anchors (`&name`), aliases (`*name`) or merge keys (`<<`): an alias re-uses a value, so a 1 KB file of
  nested aliases ("billion laughs") would expand to gigabytes; refused at the first one, it costs nothing;
- no key twice in one mapping (YAML would keep the last one silently); the problem names both lines;
- plain values only: text, whole numbers, numbers, true/false, null, lists and mappings (and dates, as YAML
  reads them); any other tag (`!!set`, `!!binary`, `!!python/...`, `!custom`) is refused;
- numbers are finite and short: `.inf`, `.nan`, `1.0e+999` and number literals over `MAX_NUMBER_CHARS`
  characters are refused.

A problem quotes at most `SHOWN_CHARS` characters of what it refuses, and a file reports at most `MAX_PROBLEMS`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import jsonschema
import yaml

from core.errors import ConfigurationError, Problem

PathParts = Sequence[str | int]
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 10 times faster for big files
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_PROBLEMS = 20  # per file: enough to fix a batch of mistakes, never a wall of text
MAX_REPORTED = 100  # per load of many files (`capped`)
SHOWN_CHARS = 60  # of a refused value, key or tag quoted in a problem
FIELD_CHARS = 120  # of a field's path in a problem
MESSAGE_CHARS = 300  # of a problem's message
MAX_NUMBER_CHARS = 100  # a longer number literal is a mistake (and `1:2:3:...` would take quadratic time to read)
_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + name for name in ("str", "int", "float", "bool", "null", "timestamp"))
_NUMBER_TAGS = frozenset((_TAG + "int", _TAG + "float"))
_COLLECTION_TAGS: dict[type, str] = {yaml.SequenceStartEvent: _TAG + "seq", yaml.MappingStartEvent: _TAG + "map"}
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()

# Where each value of a document was: a scalar's line, or a collection's (line, children by key or index).
Lines: TypeAlias = int | tuple[int, "dict[Any, Lines] | list[Lines]"]


@dataclass(frozen=True)
class Limits:
    """What one data file may cost to read; a file over any of them is refused before it is read further."""

    max_bytes: int = 8 * 1024 * 1024
    max_nodes: int = 500_000
    max_depth: int = 32


LIMITS = Limits()


def load_mapping(path: Path, what: str, shape: str, limits: Limits = LIMITS) -> dict[Any, Any]:
    """A data file that must hold one mapping (`what` names it in errors, `shape` says what it maps). Raises
    ConfigurationError naming the file (and line) when it cannot be read or parsed, or holds something else."""
    documents, problems = load_located(path, limits=limits)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems)
        raise ConfigurationError(f"cannot read {what} {path}:\n{shown}")
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of {shape}")
    return documents[0].data


def dump_yaml(data: Any) -> str:
    """Plain safe YAML in the order given (what we write is read back by people and by `load_documents`)."""
    return yaml.dump(data, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the line of each value in it."""

    file: str
    data: Any
    _lines: Lines | None = field(default=None, repr=False, compare=False)

    def line_of(self, path: PathParts) -> int | None:
        """The 1-based line of the value at `path`, or of its nearest ancestor that exists."""
        node = self._lines
        line = _line(node)
        for part in path:
            node = _child(node, part)
            if node is None:
                break
            line = _line(node)
        return line

    def problem(self, path: PathParts, message: str) -> Problem:
        """A problem at `path`; the field and the message are cut short, so no value in the file fills a screen."""
        return Problem(self.file, self.line_of(path), shorten_text(field_name(path), FIELD_CHARS),
                       shorten_text(message, MESSAGE_CHARS))


def _line(node: Lines | None) -> int | None:
    return node if isinstance(node, int) or node is None else node[0]


def _child(node: Lines | None, part: str | int) -> Lines | None:
    children = node[1] if isinstance(node, tuple) else None
    if isinstance(children, dict):
        try:
            return children.get(part)
        except TypeError:  # an unhashable part names nothing
            return None
    if isinstance(children, list) and isinstance(part, int) and 0 <= part < len(children):
        return children[part]
    return None


def field_name(path: PathParts) -> str:
    """Render a path as `remedies[0].action`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def shorten(value: Any, limit: int = SHOWN_CHARS) -> str:
    """`value` as a problem quotes it: its repr, cut to `limit` characters."""
    return shorten_text(repr(value), limit)


def capped(problems: list[Problem], limit: int = MAX_REPORTED) -> list[Problem]:
    """At most `limit` problems, then one that says how many more there were: what a loader raises and a log shows
    stays readable however broken the files are."""
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], Problem(problems[limit].file, None, "", f"... and {len(problems) - limit:,} more "
                                       "problems; fix these first")]


def load_located(path: Path, display: str | None = None,
                 limits: Limits = LIMITS) -> tuple[list[Located], list[Problem]]:
    """Load every document of a YAML file under the rules above; what breaks them, or YAML syntax, becomes
    problems (and no documents)."""
    name = display or str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(limits.max_bytes + 1)
    except OSError as error:
        return [], [Problem(name, None, "", f"cannot be read: {error.strerror or error}")]
    if len(raw) > limits.max_bytes:
        return [], [Problem(name, None, "", f"larger than {limits.max_bytes:,} bytes, the limit for a data file; "
                            "split it into several files")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return [], [Problem(name, None, "", f"not UTF-8 text ({error.reason} at byte {error.start})")]
    return parse_located(text, name, limits)


def parse_located(text: str, name: str, limits: Limits = LIMITS) -> tuple[list[Located], list[Problem]]:
    """`load_located` for text already read (`name` says where it came from)."""
    if len(text) > limits.max_bytes:
        return [], [Problem(name, None, "", f"larger than {limits.max_bytes:,} characters, the limit for a data "
                            "file; split it into several files")]
    reader = _Reader(name, limits)
    try:
        for event in yaml.parse(text, Loader=SAFE_LOADER):
            if not reader.take(event):
                break
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        reader.problems.append(Problem(name, mark.line + 1 if mark else None, "",
                                       f"YAML syntax: {shorten_text(error.problem or error.context or 'invalid')}"))
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1 if isinstance(error.position, int) else None
        code = ord(error.character) if isinstance(error.character, str) else error.character
        what = f"character #x{code:04x}" if isinstance(code, int) else "a character"
        reader.problems.append(Problem(name, line, "", f"YAML: {what} is not allowed in a YAML file"))
    except yaml.YAMLError as error:
        reader.problems.append(Problem(name, None, "", f"YAML: {shorten_text(str(error).splitlines()[0])}"))
    if reader.problems:
        return [], reader.problems[:MAX_PROBLEMS]
    return reader.documents, []


def shorten_text(text: str, limit: int = 200) -> str:
    """A message from elsewhere (a parser, a converter), on one line and cut to `limit` characters."""
    text = " ".join(str(text)[:limit * 4].split())
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def _event_line(event: yaml.Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 0


class _Frame:
    """A list or mapping being read: its value so far, the lines of its children, and the key waiting for its
    value (in a mapping)."""

    __slots__ = ("key", "key_line", "key_lines", "line", "lines", "mapping", "value")

    def __init__(self, mapping: bool, line: int) -> None:
        self.mapping = mapping
        self.line = line
        self.value: dict[Any, Any] | list[Any] = {} if mapping else []
        self.lines: dict[Any, Lines] | list[Lines] = {} if mapping else []
        self.key: Any = None
        self.key_line = 0  # 0: the next scalar in this mapping is a key
        self.key_lines: dict[Any, int] = {}


class _Reader:
    """Builds the documents from the parser's events, refusing what breaks the rules before building it. `take`
    returns False when the file is refused for good (the rest is not read)."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name = name
        self.limits = limits
        self.documents: list[Located] = []
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.nodes = 0
        self.root: tuple[Any, Lines | None] = (None, None)

    def take(self, event: yaml.Event) -> bool:
        if isinstance(event, yaml.ScalarEvent | yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if not self._node(event):
                return False
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = self.stack.pop()
            self._attach(frame.value, (frame.line, frame.lines), frame.line)
        elif isinstance(event, yaml.AliasEvent):
            anchor = shorten_text(event.anchor or "", 30)
            return self._refuse(event, f"aliases (*{anchor}) are not allowed in data files; write the value out")
        elif isinstance(event, yaml.DocumentStartEvent):
            self.root = (None, None)
        elif isinstance(event, yaml.DocumentEndEvent) and not self.problems:
            self.documents.append(Located(self.name, *self.root))
        return len(self.problems) < MAX_PROBLEMS

    def _node(self, event: yaml.ScalarEvent | yaml.CollectionStartEvent) -> bool:
        if event.anchor is not None:
            return self._refuse(event, f"anchors (&{shorten_text(event.anchor, 30)}) are not allowed in data files; "
                                "write the value out in full wherever it is needed")
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            return self._refuse(event, f"more than {self.limits.max_nodes:,} values, the limit for a data file; "
                                "split it into several files")
        line = _event_line(event)
        if isinstance(event, yaml.ScalarEvent):
            self._attach(self._scalar(event), line, line)
            return True
        parent = self.stack[-1] if self.stack else None
        if parent is not None and parent.mapping and not parent.key_line:
            return self._refuse(event, "a key must be a plain value, not a list or a mapping")
        if len(self.stack) >= self.limits.max_depth:
            return self._refuse(event, f"nested deeper than {self.limits.max_depth} levels, the limit for a data "
                                "file")
        if event.tag not in (None, "!", _COLLECTION_TAGS.get(type(event))):
            self._problem(event, f"the tag {shorten(event.tag, 40)} is not allowed in data files; use plain "
                          "lists and mappings")
        self.stack.append(_Frame(isinstance(event, yaml.MappingStartEvent), line))
        return True

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(yaml.ScalarNode, event.value, event.implicit)
        assert tag is not None
        if tag == _TAG + "merge":
            self._problem(event, "merge keys (<<) are not allowed in data files; write the keys out")
            return event.value
        if tag not in _SCALAR_TAGS:
            self._problem(event, f"the tag {shorten(tag, 40)} is not allowed in data files; use plain text, "
                          "numbers, true/false, lists and mappings")
            return event.value
        if tag in _NUMBER_TAGS and len(event.value) > MAX_NUMBER_CHARS:
            self._problem(event, f"{shorten(event.value)} is a number of {len(event.value):,} characters; the "
                          f"limit is {MAX_NUMBER_CHARS}")
            return None
        node = yaml.ScalarNode(tag, event.value, None, None, event.style)
        try:
            value = _CONSTRUCTOR.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (ValueError, OverflowError, TypeError, yaml.YAMLError) as error:
            self._problem(event, f"{shorten(event.value)} cannot be read as a {tag.removeprefix(_TAG)}: "
                          f"{shorten_text(str(error), 80)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self._problem(event, f"{shorten(event.value)} is not a finite number; infinities and NaN are refused "
                          "in data files")
            return None
        return value

    def _attach(self, value: Any, lines: Lines, line: int) -> None:
        """Put a finished value into its parent: the document, a list, or a mapping (as a key or a value)."""
        if not self.stack:
            self.root = (value, lines)
            return
        parent = self.stack[-1]
        if isinstance(parent.value, list) and isinstance(parent.lines, list):
            parent.value.append(value)
            parent.lines.append(lines)
        elif parent.key_line and isinstance(parent.value, dict) and isinstance(parent.lines, dict):
            parent.value[parent.key] = value
            parent.lines[parent.key] = lines
            parent.key_line = 0
        else:
            first = parent.key_lines.get(value)
            if first is not None:
                where = f"line {first}" if first != line else "the same line"
                self.problems.append(Problem(self.name, line, shorten_text(field_name(self._path(value)), FIELD_CHARS),
                                             f"duplicate key {shorten(value)}: first on {where}; YAML would keep only "
                                             "the last one silently, so remove or rename one"))
            parent.key_lines[value] = line
            parent.key, parent.key_line = value, line

    def _path(self, last: Any = None) -> list[str | int]:
        """The path of the value being read (or of the key `last` in the innermost mapping)."""
        path: list[str | int] = []
        for frame in self.stack:
            if frame.mapping and frame.key_line:
                path.append(frame.key if isinstance(frame.key, int | str) else str(frame.key))
            elif not frame.mapping:
                path.append(len(frame.value))
        if last is not None:
            path.append(last if isinstance(last, int | str) else str(last))
        return path

    def _problem(self, event: yaml.Event, message: str) -> None:
        self.problems.append(Problem(self.name, _event_line(event), shorten_text(field_name(self._path()), FIELD_CHARS),
                                     message))

    def _refuse(self, event: yaml.Event, message: str) -> bool:
        self._problem(event, message)
        return False


def yaml_files(directory: Path) -> list[Path]:
    """Every YAML file under `directory`, in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_documents(files: Iterable[Path]) -> tuple[list[Located], list[Problem]]:
    """The non-empty documents of all `files`, and every syntax problem found on the way."""
    documents: list[Located] = []
    problems: list[Problem] = []
    for path in files:
        found, errors = load_located(path)
        documents += [doc for doc in found if doc.data is not None]
        problems += errors
    return documents, problems


def load_schema(path: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_problems(
    validator: jsonschema.Draft202012Validator, doc: Located, prefix: PathParts = ()
) -> list[Problem]:
    """Every schema violation in `doc.data` (or the part of it at `prefix`), with file, line and field."""
    data = doc.data
    for part in prefix:
        data = data[part]
    errors: Iterable[jsonschema.ValidationError] = validator.iter_errors(data)
    problems = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path = [*prefix, *error.absolute_path]
        problems.append(doc.problem(path, _readable(error)))
    return problems


def _readable(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of: {', '.join(map(str, error.validator_value))}"
    return error.message
