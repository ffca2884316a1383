"""The decision policy: per business category, the guidelines that recommend an outcome to the person deciding,
how many distinct approvers a request needs, and which telemetry measures a capacity request is shown with.

A curator edits it as data (`data/decision_policy.yaml`, docs/decision-policy.md); it goes through the pipeline
every data file does: safe YAML -> JSON Schema (`schema/decision_policy.schema.json`) -> meaning checks (known
categories, playbooks and measures, unique ids, bounds that can hold) -> frozen records, every problem reported
at once as `file:line: field: message`. The policy never decides anything: its guidelines are votes shown to a
person (engine/desk/recommendation.py), who decides.

Conditions test a small, fixed set of facts (`FACTS`) that the desk computes for each request; a fact the desk
does not know (None) satisfies no condition, so a guideline never fires on a guess.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core.errors import DataFileError, Problem
from core.taxonomy import BUSINESS, CATEGORIES
from core.yamlfile import Located, PathParts, load_documents, load_schema, schema_problems

SCHEMA_PATH = Path(__file__).parent / "schema" / "decision_policy.schema.json"
OUTCOMES = ("approved", "rejected")
DEFAULT_WEIGHT = 3.0  # a guideline counts as three similar precedents unless the file says otherwise (issue 15)
CAPACITY_CATEGORY = "hosting_capacity"  # the one category whose requests are shown measured load
FACTS = {  # what a condition may test; the desk computes each per request (docs/decision-policy.md)
    "plan": "the account's plan (a condition lists the allowed plans, in any case)",
    "seats": "seats on the account",
    "tenure_days": "days since the account began",
    "monthly_price": "what the account pays a month",
    "percent": "the percentage the user asked for (40 from 'a 40% discount')",
    "quantity": "the largest other number in the request (8000 from '8,000 users')",
    "capacity_used": "capacity requests: the highest share of its limit a capacity measure reaches with the request",
}
BOUNDS = {"at_least": "at least", "at_most": "at most", "above": "above", "below": "below"}


# -- conditions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberTest:
    """Bounds on one numeric fact; every bound given must hold. An unknown or non-numeric fact fails."""

    fact: str
    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None
    below: float | None = None

    def holds(self, facts: Mapping[str, object]) -> bool:
        value = facts.get(self.fact)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False  # unknown (None) or not a number: never satisfied
        return ((self.at_least is None or value >= self.at_least) and (self.at_most is None or value <= self.at_most)
                and (self.above is None or value > self.above) and (self.below is None or value < self.below))

    def describe(self) -> str:
        """"percent at least 10 and at most 20"."""
        parts = [f"{BOUNDS[key]} {getattr(self, key):g}" for key in BOUNDS if getattr(self, key) is not None]
        return f"{self.fact} {' and '.join(parts)}"

    def can_hold(self) -> bool:
        """False when no number satisfies every bound (e.g. at least 30 and at most 20)."""
        # (value, open): an open bound (above, below) excludes its value, so at equal values it is the tighter one
        lows = [(v, is_open) for v, is_open in ((self.at_least, False), (self.above, True)) if v is not None]
        highs = [(v, is_open) for v, is_open in ((self.at_most, False), (self.below, True)) if v is not None]
        if not lows or not highs:
            return True
        low, low_open = max(lows)
        high, high_open = min(highs, key=lambda bound: (bound[0], not bound[1]))
        return low < high or (low == high and not low_open and not high_open)


@dataclass(frozen=True)
class PlanTest:
    """The account's plan is one of `plans`, compared case-insensitively; an unknown plan fails."""

    plans: tuple[str, ...]

    def holds(self, facts: Mapping[str, object]) -> bool:
        plan = facts.get("plan")
        return isinstance(plan, str) and plan.strip().casefold() in {p.casefold() for p in self.plans}

    def describe(self) -> str:
        """"plan is Enterprise", "plan is Pro, Team or Enterprise"."""
        names = list(self.plans)
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        return f"plan is {listed}"


@dataclass(frozen=True)
class Condition:
    """Tests on a request's facts, all of which must hold; no test at all always holds."""

    tests: tuple[NumberTest | PlanTest, ...] = ()

    def holds(self, facts: Mapping[str, object]) -> bool:
        return all(test.holds(facts) for test in self.tests)

    def describe(self) -> str:
        """The tests in words, in the file's order ("percent at most 20, plan is Enterprise"); "" for none."""
        return ", ".join(test.describe() for test in self.tests)


