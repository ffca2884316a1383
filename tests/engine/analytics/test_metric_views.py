"""Every metric view checked against a small store built by hand, where each figure has a known right value.

The store holds one conversation of each kind the definitions tell apart (docs/metrics.md): confirmed, assumed,
pending, returned within the window, handed off, escalated, out of scope, confirmed after a second try, and one
of `firstline ask` that no metric counts; ratings with one conversation unrated; faults prevented, fixed too late
and never fixed; escalations approved as recommended, rejected against the recommendation, expired, marked "not
a business decision", and one of a technical category; learned rules promoted and retired.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pytest

from core.taxonomy import BUSINESS
from engine.analytics.metrics import METRICS, MetricsReader, parse_since
from engine.store.analyst import AnalystQueries
from engine.store.database import DuckDBStore
from engine.store.views import view_statements

BASE = dt.datetime(2026, 11, 10, tzinfo=dt.UTC).timestamp()
H = 3600.0
NOW = BASE + 5 * 24 * H
SINCE = dt.date(2026, 11, 1)


class Builder:
    def __init__(self, db: DuckDBStore) -> None:
        self.db = db
        self.n = 0
        self.rows: list[tuple[str, tuple[Any, ...]]] = []

    def id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def add(self, table: str, *values: Any) -> None:
        marks = ", ".join("?" * len(values))
        self.rows.append((f"INSERT INTO {table} VALUES ({marks})", values))

    def conversation(self, cid: str, user: str, at: float, channel: str = "web") -> None:
        self.add("conversations", cid, user, channel, at)
        self.message(cid, user, at)

    def message(self, cid: str, user: str, at: float) -> None:
        self.add("messages", self.id("m"), cid, user, "user", "text", at)

    def decision(self, cid: str, user: str, at: float, decision: str = "resolve", category: str = "performance",
                 playbook: str | None = "slow_dashboard") -> str:
        did = self.id("d")
        self.add("decisions", did, self.id("m"), cid, user, decision, category, playbook, "answer", 0.9, "v1", False,
                 "reply", "[]", 1000.0, at)  # stored 1 s after its message
        return did

    def verdict(self, cid: str, user: str, verdict: str, at: float) -> None:
        self.add("user_verdicts", self.id("v"), cid, user, "slow_dashboard", verdict, at)

    def commit(self) -> None:
        self.db.transaction(self.rows)


@pytest.fixture()
def store(tmp_path):
    db = DuckDBStore(tmp_path / "metrics.duckdb", clock=lambda: NOW)
    b = Builder(db)
    t = BASE
    # c1 confirmed on the first answer, a minute after the first message; rated 5.
    b.conversation("c1", "u1", t)
    b.decision("c1", "u1", t + 1)
    b.verdict("c1", "u1", "fixed", t + 60)
    b.add("feedback", "f1", "c1", "u1", 5, "", t + 70)
    # c2 answered, then silence for more than the 24 h window: assumed (resolved at the answer, 1 s in).
    b.conversation("c2", "u2", t)
    b.decision("c2", "u2", t + 1)
    # c3 answered an hour before now: pending, in no denominator.
    b.conversation("c3", "u3", NOW - H)
    b.decision("c3", "u3", NOW - H + 1)
    # c4 answered and left, but the user opened c5 about the same problem 2 h later: c4 returned, c5 confirmed.
    b.conversation("c4", "u4", t)
    b.decision("c4", "u4", t + 1)
    b.conversation("c5", "u4", t + 2 * H)
    b.decision("c5", "u4", t + 2 * H + 1)
    b.verdict("c5", "u4", "fixed", t + 2 * H + 120)
    # c6 not fixed, then handed to engineering; rated 2.
    b.conversation("c6", "u6", t)
    b.decision("c6", "u6", t + 1)
    b.verdict("c6", "u6", "not_fixed", t + 30)
    b.message("c6", "u6", t + 30)
    handed = b.decision("c6", "u6", t + 31)
    b.add("handoffs", "h1", handed, "c6", "u6", "engineering", "s", "{}", "open", t + 31)
    b.add("feedback", "f2", "c6", "u6", 2, "", t + 40)
    # c7 a pricing request: escalated (and expired below).
    b.conversation("c7", "u7", t)
    b.decision("c7", "u7", t + 1, "escalate", "pricing", "discount")
    # c8 out of scope only.
    b.conversation("c8", "u8", t)
    b.decision("c8", "u8", t + 1, "decline", "out_of_scope", None)
    # c9 not fixed, a second answer, then fixed ten minutes after the first message: confirmed, not first contact.
    b.conversation("c9", "u9", t)
    b.decision("c9", "u9", t + 1)
    b.verdict("c9", "u9", "not_fixed", t + 100)
    b.message("c9", "u9", t + 100)
    b.decision("c9", "u9", t + 101)
    b.verdict("c9", "u9", "fixed", t + 600)
    # c11 asked which problem it was an hour ago: pending, not yet unresolved.
    b.conversation("c11", "u11", NOW - H)
    b.decision("c11", "u11", NOW - H + 1, "clarify")
    # c12 "still broken", a second answer, then silence for days: unresolved, never assumed.
    b.conversation("c12", "u12", t)
    b.decision("c12", "u12", t + 1)
    b.verdict("c12", "u12", "not_fixed", t + 100)
    b.message("c12", "u12", t + 100)
    b.decision("c12", "u12", t + 101)
    # c13 only "hello", not understood as anything in scope: out of scope.
    b.conversation("c13", "u13", t)
    b.decision("c13", "u13", t + 1, "clarify", "out_of_scope", None)
    # c10 a curator's `firstline ask`: counted nowhere.
    b.conversation("c10", "cli", t, channel="cli")
    b.decision("c10", "cli", t + 1)
    b.verdict("c10", "cli", "fixed", t + 5)
    b.add("feedback", "f3", "c10", "cli", 1, "", t + 6)
    # Escalations: expired (pricing), approved as recommended (policy), rejected against the recommendation and
    # marked not a business decision (subscription_benefits), a technical one still open.
    for eid, category, status in (("e1", "pricing", "expired"), ("e2", "policy", "approved"),
                                  ("e3", "subscription_benefits", "rejected"), ("e4", "performance", "open")):
        b.add("escalations", eid, "d0", "c7", "u7", category, "summary", status, t + 2, None, None, None)
    b.add("escalation_events", "ev1", "e2", t + H, "dana", "decided", "approved", "ok",
          json.dumps({"recommended": "approved"}))
    b.add("escalation_events", "ev2", "e3", t + H, "dana", "decided", "rejected", "no",
          json.dumps({"recommended": "approved"}))
    b.add("escalation_events", "ev3", "e3", t + H, "dana", "not_business", "", "a login problem", "{}")
    b.add("escalation_events", "ev4", "e1", t + 2 * H, "system", "expired", "expired", "late", "{}")
    # Faults, hours apart: predicted and fixed before the limit (prevented); a breach fixed (too late); predicted,
    # then a breach 2 min later in the same incident, fixed after it; an alert never fixed; a database fault seen
    # on two callers at once, fixed at its root before any limit (one fault, prevented).
    signal = "INSERT INTO signals VALUES (?, ?, ?, ?, ?, 'hard', 1, 2, NULL, NULL, NULL, NULL, '')"
    for sid, at, service, metric, kind in (("s1", t, "api", "latency", "trend"),
                                          ("s2", t + 2 * H, "db", "cpu", "threshold"),
                                          ("s3", t + 4 * H, "web", "errors", "trend"),
                                          ("s4", t + 4 * H + 120, "web", "errors", "threshold"),
                                          ("s5", t + 6 * H, "cache", "memory", "alert"),
                                          ("s6", t + 8 * H, "web", "errors", "trend"),
                                          ("s7", t + 8 * H + 100, "api", "errors", "trend"),
                                          ("s8", t + 8 * H + 100, "db", "pool", "trend")):
        b.rows.append((signal, (sid, at, service, metric, kind)))
    remediation = ("INSERT INTO remediations (id, signal_id, action, target, params, adapter, status, detail, "
                   "started_at, finished_at) VALUES (?, ?, 'act', 'x', '{}', 'sim', ?, '', ?, ?)")
    for rid, sid, status, done in (("r1", "s1", "succeeded", t + 60), ("r2", "s2", "succeeded", t + 2 * H + 60),
                                   ("r3", "s3", "succeeded", t + 4 * H + 300), ("r4", "s5", "failed", t + 6 * H + 60),
                                   ("r5", "s8", "succeeded", t + 8 * H + 400)):
        b.rows.append((remediation, (rid, sid, status, done - 30, done)))
    b.add("handoffs", "h2", "s5", "", "monitor", "engineering", "s", "{}", "open", t + 60)
    # Learned rules: r1 proposed then promoted, r2 promoted then retired.
    for name, version, status in (("r1", 1, "proposed"), ("r1", 2, "active"), ("r2", 1, "active"),
                                  ("r2", 2, "retired")):
        b.add("learned_rules", name, version, status, "{}", "{}", "", "curator", t + version)
    b.commit()
    yield db
    db.close()


def runner(db: DuckDBStore):
    """The analysts' console on the store, measuring at NOW: the path every figure takes."""
    queries = AnalystQueries(db, clock=lambda: NOW, time_limit_s=30.0, row_cap=1000)

    def run(sql: str, params: Mapping[str, object]) -> dict[str, Any]:
        return queries.run(sql, params).to_json()
    return run


