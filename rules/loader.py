"""Rule files: safe YAML -> JSON Schema -> meaning checks (facts, fields, aliases, actions) -> Rule records.

Every problem in every file is reported at once, as `file:line: field: message`. Nothing in a rule file is
ever evaluated: conditions become data for durable-rules, templates are plain `{alias.field}` substitution.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import Problem, RuleError
from core.yamlfile import Located, capped, load_documents, load_schema, schema_problems, yaml_files
from rules.model import (
    ACTION_VERBS,
    COMPARISONS,
    ESCALATION_TARGETS,
    MAX_ALTERNATIVES,
    NUMBER,
    OPERATORS,
    SUPPORT,
    Action,
    Kinds,
    Pattern,
    Rule,
    RuleBase,
    Test,
    Vocabulary,
)

SCHEMA_PATH = Path(__file__).parent / "schema" / "ruleset.schema.json"
PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\}")
WHOLE_PLACEHOLDER = re.compile(r"^\{([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\}$")
REF = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
BLOCKS = ("all", "any")
PATTERN_KEYS = ("as", "within")


# (action, target or None when a template names it, params) -> (parameter, message) for each problem
ParamCheck = Callable[[str, str | None, Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Checks:
    """What a rule may name besides facts: remediation actions, their targets and parameters, and playbook ids."""

    vocabulary: Vocabulary = SUPPORT
    actions: Mapping[str, frozenset[str]] | None = None
    playbooks: frozenset[str] | None = None
    params: ParamCheck | None = None


def rule_files(paths: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """The YAML files named by `paths` (folders are searched), and a problem for each path that is missing."""
    files: list[Path] = []
    missing: list[Problem] = []
    for path in paths:
        if path.is_dir():
            files += yaml_files(path)
        elif path.exists():
            files.append(path)
        else:
            missing.append(Problem(str(path), None, "", "no such file or folder"))
    return files, missing


def load_rules(
    paths: list[Path],
    known_actions: Mapping[str, frozenset[str]] | None = None,
    vocabulary: Vocabulary = SUPPORT,
    known_playbooks: frozenset[str] | None = None,
    check_params: ParamCheck | None = None,
) -> RuleBase:
    """Load rule files (or every `*.yaml` in given folders); raise RuleError listing every problem. `check_params`
    checks a `remediate`'s parameters (engine.actions.catalogue.param_problems with the topology)."""
    checks = Checks(vocabulary, known_actions, known_playbooks, check_params)
    files, problems = rule_files(paths)
    documents, errors = load_documents(files)
    problems += errors
    if not files and not problems:
        problems.append(Problem(", ".join(map(str, paths)), None, "", "no rule files (*.yaml) found"))
    # An empty file is refused rather than read as "no rules": it is what a reload sees of a file that an
    # editor is halfway through saving, and taking it would switch those rules off.
    loaded = {doc.file for doc in documents} | {p.file for p in problems}
    problems += [Problem(str(f), None, "", "the file is empty; a rule file starts with `rules:`")
                 for f in files if str(f) not in loaded]
    rules = _rules_of(documents, checks, problems)
    if problems:
        raise RuleError(capped(problems))
    return RuleBase(tuple(rules), _version(rules), vocabulary)


def _rules_of(documents: list[Located], checks: Checks, problems: list[Problem]) -> list[Rule]:
    validator = load_schema(SCHEMA_PATH)
    rules: list[Rule] = []
    seen: dict[str, Rule] = {}
    for doc in documents:
        errors = schema_problems(validator, doc)
        problems += [_named(doc, p) for p in errors]
        # A rule with a schema error is reported; the others are still checked for meaning.
        broken = {_rule_index(p.field) for p in errors}
        if None in broken or not isinstance(doc.data.get("rules"), list):
            continue
        ruleset = doc.data.get("ruleset") or Path(doc.file).stem
        for i, raw in enumerate(doc.data["rules"]):
            if i in broken:
                continue
            rule, errors = _RuleParser(doc, i, checks).parse(raw, ruleset)
            if rule.name in seen:
                other = seen[rule.name]
                errors.append(doc.problem(["rules", i, "name"], f"duplicate rule name, also at {other.location}"))
            problems += [_named(doc, p) for p in errors]
            if not errors:
                seen[rule.name] = rule
                rules.append(rule)
    return rules


