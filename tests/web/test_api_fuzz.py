"""A schema-driven fuzz of the JSON API (schemathesis): every operation of the OpenAPI document the app serves is
called with requests built from that document, and every answer must be no 5xx, a documented status, a documented
content type, and a body that matches the document.

Each operation gets, as the caller it is for, `EXAMPLES` valid and `EXAMPLES` invalid requests; where its path
names a record or its body has first checks to pass, `EXAMPLES` valid ones on real records with such bodies; where
it takes a body, `EXAMPLES` of those with a lone surrogate in every string; and `AS_ANYONE` valid ones as every
caller and as a bare browser. About 3,450 requests in all, derandomised so every run sends the same ones.

One app for the module: its write limits raised past what the fuzz sends (the limiter has its own tests in
test_limits.py), an identity secret set so /identity checks signatures, and a few real records (a conversation,
decisions, a business request, a hand-off, a learned rule, a dead letter) so requests reach past "not found".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from core.taxonomy import CATEGORIES
from engine.access.identity import user_hash
from engine.access.tokens import Role
from engine.store.metric_queries import METRICS
from engine.wiring import Parts
from knowledge.base import KnowledgeBase
from tests.conftest import build_parts, make_settings
from tests.engine.desk.test_reaching_users import handed_off
from tests.engine.test_learning_dialogue import second_try_works
from web import create_app
from web.openapi import document

EXAMPLES = 25  # per operation and kind of request
AS_ANYONE = 4  # per operation and caller, for the requests sent as every caller
IDENTITY_SECRET = "fuzz-identity-secret"  # so /identity checks the signatures it is sent
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Deleting history last: the fuzz sends every request as every caller too, and the records must last till then.
OPERATIONS = sorted(((path, method) for path, methods in document()["paths"].items() for method in methods),
                    key=lambda operation: operation == ("/api/v1/history", "delete"))
# Who calls each group of routes: a token's user and role, or the browser's cookie alone (None: /identity refuses
# a token). The rest is the chat's user. Deleting history has a user of its own, so the records stay for the rest.
CALLERS = (("/api/v1/alerts/", "fuzz-operator", Role.OPERATOR),
           ("/api/v1/escalations", "fuzz-decider", Role.DECIDER),
           ("/api/v1/handoffs", "fuzz-engineer", Role.ENGINEER),
           ("/api/v1/learned-rules", "fuzz-curator", Role.CURATOR),
           ("/api/v1/playbooks", "fuzz-curator", Role.CURATOR),
           ("/api/v1/unmatched", "fuzz-curator", Role.CURATOR),
           ("/api/v1/analytics/", "fuzz-analyst", Role.ANALYST),
           ("/api/v1/history", "fuzz-leaver", Role.USER),
           ("/api/v1/identity", None, None),
           ("/api/v1/", "fuzz-user", Role.USER))


@dataclass
class Target:
    """The app under fuzz, its document as schemathesis read it from the app, a token per caller, and real ids per
    path parameter."""

    app: Flask
    schema: schemathesis.BaseSchema
    tokens: dict[str, str]
    ids: dict[str, list[str]]

    def headers(self, path: str) -> dict[str, str]:
        user = next(user for prefix, user, _ in CALLERS if path.startswith(prefix))
        return {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}


def fuzz_target(data_dir: Path, knowledge: KnowledgeBase) -> tuple[Target, Parts]:
    """An app on `data_dir` with the limits lifted and a few real records in it; the caller closes the parts."""
    settings_ = make_settings(data_dir, rate_limit_messages=1_000_000, rate_limit_per_address=1_000_000,
                              simulation_faults=["slow_queries"], remediation_cooldown_s=0,
                              identity_secret=IDENTITY_SECRET)
    parts = build_parts(settings_, knowledge=knowledge)
    app = create_app(settings_, parts)
    tokens = {user: parts.tokens.create(user, role).token for _, user, role in CALLERS if user and role}
    for user in ("ann", "bob"):  # two users whose second remedy worked: a learned rule, in shadow
        second_try_works(parts, user)
    client = app.test_client()
    as_user = {"Authorization": f"Bearer {tokens['fuzz-user']}"}
    conversation = client.post("/api/v1/conversations", headers=as_user).get_json()["conversation_id"]
    asked = [client.post("/api/v1/messages", headers=as_user, json={"text": text}).get_json()["decision_id"]
             for text in ("The dashboard is loading really slowly", "purple elephants sing at noon")]
    client.post(f"/api/v1/conversations/{conversation}/messages", headers=as_user,
                json={"text": "We're a registered charity. Can we get a non-profit discount?"})
    handoff, _ = handed_off(parts, "fuzz-user")
    refused = client.post("/api/v1/alerts/alertmanager", json={"version": "4"},
                          headers={"Authorization": f"Bearer {tokens['fuzz-operator']}"})
    ids = {"conversation_id": [conversation], "decision_id": asked,
           "escalation_id": [row.id for row in parts.dialogue.escalations.find(["open"])],
           "handoff_id": [handoff["id"]], "letter_id": [refused.headers.get("X-Firstline-Dead-Letter", "")],
           "name": [rule.name for rule in parts.dialogue.learning.ledger.rules()],
           "key": [m.key for m in METRICS], "verb": ["approve", "reject", "retire", "shadow", "revert"],
           "playbook": [p["id"] for p in parts.curation.playbooks()]}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return Target(app, schema, tokens, {name: [i for i in found if i] for name, found in ids.items()}), parts


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, fresh_knowledge: Callable[[], KnowledgeBase]) -> Iterator[Target]:
    found, parts = fuzz_target(tmp_path_factory.mktemp("fuzz"), fresh_knowledge())
    yield found
    parts.close()


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=20))


def real_bodies(target: Target) -> dict[str, st.SearchStrategy[dict]]:
    """Bodies that pass the handler's first checks, per path, so what comes after them is fuzzed too."""
    return {
        "/api/v1/analytics/query": st.fixed_dictionaries({
            "sql": st.sampled_from(["SELECT :v AS v", "SELECT count(*) AS n, :v AS v FROM decisions",
                                    "SELECT x FROM range(3) t(x) WHERE x < :v"]),
            "params": st.fixed_dictionaries({"v": SCALARS})}),
        "/api/v1/learned-rules/{name}/{verb}": st.fixed_dictionaries(
            {"reason": st.text(max_size=40)}, optional={"version": st.integers(-1, 4)}),
        "/api/v1/unmatched/{decision_id}/add": st.fixed_dictionaries(
            {"playbook": st.sampled_from(target.ids["playbook"])}),
        "/api/v1/unmatched/{decision_id}/new": st.fixed_dictionaries(
            {"id": st.from_regex(r"[a-z][a-z0-9_]{2,30}", fullmatch=True), "category": st.sampled_from(CATEGORIES)},
            optional={"title": st.text(max_size=60)}),
        "/api/v1/identity": st.fixed_dictionaries(
            {"user_id": st.just("fuzz-browser"), "user_hash": st.just(user_hash(IDENTITY_SECRET, "fuzz-browser"))},
            optional={"email": st.emails() | st.text(max_size=40), "email_hash": st.text(max_size=70)}),
        "/api/v1/escalations/{escalation_id}/decision": st.fixed_dictionaries(
            {"outcome": st.sampled_from(["approved", "rejected", "declined"]), "reason": st.text(max_size=40)}),
    }


