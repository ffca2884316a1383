"""Rule files: safe YAML -> JSON Schema -> meaning checks (facts, fields, aliases, actions) -> Rule records.

Every problem in every file is reported at once, as `file:line: field: message`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import Problem, RuleError
from core.yamlfile import Located, load_documents, load_schema, schema_problems, yaml_files
from rules.model import (
    ACTION_VERBS,
    ASSERTABLE,
    FACT_FIELDS,
    OPERATORS,
    Action,
    Pattern,
    Rule,
    RuleBase,
    Test,
)

SCHEMA_PATH = Path(__file__).parent / "schema" / "ruleset.schema.json"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\}")
REF = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")


def load_rules(paths: list[Path], known_actions: Mapping[str, frozenset[str]] | None = None) -> RuleBase:
    """Load rule files (or every `*.yaml` in given folders); raise RuleError listing every problem."""
    files: list[Path] = []
    missing: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files += yaml_files(path)
        elif path.exists():
            files.append(path)
        else:
            missing.append(Problem(str(path), None, "", "no such file or folder"))
    validator = load_schema(SCHEMA_PATH)
    documents, problems = load_documents(files)
    problems = missing + problems
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for doc in documents:
        errors = schema_problems(validator, doc)
        problems += errors
        # A rule with a schema error is reported; the others are still checked for meaning.
        broken = {_rule_index(p.field) for p in errors}
        if None in broken or not isinstance(doc.data.get("rules"), list):
            continue
        for i, raw in enumerate(doc.data["rules"]):
            if i in broken:
                continue
            rule, errors = _parse_rule(doc, i, raw, known_actions)
            if rule.name in seen:
                other = seen[rule.name]
                errors.append(doc.problem(["rules", i, "name"], f"duplicate rule name, also at "
                                          f"{other.source}:{other.line}"))
            problems += errors
            if not errors:
                seen[rule.name] = rule
                rules.append(rule)
    if problems:
        raise RuleError(problems)
    return RuleBase(tuple(rules), _version(rules))


def _rule_index(field: str) -> int | None:
    """The index of the rule a schema problem is in, or None if it is outside every rule."""
    found = re.match(r"^rules\[(\d+)\]", field)
    return int(found.group(1)) if found else None


def _version(rules: list[Rule]) -> str:
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.name):
        digest.update(json.dumps([rule.name, rule.salience, rule.mode, repr(rule.patterns), repr(rule.actions)],
                                 default=str).encode())
    return digest.hexdigest()[:12]


def _parse_rule(
    doc: Located, index: int, raw: dict, known_actions: Mapping[str, frozenset[str]] | None
) -> tuple[Rule, list[Problem]]:
    at = ["rules", index]
    problems: list[Problem] = []
    mode = next(iter(raw["when"]))
    patterns: list[Pattern] = []
    for j, item in enumerate(raw["when"][mode]):
        pattern, errors = _parse_pattern(doc, [*at, "when", mode, j], item, j, patterns)
        problems += errors
        if pattern:
            patterns.append(pattern)
    if mode == "any" and any(p.negated for p in patterns):
        problems.append(doc.problem([*at, "when", "any"], "`none` can only be used under `all`"))
    if patterns and all(p.negated for p in patterns):
        problems.append(doc.problem([*at, "when"], "a rule needs at least one pattern that is not `none`"))
    aliases = {p.alias: p for p in patterns if not p.negated}
    actions: list[Action] = []
    for j, item in enumerate(raw["then"]):
        verb = next(iter(item))
        action, errors = _parse_action(doc, [*at, "then", j, verb], verb, item[verb], aliases, mode, known_actions)
        problems += errors
        if action:
            actions.append(action)
    rule = Rule(
        name=raw["name"],
        description=" ".join(raw.get("description", "").split()),
        salience=raw.get("salience", 0),
        mode=mode,
        patterns=tuple(patterns),
        actions=tuple(actions),
        source=doc.file,
        line=doc.line_of(at),
    )
    return rule, problems


def _parse_pattern(
    doc: Located, at: list, item: dict, position: int, earlier: list[Pattern]
) -> tuple[Pattern | None, list[Problem]]:
    negated = "none" in item
    body = item["none"] if negated else {k: v for k, v in item.items() if k != "as"}
    if negated and "as" in item:
        return None, [doc.problem([*at, "as"], "a `none` pattern binds nothing; remove `as`")]
    if len(body) != 1:
        return None, [doc.problem(at, "a pattern names exactly one fact type, e.g. `match: {band: answer}`")]
    fact_type, fields = next(iter(body.items()))
    at = [*at, "none", fact_type] if negated else [*at, fact_type]
    if fact_type not in FACT_FIELDS:
        return None, [doc.problem(at, f"unknown fact {fact_type!r}; known facts: {', '.join(FACT_FIELDS)}")]
    alias = item.get("as") or (f"{fact_type}_{position}" if any(p.alias == fact_type for p in earlier)
                               else fact_type)
    if any(p.alias == alias for p in earlier):
        return None, [doc.problem(at, f"alias {alias!r} is already used in this rule; set `as:`")]
    problems: list[Problem] = []
    tests: list[Test] = []
    for field_name, spec in (fields or {}).items():
        kinds = FACT_FIELDS[fact_type].get(field_name)
        if kinds is None:
            known = ", ".join(FACT_FIELDS[fact_type])
            problems.append(doc.problem([*at, field_name], f"{fact_type} has no field {field_name!r}; "
                                        f"it has: {known}"))
            continue
        for test, error in _parse_tests(field_name, spec, kinds, earlier):
            if error:
                problems.append(doc.problem([*at, field_name], error))
            else:
                tests.append(test)
    return Pattern(fact_type, alias, tuple(tests), negated), problems


def _parse_tests(field_name: str, spec: Any, kinds: Any, earlier: list[Pattern]):
    if not isinstance(spec, dict):
        spec = {"eq": spec}
    for op, value in spec.items():
        if op == "ref":
            found = REF.match(str(value))
            known = {p.alias: p for p in earlier if not p.negated}
            if not found or found.group(1) not in known:
                yield None, f"ref {value!r} must name `alias.field` of an earlier pattern ({', '.join(known)})"
            elif found.group(2) not in FACT_FIELDS[known[found.group(1)].fact_type]:
                yield None, f"ref {value!r}: {known[found.group(1)].fact_type} has no field {found.group(2)!r}"
            else:
                yield Test(field_name, "eq", ref=(found.group(1), found.group(2))), None
            continue
        if op not in OPERATORS:
            yield None, f"unknown operator {op!r}; use one of: {', '.join(OPERATORS)}, ref"
            continue
        if op == "exists":
            if not isinstance(value, bool):
                yield None, "exists takes true or false"
            else:
                yield Test(field_name, op, value), None
            continue
        values = value if op in ("in", "not_in") else [value]
        if op in ("in", "not_in") and (not isinstance(value, list) or not value):
            yield None, f"{op} takes a non-empty list"
            continue
        wrong = [v for v in values if not _fits(v, kinds)]
        if wrong:
            yield None, f"{wrong[0]!r} is not a {_type_name(kinds)}"
        elif op in ("lt", "le", "gt", "ge") and not _fits(1, kinds):
            yield None, f"{op} compares numbers, and {field_name} is a {_type_name(kinds)}"
        else:
            yield Test(field_name, op, tuple(value) if op in ("in", "not_in") else value), None


def _fits(value: Any, kinds: Any) -> bool:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _type_name(kinds: Any) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return "number" if float in kinds else kinds[0].__name__


def _parse_action(
    doc: Located,
    at: list,
    verb: str,
    args: Any,
    aliases: Mapping[str, Pattern],
    mode: str,
    known_actions: Mapping[str, frozenset[str]] | None,
) -> tuple[Action | None, list[Problem]]:
    if verb not in ACTION_VERBS:
        return None, [doc.problem(at, f"unknown action {verb!r}; use one of: {', '.join(ACTION_VERBS)}")]
    problems: list[Problem] = []
    bound = aliases if mode == "all" else {}  # under `any`, which fact matched is not known in advance
    if verb == "remediate":
        problems += _remediate_problems(doc, at, args, bound, known_actions)
    elif verb == "assert":
        fact_type, fields = next(iter(args.items()))
        if fact_type not in ASSERTABLE:
            problems.append(doc.problem([*at, fact_type], f"rules may assert only: {', '.join(sorted(ASSERTABLE))}"))
        else:
            for name, value in (fields or {}).items():
                if name not in FACT_FIELDS[fact_type]:
                    problems.append(doc.problem([*at, fact_type, name], f"{fact_type} has no field {name!r}"))
                elif isinstance(value, str):
                    problems += _template_problems(doc, [*at, fact_type, name], value, bound)
        if isinstance(args, dict) and args and fact_type in ASSERTABLE:
            args = {fact_type: dict(fields or {})}
    elif verb == "retract":
        if args not in bound or bound[args].fact_type not in ASSERTABLE:
            problems.append(doc.problem(at, f"retract names the alias of a matched {'/'.join(ASSERTABLE)} fact"))
        args = {"alias": args}
    else:
        for name, value in (args or {}).items():
            if isinstance(value, str):
                problems += _template_problems(doc, [*at, name], value, bound)
    return Action(verb, MappingProxyType(dict(args or {}))), problems


def _remediate_problems(doc, at, args, bound, known_actions) -> list[Problem]:
    if "from" in args:
        if set(args) != {"from"}:
            return [doc.problem(at, "`from` names a matched remedy; give it alone")]
        if args["from"] not in bound or bound[args["from"]].fact_type != "remedy":
            return [doc.problem([*at, "from"], f"{args['from']!r} is not the alias of a matched remedy fact")]
        return []
    if "action" not in args or "target" not in args:
        return [doc.problem(at, "remediate needs `from: ALIAS` or both `action` and `target`")]
    if known_actions is not None:
        targets = known_actions.get(args["action"])
        if targets is None:
            return [doc.problem([*at, "action"], f"unknown action {args['action']!r}; known: "
                                f"{', '.join(sorted(known_actions))}")]
        if args["target"] not in targets:
            return [doc.problem([*at, "target"], f"{args['action']} cannot target {args['target']!r}")]
    return []


def _template_problems(doc: Located, at: list, text: str, bound: Mapping[str, Pattern]) -> list[Problem]:
    problems = []
    for alias, field_name in PLACEHOLDER.findall(text):
        pattern = bound.get(alias)
        if pattern is None:
            problems.append(doc.problem(at, f"{{{alias}.{field_name}}} names no matched fact; "
                                        f"bound: {', '.join(bound) or 'none'}"))
        elif field_name not in FACT_FIELDS[pattern.fact_type]:
            problems.append(doc.problem(at, f"{{{alias}.{field_name}}}: {pattern.fact_type} has no such field"))
    return problems


def render(template: str, bindings: Mapping[str, Mapping[str, Any]]) -> str:
    """Fill `{alias.field}` placeholders from matched facts: plain substitution, never evaluation."""
    return PLACEHOLDER.sub(lambda m: str(bindings.get(m.group(1), {}).get(m.group(2), m.group(0))), template)
