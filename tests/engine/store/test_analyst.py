"""The analysts' console on the store's own connection: one SELECT, no credentials, no files, no writes, a time
limit and a row cap; and the writer goes on working whatever was refused or stopped."""

import csv
import io
import json

import numpy
import pytest

from core.errors import InputError, StoreError
from engine.store.analyst import TIMEOUT_CODE, AnalystQueries

ROW_CAP = 5
TIME_LIMIT_S = 0.2
# A query that would run for hours: the time limit must stop it.
ENDLESS = "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = -1"


@pytest.fixture
def analyst(store, clock):
    return AnalystQueries(store, clock, TIME_LIMIT_S, ROW_CAP)


@pytest.fixture
def written(store):
    """A conversation with two messages and a token, written by the store as the server writes."""
    store.transaction([
        ("INSERT INTO conversations VALUES (?, ?, ?, ?)", ("c1", "ann", "web", 1_700_000_000.0)),
        ("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", ("m1", "c1", "ann", "user", "it's slow", 1_700_000_001.0)),
        ("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", ("m2", "c1", "ann", "assistant", "fixed", 1_700_000_002.5)),
        ("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, ?)", ("t1", "bot", "user", "salt", "hash", 1.0, False)),
    ])
    return store


def snapshot(store) -> list[tuple]:
    """What the refusals must leave alone: every table with its row count."""
    return store.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables() ORDER BY table_name")


