"""The one schema of the store: every table, created and changed by ordered, numbered migrations.

A file records which migrations it has had in `schema_version` (version, description, applied_at); opening a
file applies the missing ones in order, each in its own transaction, so an interrupted upgrade resumes where
it stopped. A file written by a newer Firstline (a version this one does not know) is refused rather than
guessed at. A new table or column is a new migration at the end of `MIGRATIONS`; a released migration is
never edited. (The pattern is Datasette's internal database and Django's numbered migrations.)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str

    def statements(self) -> list[str]:
        return [s.strip() for s in self.sql.split(";") if s.strip()]


VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at DOUBLE NOT NULL
)
"""

# Conversations and what was decided in them (engine/store/decisions.py, conversations.py, escalations.py).
CONVERSATION_TABLES = """
CREATE TABLE IF NOT EXISTS conversations (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, channel VARCHAR NOT NULL, started_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL, text VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    id VARCHAR PRIMARY KEY, message_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, decision VARCHAR NOT NULL, category VARCHAR NOT NULL, playbook VARCHAR,
    band VARCHAR NOT NULL, confidence DOUBLE NOT NULL, ruleset_version VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL,
    reply VARCHAR NOT NULL, errors VARCHAR NOT NULL, latency_ms DOUBLE NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    decision_id VARCHAR NOT NULL, rank INTEGER NOT NULL, playbook VARCHAR NOT NULL, category VARCHAR NOT NULL,
    score DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    decision_id VARCHAR NOT NULL, seq INTEGER NOT NULL, type VARCHAR NOT NULL, origin VARCHAR NOT NULL,
    payload JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS rules_fired (
    decision_id VARCHAR NOT NULL, seq INTEGER NOT NULL, rule VARCHAR NOT NULL, bindings JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, seq INTEGER NOT NULL,
    name VARCHAR NOT NULL, target VARCHAR NOT NULL, params JSON NOT NULL, rule VARCHAR, status VARCHAR NOT NULL,
    detail VARCHAR NOT NULL, started_at DOUBLE NOT NULL, finished_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS fix_verdicts (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, decision_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL, target VARCHAR NOT NULL, verdict VARCHAR NOT NULL, said_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS handoffs (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, team VARCHAR NOT NULL, summary VARCHAR NOT NULL, diagnostics JSON NOT NULL,
    status VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    decision_id VARCHAR PRIMARY KEY, ruleset_version VARCHAR NOT NULL, trace JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    user_id VARCHAR PRIMARY KEY, plan VARCHAR NOT NULL, seats INTEGER NOT NULL, role VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS escalations (
    id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL, category VARCHAR NOT NULL, summary VARCHAR NOT NULL, status VARCHAR NOT NULL,
    created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS escalation_decisions (
    escalation_id VARCHAR PRIMARY KEY, decided_by VARCHAR NOT NULL, outcome VARCHAR NOT NULL,
    note VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS conversation_state (
    conversation_id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, payload JSON NOT NULL,
    updated_at DOUBLE NOT NULL, version BIGINT DEFAULT 0
);
CREATE TABLE IF NOT EXISTS feedback (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, rating INTEGER NOT NULL,
    comment VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS learned_examples (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, playbook VARCHAR NOT NULL,
    text VARCHAR NOT NULL, created_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, role VARCHAR NOT NULL, salt VARCHAR NOT NULL,
    hash VARCHAR NOT NULL, created_at DOUBLE NOT NULL, revoked BOOLEAN NOT NULL
)
"""

# Self-healing's audit trail (engine/store/healing.py).
HEALING_TABLES = """
CREATE TABLE IF NOT EXISTS telemetry (
    observed_at DOUBLE NOT NULL, source VARCHAR NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS signals (
    id VARCHAR PRIMARY KEY, observed_at DOUBLE NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, state VARCHAR NOT NULL, value DOUBLE NOT NULL, limit_value DOUBLE NOT NULL,
    eta_s DOUBLE, score DOUBLE, root_cause VARCHAR, fingerprint VARCHAR, detail VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint VARCHAR NOT NULL, starts_at VARCHAR NOT NULL, status VARCHAR NOT NULL, received_at DOUBLE NOT NULL,
    alertname VARCHAR NOT NULL, service VARCHAR, metric VARCHAR, labels JSON NOT NULL, annotations JSON NOT NULL,
    handled_at DOUBLE, PRIMARY KEY (fingerprint, starts_at, status)
);
CREATE TABLE IF NOT EXISTS remediations (
    id VARCHAR PRIMARY KEY, signal_id VARCHAR, rule VARCHAR, action VARCHAR NOT NULL, target VARCHAR NOT NULL,
    params JSON NOT NULL, adapter VARCHAR NOT NULL, status VARCHAR NOT NULL, detail VARCHAR NOT NULL,
    started_at DOUBLE NOT NULL, finished_at DOUBLE, verify_service VARCHAR, verify_metric VARCHAR,
    verify_by DOUBLE, rollback VARCHAR, requester VARCHAR NOT NULL DEFAULT 'monitor',
    subject VARCHAR NOT NULL DEFAULT ''
)
"""