def with_lone_surrogates(value: object) -> object:
    """`value` with an unpaired surrogate (a `\\ud800` escape in the JSON sent) added to every string in it."""
    if isinstance(value, str):
        return value + "\ud800"
    if isinstance(value, dict):
        return {key: with_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_lone_surrogates(item) for item in value]
    return value


@dataclass(frozen=True)
class Way:
    """How a generated request is sent: with a lone surrogate added to every string of its body, and as whom (a
    caller's name in `Target.tokens`, "" for the browser's cookie alone, None for the caller the route is for)."""

    spoiled: bool = False
    caller: str | None = None


Kind = tuple[st.SearchStrategy[tuple[schemathesis.Case, Way]], int]


def request_kinds(target: Target, path: str, method: str) -> list[Kind]:
    """The kinds of request each operation gets, each with how many to send: valid and invalid ones built from the
    document; valid ones on real records (where the path names one) with bodies that pass the first checks (where
    there are such); those again with a lone surrogate in every string of the body (text Hypothesis never makes on
    its own, and no UTF-8 writer takes); and a few valid ones as every caller, and as none (those the route is not
    for must be refused in a documented way)."""
    operation = target.schema[path][method]
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    kinds = [valid, operation.as_strategy(GenerationMode.NEGATIVE)]
    spec = document()["paths"][path][method]
    names = [p["name"] for p in spec.get("parameters", []) if p["in"] == "path"]
    real = st.fixed_dictionaries({n: st.sampled_from(target.ids[n]) for n in names if target.ids.get(n)})
    body = real_bodies(target).get(path) if "requestBody" in spec else None
    if (names and all(target.ids.get(name) for name in names)) or body is not None:
        valid = st.tuples(real, body if body is not None else st.just(None)).flatmap(
            lambda chosen: operation.as_strategy(GenerationMode.POSITIVE, path_parameters=chosen[0] or None,
                                                 **({} if chosen[1] is None else {"body": chosen[1]})))
        kinds.append(valid)
    found = [(kind.map(lambda case: (case, Way())), EXAMPLES) for kind in kinds]
    if "requestBody" in spec:
        found.append((valid.map(lambda case: (case, Way(spoiled=True))), EXAMPLES))
    for caller in ["", *sorted(target.tokens)]:
        found.append((valid.map(lambda case, caller=caller: (case, Way(caller=caller))), AS_ANYONE))
    return found


def send(target: Target, path: str, case: schemathesis.Case, way: Way = Way()) -> schemathesis.Response:
    """Send `case` the `way` asked, and check the answer against the document."""
    if way.caller is None:
        headers = target.headers(path)
    else:
        headers = {"Authorization": f"Bearer {target.tokens[way.caller]}"} if way.caller else {}
    if not headers:  # the browser's cookie alone
        # A generated (invalid) Authorization would stop every request at the door; refused tokens have their
        # own tests (test_security.py, test_conversation_api.py).
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    # The spoiled body goes in place of the case's own, which schemathesis would not validate (nor can it encode).
    extra = {"json": with_lone_surrogates(case.body)} if way.spoiled and isinstance(case.body, dict) else {}
    response = case.call(app=target.app, headers=headers, **extra)
    case.validate_response(response, checks=CHECKS, headers=headers)
    return response


def fuzz(target: Target, path: str, kind: st.SearchStrategy[tuple[schemathesis.Case, Way]], examples: int) -> None:
    """`examples` requests of one kind, the same ones on every run."""

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(sent=kind)
    def run(sent: tuple[schemathesis.Case, Way]) -> None:
        send(target, path, *sent)

    run()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_operation_answers_5xx_or_off_the_document(target: Target, path: str, method: str) -> None:
    for kind, examples in request_kinds(target, path, method):
        fuzz(target, path, kind, examples)
