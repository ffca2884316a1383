"""The analysts' console on the store's own connection: one SELECT, no credentials, no files, no writes, a time
limit and a row cap; and the writer goes on working whatever was refused or stopped."""

import csv
import io
import json
import threading

import numpy
import pytest

from core.errors import InputError, RateLimitError, StoreError
from engine.store import analyst as analyst_module
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
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_name = 'messages'",
    "SELECT table_name FROM duckdb_tables() WHERE table_name = 'messages'",
    "SELECT count(*) FROM duckdb_columns() JOIN duckdb_views() USING (schema_name)",
    "SELECT * FROM duckdb_tables UNION ALL BY NAME SELECT * FROM duckdb_tables()",
    "SELECT ':x' AS colon, \"id\" FROM messages -- :y",
])
def test_read_only_queries_of_every_shape_run(written, analyst, sql):
    analyst.run(sql)


def test_a_result_past_the_row_cap_is_cut_and_says_so(analyst):
    cut = analyst.run("SELECT * FROM range(12)")
    assert cut.rows == [(0,), (1,), (2,), (3,), (4,)] and cut.truncated and cut.truncated_reason == "row cap"
    exact = analyst.run(f"SELECT * FROM range({ROW_CAP})")
    assert len(exact.rows) == ROW_CAP and not exact.truncated and exact.truncated_reason is None


def test_a_result_past_the_size_cap_is_cut_before_it_and_says_so(store, clock):
    # 0.01 MB = 10,485.76 bytes: rows of 3,000 characters (and a 4-digit number) fit three to a result.
    sized = AnalystQueries(store, clock, 30.0, 1000, max_result_mb=0.01)
    cut = sized.run("SELECT range + 1000 AS n, repeat('é', 3000) AS text FROM range(50)")
    assert len(cut.rows) == 3 and cut.truncated and cut.truncated_reason == "size"
    assert cut.to_json()["truncated_reason"] == "size" and cut.to_json()["max_result_mb"] == 0.01
    assert cut.row_cap == 1000  # the row cap is still the row cap
    blobs = sized.run("SELECT repeat('\\xAA'::BLOB, 4000) AS b FROM range(10)")  # bytes count as bytes
    assert len(blobs.rows) == 2 and blobs.truncated_reason == "size"
    one_huge = sized.run("SELECT repeat('x', 20000) AS text")  # even the first row would pass it: no rows
    assert one_huge.rows == [] and one_huge.truncated and one_huge.truncated_reason == "size"
    under = sized.run("SELECT repeat('x', 100) AS text FROM range(50)")
    assert len(under.rows) == 50 and not under.truncated and under.truncated_reason is None


def test_a_huge_result_is_cut_at_the_default_size_cap_without_building_it(store, clock):
    # The tester's case: 10,000 rows of 100,000 characters (a gigabyte) with a row cap far above it.
    result = AnalystQueries(store, clock, 30.0, 1_000_000).run("SELECT repeat('x', 100000) AS x FROM range(10000)")
    assert result.truncated_reason == "size" and len(result.rows) == 20 * 1024 * 1024 // 100_000


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


@pytest.mark.parametrize("sql", ["SELECT email FROM user_contacts", "SELECT count(*) FROM main.USER_CONTACTS",
                                 "SELECT n.* FROM notifications n JOIN user_contacts c USING (user_id)"])
def test_users_email_addresses_are_refused_while_what_was_sent_stays_open(written, analyst, sql):
    assert "holds users' e-mail addresses and is not open to analysts" in str(refused(analyst, sql))
    assert analyst.run("SELECT status, count(*) FROM notifications GROUP BY status").rows == []


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
    assert list(found) == ["columns", "types", "rows", "truncated", "row_cap", "elapsed_ms", "truncated_reason",
                           "max_result_mb"]
    assert found["truncated_reason"] is None and found["max_result_mb"] == 20
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


# -- what the checks cannot read, what is not UTF-8, what is not finite ---------------------------------------


@pytest.mark.parametrize("sql", [
    "SELECT " + " || ".join(["'a'"] * 900),
    "SELECT " + "+".join(["1"] * 900),
    "SELECT " + "abs(" * 400 + "1" + ")" * 400 + " AS deep",
    "SELECT " + " || ".join(["'a'"] * 330),
])
def test_a_query_nested_too_deeply_to_check_is_refused_plainly(written, analyst, sql):
    error = refused(analyst, sql)
    message = str(error)
    assert message == "the query is nested too deeply to check; simplify it" or message.startswith(
        ("Parser Error", "Binder Error", "Invalid Input Error")), message  # or DuckDB's own limit said so
    writer_works(written)


def test_a_check_that_fails_unexpectedly_is_a_refusal_not_a_crash(written, analyst, monkeypatch, caplog):
    def broken(cursor, query):
        raise KeyError("the parse tree's shape changed")
    monkeypatch.setattr(analyst_module, "_references", broken)
    assert str(refused(analyst, "SELECT 1")) == "the query could not be checked; simplify it or write it another way"
    assert "checks failed unexpectedly" in caplog.text
    monkeypatch.setattr(analyst_module, "_references", lambda cursor, query: (_ for _ in ()).throw(RecursionError()))
    assert str(refused(analyst, "SELECT 1")) == "the query is nested too deeply to check; simplify it"


