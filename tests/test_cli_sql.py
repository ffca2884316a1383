"""`firstline sql`: an analyst's read-only query, on the data folder when no server runs and through the running
server's admin socket when one does; a table, CSV or JSON; a refused query is one clear message and exit 2."""

import csv
import io
import json

import pytest

from core.errors import InputError
from engine.store import DuckDBStore
from engine.store.analyst import TIMEOUT_CODE
from firstline.admin import ServerAdmin
from tests.conftest import build_parts, make_settings
from tests.test_cli import assert_one_line_error
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from web.admin import admin_socket_path
from web.server import BackgroundServer, make_server

ENDLESS = "select count(*) from range(1000000) a, range(1000000) b where a.range + b.range = -1"


@pytest.fixture
def data_dir(tmp_path):
    """A data folder whose database holds one conversation of three messages (no server runs)."""
    folder = tmp_path / "data"
    store = DuckDBStore(folder / "firstline.duckdb")
    try:
        store.transaction([("INSERT INTO conversations VALUES (?, ?, ?, ?)", ("c1", "ann", "web", 1_700_000_000.0))]
                          + [("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", row) for row in (
                              ("m1", "c1", "ann", "user", "it's slow", 1_700_000_001.0),
                              ("m2", "c1", "ann", "assistant", "I restarted the cache", 1_700_000_002.0),
                              ("m3", "c1", "ann", "user", "fixed, thanks", 1_700_000_003.0))])
    finally:
        store.close()
    return folder


def config(tmp_path, **values: object) -> str:
    """A firstline.toml with `values`, for `--config`."""
    path = tmp_path / "firstline.toml"
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()), encoding="utf-8")
    return str(path)


def refused(ran, *fragments: str) -> str:
    """A refused query: exit 2, one message on stderr (its first line names the problem), nothing on stdout."""
    assert ran.returncode == 2, (ran.stdout, ran.stderr)
    err = ran.stderr.decode()
    assert err.startswith("firstline: error: ") and "Traceback" not in err
    assert ran.stdout == b""
    for fragment in fragments:
        assert fragment in err, err
    return err


# -- without a server --------------------------------------------------------------------------------------


def test_the_table_format_is_aligned_and_counts_the_rows(cli, data_dir):  # noqa: F811
    ran = cli("sql", "select role, count(*) as n, min(created_at) as first from messages group by role order by role",
              data_dir=data_dir)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.decode().splitlines() == [
        "role       n         first",
        "---------  -  ------------",
        "assistant  1  1700000002.0",
        "user       2  1700000001.0",
        "(2 rows)",
    ]


def test_the_table_format_shows_nulls_one_row_and_no_rows(cli, data_dir):  # noqa: F811
    one = cli("sql", "select null as nothing, 'a\nb' as text", data_dir=data_dir).stdout.decode().splitlines()
    assert one == ["nothing  text", "-------  ----", "NULL     a\\nb", "(1 row)"]
    none = cli("sql", "select id from messages where false", data_dir=data_dir).stdout.decode().splitlines()
    assert none == ["id", "--", "(0 rows)"]


def test_csv_and_json_print_the_data_only(cli, data_dir):  # noqa: F811
    query = "select id, text from messages order by id"
    text = cli("sql", query, "--format", "csv", data_dir=data_dir).stdout.decode()
    assert list(csv.reader(io.StringIO(text))) == [
        ["id", "text"], ["m1", "it's slow"], ["m2", "I restarted the cache"], ["m3", "fixed, thanks"]]
    found = json.loads(cli("sql", query, "--format", "json", data_dir=data_dir).stdout)
    assert found["columns"] == ["id", "text"] and found["types"] == ["VARCHAR", "VARCHAR"]
    assert found["rows"][0] == ["m1", "it's slow"] and len(found["rows"]) == 3
    assert found["truncated"] is False and found["row_cap"] == 10000


def test_parameters_come_from_param_options(cli, data_dir):  # noqa: F811
    ran = cli("sql", "select id from messages where role = :role and created_at > :since order by id",
              "--param", "role=user", "--param", ":since=1700000001.5", "--format", "csv", data_dir=data_dir)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.decode().split() == ["id", "m3"]
    empty = cli("sql", "select :x = '' as empty", "--param", "x=", "--format", "json", data_dir=data_dir)
    assert json.loads(empty.stdout)["rows"] == [[True]]