def outcomes(db: DuckDBStore) -> dict[str, str]:
    db.execute("SET VARIABLE firstline_now = ?", (NOW,))
    return dict(db.execute("SELECT conversation_id, outcome FROM conversation_outcomes"))


def test_each_conversation_counts_once_with_its_outcome(store):
    assert outcomes(store) == {"c1": "confirmed", "c2": "assumed", "c3": "pending", "c4": "returned",
                               "c5": "confirmed", "c6": "handed_off", "c7": "escalated", "c8": "out_of_scope",
                               "c9": "confirmed", "c11": "pending", "c12": "unresolved", "c13": "out_of_scope"}


def test_a_pending_conversation_becomes_assumed_when_its_window_passes(store):
    store.execute("SET VARIABLE firstline_now = ?", (NOW + 24 * H,))
    found = dict(store.execute("SELECT conversation_id, outcome FROM conversation_outcomes"))
    assert (found["c3"], found["c11"]) == ("assumed", "unresolved")


def test_the_seed_table_has_the_right_value_on_every_line(store):
    lines = {line.label: line for line in MetricsReader(runner(store)).table(SINCE)}
    value = {label: line.value for label, line in lines.items()}
    # Decided: c1, c2, c4, c5, c6, c7, c9, c12; not pending: those and c8, c13.
    assert value["AI resolution rate (confirmed + assumed)"] == pytest.approx(4 / 8)
    assert lines["AI resolution rate (confirmed + assumed)"].detail == {"numerator": 4, "denominator": 8,
                                                                         "pending": 2}
    assert value["AI resolution rate (confirmed only)"] == pytest.approx(3 / 8)
    assert value["AI resolution rate (of all new conversations)"] == pytest.approx(4 / 10)
    # Resolution times 1, 60, 120 and 600 s: median 90 s, p90 by linear interpolation 456 s.
    assert value["Time to resolution, median"] == pytest.approx(1.5)
    assert value["Time to resolution, 90th percentile"] == pytest.approx(456 / 60)
    assert value["First-contact resolution"] == pytest.approx(3 / 8)
    assert value["User satisfaction (CSAT)"] == pytest.approx(1 / 2)
    assert value["Proactive prevention rate"] == pytest.approx(2 / 5)
    assert value["Escalation rate (business decisions)"] == pytest.approx(1 / 10)
    assert value["False escalation rate"] == pytest.approx(2 / 4)
    assert lines["False escalation rate"].detail["marked_not_business"] == 1
    assert lines["False escalation rate"].detail["technical_sent_to_person"] == 1
    assert value["Hand-offs to engineering"] == 2
    assert lines["Hand-offs to engineering"].detail == {"from_conversations": 1, "from_monitor": 1}
    assert value["Learned rules promoted / retired"] == 2
    assert lines["Learned rules promoted / retired"].detail["retired"] == 1
    by_category = {line.detail["category"]: line.detail for line in lines.values()
                   if line.key == "escalations_by_category"}
    assert set(by_category) == {*BUSINESS, "performance"}
    assert by_category["pricing"]["expired"] == 1
    assert by_category["policy"] == {"category": "policy", "raised": 1, "approved": 1, "rejected": 0, "expired": 0,
                                     "waiting": 0, "agreed": 1, "disagreed": 0, "no_recommendation": 0}
    assert by_category["subscription_benefits"]["disagreed"] == 1
    assert by_category["hosting_capacity"] == {"category": "hosting_capacity"}
    assert by_category["performance"]["waiting"] == 1


