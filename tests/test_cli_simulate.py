"""`firstline simulate`: a short run on a fresh data folder prints its figures, its assumptions and the metrics
table it filled; bad input and a folder in use are one line on stderr with exit status 2, nothing run."""

import datetime as dt
import functools
import json
import os
import socket
import subprocess
import sys

import pytest

import firstline.simulate
from engine.traffic.parts import simulated_parts
from tests.conftest import make_settings
from tests.test_cli import assert_one_line_error
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from web.admin import admin_socket_path, private_folder


@pytest.fixture
def shared_model(monkeypatch, knowledge):
    """The command builds its parts with the session's loaded knowledge instead of loading the model again."""
    monkeypatch.setattr(firstline.simulate, "simulated_parts", functools.partial(simulated_parts, knowledge=knowledge))


def test_a_short_run_prints_its_figures_assumptions_and_the_metrics(tmp_path, cli, shared_model):  # noqa: F811
    ran = cli("simulate", "--days", "2", "--users", "5", "--seed", "1", "--start", "2024-01-01", data_dir=tmp_path)
    assert ran.returncode == 0, ran.stderr
    out, err = ran.stdout.decode(), ran.stderr.decode()
    assert "day 1/2 (2024-01-01)" in err and "day 2/2 (2024-01-02)" in err
    assert "Simulated 2 days (2024-01-01 to 2024-01-03 UTC), 5 users, seed 1" in out
    assert out.index("conversations") < out.index("Assumptions") < out.index("Success metrics since 2024-01-01")
    assert "deciders:" in out and "faults:" in out and "AI resolution rate" in out
    assert "earlier runs' included, also those dated after this run's end" in out  # the table has no end date


def test_json_has_the_run_and_the_metrics(tmp_path, cli, shared_model):  # noqa: F811
    ran = cli("simulate", "--days", "1", "--users", "5", "--seed", "1", "--start", "2024-01-01", "--json",
              data_dir=tmp_path)
    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert found["simulation"]["seed"] == 1 and found["simulation"]["conversations"] > 0
    assert found["since"] == "2024-01-01" and found["metrics"]
    assert found["messages"].endswith("messages.tsv")


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("text\tlabel\nthe dashboard is slow\tperformance\nno tab here\n", ["--messages", "set.tsv:3:", "no tab"]),
        ("the dashboard is slow\tbilling\n", ["set.tsv:1:", "unknown label 'billing'"]),
    ],
)
def test_a_malformed_messages_file_exits_2_naming_the_line(tmp_path, cli, content, fragments):  # noqa: F811
    path = tmp_path / "set.tsv"
    path.write_text(content, encoding="utf-8")
    ran = cli("simulate", "--days", "1", "--messages", str(path), data_dir=tmp_path / "data")
    assert ran.returncode == 2
    assert_one_line_error(ran, "firstline: error:", *fragments)
    assert not (tmp_path / "data" / "firstline.duckdb").exists()  # refused before anything was written


TODAY = dt.datetime.now(dt.UTC).date()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--days", "0"], ["--days", "0 is not in the range 1<=x<=365"]),
        (["--days", "366"], ["--days", "366 is not in the range 1<=x<=365"]),
        (["--days", "many"], ["--days", "'many' is not a valid integer"]),
        (["--users", "0"], ["--users", "0 is not in the range 1<=x<=10000"]),
        (["--users", "20000"], ["--users", "20000 is not in the range 1<=x<=10000"]),
        (["--seed", "1.5"], ["--seed", "'1.5' is not a valid integer"]),
        (["--start", "1970-01-01", "--days", "1"], ["--start", "1970-01-01 is not a day from 2000-01-01 to today"]),
        (["--start", "1999-12-31"], ["--start", "1999-12-31 is not a day from 2000-01-01 to today"]),
        (["--start", "2999-01-01"], ["--start", "2999-01-01 is not a day from 2000-01-01 to today"]),
        (["--start", (TODAY + dt.timedelta(days=1)).isoformat(), "--days", "1"], ["--start", "is not a day from"]),
        (["--start", TODAY.isoformat(), "--days", "1"], ["--start", "reaches past today"]),
        (["--start", "2000-01-01", "--days", "365"], []),  # the earliest start is accepted: refused for --seed
        (["--start", "2024-02-30"], ["--start", "does not match the format"]),
        (["--messages", "/definitely/missing.tsv"], ["--messages", "no such file"]),
    ],
)
def test_bad_options_exit_2(tmp_path, cli, args, fragments):  # noqa: F811
    if not fragments:  # a good --start, with a bad option after it: the start passed its check
        args, fragments = [*args, "--seed", "x"], ["--seed", "'x' is not a valid integer"]
    ran = cli("simulate", *args, data_dir=tmp_path / "data")
    assert ran.returncode == 2
    assert_one_line_error(ran, "firstline: error:", *fragments)
    assert not (tmp_path / "data").exists()  # refused before anything was written


@pytest.mark.parametrize("kind", ["folder", "FIFO", "long line"])
def test_a_messages_path_that_is_no_plain_small_file_exits_2(tmp_path, cli, kind):  # noqa: F811
    path = tmp_path / "set.tsv"
    if kind == "folder":
        path.mkdir()
        fragments = [f"{path} is not a regular file (a folder)"]
    elif kind == "FIFO":
        os.mkfifo(path)  # refused from its status: opening it would wait for a writer
        fragments = [f"{path} is not a regular file (a FIFO)"]
    else:
        path.write_text("the dashboard is slow " * 10_000 + "\tperformance\n", encoding="utf-8")
        fragments = [f"{path}:1: the line is longer than", "bytes; the chat accepts"]
    ran = cli("simulate", "--days", "1", "--messages", str(path), data_dir=tmp_path / "data")
    assert ran.returncode == 2
    assert_one_line_error(ran, "firstline: error:", "--messages", *fragments)
    assert not (tmp_path / "data" / "firstline.duckdb").exists()


def test_a_running_server_is_not_written_under(tmp_path, cli):  # noqa: F811
    path = admin_socket_path(make_settings(tmp_path))
    private_folder(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:  # what a running server listens on
        server.bind(str(path))
        server.listen()
        ran = cli("simulate", "--days", "1", data_dir=tmp_path)
    assert ran.returncode == 2
    assert_one_line_error(ran, "a Firstline server is running", "stop the server or set FIRSTLINE_DATA_DIR")


def test_a_database_held_by_another_process_is_refused(tmp_path, cli):  # noqa: F811
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(tmp_path / "firstline.duckdb")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        ran = cli("simulate", "--days", "1", data_dir=tmp_path)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert ran.returncode == 2
    assert_one_line_error(ran, "firstline.duckdb", "stop the server or set FIRSTLINE_DATA_DIR")
