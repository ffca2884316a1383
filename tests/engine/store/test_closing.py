"""Closing the store while an analyst's query still runs (the server stopped mid-query): the query is
interrupted and the store closes, rather than DuckDB's "connection is busy with another call" failing the stop
(exit 1, found by stopping `firstline serve` during a `firstline sql` cross join)."""

from __future__ import annotations

import threading

from core.errors import InputError
from engine.store import DuckDBStore
from engine.store.analyst import INTERRUPTED, STORE_CLOSED, AnalystQueries
from tests.peers import wait_until

ENDLESS = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"  # hours on any machine


def running(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["rows"] = target()
        except BaseException as error:  # noqa: BLE001 - the test reads what the reader got
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_a_reader_still_running_is_interrupted_and_the_store_closes(tmp_path):
    store = DuckDBStore(tmp_path / "closing.duckdb")

    def read():
        with store.reader() as cursor:
            return cursor.execute(ENDLESS).fetchall()

    thread, outcome = running(read)
    assert wait_until(lambda: store._readers, 10)  # the reader has its cursor (its query may or may not have begun)
    store.close()  # used to raise ResourceInUseException
    thread.join(60)
    assert not thread.is_alive() and "rows" not in outcome and outcome["error"] is not None


def test_an_analysts_query_cut_by_the_stop_is_told_so(tmp_path):
    store = DuckDBStore(tmp_path / "closing.duckdb")
    queries = AnalystQueries(store, lambda: 0.0, time_limit_s=3600, row_cap=10)
    thread, outcome = running(lambda: queries.run(ENDLESS))
    assert wait_until(lambda: store._readers, 10)
    store.close()
    thread.join(60)
    assert not thread.is_alive() and "rows" not in outcome
    # Interrupted in its checks or its run, or the stop came before it began: either way the analyst reads why.
    assert isinstance(outcome["error"], InputError) and str(outcome["error"]) in (INTERRUPTED, STORE_CLOSED)