def test_a_period_after_the_data_has_no_data_rather_than_zero(store):
    lines = {line.key: line for line in MetricsReader(runner(store)).table(dt.date(2026, 11, 20))}
    assert lines["ai_resolution_rate"].value is None
    assert lines["ai_resolution_rate"].display.startswith("no data")
    assert lines["handoffs_to_engineering"].value == 0


def test_daily_trends_are_per_day(store):
    days = MetricsReader(runner(store)).daily("csat", SINCE)
    assert days == [{"day": "2026-11-10", "value": pytest.approx(0.5)}]  # a share: no ratings, no point


def test_a_chart_of_counts_shows_quiet_days_as_zero(store):
    days = MetricsReader(runner(store)).daily("handoffs_to_engineering", dt.date(2026, 11, 8))
    assert [d["day"] for d in days] == [f"2026-11-{n:02}" for n in range(8, 16)]  # to NOW's day, 2026-11-15
    assert [d["value"] for d in days] == [0, 0, 2, 0, 0, 0, 0, 0]
    by_category = MetricsReader(runner(store)).daily("escalations_by_category", dt.date(2026, 11, 10))
    assert len(by_category) == 6 * len(BUSINESS)
    assert {(d["day"], d["series"]): d["value"] for d in by_category}[("2026-11-10", "pricing")] == 1