# What the system learns (engine/store/learning.py).
LEARNING_TABLES = """
CREATE TABLE IF NOT EXISTS remedy_outcomes (
    playbook VARCHAR, action VARCHAR, target VARCHAR, conversation_id VARCHAR, user_id VARCHAR,
    succeeded BOOLEAN, at_s DOUBLE, weight DOUBLE DEFAULT 1.0, PRIMARY KEY (playbook, action, target, conversation_id)
);
CREATE TABLE IF NOT EXISTS resolution_votes (
    fix_key VARCHAR, conversation_id VARCHAR, user_id VARCHAR, playbook VARCHAR, service VARCHAR,
    metric VARCHAR, action VARCHAR, target VARCHAR, at_s DOUBLE, PRIMARY KEY (fix_key, conversation_id)
);
CREATE TABLE IF NOT EXISTS learned_rules (
    name VARCHAR, version INTEGER, status VARCHAR, body VARCHAR, provenance VARCHAR, reason VARCHAR,
    actor VARCHAR, at_s DOUBLE, PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS shadow_cases (
    name VARCHAR, conversation_id VARCHAR, agreed BOOLEAN, at_s DOUBLE, user_id VARCHAR,
    PRIMARY KEY (name, conversation_id)
)
"""

# Staff sign-ins (engine/store/sessions.py): the cookie holds a random secret, the table its hash and state.
STAFF_SESSIONS = """
CREATE TABLE IF NOT EXISTS staff_sessions (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, role VARCHAR NOT NULL, credential VARCHAR NOT NULL,
    address VARCHAR NOT NULL, created_at DOUBLE NOT NULL, last_seen_at DOUBLE NOT NULL, ended_at DOUBLE,
    end_reason VARCHAR
)
"""

# The escalation desk (engine/store/escalations.py, engine/store/users.py): an append-only record of everything
# that happens to a business escalation; staff who sign in with a password; what the desk shows of an account.
# A decision once stored as "declined" is "rejected" now, the word deciders and the record use.
ESCALATION_DESK = """
CREATE TABLE IF NOT EXISTS escalation_events (
    id VARCHAR PRIMARY KEY, escalation_id VARCHAR NOT NULL, at_s DOUBLE NOT NULL, actor VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, outcome VARCHAR NOT NULL DEFAULT '', reason VARCHAR NOT NULL DEFAULT '',
    detail JSON NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS staff_users (
    name VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, categories JSON NOT NULL, password_hash VARCHAR NOT NULL,
    created_at DOUBLE NOT NULL, disabled_at DOUBLE
);
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS organisation VARCHAR DEFAULT '';
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS since DOUBLE;
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS monthly_price DOUBLE;
UPDATE escalations SET status = 'rejected' WHERE status = 'declined';
UPDATE escalation_decisions SET outcome = 'rejected' WHERE outcome = 'declined'
"""

# Each request keeps its own deadline, set when it is raised (a later change of the setting moves no deadline);
# while a decider waits for the user's answer the decider's clock is paused: `remaining_s` holds what was left.
# Requests raised before this have none and read the setting.
REQUEST_DEADLINES = """
ALTER TABLE escalations ADD COLUMN IF NOT EXISTS due_at DOUBLE;
ALTER TABLE escalations ADD COLUMN IF NOT EXISTS window_s DOUBLE;
ALTER TABLE escalations ADD COLUMN IF NOT EXISTS remaining_s DOUBLE
"""

