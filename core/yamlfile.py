"""Safe YAML loading that remembers where each value came from, and schema checks that report every problem."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from core.errors import ConfigurationError, Problem

PathParts = Sequence[str | int]
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: about 10 times faster for big files


def load_mapping(path: Path, what: str, shape: str) -> dict[Any, Any]:
    """A data file that must hold one mapping (`what` names it in errors, `shape` says what it maps). Raises
    ConfigurationError naming the file when it cannot be read or parsed, or holds something else."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigurationError(f"cannot read {what} {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: expected a mapping of {shape}")
    return data


def dump_yaml(data: Any) -> str:
    """Plain safe YAML in the order given (what we write is read back by people and by `load_documents`)."""
    return yaml.dump(data, Dumper=SAFE_DUMPER, sort_keys=False, allow_unicode=True)


@dataclass(frozen=True)
class Located:
    """A parsed YAML document and the line of each value in it."""

    file: str
    data: Any
    _root: yaml.Node | None

    def line_of(self, path: PathParts) -> int | None:
        """The 1-based line of the value at `path`, or of its nearest ancestor that exists."""
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        for part in path:
            node = _child(node, part)
            if node is None:
                break
            line = node.start_mark.line + 1
        return line

    def problem(self, path: PathParts, message: str) -> Problem:
        return Problem(self.file, self.line_of(path), field_name(path), message)


def _child(node: yaml.Node | None, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def field_name(path: PathParts) -> str:
    """Render a path as `remedies[0].action`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_located(path: Path, display: str | None = None) -> tuple[list[Located], list[Problem]]:
    """Load every document of a YAML file with safe_load semantics; syntax errors become problems."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        return [], [Problem(name, None, "", f"not UTF-8 text ({error.reason} at byte {error.start})")]
    except OSError as error:
        return [], [Problem(name, None, "", f"cannot be read: {error.strerror}")]
    try:
        # Parsed once (with libyaml when present: thousands of learned rules load in seconds, not minutes);
        # the values are built from the same nodes that give the line numbers.
        roots = list(yaml.compose_all(text, Loader=SAFE_LOADER))
        documents = [_construct(root) for root in roots]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        return [], [Problem(name, line, "", f"YAML syntax: {error.problem or error.context}")]
    except yaml.YAMLError as error:
        return [], [Problem(name, None, "", f"YAML: {error}")]
    return [Located(name, data, root) for data, root in zip(documents, roots, strict=True)], []


def _construct(root: yaml.Node | None) -> Any:
    """The Python value of a composed document, with safe_load's rules."""
    if root is None:
        return None
    return SAFE_LOADER("").construct_document(root)


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