def _named(doc: Located, problem: Problem) -> Problem:
    """`rules[3].when.all[0].weather` -> `rule slow_pages: when.all[0].weather`: curators know rules by name."""
    index = _rule_index(problem.field)
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    if index is None or not isinstance(rules, list) or index >= len(rules) or not isinstance(rules[index], dict):
        return problem
    name = rules[index].get("name")
    if not isinstance(name, str):
        return problem
    rest = problem.field[len(f"rules[{index}]"):].lstrip(".")
    return Problem(problem.file, problem.line, f"rule {name}" + (f": {rest}" if rest else ""), problem.message)


def _rule_index(field_name: str) -> int | None:
    """The index of the rule a schema problem is in, or None if it is outside every rule."""
    found = re.match(r"^rules\[(\d+)\]", field_name)
    return int(found.group(1)) if found else None


def _version(rules: list[Rule]) -> str:
    digest = hashlib.sha256()
    for rule in sorted(rules, key=lambda r: r.name):
        digest.update(json.dumps([rule.name, rule.ruleset, rule.salience, repr(rule.alternatives),
                                  repr(rule.actions)], default=str).encode())
    return digest.hexdigest()[:12]


@dataclass
class _RuleParser:
    """Parses one rule, collecting every problem in it."""

    doc: Located
    index: int
    checks: Checks
    problems: list[Problem] = field(default_factory=list)
    _negations: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def vocabulary(self) -> Vocabulary:
        return self.checks.vocabulary

    def problem(self, at: list, message: str) -> None:
        self.problems.append(self.doc.problem(at, message))

    def parse(self, raw: dict, ruleset: str) -> tuple[Rule, list[Problem]]:
        at: list[str | int] = ["rules", self.index]
        mode = next(iter(raw["when"]))
        alternatives = [tuple(a) for a in self._block(mode, raw["when"][mode], [*at, "when", mode], {})[0]]
        if len(alternatives) > MAX_ALTERNATIVES:
            self.problem([*at, "when"], f"the condition expands to {len(alternatives)} alternatives; the limit is "
                         f"{MAX_ALTERNATIVES}. Split it into several rules")
            alternatives = alternatives[:1]
        for alternative in alternatives:
            self._check_alternative(alternative, [*at, "when"])
        rule = Rule(name=raw["name"], description=" ".join(raw.get("description", "").split()),
                    salience=raw.get("salience", 0), alternatives=tuple(alternatives), actions=(),
                    ruleset=ruleset, source=self.doc.file, line=self.doc.line_of(at), condition=raw["when"])
        actions = self._actions(raw["then"], rule, [*at, "then"]) if alternatives else ()
        return replace(rule, actions=tuple(actions)), self.problems

    # -- conditions ---------------------------------------------------------------------------------

    def _block(self, mode: str, items: list, at: list, counts: dict[str, int]) -> tuple[list[list[Pattern]], dict]:
        """The alternatives of `all` / `any` over `items`, and the alias counters after it."""
        if mode == "all":
            alternatives: list[list[Pattern]] = [[]]
            for j, item in enumerate(items):
                found, counts = self._item(item, [*at, j], counts)
                alternatives = [a + b for a in alternatives for b in found][: MAX_ALTERNATIVES + 1]
            return alternatives, counts
        alternatives, after = [], dict(counts)
        for j, item in enumerate(items):
            # Branches of `any` are exclusive, so each starts from the same aliases: `any: [metric, metric]`
            # binds `metric` in both, and actions can use it.
            found, branch = self._item(item, [*at, j], dict(counts))
            alternatives += found
            after = {k: max(after.get(k, 0), branch.get(k, 0)) for k in {*after, *branch}}
        return alternatives[: MAX_ALTERNATIVES + 1], after

    def _item(self, item: dict, at: list, counts: dict[str, int]) -> tuple[list[list[Pattern]], dict]:
        nested = [k for k in item if k in BLOCKS]
        if nested:
            if len(item) != 1:
                self.problem(at, f"`{nested[0]}` stands alone in its item; move the other keys into its list")
                return [[]], counts
            return self._block(nested[0], item[nested[0]], [*at, nested[0]], counts)
        if "none" in item:
            if len(item) != 1:
                self.problem([*at, "none"], "`none` stands alone; a negated pattern binds nothing (remove `as`)")
                return [[]], counts
            bodies = item["none"] if isinstance(item["none"], list) else [item["none"]]
            negated = [self._pattern(body, [*at, "none"] + ([k] if isinstance(item["none"], list) else []), None,
                                     True) for k, body in enumerate(bodies)]
            return [[p for p in negated if p is not None]], counts
        fact_type = next((k for k in item if k not in PATTERN_KEYS), None)
        counts = dict(counts)
        default = None
        if fact_type is not None:
            counts[fact_type] = counts.get(fact_type, 0) + 1
            default = fact_type if counts[fact_type] == 1 else f"{fact_type}_{counts[fact_type]}"
        pattern = self._pattern(item, at, item.get("as") or default, False)
        return [[pattern] if pattern else []], counts

    def _pattern(self, item: dict, at: list, alias: str | None, negated: bool) -> Pattern | None:
        if any(k in BLOCKS or k == "none" for k in item):
            self.problem(at, "`none` takes fact patterns, e.g. `none: {veto: {}}`, not nested blocks")
            return None
        facts = [k for k in item if k not in PATTERN_KEYS]
        if len(facts) != 1:
            self.problem(at, "a pattern names exactly one fact type, e.g. `match: {band: answer}`")
            return None
        fact_type = facts[0]
        at = [*at, fact_type]
        if fact_type not in self.vocabulary.facts:
            self.problem(at, f"unknown fact {fact_type!r}; known facts: {', '.join(self.vocabulary.facts)}")
            return None
        if negated and "as" in item:
            self.problem([*at[:-1], "as"], "a `none` pattern binds nothing; remove `as`")
        tests = self._tests(fact_type, item[fact_type] or {}, at)
        if "within" in item:
            if fact_type not in self.vocabulary.with_age():
                self.problem([*at[:-1], "within"], f"{fact_type} facts have no age; `within` works on: "
                             f"{', '.join(sorted(self.vocabulary.with_age())) or 'none'}")
            else:
                tests.append(Test("age_s", "le", item["within"]))
        name = f"not_{fact_type}_{next(self._negations)}" if negated else (alias or fact_type)
        return Pattern(fact_type, name, tuple(tests), negated, self.doc.line_of(at), tuple(at))

    def _tests(self, fact_type: str, fields: Any, at: list) -> list[Test]:
        if not isinstance(fields, dict):
            self.problem(at, "a pattern's body maps field names to tests, e.g. `{status: unhealthy}`")
            return []
        known = self.vocabulary.fields(fact_type)
        tests: list[Test] = []
        for name, spec in fields.items():
            if name not in known:
                self.problem([*at, name], f"{fact_type} has no field {name!r}; it has: {', '.join(known)}")
                continue
            specs = spec if isinstance(spec, dict) else {"eq": spec}
            for op, value in specs.items():
                test, error = self._test(fact_type, name, op, value)
                if error:
                    self.problem([*at, name], error)
                elif test is not None:
                    tests.append(test)
        return tests

    def _test(self, fact_type: str, name: str, op: str, value: Any) -> tuple[Test | None, str | None]:
        kinds = self.vocabulary.fields(fact_type)[name]
        if op == "ref" or (isinstance(value, dict) and set(value) == {"ref"}):
            target = value if op == "ref" else value["ref"]
            op = "eq" if op == "ref" else op
            found = REF.match(str(target))
            if op not in ("eq", "ne", *COMPARISONS) or not found:
                return None, f"`ref` takes `alias.field` and works with eq, ne, lt, le, gt, ge; got {op}: {target!r}"
            if op in COMPARISONS and not fits(1, kinds):
                return None, f"{op} compares numbers, and {name} is a {type_name(kinds)}"
            return Test(name, op, None, (found.group(1), found.group(2))), None
        if op not in OPERATORS:
            return None, f"unknown operator {op!r}; use one of: {', '.join(OPERATORS)}, ref"
        if op == "exists":
            return (Test(name, op, value), None) if isinstance(value, bool) else (None, "exists takes true or false")
        if op in ("in", "not_in") and (not isinstance(value, list) or not value):
            return None, f"{op} takes a non-empty list"
        values = value if op in ("in", "not_in") else [value]
        wrong = [v for v in values if not fits(v, kinds)]
        if wrong:
            return None, f"{wrong[0]!r} is not a {type_name(kinds)}"
        if op in COMPARISONS and not fits(1, kinds):
            return None, f"{op} compares numbers, and {name} is a {type_name(kinds)}"
        domain = self.vocabulary.domains.get((fact_type, name))
        outside = [v for v in values if domain is not None and v not in domain]
        if outside:
            return None, f"{outside[0]!r} is not one of: {', '.join(map(str, domain or ()))}"
        return Test(name, op, tuple(value) if op in ("in", "not_in") else value), None

    def _check_alternative(self, alternative: tuple[Pattern, ...], at: list) -> None:
        """Refs point at earlier bound patterns of the same alternative; aliases are unique; one pattern binds."""
        bound: dict[str, Pattern] = {}
        for pattern in alternative:
            for test in pattern.tests:
                if test.ref is None:
                    continue
                alias, name = test.ref
                other = bound.get(alias)
                if other is None:
                    self.problem([*pattern.at, test.field], f"ref {alias}.{name} must name an earlier pattern "
                                 f"of the same alternative (bound before it: {', '.join(bound) or 'none'})")
                elif name not in self.vocabulary.fields(other.fact_type):
                    self.problem([*pattern.at, test.field], f"ref {alias}.{name}: {other.fact_type} has no "
                                 f"field {name!r}")
                elif not _compatible(self.vocabulary.fields(other.fact_type)[name],
                                     self.vocabulary.fields(pattern.fact_type)[test.field]):
                    self.problem([*pattern.at, test.field], f"ref {alias}.{name} is a "
                                 f"{type_name(self.vocabulary.fields(other.fact_type)[name])} and "
                                 f"{test.field} a {type_name(self.vocabulary.fields(pattern.fact_type)[test.field])}")
            if not pattern.negated:
                if pattern.alias in bound:
                    self.problem(list(pattern.at), f"alias {pattern.alias!r} is already used in this rule; set `as:`")
                bound[pattern.alias] = pattern
        if alternative and not bound:
            self.problem(at, "a rule needs at least one pattern that is not `none` in each alternative")

    # -- actions ------------------------------------------------------------------------------------

    def _actions(self, items: list, rule: Rule, at: list) -> list[Action]:
        bound = rule.bound_everywhere()
        actions = []
        for j, item in enumerate(items):
            verb = next(iter(item))
            if verb not in ACTION_VERBS:
                self.problem([*at, j], f"unknown action {verb!r}; use one of: {', '.join(ACTION_VERBS)}")
                continue
            args = getattr(self, f"_action_{verb}")(item[verb], bound, [*at, j, verb])
            if args is not None:
                actions.append(Action(verb, MappingProxyType(args)))
        return actions

    def _action_remediate(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict | None:
        if "from" in args:
            pattern = bound.get(args["from"])
            if set(args) != {"from"}:
                self.problem(at, "`from` names a matched remedy or proposal; give it alone")
            elif pattern is None or not {"action", "target"} <= set(self.vocabulary.fields(pattern.fact_type)):
                self.problem([*at, "from"], f"{args['from']!r} is not the alias of a matched fact with an action and "
                             f"a target (bound in every alternative: {', '.join(bound) or 'none'})")
            return dict(args)
        if "name" not in args or "target" not in args:
            self.problem(at, "remediate needs `from: ALIAS`, or `name` and `target` (and optional `params`)")
            return None
        for key in ("name", "target"):
            self._template(args[key], bound, [*at, key])
        for key, value in (args.get("params") or {}).items():
            if isinstance(value, str):
                self._template(value, bound, [*at, "params", key])
        self._known_action(args, at)
        self._known_params(args, at)
        return {"name": args["name"], "target": args["target"], "params": dict(args.get("params") or {})}

    def _known_params(self, args: dict, at: list) -> None:
        """Parameters the action takes, with values in bounds; one filled from a fact is checked when it runs."""
        check = self.checks.params
        if check is None or PLACEHOLDER.search(args["name"]):
            return
        target = None if PLACEHOLDER.search(args["target"]) else args["target"]
        params = {k: v for k, v in (args.get("params") or {}).items()
                  if not (isinstance(v, str) and PLACEHOLDER.search(v))}
        for name, message in check(args["name"], target, params):
            self.problem([*at, "params", *([name] if name else [])], message)

    def _known_action(self, args: dict, at: list) -> None:
        known = self.checks.actions
        if known is None or PLACEHOLDER.search(args["name"]):
            return
        targets = known.get(args["name"])
        if targets is None:
            self.problem([*at, "name"], f"unknown remediation {args['name']!r}; known: {', '.join(sorted(known))}")
        elif not PLACEHOLDER.search(args["target"]) and args["target"] not in targets:
            self.problem([*at, "target"], f"{args['name']} cannot target {args['target']!r}; it can target: "
                         f"{', '.join(sorted(targets))}")

    def _action_escalate(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict:
        category = args["category"]
        if not PLACEHOLDER.search(category) and category not in ESCALATION_TARGETS:
            self.problem([*at, "category"], f"{category!r}: escalate goes to a business category (a person decides) "
                         f"or to engineering; use one of: {', '.join(ESCALATION_TARGETS)}")
        for key in ("category", "summary", "playbook"):
            if key in args:
                self._template(args[key], bound, [*at, key])
        return dict(args)

    def _action_clarify(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict:
        known = self.checks.playbooks
        for k, candidate in enumerate(args.get("candidates") or []):
            if PLACEHOLDER.search(candidate):
                self._template(candidate, bound, [*at, "candidates", k])
            elif known is not None and candidate not in known:
                self.problem([*at, "candidates", k], f"unknown playbook {candidate!r}")
        return {"candidates": list(args.get("candidates") or [])}

    def _action_decline(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict:
        return {}

    def _action_reply(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict:
        self._template(args["template"], bound, [*at, "template"])
        return dict(args)

    def _action_assert(self, args: dict, bound: Mapping[str, Pattern], at: list) -> dict | None:
        fact_type, fields = next(iter(args.items()))
        if fact_type not in self.vocabulary.assertable:
            self.problem([*at, fact_type], f"rules may assert only: {', '.join(sorted(self.vocabulary.assertable))}")
            return None
        if not isinstance(fields, dict):
            self.problem([*at, fact_type], "give the new fact's fields, e.g. `hypothesis: {name: db_slow}`")
            return None
        known = self.vocabulary.fields(fact_type)
        for name, value in fields.items():
            if name not in known:
                self.problem([*at, fact_type, name], f"{fact_type} has no field {name!r}; it has: {', '.join(known)}")
            else:
                self._assigned(value, known[name], bound, [*at, fact_type, name])
        return {fact_type: dict(fields)}

    def _action_retract(self, alias: str, bound: Mapping[str, Pattern], at: list) -> dict | None:
        if alias not in bound:
            self.problem(at, f"retract names the alias of a matched fact; bound in every alternative: "
                         f"{', '.join(bound) or 'none'}")
            return None
        return {"alias": alias}

    def _assigned(self, value: Any, kinds: Kinds, bound: Mapping[str, Pattern], at: list) -> None:
        """A value put into an asserted field: a literal of the field's type, or a template that gives one."""
        whole = WHOLE_PLACEHOLDER.match(value) if isinstance(value, str) else None
        if whole:
            pattern = bound.get(whole.group(1))
            source = self.vocabulary.fields(pattern.fact_type).get(whole.group(2)) if pattern else None
            if source is not None and not _compatible(source, kinds):
                self.problem(at, f"{value} is a {type_name(source)}, the field a {type_name(kinds)}")
        elif isinstance(value, str) and PLACEHOLDER.search(value) and not fits("", kinds):
            self.problem(at, f"a text template cannot fill a {type_name(kinds)} field")
        elif not isinstance(value, str) and not fits(value, kinds):
            self.problem(at, f"{value!r} is not a {type_name(kinds)}")
        if isinstance(value, str):
            self._template(value, bound, at)

    def _template(self, text: str, bound: Mapping[str, Pattern], at: list) -> None:
        for alias, name in PLACEHOLDER.findall(text):
            pattern = bound.get(alias)
            if pattern is None:
                self.problem(at, f"{{{alias}.{name}}} names no matched fact; bound in every alternative: "
                             f"{', '.join(bound) or 'none'}")
            elif name not in self.vocabulary.fields(pattern.fact_type):
                self.problem(at, f"{{{alias}.{name}}}: {pattern.fact_type} has no such field")


def fits(value: Any, kinds: Kinds) -> bool:
    """Is `value` of one of `kinds` (a bool is not a number)?"""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _compatible(source: Kinds, target: Kinds) -> bool:
    source = source if isinstance(source, tuple) else (source,)
    target = target if isinstance(target, tuple) else (target,)
    numeric = set(NUMBER)
    return bool(set(source) & set(target)) or (bool(set(source) & numeric) and bool(set(target) & numeric))


def type_name(kinds: Kinds) -> str:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return "number" if float in kinds else kinds[0].__name__


def render(template: str, bindings: Mapping[str, Mapping[str, Any]]) -> str:
    """Fill `{alias.field}` placeholders from matched facts: plain substitution, never evaluation."""
    return PLACEHOLDER.sub(lambda m: str(bindings.get(m.group(1), {}).get(m.group(2), m.group(0))), template)


def fill(value: Any, bindings: Mapping[str, Mapping[str, Any]]) -> Any:
    """A value for an asserted field or an action argument: `{a.f}` alone copies the value with its type."""
    if not isinstance(value, str):
        return value
    whole = WHOLE_PLACEHOLDER.match(value)
    if whole and whole.group(2) in bindings.get(whole.group(1), {}):
        return bindings[whole.group(1)][whole.group(2)]
    return render(value, bindings)