# What the user said about the fix in hand and about a person's answer, one row each time they said it: the
# metrics' confirmed resolutions (docs/metrics.md) read it. `fix_verdicts` stays the rules' per-action record.
USER_VERDICTS = """
CREATE TABLE IF NOT EXISTS user_verdicts (
    id VARCHAR PRIMARY KEY, conversation_id VARCHAR NOT NULL, user_id VARCHAR NOT NULL, playbook VARCHAR,
    verdict VARCHAR NOT NULL, said_at DOUBLE NOT NULL
)
"""

# Which message holds each decision's reply, so a conversation read back later (the chat page after a reload)
# shows the technical detail under the reply that stated the decision. Decisions stored before this are paired
# with their reply as it was written: in the same transaction, with the same text, conversation and instant
# (the n-th such decision with the n-th such message, in the order written).
DECISION_REPLIES = """
CREATE TABLE IF NOT EXISTS decision_replies (
    decision_id VARCHAR PRIMARY KEY, message_id VARCHAR NOT NULL
);
INSERT INTO decision_replies SELECT d.id, m.id FROM
    (SELECT id, conversation_id, reply, created_at,
            row_number() OVER (PARTITION BY conversation_id, reply, created_at ORDER BY rowid) AS n
     FROM decisions) d
    JOIN (SELECT id, conversation_id, text, created_at,
                 row_number() OVER (PARTITION BY conversation_id, text, created_at ORDER BY rowid) AS n
          FROM messages WHERE role = 'assistant') m
    ON m.conversation_id = d.conversation_id AND m.text = d.reply AND m.created_at = d.created_at AND m.n = d.n
ON CONFLICT DO NOTHING
"""

# Reaching users when a person answered (issue 17): the address the host app vouched for, when each user last had
# a conversation on screen, and the outbox of "a person answered you" notices, each written in the same transaction
# as the decision, question, expiry or closed hand-off that causes it and sent by e-mail afterwards
# (engine/notify/). A hand-off an engineer closed with a note keeps who, when and the note the user was told, in a
# table of its own (`handoffs` is written with positional inserts, whose shape stays).
REACHING_USERS = """
CREATE TABLE IF NOT EXISTS user_contacts (
    user_id VARCHAR PRIMARY KEY, email VARCHAR NOT NULL, verified_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS user_presence (
    user_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, seen_at DOUBLE NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE TABLE IF NOT EXISTS notifications (
    id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL, text VARCHAR NOT NULL, created_at DOUBLE NOT NULL, status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL, next_at DOUBLE NOT NULL, claimed_by VARCHAR, claimed_at DOUBLE, sent_at DOUBLE,
    last_error VARCHAR, updated_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS handoff_closures (
    handoff_id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL, closed_by VARCHAR NOT NULL, note VARCHAR NOT NULL,
    closed_at DOUBLE NOT NULL
)
"""

