"""What an audit reads back from a data folder after a run (`bench/soak.py` checks nothing accepted was lost):
named read-only queries, run through the analysts' read-only console (`firstline sql`), kept here because SQL
lives in the store."""

from __future__ import annotations

AUDIT_QUERIES: dict[str, str] = {
    "user_messages": "SELECT conversation_id, text FROM messages WHERE role = 'user'",
    "alert_keys": "SELECT fingerprint, starts_at, status FROM alerts",
    "notification_figures": ("SELECT count(*), coalesce(sum(summarised), 0), coalesce(sum(truncated), 0), "
                             "coalesce(sum(derived), 0) FROM alert_notifications"),
    "tables": "SELECT table_name FROM duckdb_tables()",
    "dead_letters": "SELECT id, status, kept_bytes FROM dead_letters",
    "remediations_by_requester": ("SELECT split_part(requester, ':', 1), status, count(*) FROM remediations "
                                  "GROUP BY ALL ORDER BY ALL"),
    "signals_by_kind": "SELECT kind, state, count(*) FROM signals GROUP BY ALL ORDER BY ALL",
    "telemetry_problems_by_reason": "SELECT reason, count(*) FROM telemetry_problems GROUP BY ALL ORDER BY 2 DESC",
}
# One number each: how many rows of each kind a run left behind.
AUDIT_COUNTS: dict[str, str] = {
    "incidents": "SELECT count(*) FROM incidents",
    "storm_handoffs": "SELECT count(*) FROM incidents WHERE handoff_id IS NOT NULL",
    "handoffs": "SELECT count(*) FROM handoffs",
    "escalations": "SELECT count(*) FROM escalations",
    "decisions": "SELECT count(*) FROM decisions",
    "learned_rules": "SELECT count(DISTINCT name) FROM learned_rules",
    "telemetry_samples": "SELECT count(*) FROM telemetry",
}
