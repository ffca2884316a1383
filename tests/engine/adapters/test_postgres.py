"""The PostgreSQL adapter against the real server on 127.0.0.1:5432 (database `test`), in a database of its own."""

import threading
import uuid

import psycopg
import pytest

from core.errors import RemediationError
from engine.actions.adapters.postgres import PostgresAdapter
from tests.peers import ensure_postgres, wait_until

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def database():
    """A fresh database per test, dropped afterwards (connections to it are closed first)."""
    ensure_postgres()
    name = f"firstline_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_long_queries_are_terminated_and_short_ones_are_not(database):
    adapter = PostgresAdapter(database, slow_query_s=1)
    outcome = {}

    def long_query() -> None:
        with psycopg.connect(database, autocommit=True) as victim:
            try:
                victim.execute("SELECT pg_sleep(60)")
                outcome["error"] = None
            except psycopg.errors.AdminShutdown as error:
                outcome["error"] = error

    thread = threading.Thread(target=long_query)
    thread.start()
    try:
        assert wait_until(lambda: adapter.slow_queries(older_than_s=1) == 1, 20), "the long query never showed up"
        with psycopg.connect(database, autocommit=True) as bystander:  # idle: must survive
            detail = adapter.execute("kill_slow_queries", "database", {})
            assert bystander.execute("SELECT 1").fetchone() == (1,)
    finally:
        thread.join(30)
    assert detail.startswith("terminated 1 query running longer than 1 s")
    assert isinstance(outcome["error"], psycopg.errors.AdminShutdown)
    assert adapter.slow_queries(older_than_s=1) == 0
    assert adapter.execute("kill_slow_queries", "database", {}).startswith("terminated 0 queries")


def test_analyze_refreshes_statistics_of_an_existing_table_only(database):
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("CREATE TABLE jobs (id int, title text)")
        connection.execute("INSERT INTO jobs SELECT g, 'job ' || g FROM generate_series(1, 500) g")
    adapter = PostgresAdapter(database, slow_query_s=30)
    assert adapter.execute("analyze_tables", "database", {"table": "jobs"}) == "analyzed jobs"
    with psycopg.connect(database) as connection:
        analyzed = connection.execute(
            "SELECT last_analyze IS NOT NULL, n_live_tup FROM pg_stat_user_tables WHERE relname = 'jobs'").fetchone()
    assert analyzed[0] is True
    with pytest.raises(RemediationError, match="no table 'missing' to analyze"):
        adapter.execute("analyze_tables", "database", {"table": "missing"})
    with pytest.raises(RemediationError, match="invalid name"):
        adapter.execute("analyze_tables", "database", {"table": "jobs; drop table jobs"})
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM jobs").fetchone() == (500,)
    assert adapter.execute("analyze_tables", "database", {}) == "analyzed every table"


def test_an_unreachable_server_is_a_failed_action_not_a_crash():
    adapter = PostgresAdapter("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2", slow_query_s=1)
    with pytest.raises(RemediationError, match="PostgreSQL"):
        adapter.execute("kill_slow_queries", "database", {})