# -- the policy ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guideline:
    """One line of policy: what usually happens to requests like these. `recommend` is "approved",
    "rejected", or None for context shown to the decider without a vote; `weight` is how many precedents its
    vote counts as. `playbooks` ties it to requests from those playbooks; empty means matched by meaning."""

    id: str
    category: str
    text: str
    playbooks: tuple[str, ...]
    when: Condition
    recommend: str | None
    weight: float

    def applies(self, facts: Mapping[str, object]) -> bool:
        return self.when.holds(facts)


@dataclass(frozen=True)
class ApprovalRule:
    """Requests whose facts meet `when` need `approvers` distinct people to approve them."""

    when: Condition
    approvers: int


@dataclass(frozen=True)
class CategoryPolicy:
    """The policy of one business category. `capacity_measures` are (service, metric) pairs."""

    category: str
    guidelines: tuple[Guideline, ...] = ()
    approvals: tuple[ApprovalRule, ...] = ()
    capacity_measures: tuple[tuple[str, str], ...] = ()

    def approvers_required(self, facts: Mapping[str, object]) -> tuple[int, str]:
        """(count, why) from the first approval rule whose condition holds, else (1, ...): one person always
        decides. E.g. (2, "2 approvers: percent above 30")."""
        for rule in self.approvals:
            if rule.when.holds(facts):
                why = rule.when.describe() or f"every {self.category} request"
                return rule.approvers, f"{_approvers(rule.approvers)}: {why}"
        return 1, "1 approver: no approval rule of the decision policy asks for more"


def _approvers(count: int) -> str:
    return f"{count} approver{'s' * (count != 1)}"


@dataclass(frozen=True)
class DecisionPolicy:
    """Every category's policy, read from `source`."""

    categories: Mapping[str, CategoryPolicy]
    source: str

    def for_category(self, category: str) -> CategoryPolicy:
        """The category's policy; an empty one (no guidelines, 1 approver) for a category the file leaves out."""
        return self.categories.get(category) or CategoryPolicy(category)

    def guidelines(self, category: str) -> tuple[Guideline, ...]:
        return self.for_category(category).guidelines


# -- the figures in a request -------------------------------------------------------------------------------

