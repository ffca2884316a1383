"""The one schema: numbered migrations, applied once and in order, on new files and on files made before the
schema was numbered; a file from a newer Firstline is refused."""

import duckdb
import pytest

from core.errors import StoreError
from engine.store import DuckDBStore
from engine.store.schema import LATEST, MIGRATIONS

# Tables as the modules of the last unnumbered release created them, columns added later left out.
UNNUMBERED = """
CREATE TABLE conversation_state (conversation_id VARCHAR PRIMARY KEY, user_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL, payload JSON NOT NULL, updated_at DOUBLE NOT NULL);
CREATE TABLE remediations (id VARCHAR PRIMARY KEY, signal_id VARCHAR, rule VARCHAR, action VARCHAR NOT NULL,
    target VARCHAR NOT NULL, params JSON NOT NULL, adapter VARCHAR NOT NULL, status VARCHAR NOT NULL,
    detail VARCHAR NOT NULL, started_at DOUBLE NOT NULL, finished_at DOUBLE, verify_service VARCHAR,
    verify_metric VARCHAR, verify_by DOUBLE, rollback VARCHAR);
CREATE TABLE remedy_outcomes (playbook VARCHAR, action VARCHAR, target VARCHAR, conversation_id VARCHAR,
    user_id VARCHAR, succeeded BOOLEAN, at_s DOUBLE, PRIMARY KEY (playbook, action, target, conversation_id));
CREATE TABLE shadow_cases (name VARCHAR, conversation_id VARCHAR, agreed BOOLEAN, at_s DOUBLE,
    PRIMARY KEY (name, conversation_id));
CREATE TABLE resolutions (name VARCHAR PRIMARY KEY, playbook VARCHAR NOT NULL, service VARCHAR NOT NULL,
    metric VARCHAR NOT NULL, action VARCHAR NOT NULL, target VARCHAR NOT NULL, successes INTEGER NOT NULL,
    failures INTEGER NOT NULL);
INSERT INTO conversation_state VALUES ('c1', 'ann', 'verifying', '{}', 1.0);
INSERT INTO remediations VALUES ('r1', NULL, 'rule', 'restart_service', 'api', '{}', 'simulated', 'succeeded',
    'done', 1.0, 2.0, NULL, NULL, NULL, NULL);
INSERT INTO remedy_outcomes VALUES ('p', 'restart_service', 'api', 'c1', 'ann', true, 1.0);
"""

ACCOUNT = "INSERT INTO accounts (user_id, plan, seats, role) VALUES (?, ?, ?, ?)"
REPLACE_ACCOUNT = "INSERT OR REPLACE INTO accounts (user_id, plan, seats, role) VALUES (?, ?, ?, ?)"


def columns(store: DuckDBStore, table: str) -> set[str]:
    return {row[0] for row in store.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,))}


def test_the_migrations_are_numbered_in_order_from_one():
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == LATEST