def test_a_result_past_the_row_cap_says_it_was_truncated(cli, tmp_path, data_dir):  # noqa: F811
    capped = config(tmp_path, analyst_row_cap=2)
    table = cli("--config", capped, "sql", "select * from range(5)", data_dir=data_dir).stdout.decode()
    assert table.splitlines()[-3:] == ["    0", "    1", "(2 rows, truncated at the row cap of 2)"]
    ran = cli("--config", capped, "sql", "select * from range(5)", "--format", "csv", data_dir=data_dir)
    assert ran.stdout.decode().split() == ["range", "0", "1"]
    assert "only the first 2 rows" in ran.stderr.decode()
    found = json.loads(cli("--config", capped, "sql", "select * from range(5)", "--format", "json",
                           data_dir=data_dir).stdout)
    assert found["truncated"] is True and found["row_cap"] == 2 and found["rows"] == [[0], [1]]


def test_the_query_can_come_from_standard_input(cli, data_dir, monkeypatch):  # noqa: F811
    monkeypatch.setattr("sys.stdin", io.StringIO("select count(*) as n\nfrom messages\n"))
    assert cli("sql", "-", "--format", "csv", data_dir=data_dir).stdout.decode().split() == ["n", "3"]


@pytest.mark.parametrize(("args", "fragments"), [
    (["drop table messages"], ["only SELECT queries run here", "a DROP statement"]),
    (["select 1; delete from messages"], ["one statement per query: found 2"]),
    (["select * from api_tokens"], ["api_tokens holds credentials and is not open to analysts"]),
    (["select * from read_csv('/etc/passwd')"], ["the table function read_csv() is not open to analysts"]),
    (["copy messages to '/tmp/firstline-cli-sql.csv'"], ["a COPY statement"]),
    (["select * frm messages"], ["Parser Error: syntax error", "LINE 1: select * frm messages"]),
    (["select * from messages where created_at > :since"], ["the query needs a value for :since"]),
    (["select 1", "--param", "since=1"], ["the query has no parameter :since (it takes none)"]),
    (["select cast(:d as date)", "--param", "d=abc"], ["Conversion Error", "abc"]),
    (["select current_setting('temp_directory')"], ["current_setting() shows the server's files or settings"]),
    ([" "], ["the query is empty"]),
])
def test_a_refused_query_is_one_message_and_exit_2_and_changes_nothing(cli, data_dir, args, fragments):  # noqa: F811
    refused(cli("sql", *args, data_dir=data_dir), *fragments)
    assert cli("sql", "select count(*) from messages", "--format", "csv", data_dir=data_dir).stdout.split() == \
        [b"count_star()", b"3"]


@pytest.mark.parametrize(("args", "fragment"), [
    (["select :x", "--param", "x"], "expected NAME=VALUE, e.g. --param since=2024-01-01; got 'x'"),
    (["select :x", "--param", "=1"], "expected NAME=VALUE"),
    (["select :x", "--param", "x=1", "--param", "x=2"], ":x is given twice"),
    (["select 1", "--format", "xml"], "--format"),
    ([], "Missing argument 'QUERY'"),
])
def test_a_wrong_command_line_is_exit_2(cli, data_dir, args, fragment):  # noqa: F811
    ran = cli("sql", *args, data_dir=data_dir)
    assert_one_line_error(ran, "firstline: error:", fragment)
    assert ran.returncode == 2


@pytest.mark.parametrize("command", [["sql", "select 1"], ["metrics"], ["metrics", "--json"]])
def test_a_data_folder_without_a_database_is_refused_and_left_alone(cli, tmp_path, command):  # noqa: F811
    for missing in (tmp_path / "mistyped", tmp_path / "empty"):
        if missing.name == "empty":
            missing.mkdir()
        ran = cli(*command, data_dir=missing)
        refused(ran, f"no database at {missing / 'firstline.duckdb'}: check FIRSTLINE_DATA_DIR (or --config), or "
                "start Firstline once (make run / firstline serve) to create it")
        assert not (missing / "firstline.duckdb").exists()  # nothing was made: the mistake stays visible
    assert not (tmp_path / "mistyped").exists()