_MONTHS = (r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
           r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?")
_DATES = re.compile(
    r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b"  # 2026-03-01, 01/03/2026, 1.3.26 (and version numbers such as 2.4.1)
    r"|\b\d{1,2}:\d{2}\b"  # 10:30
    rf"|\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?![,.]?\d)"  # March 3, Mar 3rd
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b",  # 3 March, 3rd of March
    re.IGNORECASE)
_YEAR_BEFORE = re.compile(  # words after which 1900-2099 is a year: "in 2026", "March 2026", "by the end of 2026"
    rf"(?:\b(?:{_MONTHS}|in|since|by|until|till|before|after|during|year|fy|early|mid|late)"
    r"|\b(?:end|start|beginning|middle|rest)\s+of)[\s,.-]*$", re.IGNORECASE)
# Identifiers are not amounts: a reference glued to letters (PO-4471, CH-123456, INV2024-17, 4471-B), digits
# joined by hyphens or spaces into a code or a phone number (123-456-7890, +44 20 7946 0958), and a number after
# a label that names one ("charity number 1234567", "reg. no: 55", "order no 12", "VAT ID 998877").
_IDENTIFIERS = re.compile(
    r"\b[A-Za-z]{1,12}[-_/]?\d[\w/-]*"  # letters then digits: PO-4471, INV2024-17, CH123456
    r"|\b\d+[-_/][A-Za-z][\w-]*"  # digits then letters: 4471-B
    r"|\b\d+(?:-\d+){2,}\b"  # 123-456-7890, 2024-0042-17
    r"|\+\d[\d\s()-]{6,}\d"  # +44 20 7946 0958
    r"|\b(?:(?:charity|company|account|acct|order|customer|case|tax|purchase\s+order)\s*(?:number|no|nr|id|#)"
    r"|registration|register|commission|reg|invoice|ticket|reference|ref|vat|ein|po|phone|tel|number|no|nr|id)\.?"
    r"\s*(?:is|was|:|#)?\s*[:#]?\s*\d[\d\s/-]*\b(?!\s*(?:%|k\b|thousand|million|users|seats|people|students|"
    r"employees|members|staff|licen[cs]es|accounts|jobs|records|gb|tb|mb|days|weeks|months))",
    re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.,#/$€£¥])"  # not inside a word, a bigger number, an id (#123), a path or a price ($500)
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?P<tail>\s?(?:%|percent\b|per\s?cent\b|pct\b)"  # a percentage
    r"|[kKmM]\b|\s(?:thousand|million)\b"  # 8k, 2.5M, 3 million
    r"|(?:st|nd|rd|th)\b|\s?(?:am|pm)\b"  # the 3rd, 9am: not amounts
    r"|\s?(?:(?:usd|eur|gbp|dollars?|euros?)\b|[$€£¥]))?",  # 500 dollars, 500€: a price, not a quantity
    re.IGNORECASE)
_PERCENT_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s?(?:-|\u2013|to)\s?(\d+(?:\.\d+)?)\s?%")  # "20-30%": both percentages
_SCALE = {"k": 1e3, "m": 1e6, "thousand": 1e3, "million": 1e6}


def request_figures(text: str) -> dict[str, float | None]:
    """{"percent": ..., "quantity": ...} read from the user's words; None where the request names none.

    `percent` is the largest number written as a percentage ("40%", "40 %", "40 percent", "12.5 per cent";
    both ends of "20-30%" and "20 to 30%").
    `quantity` is the largest other number: "8,000 users" and "8000 users" -> 8000, "8k" -> 8000, "2.5k" ->
    2500, "1.2m" or "1.2 million" -> 1,200,000; a number glued to another unit counts as the number ("500GB" ->
    500). Left out: dates (2026-03-01, 1/3/2026, March 3, 3rd of March), times (10:30, 9am), ordinals (the
    3rd), years (1900-2099 as four plain digits after a month or a word such as in, since, by, until, before,
    after, during, "end of"), prices ($500, 500€, 500 dollars), ids (#123, PO-4471, 4471-B, "charity number
    1234567", "order no 12"), phone numbers (+44 20 7946 0958, 555-123-4567) and digits inside words (v2, Q3).
    """
    cleaned = _PERCENT_RANGE.sub(r"\1% \2%", _IDENTIFIERS.sub(" ", _DATES.sub(" ", text)))
    percents: list[float] = []
    quantities: list[float] = []
    for found in _NUMBER.finditer(cleaned):
        value = float(found["number"].replace(",", ""))
        tail = (found["tail"] or "").strip().lower()
        if tail in ("%", "pct") or tail.startswith("per"):  # percent, per cent
            percents.append(value)
        elif tail in _SCALE:
            quantities.append(value * _SCALE[tail])
        elif not tail and not _is_year(found["number"], cleaned[:found.start()]):
            quantities.append(value)
    return {"percent": max(percents, default=None), "quantity": max(quantities, default=None)}


def _is_year(number: str, before: str) -> bool:
    return len(number) == 4 and number.isdigit() and 1900 <= int(number) <= 2099 and bool(_YEAR_BEFORE.search(before))


# -- loading ------------------------------------------------------------------------------------------------


def load_decision_policy(path: Path, playbooks: Collection[str] | None = None,
                         services: Mapping[str, Collection[str]] | None = None) -> DecisionPolicy:
    """Read and check the decision policy file at `path`.

    `playbooks`: the known playbook ids, so a guideline naming another is refused; a mapping of id -> category
    (a str, or a record with a `category`, such as `knowledge.playbooks.Playbook`) also refuses a guideline
    naming a playbook of another category. `services`: {service: its metrics} from the infrastructure file, so
    capacity measures are checked. Raises DataFileError listing every problem as `file:line: field: message`.
    """
    doc, problems = _read(path)
    if doc is not None:
        problems += _problems(doc, playbooks, services)
    if problems or doc is None:
        raise DataFileError(problems)
    return _record(doc)


def _read(path: Path) -> tuple[Located | None, list[Problem]]:
    """The file's one document, if it is a mapping; else the problems that say why not."""
    if not path.is_file():
        return None, [Problem(str(path), None, "", "decision policy file does not exist; create it or point the "
                              "decision_policy_file setting at one (docs/decision-policy.md)")]
    documents, problems = load_documents([path])
    if problems:
        return None, problems
    if not documents:
        return None, [Problem(str(path), None, "", "the file is empty; start it with `categories:` "
                              "(`categories: {}` for a policy with no guidelines)")]
    if len(documents) > 1:
        return None, [documents[1].problem([], f"one YAML document expected, found {len(documents)}; remove "
                                           "the `---` separators")]
    doc = documents[0]
    if not isinstance(doc.data, dict):
        return None, [doc.problem([], f"expected a mapping with `categories:` at the top, found {_kind(doc.data)}")]
    return doc, []


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return f"a {type(value).__name__}"


def _problems(doc: Located, playbooks: Collection[str] | None,
              services: Mapping[str, Collection[str]] | None) -> list[Problem]:
    """Schema problems, then meaning problems of every category whose part of the file has the right shape."""
    problems = schema_problems(load_schema(SCHEMA_PATH), doc)
    categories = doc.data.get("categories")
    if not isinstance(categories, dict):
        return problems
    broken = {p.field for p in problems}
    seen: dict[str, str] = {}  # guideline id -> where it first appears
    for name, body in categories.items():
        path: list[str | int] = ["categories", name]
        if name not in BUSINESS:
            problems.append(doc.problem(path, _unknown_category(name)))
        prefix = f"categories.{name}"
        if any(field == prefix or field.startswith((f"{prefix}.", f"{prefix}[")) for field in broken):
            continue  # its shape is wrong already; meaning checks would only repeat that
        problems += _category_problems(doc, path, body or {}, playbooks, services, seen)
    return problems


def _unknown_category(name: object) -> str:
    valid = ", ".join(BUSINESS)
    if name in CATEGORIES:
        return (f"{name!r} is not a business category: the system handles or declines those requests itself and "
                f"no person decides them; the decision policy covers: {valid}")
    return f"unknown category {name!r}; the business categories are: {valid}"


def _category_problems(doc: Located, path: list[str | int], body: Mapping[str, Any],
                       playbooks: Collection[str] | None, services: Mapping[str, Collection[str]] | None,
                       seen: dict[str, str]) -> list[Problem]:
    category = str(path[-1])
    problems: list[Problem] = []
    for i, guideline in enumerate(body.get("guidelines") or []):
        at = [*path, "guidelines", i]
        problems += _guideline_problems(doc, at, guideline, category, playbooks, seen)
    problems += _approval_problems(doc, [*path, "approvals"], body.get("approvals") or [])
    measures = body.get("capacity_measures") or []
    if measures and category in BUSINESS and category != CAPACITY_CATEGORY:
        problems.append(doc.problem([*path, "capacity_measures"], f"capacity measures are shown on "
                                    f"{CAPACITY_CATEGORY} requests only; move them there"))
    if services is not None:
        problems += _measure_problems(doc, [*path, "capacity_measures"], measures, services)
    return problems


def _guideline_problems(doc: Located, at: list[str | int], guideline: Mapping[str, Any], category: str,
                        playbooks: Collection[str] | None, seen: dict[str, str]) -> list[Problem]:
    problems = []
    where = f"{doc.file}:{doc.line_of(at)}"
    if guideline["id"] in seen:
        problems.append(doc.problem([*at, "id"], f"duplicate guideline id {guideline['id']!r}, also at "
                                    f"{seen[guideline['id']]}; ids must be unique in the file"))
    else:
        seen[guideline["id"]] = where
    for j, playbook in enumerate(guideline.get("playbooks") or []):
        message = _playbook_problem(playbook, category, playbooks)
        if message:
            problems.append(doc.problem([*at, "playbooks", j], message))
    problems += _condition_problems(doc, [*at, "when"], guideline.get("when") or {})
    return problems


def _playbook_problem(playbook: str, category: str, playbooks: Collection[str] | None) -> str | None:
    if playbooks is None:
        return None
    if playbook not in playbooks:
        close = difflib.get_close_matches(playbook, list(playbooks), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else " (ids are the playbook files' `id`)"
        return f"unknown playbook {playbook!r}{hint}"
    owner = _category_of(playbooks, playbook)
    if owner is not None and category in BUSINESS and owner != category:
        return (f"playbook {playbook!r} is a {owner} playbook, but this guideline is under {category}; "
                f"move the guideline to {owner} or name a {category} playbook")
    return None


def _category_of(playbooks: Collection[str], playbook: str) -> str | None:
    """The playbook's category when `playbooks` maps ids to categories (or to records that carry one)."""
    if not isinstance(playbooks, Mapping):
        return None
    value = playbooks[playbook]
    found = value if isinstance(value, str) else getattr(value, "category", None)
    return found if isinstance(found, str) else None


def _approval_problems(doc: Located, path: list[str | int], rules: Iterable[Mapping[str, Any]]) -> list[Problem]:
    problems = []
    catch_all: int | None = None
    for i, rule in enumerate(rules):
        if rule["approvers"] < 1:
            problems.append(doc.problem([*path, i, "approvers"], f"approvers must be at least 1 (one person always "
                                        f"decides); got {rule['approvers']}"))
        if catch_all is not None:
            problems.append(doc.problem([*path, i], f"never used: rule {catch_all} above it has no `when`, so it "
                                        "always matches first; put the rules with conditions first"))
        elif not rule.get("when"):
            catch_all = i
        problems += _condition_problems(doc, [*path, i, "when"], rule.get("when") or {})
    return problems


def _condition_problems(doc: Located, path: PathParts, when: Mapping[str, Any]) -> list[Problem]:
    problems = []
    for fact, test in when.items():
        if fact == "plan":
            continue
        unusable = {key: value for key, value in test.items() if not math.isfinite(float(value))}
        if unusable:  # YAML reads .nan and .inf as numbers; no fact is ever compared with them sensibly
            problems.append(doc.problem([*path, fact], f"{', '.join(f'{k}: {v}' for k, v in unusable.items())}: a "
                                        "bound must be a finite number"))
            continue
        number = _number_test(fact, test)
        if not number.can_hold():
            problems.append(doc.problem([*path, fact], f"no number is {number.describe().removeprefix(fact + ' ')}:"
                                        " this condition can never hold; check the bounds"))
    return problems


def _measure_problems(doc: Located, path: list[str | int], measures: Iterable[str],
                      services: Mapping[str, Collection[str]]) -> list[Problem]:
    problems = []
    for i, measure in enumerate(measures):
        service, metric = _measure(measure)
        if service not in services:
            known = ", ".join(sorted(services))
            problems.append(doc.problem([*path, i], f"unknown service {service!r} in {measure!r}; the "
                                        f"infrastructure file has: {known}"))
        elif metric not in services[service]:
            known = ", ".join(sorted(services[service]))
            problems.append(doc.problem([*path, i], f"{service} has no metric {metric!r}; it has: {known}"))
    return problems


# -- records ------------------------------------------------------------------------------------------------


def _number_test(fact: str, test: Mapping[str, float]) -> NumberTest:
    return NumberTest(fact, **{key: float(value) for key, value in test.items()})


def _condition(when: Mapping[str, Any] | None) -> Condition:
    tests: list[NumberTest | PlanTest] = []
    for fact, test in (when or {}).items():
        if fact == "plan":
            tests.append(PlanTest((test,) if isinstance(test, str) else tuple(test)))
        else:
            tests.append(_number_test(fact, test))
    return Condition(tuple(tests))


def _record(doc: Located) -> DecisionPolicy:
    categories = {name: _category(name, body or {}) for name, body in doc.data["categories"].items()}
    return DecisionPolicy(MappingProxyType(categories), doc.file)


def _category(name: str, body: Mapping[str, Any]) -> CategoryPolicy:
    guidelines = tuple(
        Guideline(id=g["id"], category=name, text=" ".join(g["text"].split()),
                  playbooks=tuple(g.get("playbooks") or ()), when=_condition(g.get("when")),
                  recommend=g.get("recommend"), weight=float(g.get("weight", DEFAULT_WEIGHT)))
        for g in body.get("guidelines") or []
    )
    approvals = tuple(ApprovalRule(_condition(r.get("when")), r["approvers"]) for r in body.get("approvals") or [])
    measures = tuple(_measure(m) for m in body.get("capacity_measures") or [])
    return CategoryPolicy(name, guidelines, approvals, measures)


def _measure(text: str) -> tuple[str, str]:
    service, metric = text.split(".", 1)  # the schema's pattern guarantees exactly one dot
    return service, metric