# Issue 18: the Alertmanager receiver loses nothing. Every refused request is kept as a dead letter an operator
# can read (the raw body up to a bounded size, why, when and from where; engine/store/healing.py); every accepted
# notification's own figures (alerts in it, stored, summarised past the per-notification cap, Alertmanager's
# `truncatedAlerts`); and an alert storm is one incident with one escalation (engine/healing/incidents.py).
ALERT_INTAKE = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id VARCHAR PRIMARY KEY, received_at DOUBLE NOT NULL, sender VARCHAR NOT NULL, caller VARCHAR,
    path VARCHAR NOT NULL, status INTEGER NOT NULL, code VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    content_type VARCHAR NOT NULL, body_bytes BIGINT NOT NULL, kept_bytes INTEGER NOT NULL, body VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_notifications (
    id VARCHAR PRIMARY KEY, received_at DOUBLE NOT NULL, sender VARCHAR NOT NULL, group_key VARCHAR NOT NULL,
    receiver VARCHAR NOT NULL, status VARCHAR NOT NULL, alerts INTEGER NOT NULL, stored INTEGER NOT NULL,
    new INTEGER NOT NULL, summarised INTEGER NOT NULL, summarised_firing INTEGER NOT NULL,
    truncated INTEGER NOT NULL, derived INTEGER NOT NULL, summary JSON NOT NULL
);
CREATE TABLE IF NOT EXISTS incidents (
    id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, opened_at DOUBLE NOT NULL, since DOUBLE NOT NULL,
    updated_at DOUBLE NOT NULL, closed_at DOUBLE, alerts INTEGER NOT NULL, summarised INTEGER NOT NULL,
    truncated INTEGER NOT NULL, services JSON NOT NULL, root_causes JSON NOT NULL, handoff_id VARCHAR,
    notes JSON NOT NULL
)
"""

# Issue 18: a problem that came back after a remedy had been verified as fixing it. The remedy's row turns `failed`
# (so the breaker and the next-remedy rule count it); this keeps when it had been verified, when the problem came
# back and the signal it came back as, for the "keeps coming back" hand-off's history (engine/store/healing.py).
RECURRENCES = """
CREATE TABLE IF NOT EXISTS recurrences (
    remediation_id VARCHAR PRIMARY KEY, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    verified_at DOUBLE NOT NULL, recurred_at DOUBLE NOT NULL, signal_id VARCHAR
)
"""

# Issue 18: telemetry samples the checks dropped, kept for the operator (one row per problem while it lasts).
TELEMETRY_PROBLEMS = """
CREATE TABLE IF NOT EXISTS telemetry_problems (
    problem_key VARCHAR NOT NULL, source VARCHAR NOT NULL, service VARCHAR NOT NULL, metric VARCHAR NOT NULL,
    value VARCHAR, reason VARCHAR NOT NULL, detail VARCHAR NOT NULL, first_seen DOUBLE NOT NULL,
    last_seen DOUBLE NOT NULL, ended_at DOUBLE
)
"""

# Files written before the schema was numbered were made by several modules, each adding columns as it grew;
# on such a file the CREATEs above change nothing, and these bring the tables to the same shape.
UNNUMBERED_COLUMNS = """
ALTER TABLE conversation_state ADD COLUMN IF NOT EXISTS version BIGINT DEFAULT 0;
ALTER TABLE remediations ADD COLUMN IF NOT EXISTS requester VARCHAR DEFAULT 'monitor';
ALTER TABLE remediations ADD COLUMN IF NOT EXISTS subject VARCHAR DEFAULT '';
ALTER TABLE remedy_outcomes ADD COLUMN IF NOT EXISTS weight DOUBLE DEFAULT 1.0;
ALTER TABLE shadow_cases ADD COLUMN IF NOT EXISTS user_id VARCHAR
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "conversations, decisions, escalations, tokens", CONVERSATION_TABLES),
    Migration(2, "self-healing: telemetry, signals, alerts, remediations", HEALING_TABLES),
    Migration(3, "learning: remedy outcomes, votes, learned rules, shadow cases", LEARNING_TABLES),
    Migration(4, "columns added before the schema was numbered", UNNUMBERED_COLUMNS),
    # Learned resolutions as facts were never fed in production; learned fixes are written back as rules.
    Migration(5, "drop the unused resolutions table", "DROP TABLE IF EXISTS resolutions"),
    # Ratings were appended; a conversation now has one, its latest.
    Migration(6, "one rating per conversation: keep each conversation's latest",
              "DELETE FROM feedback WHERE id NOT IN (SELECT arg_max(id, created_at) FROM feedback "
              "GROUP BY conversation_id)"),
    # Staff sign-ins were a signed cookie only, which revoking the token could not end.
    Migration(7, "staff sessions held on the server", STAFF_SESSIONS),
    # Issue 15: deciders sign in with a password and decide on a page with the analysis and the record.
    Migration(8, "the escalation desk: events, staff users, account details", ESCALATION_DESK),
    Migration(9, "a deadline per request, paused while the user is asked", REQUEST_DEADLINES),
    # Issue 16: a confirmed resolution is one the user confirmed; nothing recorded it apart from learning.
    Migration(10, "the user's verdicts on fixes and answers", USER_VERDICTS),
    # Issue 17: earlier answers keep their technical detail after a reload.
    Migration(11, "which message holds each decision's reply", DECISION_REPLIES),
    # Issue 17: a person's answer reaches a user who left (e-mail, and marked unseen in their conversation list).
    Migration(12, "reaching users later: contacts, presence, the notification outbox, closed hand-offs",
              REACHING_USERS),
    # Issue 18: refused alert notifications kept, every notification's figures, alert storms as incidents.
    Migration(13, "the alert receiver: dead letters, notifications, incidents", ALERT_INTAKE),
    # Issue 18: a fault that keeps coming back after remediation goes to a person.
    Migration(14, "problems that came back after a verified remedy", RECURRENCES),
    # Issue 18: a dropped telemetry sample is reported and kept, never fed to detection.
    Migration(15, "telemetry samples dropped by the checks", TELEMETRY_PROBLEMS),
)
LATEST = MIGRATIONS[-1].version