def test_a_keyboard_interrupt_during_the_checks_is_not_swallowed(analyst, monkeypatch):
    def interrupted(cursor, query):
        raise KeyboardInterrupt
    monkeypatch.setattr(analyst_module, "_references", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyst.run("SELECT 1")
    monkeypatch.undo()
    assert analyst.run("SELECT 1 AS one").rows == [(1,)]  # and its slot was given back


@pytest.mark.parametrize("sql", ["SELECT '\udcff' AS x", "SELECT 1 -- caf\udce9", "\udc80"])
def test_text_that_is_not_utf8_is_refused(analyst, sql):
    assert str(refused(analyst, sql)) == "the query is not valid UTF-8 text"


def test_a_parameter_that_is_not_utf8_is_refused(analyst):
    assert str(refused(analyst, "SELECT :t AS t", {"t": "caf\udce9"})) == "the value of :t is not valid UTF-8 text"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), json.loads("1e400"),
                                   json.loads('{"x": NaN}')["x"], json.loads('{"x": -Infinity}')["x"]])
def test_a_parameter_that_is_not_a_finite_number_is_refused(analyst, value):
    assert str(refused(analyst, "SELECT :d + 1 AS d", {"d": value})) == "the value of :d must be a finite number"
    assert analyst.run("SELECT :d + 1 AS d", {"d": 1e300}).rows == [(1e300,)]


# -- what shows the server's files or settings ---------------------------------------------------------------

SYSTEM = [
    ("SELECT * FROM pragma_database_list", "pragma_database_list"),
    ("SELECT file FROM main.pragma_database_list", "pragma_database_list"),
    ("SELECT * FROM \"PRAGMA_DATABASE_LIST\"", "PRAGMA_DATABASE_LIST"),
    ("SELECT path FROM duckdb_databases", "duckdb_databases"),
    ("SELECT path FROM duckdb_databases()", "duckdb_databases()"),
    ("SELECT * FROM duckdb_settings()", "duckdb_settings()"),
    ("SELECT * FROM pg_settings", "pg_settings"),
    ("SELECT * FROM pg_catalog.pg_settings WHERE name = 'temp_directory'", "pg_settings"),
    ("SELECT * FROM duckdb_extensions()", "duckdb_extensions()"),
    ("SELECT * FROM duckdb_secrets()", "duckdb_secrets()"),
    ("SELECT * FROM duckdb_temporary_files()", "duckdb_temporary_files()"),
    ("SELECT current_setting('temp_directory') AS t", "current_setting()"),
    ("SELECT upper(CURRENT_SETTING('home_directory')) AS h", "current_setting()"),
    ("SELECT list_transform(['temp_directory'], s -> current_setting(s)) AS l", "current_setting()"),
    ("SELECT * FROM messages WHERE text = (SELECT current_setting('temp_directory'))", "current_setting()"),
    ("WITH s AS (SELECT * FROM pragma_database_list) SELECT * FROM s", "pragma_database_list"),
    ("SELECT getenv('HOME') AS h", "getenv()"),
    ("EXPLAIN SELECT current_setting('temp_directory')", "current_setting()"),
]


@pytest.mark.parametrize(("sql", "name"), SYSTEM)
def test_what_shows_the_servers_files_or_settings_is_refused_by_name(written, analyst, sql, name):
    error = refused(analyst, sql)
    assert str(error).startswith(f"{name} shows the server's files or settings and is not open to analysts")
    assert "information_schema.tables" in str(error)  # and it says where the schema is


def test_the_schema_stays_open_and_shows_no_path(written, analyst, store):
    found = analyst.run("SELECT table_name FROM information_schema.tables WHERE table_name = 'messages' UNION ALL "
                        "SELECT table_name FROM duckdb_tables() WHERE table_name = 'messages' UNION ALL "
                        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE table_name = 'messages'")
    assert found.rows == [("messages",)] * 3
    path = str(store.path) if hasattr(store, "path") else None
    schema = analyst.run("SELECT * FROM duckdb_tables() UNION ALL BY NAME SELECT * FROM duckdb_views()").to_csv()
    if path:
        assert path not in schema


# -- one analyst cannot take the whole database --------------------------------------------------------------


def test_a_query_that_cannot_start_while_the_console_is_busy_is_refused_with_429(store, clock):
    busy = AnalystQueries(store, clock, 30.0, 10, concurrency=2, queue_wait_s=0.05)
    busy.slots.acquire()
    busy.slots.acquire()  # two queries running: the test holds their slots
    try:
        with pytest.raises(RateLimitError) as caught:
            busy.run("SELECT 1")
        assert str(caught.value) == "the console is already running 2 queries; try again in a moment"
        assert caught.value.code == "rate_limited" and caught.value.retry_after_s >= 1
    finally:
        busy.slots.release()
    assert busy.run("SELECT 1 AS one").rows == [(1,)]  # one slot free: it runs
    busy.slots.release()


def test_a_query_waits_for_a_slot_that_frees_within_the_wait(store, clock):
    one = AnalystQueries(store, clock, 30.0, 10, concurrency=1, queue_wait_s=5.0)
    one.slots.acquire()
    threading.Timer(0.05, one.slots.release).start()  # the running query ends
    assert one.run("SELECT 2 AS two").rows == [(2,)]


def test_every_refusal_gives_its_slot_back(store, clock):
    one = AnalystQueries(store, clock, 0.2, 10, concurrency=1, queue_wait_s=0.05)
    for sql in ["SELECT * FROM api_tokens", "SELECT * FRM x", "SELECT :a", ENDLESS,
                "SELECT " + "+".join(["1"] * 900)]:
        with pytest.raises(InputError):
            one.run(sql)
    assert one.run("SELECT 3 AS three").rows == [(3,)]