def test_query_text_that_is_not_utf8_is_one_message_and_exit_2(cli, data_dir, monkeypatch):  # noqa: F811
    # An undecodable byte in argv arrives as a lone surrogate (PEP 383), e.g. firstline sql $'select \xff'.
    refused(cli("sql", "select '\udcff'", data_dir=data_dir), "the query is not valid UTF-8 text")
    refused(cli("sql", "select :t", "--param", "t=caf\udce9", data_dir=data_dir), "not valid UTF-8 text")
    stdin = io.TextIOWrapper(io.BytesIO(b"select 'caf\xe9' as x\n"), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    refused(cli("sql", "-", data_dir=data_dir), "the query is not valid UTF-8 text")
    good = io.TextIOWrapper(io.BytesIO("select 'café' as x\n".encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", good)
    assert cli("sql", "-", "--format", "csv", data_dir=data_dir).stdout.decode().split() == ["x", "café"]


def test_a_deeply_nested_query_is_one_message_and_exit_2(cli, data_dir):  # noqa: F811
    refused(cli("sql", "select " + " || ".join(["'a'"] * 900), data_dir=data_dir),
            "the query is nested too deeply to check; simplify it")
    refused(cli("sql", "select * from pragma_database_list", data_dir=data_dir),
            "pragma_database_list shows the server's files or settings")


def test_a_result_past_the_size_cap_says_it_was_truncated_at_that_size(cli, tmp_path, data_dir):  # noqa: F811
    capped = config(tmp_path, analyst_max_result_mb=0.01)
    sql = "select repeat('x', 4000) as x from range(10)"
    table = cli("--config", capped, "sql", sql, data_dir=data_dir).stdout.decode()
    assert table.splitlines()[-1] == "(2 rows, truncated at 0.01 MB, the size cap)"
    ran = cli("--config", capped, "sql", sql, "--format", "csv", data_dir=data_dir)
    assert "only the first 2 rows (truncated at 0.01 MB, the size cap)" in ran.stderr.decode()
    found = json.loads(cli("--config", capped, "sql", sql, "--format", "json", data_dir=data_dir).stdout)
    assert found["truncated"] is True and found["truncated_reason"] == "size" and found["max_result_mb"] == 0.01
    assert found["row_cap"] == 10000 and len(found["rows"]) == 2


@pytest.mark.parametrize(("values", "fragment"), [({"analyst_max_result_mb": 0}, "analyst_max_result_mb"),
                                                  ({"analyst_max_result_mb": 2048}, "analyst_max_result_mb"),
                                                  ({"analyst_concurrency": 0}, "analyst_concurrency"),
                                                  ({"analyst_concurrency": 17}, "analyst_concurrency")])
def test_the_new_limits_are_checked_when_read(cli, tmp_path, data_dir, values, fragment):  # noqa: F811
    ran = cli("--config", config(tmp_path, **values), "sql", "select 1", data_dir=data_dir)
    assert ran.returncode != 0 and fragment in ran.stderr.decode()


def test_a_query_past_the_time_limit_is_stopped(cli, tmp_path, data_dir):  # noqa: F811
    ran = cli("--config", config(tmp_path, analyst_time_limit_s=0.2), "sql", ENDLESS, data_dir=data_dir)
    refused(ran, "the query ran past the 0.2 s limit and was stopped")


# -- with the server running -------------------------------------------------------------------------------


@pytest.fixture
def serving(tmp_path, knowledge):
    # The server's limits differ from the command line's defaults: what comes back shows who answered.
    settings = make_settings(tmp_path / "served", port=0, threads=4, monitor_enabled=False, analyst_row_cap=3,
                             analyst_time_limit_s=0.2)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield settings, parts
    server.stop()
    parts.close()


def test_queries_go_through_the_running_server_while_it_writes(serving, cli):  # noqa: F811
    settings, parts = serving
    parts.dialogue.turn("The dashboard is loading really slowly", "eve")
    counted = cli("sql", "select count(*) as n from conversations where user_id = :user", "--param", "user=eve",
                  "--format", "json", data_dir=settings.data_dir)
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout)["rows"] == [[1]]
    table = cli("sql", "select * from range(10)", data_dir=settings.data_dir).stdout.decode()
    assert table.splitlines()[-1] == "(3 rows, truncated at the row cap of 3)"  # the server's row cap

    refused(cli("sql", "select 1; drop table conversations", data_dir=settings.data_dir),
            "one statement per query: found 2")
    refused(cli("sql", "select * from staff_users", data_dir=settings.data_dir), "staff_users holds credentials")
    refused(cli("sql", ENDLESS, data_dir=settings.data_dir), "the query ran past the 0.2 s limit and was stopped")
    with pytest.raises(InputError) as stopped:
        ServerAdmin(admin_socket_path(settings)).sql(ENDLESS, {})
    assert stopped.value.code == TIMEOUT_CODE

    parts.dialogue.turn("I can't log in", "eve")  # the server's writer, after all that
    again = cli("sql", "select count(*) from conversations", "--format", "csv", data_dir=settings.data_dir)
    assert again.stdout.split()[-1] == b"2"
