"""Looking up a decision's trace, and asking why a named rule did or did not fire on its facts.

The question is answered on the decision's own facts (as they stood when it ended), by the evaluator in
`rules.evaluate`, which gives `none` and every test the meaning the engine gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import NotFoundError
from engine.decision.trace import facts_of
from engine.store.decisions import EventStore
from rules import evaluate
from rules.model import RuleBase


def decision_trace(store: EventStore, rulebase: RuleBase, decision_id: str, user_id: str | None = None,
                   why_not: Sequence[str] = ()) -> dict[str, Any]:
    """A stored decision's trace; with `why_not`, why each named rule did or did not fire on its facts.

    `user_id` limits the lookup to that user's decisions (the web passes it; the operator's CLI does not).
    """
    trace = store.trace(decision_id)
    if trace is None or (user_id is not None and trace["user_id"] != user_id):
        raise NotFoundError(f"no decision {decision_id!r}; decision ids are in `ask --json --explain` output "
                         "and the decisions table")
    if why_not:
        trace["why_not"] = [explain_rule(trace, rulebase, name) for name in why_not]
    return trace


def explain_rule(trace: Mapping[str, Any], rulebase: RuleBase, rule_name: str) -> dict[str, Any]:
    """Why `rule_name` did or did not fire, evaluated on the facts of `trace`."""
    rule = rulebase.get(rule_name)
    if rule is None:
        raise NotFoundError(f"no rule named {rule_name!r}; `firstline rules list` shows them")
    fired = any(f["rule"] == rule_name for f in trace["fired"])
    report = evaluate.why_not(rule, facts_of(trace), fired)
    result = {**report.as_dict(), "text": report.lines()}
    if trace["ruleset_version"] != rulebase.version:
        result["note"] = (f"the decision ran on rule version {trace['ruleset_version']}; this explains the rule "
                          f"as it is now (version {rulebase.version})")
    return result