def writer_works(store) -> None:
    """The server's writer, on the same connection, after whatever the console did."""
    before = store.execute("SELECT count(*) FROM messages")[0][0]
    store.transaction([("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                        (f"w{before}", "c1", "ann", "user", "still here", 1_700_000_003.0))])
    assert store.execute("SELECT count(*) FROM messages")[0][0] == before + 1


def refused(analyst, sql: str, params=None) -> InputError:
    with pytest.raises(InputError) as caught:
        analyst.run(sql, params)
    assert "Traceback" not in str(caught.value)
    return caught.value


# -- what runs -------------------------------------------------------------------------------------------


def test_a_select_returns_the_columns_their_types_and_the_rows(written, analyst):
    result = analyst.run("SELECT id, role, created_at FROM messages ORDER BY created_at")
    assert result.columns == ["id", "role", "created_at"]
    assert result.types == ["VARCHAR", "VARCHAR", "DOUBLE"]
    assert result.rows == [("m1", "user", 1_700_000_001.0), ("m2", "assistant", 1_700_000_002.5)]
    assert not result.truncated and result.row_cap == ROW_CAP and result.elapsed_ms >= 0
    assert result.sql == "SELECT id, role, created_at FROM messages ORDER BY created_at"


def test_the_console_sees_what_the_writer_committed_on_the_same_connection(written, analyst):
    assert analyst.run("SELECT count(*) AS n FROM messages").rows == [(2,)]
    writer_works(written)
    assert analyst.run("SELECT count(*) AS n FROM messages").rows == [(3,)]


@pytest.mark.parametrize("sql", [
    "EXPLAIN SELECT count(*) FROM messages",
    "explain analyze select 1",
    "/* why */ EXPLAIN SELECT 1",
    "SELECT 1 AS one;",
    "FROM messages SELECT count(*)",
    "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
    "SELECT * FROM range(3), generate_series(1, 2), unnest([1, 2])",
    "SELECT * FROM json_each('{\"a\": 1}')",
    "SHOW TABLES",
    "DESCRIBE messages",
    "SELECT table_name FROM information_schema.tables",
    "SELECT ':x' AS colon, \"id\" FROM messages -- :y",
])
def test_read_only_queries_of_every_shape_run(written, analyst, sql):
    analyst.run(sql)


def test_a_result_past_the_row_cap_is_cut_and_says_so(analyst):
    cut = analyst.run("SELECT * FROM range(12)")
    assert cut.rows == [(0,), (1,), (2,), (3,), (4,)] and cut.truncated
    exact = analyst.run(f"SELECT * FROM range({ROW_CAP})")
    assert len(exact.rows) == ROW_CAP and not exact.truncated


def test_a_huge_result_is_never_built_only_the_rows_fetched(store, clock):
    # 10^12 rows: built whole, this would not finish; streamed, the first rows come at once.
    result = AnalystQueries(store, clock, 30.0, 3).run("SELECT * FROM range(1000000) a, range(1000000) b")
    assert len(result.rows) == 3 and result.truncated


def test_firstline_now_is_the_injected_clock_on_every_query(analyst, clock):
    assert analyst.run("SELECT getvariable('firstline_now') AS now").rows == [(clock.now,)]
    clock.advance(3600.0)
    result = analyst.run("SELECT getvariable('firstline_now') AS now, typeof(getvariable('firstline_now')) AS t")
    assert result.rows == [(clock.now, "DOUBLE")]


# -- parameters ------------------------------------------------------------------------------------------


def test_parameters_are_named_in_order_of_first_appearance(analyst):
    sql = ("SELECT :since, :until, :since, x::INTEGER, [1, 2, 3][:n], ':quoted', \"col:name\", $$ :dollar $$, "
           "E'it\\'s :escaped', :last -- :comment\n/* :block /* :nested */ */ FROM t WHERE a = :until")
    assert analyst.parameters(sql) == ["since", "until", "last"]
    assert analyst.parameters("SELECT 1") == []
    assert analyst.parameters("SELECT a::DATE, b :: INT") == []


def test_parameters_are_bound_as_values_never_as_sql(written, analyst):
    result = analyst.run("SELECT id FROM messages WHERE created_at > :since AND role = :role ORDER BY id",
                         {"since": "1700000001.5", "role": "assistant"})
    assert result.rows == [("m2",)]
    # A value is data: the quote and the DROP are a role nobody has.
    assert analyst.run("SELECT count(*) AS n FROM messages WHERE role = :role",
                       {"role": "x'; DROP TABLE messages; --"}).rows == [(0,)]
    assert analyst.run("SELECT :n + 1 AS n, :flag AS f, :nothing AS z",
                       {":n": 41, "flag": True, "nothing": None}).rows == [(42, True, None)]


def test_a_missing_parameter_value_is_named(analyst):
    assert str(refused(analyst, "SELECT * FROM messages WHERE created_at > :since")) == \
        "the query needs a value for :since"
    assert str(refused(analyst, "SELECT :a, :b", {"b": 1})) == "the query needs a value for :a"


def test_an_unknown_parameter_is_refused(analyst):
    assert str(refused(analyst, "SELECT :since AS s", {"since": "1", "until": "2"})) == \
        "the query has no parameter :until (it takes :since)"
    assert str(refused(analyst, "SELECT 1", {"x": 1})) == "the query has no parameter :x (it takes none)"
    assert "must be text, a number" in str(refused(analyst, "SELECT :a AS a", {"a": [1, 2]}))


def test_a_value_of_the_wrong_type_gets_duckdbs_conversion_message(analyst):
    error = refused(analyst, "SELECT CAST(:since AS DATE) AS d", {"since": "abc"})
    assert "Conversion Error" in str(error) and "abc" in str(error)
    assert ":since" in str(error)  # the excerpt shows the query as written, not as DuckDB was given it
    assert analyst.run("SELECT CAST(:since AS DATE) AS d", {"since": "2024-02-29"}).to_json()["rows"] == \
        [["2024-02-29"]]


# -- refusals --------------------------------------------------------------------------------------------

STATEMENT_KINDS = [
    ("DROP TABLE messages", "a DROP statement"),
    ("DELETE FROM messages", "a DELETE statement"),
    ("WITH x AS (SELECT 1) DELETE FROM messages", "a DELETE statement"),
    ("UPDATE messages SET text = ''", "an UPDATE statement"),
    ("INSERT INTO messages SELECT * FROM messages", "an INSERT statement"),
    ("INSERT INTO messages VALUES ('x', 'c1', 'ann', 'user', 'x', 1) RETURNING *", "an INSERT statement"),
    ("CREATE TABLE copy AS SELECT * FROM messages", "a CREATE statement"),
    ("CREATE TEMP TABLE scratch (a INTEGER)", "a CREATE statement"),
    ("CREATE VIEW v AS SELECT 1", "a CREATE statement"),
    ("ALTER TABLE messages ADD COLUMN x INTEGER", "an ALTER statement"),
    ("COPY messages TO '/tmp/firstline-analyst-test.csv'", "a COPY statement"),
    ("EXPORT DATABASE '/tmp/firstline-analyst-export'", "an EXPORT statement"),
    ("ATTACH '/tmp/firstline-analyst-test.db' AS other", "an ATTACH statement"),
    ("DETACH other", "a DETACH statement"),
    ("INSTALL httpfs", "an INSTALL statement"),
    ("FORCE INSTALL httpfs", "a FORCE INSTALL statement"),
    ("LOAD httpfs", "a LOAD statement"),
    ("SET threads = 1", "a SET statement"),
    ("SET enable_external_access = true", "a SET statement"),
    ("SET VARIABLE firstline_now = 0", "a SET statement"),
    ("RESET threads", "a SET statement"),
    ("PRAGMA version", "a PRAGMA statement"),
    ("PRAGMA enable_profiling", "a PRAGMA statement"),
    ("CALL pragma_version()", "a CALL statement"),
    ("CHECKPOINT", "a CHECKPOINT statement"),
    ("VACUUM", "a VACUUM statement"),
    ("BEGIN TRANSACTION", "a TRANSACTION statement"),
    ("PREPARE p AS SELECT 1", "a PREPARE statement"),
    ("PIVOT messages ON role USING count(*)", "a PIVOT statement"),
]


@pytest.mark.parametrize(("sql", "kind"), STATEMENT_KINDS)
def test_anything_but_a_select_is_refused_by_name_and_nothing_changes(written, analyst, sql, kind):
    before = snapshot(written)
    error = refused(analyst, sql)
    assert str(error) == f"only SELECT queries run here (and EXPLAIN of one); this is {kind}"
    assert snapshot(written) == before
    writer_works(written)


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT 1; DROP TABLE messages", "one statement per query: found 2"),
    ("SELECT 1; SELECT 2; SELECT 3", "one statement per query: found 3"),
    ("EXPLAIN DELETE FROM messages", "EXPLAIN runs here only for a SELECT; this explains a DELETE statement"),
    ("", "the query is empty: write one SELECT statement, e.g. select count(*) from decisions"),
    ("  \n\t ", "the query is empty: write one SELECT statement, e.g. select count(*) from decisions"),
    ("-- just a comment", "the query is only comments: write one SELECT statement"),
])
def test_more_than_one_statement_or_none_is_refused(written, analyst, sql, message):
    before = snapshot(written)
    assert str(refused(analyst, sql)) == message
    assert snapshot(written) == before


CREDENTIALS = [
    ("SELECT * FROM api_tokens", "api_tokens"),
    ("FROM api_tokens", "api_tokens"),
    ("SELECT count(*) FROM main.api_tokens", "api_tokens"),
    ("SELECT * FROM \"API_TOKENS\"", "API_TOKENS"),
    ("SELECT (SELECT max(password_hash) FROM staff_users) AS h", "staff_users"),
    ("SELECT * FROM messages WHERE user_id IN (SELECT name FROM staff_users)", "staff_users"),
    ("SELECT * FROM messages m JOIN staff_users u ON m.user_id = u.name", "staff_users"),
    ("WITH s AS (SELECT * FROM staff_sessions) SELECT count(*) FROM s", "staff_sessions"),
    ("WITH a AS (SELECT 1), b AS (SELECT * FROM (SELECT credential FROM staff_sessions)) SELECT * FROM b",
     "staff_sessions"),
    ("SELECT * FROM messages, LATERAL (SELECT * FROM staff_sessions)", "staff_sessions"),
    ("SELECT 1 UNION ALL SELECT count(*) FROM api_tokens", "api_tokens"),
    ("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE hash LIKE 'a%') AS e", "api_tokens"),
    ("SELECT * FROM unnest((SELECT list(hash) FROM api_tokens))", "api_tokens"),
    ("SELECT * FROM range((SELECT count(*) FROM staff_users))", "staff_users"),
    ("SELECT * FROM (PIVOT staff_users ON role IN ('decider') USING count(*))", "staff_users"),
    ("SUMMARIZE api_tokens", "api_tokens"),
    ("DESCRIBE staff_users", "staff_users"),
    ("SHOW staff_sessions", "staff_sessions"),
    ("EXPLAIN SELECT * FROM api_tokens", "api_tokens"),
]


@pytest.mark.parametrize(("sql", "table"), CREDENTIALS)
def test_tables_that_hold_credentials_are_refused_wherever_they_are_named(written, analyst, sql, table):
    error = refused(analyst, sql)
    assert str(error).startswith(f"{table} holds credentials and is not open to analysts (nor are ")


TABLE_FUNCTIONS = [
    ("SELECT * FROM query('DROP TABLE messages')", "query"),
    ("SELECT * FROM query_table('api_tokens')", "query_table"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("SELECT * FROM read_text('/etc/passwd')", "read_text"),
    ("SELECT * FROM read_blob('/etc/passwd')", "read_blob"),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", "read_parquet"),
    ("SELECT * FROM read_json('/etc/hosts')", "read_json"),
    ("SELECT * FROM glob('/etc/*')", "glob"),
    ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
    ("SELECT * FROM pragma_table_info('api_tokens')", "pragma_table_info"),
    ("SELECT * FROM messages WHERE id IN (SELECT * FROM read_text('/etc/passwd'))", "read_text"),
    ("WITH f AS (SELECT * FROM glob('*')) SELECT * FROM f", "glob"),
]


@pytest.mark.parametrize(("sql", "function"), TABLE_FUNCTIONS)
def test_table_functions_off_the_list_are_refused_by_name(written, analyst, sql, function):
    error = refused(analyst, sql)
    assert str(error).startswith(f"the table function {function}() is not open to analysts")
    assert "range(), generate_series(), unnest()" in str(error)


@pytest.mark.parametrize("sql", ["SELECT * FROM '/etc/passwd'", "SELECT * FROM 'data.csv'",
                                 "SELECT * FROM 'https://example.com/x.parquet'"])
def test_files_named_as_tables_are_refused(analyst, sql):
    assert str(refused(analyst, sql)).startswith("reading files or URLs")


def test_a_syntax_error_says_where(analyst):
    message = str(refused(analyst, "SELECT * FRM messages"))
    assert message.startswith("Parser Error: syntax error at or near")
    lines = message.splitlines()
    assert lines[1] == "LINE 1: SELECT * FRM messages"
    assert lines[2].strip().startswith("^")


def test_other_duckdb_errors_are_one_clean_message(written, analyst):
    message = str(refused(analyst, "SELECT nonesuch FROM messages"))
    assert message.startswith("Binder Error:") and "nonesuch" in message and "LINE 1:" in message
    assert str(refused(analyst, "SELECT 1 / 0 AS x, 'a'::INTEGER AS y")).startswith("Conversion Error:")
    assert "Table with name nowhere does not exist" in str(refused(analyst, "SELECT * FROM nowhere"))


def test_python_objects_are_not_tables(analyst):
    # DuckDB's Python client reads a data frame or dict of arrays in a calling frame as a table of that name,
    # unless the connection was opened without replacement scans (database.py).
    hidden_rows = {"secret": numpy.array([1, 2, 3])}
    assert hidden_rows["secret"].size == 3
    assert "Table with name hidden_rows does not exist" in str(refused(analyst, "SELECT * FROM hidden_rows"))


def test_a_select_that_would_write_fails_in_its_read_only_transaction(store, analyst):
    # nextval() changes a sequence: the checks let a SELECT through, the read-only transaction stops it.
    store.transaction([("CREATE SEQUENCE analyst_test_seq", ())])
    assert "read-only" in str(refused(analyst, "SELECT nextval('analyst_test_seq') AS n"))
    assert store.execute("SELECT nextval('analyst_test_seq')") == [(1,)]


def test_a_query_past_the_time_limit_is_stopped_and_the_writer_goes_on(written, analyst):
    error = refused(analyst, ENDLESS)
    assert error.code == TIMEOUT_CODE
    assert str(error).startswith(f"the query ran past the {TIME_LIMIT_S:g} s limit and was stopped")
    writer_works(written)
    assert analyst.run("SELECT count(*) AS n FROM messages").rows == [(3,)]  # the console too


def test_the_writer_goes_on_after_every_kind_of_refusal(written, analyst):
    for sql in ["SELECT 1; DROP TABLE messages", "DELETE FROM messages", "SELECT * FROM api_tokens",
                "SELECT * FROM read_csv('/etc/passwd')", "SELECT * FRM x", "SELECT CAST('x' AS DATE)", ENDLESS]:
        refused(analyst, sql)
        writer_works(written)
    assert written.execute("SELECT count(*) FROM api_tokens") == [(1,)]


def test_the_store_itself_is_locked_down_and_still_takes_variables(store):
    # The console's walls behind the checks: the instance's configuration, whoever runs the SQL.
    with pytest.raises(StoreError, match="locked"):
        store.execute("SET enable_external_access = true")
    with pytest.raises(StoreError, match="locked"):
        store.execute("SET threads = 1")
    with pytest.raises(StoreError, match="disabled by configuration"):
        store.execute("SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(StoreError, match="disabled by configuration"):
        store.execute("COPY messages TO '/tmp/firstline-analyst-test.csv'")
    store.execute("SET VARIABLE analyst_test = 1.5")
    assert store.execute("SELECT getvariable('analyst_test')") == [(1.5,)]


# -- the result's shapes -----------------------------------------------------------------------------------

VALUES = ("SELECT DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05' AS ts, TIME '10:30' AS t, "
          "1.25::DECIMAL(5, 2) AS dec, 'nan'::DOUBLE AS nan, 'inf'::DOUBLE AS inf, 2.5 AS f, 7 AS i, "
          "INTERVAL 90 SECOND AS iv, [1, 2] AS l, {'a': 1} AS s, '\\x01'::BLOB AS b, true AS yes, NULL AS nothing, "
          "'a,\"b\"' AS text")


def test_json_is_json_safe(analyst):
    found = analyst.run(VALUES).to_json()
    assert list(found) == ["columns", "types", "rows", "truncated", "row_cap", "elapsed_ms"]
    assert found["rows"] == [["2024-01-02", "2024-01-02T03:04:05", "10:30:00", 1.25, None, None, 2.5, 7, 90.0,
                              [1, 2], {"a": 1}, "01", True, None, 'a,"b"']]
    assert found["types"][:4] == ["DATE", "TIMESTAMP", "TIME", "DECIMAL(5,2)"]
    assert json.loads(json.dumps(found, allow_nan=False)) == found  # no NaN, no Infinity, nothing unserialisable


def test_csv_has_the_header_and_one_line_a_row(analyst):
    text = analyst.run(VALUES).to_csv()
    header, row = list(csv.reader(io.StringIO(text)))
    assert header[:3] == ["d", "ts", "t"] and header[-1] == "text"
    assert row == ["2024-01-02", "2024-01-02T03:04:05", "10:30:00", "1.25", "", "", "2.5", "7", "90.0", "[1, 2]",
                   '{"a": 1}', "01", "True", "", 'a,"b"']