def test_a_metric_cut_by_the_row_cap_is_refused_never_shown_wrong(store):
    from core.errors import InputError
    queries = AnalystQueries(store, clock=lambda: NOW, time_limit_s=30.0, row_cap=1)
    with pytest.raises(InputError, match="row cap 1"):
        MetricsReader(lambda sql, params: queries.run(sql, params).to_json()).table(SINCE)


def test_the_views_name_the_business_categories_of_the_taxonomy():
    macro = next(s for s in view_statements() if "metric_business_categories()" in s and "MACRO" in s)
    assert all(f"'{c}'" in macro for c in BUSINESS) and macro.count("'") == 2 * len(BUSINESS)


def test_every_metric_reads_a_view_that_exists(store):
    views = {name for (name,) in store.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    assert {m.view for m in METRICS} <= views


@pytest.mark.parametrize("text", ["30", "30x", "d30", "-3d", "0d", "99999d", "3651d", "\uff13\uff10d", "0001-01-01",
                                  "20261101", "2026-13-01", "yesterday", "",
                                  "2027-01-01"])
def test_a_malformed_since_is_refused_saying_what_is_accepted(text):
    from core.errors import InputError
    with pytest.raises(InputError, match="since"):
        parse_since(text, dt.date(2026, 12, 6))


def test_since_reads_days_weeks_and_dates():
    today = dt.date(2026, 12, 6)
    assert parse_since("30d", today) == dt.date(2026, 11, 6)
    assert parse_since("2w", today) == dt.date(2026, 11, 22)
    assert parse_since(" 2026-11-01 ", today) == dt.date(2026, 11, 1)


def test_the_curator_page_counts_resolved_conversations_not_resolve_decisions(store):
    from engine.store.curation import CurationQueries
    # slow_dashboard: 10 decisions (a hand-off, a second try and a `firstline ask` among them); resolved: c1, c2, c5
    # and c9. Counting `resolve` decisions said 10.
    assert CurationQueries(store).playbook_usage()["slow_dashboard"] == (13, 4)  # c11 and c12 too
