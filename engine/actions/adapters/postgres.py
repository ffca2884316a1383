"""The PostgreSQL adapter: terminate long-running queries, refresh planner statistics, close idle connections.

Every statement is fixed text with bound parameters; a table name is quoted as an identifier and must exist.
It acts only on the database its connection string names, and never on its own session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

from core.errors import RemediationError

CONNECT_TIMEOUT_S = 5
OWN_DATABASE = ("datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
IDLE_S = 60.0


class PostgresAdapter:
    name = "postgres"
    ACTIONS = frozenset({"kill_slow_queries", "analyze_tables", "reset_connection_pool"})

    def __init__(self, dsn: str, slow_query_s: float) -> None:
        self.dsn = dsn
        self.slow_query_s = slow_query_s

    def supports(self, action: str) -> bool:
        return action in self.ACTIONS

    def execute(self, action: str, target: str, params: Mapping[str, Any]) -> str:
        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as connection:
                if action == "kill_slow_queries":
                    return self._kill(connection, float(params.get("older_than_s", self.slow_query_s)))
                if action == "analyze_tables":
                    return self._analyze(connection, params.get("table"))
                return self._close_idle(connection, float(params.get("idle_s", IDLE_S)))
        except psycopg.Error as error:
            raise RemediationError(f"PostgreSQL: {str(error).strip()}", action=action, target=target) from None

    def undo(self, action: str, target: str, params: Mapping[str, Any]) -> str | None:
        return None  # terminated queries and fresh statistics cannot be taken back

    def close(self) -> None:
        return None

    def slow_queries(self, older_than_s: float | None = None) -> int:
        """How many queries have run longer than the limit now (the metric kill_slow_queries acts on)."""
        limit = self.slow_query_s if older_than_s is None else older_than_s
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as connection:
            row = connection.execute(
                f"SELECT count(*) FROM pg_stat_activity WHERE {OWN_DATABASE} AND state = 'active' "
                "AND now() - query_start > make_interval(secs => %s)", (limit,)).fetchone()
        return int(row[0]) if row else 0

    def _kill(self, connection: psycopg.Connection, older_than_s: float) -> str:
        rows = connection.execute(
            f"SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OWN_DATABASE} "
            "AND state = 'active' AND now() - query_start > make_interval(secs => %s)", (older_than_s,)).fetchall()
        killed = [pid for pid, done in rows if done]
        return f"terminated {len(killed)} quer{'y' if len(killed) == 1 else 'ies'} running longer than " \
               f"{older_than_s:g} s" + (f" (pids {', '.join(map(str, killed))})" if killed else "")

    def _analyze(self, connection: psycopg.Connection, table: Any) -> str:
        if table is None:
            connection.execute("ANALYZE")
            return "analyzed every table"
        exists = connection.execute("SELECT to_regclass(%s)", (str(table),)).fetchone()
        if not exists or exists[0] is None:
            raise RemediationError(f"no table {table!r} to analyze", action="analyze_tables", target=str(table))
        connection.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(*str(table).split(".", 1))))
        return f"analyzed {table}"

    def _close_idle(self, connection: psycopg.Connection, idle_s: float) -> str:
        rows = connection.execute(
            f"SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE {OWN_DATABASE} "
            "AND state = 'idle' AND now() - state_change > make_interval(secs => %s)", (idle_s,)).fetchall()
        return f"closed {sum(1 for _, done in rows if done)} connections idle longer than {idle_s:g} s"
