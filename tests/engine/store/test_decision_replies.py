"""Which message holds each decision's reply (migration 11): written with the decision, read back with the
conversation (its technical detail), paired for decisions stored before the table existed, forgotten with them."""

import duckdb

from engine.store import Decisions, DuckDBStore, Privacy
from engine.store.decisions import ActionRow, DecisionRecord


def ids():
    counter = iter(range(1, 1000))
    return lambda: f"id{next(counter):03d}"


def record(decision_id: str, reply: str, now: float, user: str = "ann") -> DecisionRecord:
    return DecisionRecord(
        id=decision_id, message_id=f"m-{decision_id}", conversation_id="c1", user_id=user, decision="resolve",
        category="performance", playbook="dashboard_slow", band="answer", confidence=0.91234, ruleset_version="v1",
        dry_run=False, reply=reply, latency_ms=3.0, created_at=now,
        rules_fired=[("slow_queries", {}), ("becomes_hypothesis", {}), ("becomes_hypothesis", {})],
        actions=[ActionRow(1, "kill_slow_queries", "database", {}, "slow_queries", "succeeded", "", now, now)])


def converse(decisions: Decisions, now: float) -> list[str]:
    """A conversation in which two decisions, at one instant, replied the same words: the pairing must not mix
    them up. Returns the decisions' ids in the order written."""
    new_id = ids()
    decisions.start_conversation("c1", "ann", "web")
    written = []
    for decision_id, reply in (("d1", "Done."), ("d2", "Done."), ("d3", "Something else.")):
        decisions.add_message(f"m-{decision_id}", "c1", "ann", "user", f"problem {decision_id}")
        decisions.transaction(decisions.decision_statements(record(decision_id, reply, now), new_id))
        written.append(decision_id)
    return written


def test_each_reply_comes_back_with_its_own_decision(store):
    decisions = Decisions(store)
    converse(decisions, store.clock())
    lines = decisions.transcript("c1", "ann")
    assert [(line.role, line.text) for line in lines] == [
        ("user", "problem d1"), ("assistant", "Done."), ("user", "problem d2"), ("assistant", "Done."),
        ("user", "problem d3"), ("assistant", "Something else.")]
    assert [line.decision.decision_id if line.decision else None for line in lines] == [
        None, "d1", None, "d2", None, "d3"]
    summary = lines[1].decision
    assert summary.actions == (("kill_slow_queries", "database", "succeeded"),)
    assert summary.rules_fired == ("slow_queries", "becomes_hypothesis", "becomes_hypothesis")
    assert (summary.decision, summary.category, summary.playbook) == ("resolve", "performance", "dashboard_slow")
    assert decisions.transcript("c1", "bob") == []  # someone else reads nothing of it


def test_decisions_stored_before_the_table_are_paired_with_their_replies(tmp_path, clock):
    path = tmp_path / "old.duckdb"
    store = DuckDBStore(path, clock)
    converse(Decisions(store), clock())
    paired = store.execute("SELECT decision_id, message_id FROM decision_replies ORDER BY decision_id")
    store.close()
    old = duckdb.connect(str(path))  # a file from before migration 11: no table, the same rows
    old.execute("DROP TABLE decision_replies")
    old.execute("DELETE FROM schema_version WHERE version >= 11")
    old.close()
    reopened = DuckDBStore(path, clock)
    try:
        assert reopened.execute("SELECT decision_id, message_id FROM decision_replies ORDER BY decision_id") == paired
        assert len(paired) == 3 and len({m for _, m in paired}) == 3
    finally:
        reopened.close()


def test_forgetting_the_user_forgets_which_reply_was_which(store):
    converse(Decisions(store), store.clock())
    counts = Privacy(store).forget("ann")
    assert counts["decision_replies"] == 3
    assert store.execute("SELECT count(*) FROM decision_replies") == [(0,)]