def test_a_new_file_gets_every_migration_once(store):
    assert store.schema_version() == LATEST
    applied = store.execute("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in applied] == [m.version for m in MIGRATIONS]
    assert {"conversations", "decisions", "remediations", "learned_rules", "fix_verdicts"} <= {
        row[0] for row in store.execute("SELECT table_name FROM information_schema.tables")}


def test_reopening_applies_nothing_again(settings, clock):
    DuckDBStore(settings.database_path, clock).close()
    reopened = DuckDBStore(settings.database_path, clock)
    try:
        assert reopened.execute("SELECT count(*) FROM schema_version")[0][0] == len(MIGRATIONS)
    finally:
        reopened.close()


def test_a_file_from_before_the_numbering_is_brought_to_the_same_shape_keeping_its_rows(tmp_path, clock):
    path = tmp_path / "old.duckdb"
    old = duckdb.connect(str(path))
    old.execute(UNNUMBERED)
    old.close()
    store = DuckDBStore(path, clock)
    try:
        assert store.schema_version() == LATEST
        assert "version" in columns(store, "conversation_state")
        assert {"requester", "subject"} <= columns(store, "remediations")
        assert "weight" in columns(store, "remedy_outcomes") and "user_id" in columns(store, "shadow_cases")
        assert not columns(store, "resolutions")  # the unused table is gone
        assert store.execute("SELECT stage, version FROM conversation_state") == [("verifying", 0)]
        assert store.execute("SELECT requester, subject FROM remediations") == [("monitor", "")]
        assert store.execute("SELECT weight FROM remedy_outcomes") == [(1.0,)]
    finally:
        store.close()


def test_a_file_from_a_newer_firstline_is_refused_not_guessed_at(settings, clock):
    DuckDBStore(settings.database_path, clock).close()
    newer = duckdb.connect(str(settings.database_path))
    newer.execute("INSERT INTO schema_version VALUES (?, 'from the future', 0)", (LATEST + 1,))
    newer.close()
    with pytest.raises(StoreError, match="newer Firstline"):
        DuckDBStore(settings.database_path, clock)


def test_a_transaction_is_all_or_nothing_and_leaves_the_thread_usable(store):
    store.transaction([(ACCOUNT, ("ann", "pro", 3, "admin"))])
    with pytest.raises(StoreError):  # the second row breaks the key: the first goes too
        store.transaction([(ACCOUNT, ("bob", "pro", 3, "admin")),
                           ("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)", ("f", "c", "bob", 5, "", 0.0)),
                           (ACCOUNT, ("ann", "pro", 3, "admin"))])
    assert store.execute("SELECT user_id FROM accounts") == [("ann",)]
    assert store.execute("SELECT count(*) FROM feedback") == [(0,)]
    store.transaction([(ACCOUNT, ("cy", "pro", 1, "admin"))])  # not stuck
    assert store.execute("SELECT count(*) FROM accounts") == [(2,)]


def test_only_plain_inserts_are_merged_and_a_short_row_is_refused_not_shifted(store):
    store.transaction([(REPLACE_ACCOUNT, ("ann", "pro", 1, "a")),
                       (REPLACE_ACCOUNT, ("ann", "team", 2, "b"))])
    assert store.execute("SELECT plan FROM accounts") == [("team",)]  # the last write wins, as one by one
    with pytest.raises(StoreError, match="does not have the 4 values"):
        store.transaction([(ACCOUNT, ("bob", "pro", 3, "admin")),
                           (ACCOUNT, ("cy", "pro"))])
    assert store.execute("SELECT count(*) FROM accounts") == [(1,)]


def test_an_interrupted_transaction_is_rolled_back_and_the_thread_stays_usable(store):
    class Stop(BaseException):  # as a KeyboardInterrupt would arrive mid-transaction
        pass

    class Exploding:
        def __iter__(self):
            raise Stop

    with pytest.raises(Stop):
        store.transaction([(ACCOUNT, ("ann", "pro", 1, "a")),
                           ("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?)", Exploding())])
    assert store.execute("SELECT count(*) FROM accounts") == [(0,)]
    store.transaction([(ACCOUNT, ("bob", "pro", 1, "a"))])
    assert store.execute("SELECT user_id FROM accounts") == [("bob",)]


def test_ratings_piled_up_before_one_per_conversation_keep_each_conversations_latest(tmp_path, clock):
    path = tmp_path / "ratings.duckdb"
    DuckDBStore(path, clock).close()
    old = duckdb.connect(str(path))
    old.execute("DELETE FROM schema_version WHERE version >= 6")  # a file from before migration 6
    old.execute("INSERT INTO feedback VALUES ('f1', 'c1', 'ann', 5, '', 1.0), ('f2', 'c1', 'ann', 1, '', 2.0), "
                "('f3', 'c2', 'bob', 4, '', 1.5)")
    old.close()
    store = DuckDBStore(path, clock)
    try:
        assert store.execute("SELECT id FROM feedback ORDER BY id") == [("f2",), ("f3",)]
    finally:
        store.close()
