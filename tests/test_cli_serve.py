"""`firstline serve` and `firstline heal` as processes: stopped by SIGTERM (kill, systemd, docker stop) as by
Ctrl+C, each finishes its work and closes the store, leaving a whole DuckDB file and no write-ahead log to replay."""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest

from tests.peers import wait_until

SERVING = re.compile(r"serving .* on (http://127\.0\.0\.1:\d+)/")


@pytest.fixture
def data_dir(tmp_path: Path, session_settings, knowledge) -> Path:  # knowledge: the session's index is built
    for part in ("index", "cache"):
        if (session_settings.data_dir / part).is_dir():
            shutil.copytree(session_settings.data_dir / part, tmp_path / part)
    return tmp_path


def start(data_dir: Path, command: str = "serve", ready: re.Pattern[str] = SERVING,
          **settings: str) -> tuple[subprocess.Popen, str]:
    """`firstline COMMAND` on `data_dir` with `settings` (FIRSTLINE_ variables), once it printed `ready`; returns
    it and what `ready` captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update({"FIRSTLINE_DATA_DIR": str(data_dir), "FIRSTLINE_PORT": "0", "FIRSTLINE_MONITOR_INTERVAL_S": "0.2",
                "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **settings})
    # As started from a terminal: a test run in the background (`make test &`) has SIGINT ignored, which the
    # child would inherit, and a server started so rightly leaves it ignored (tests/core/test_stopping.py).
    process = subprocess.Popen([sys.executable, "-m", "firstline", command], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout is not None
    for line in process.stdout:  # ends when the process does: then the assertion below says why
        found = ready.search(line)
        if found:
            return process, found.group(1)
    process.wait(timeout=30)
    pytest.fail(f"firstline {command} did not start: {process.stderr.read() if process.stderr else ''}")


def stopped(process: subprocess.Popen, stop: signal.Signals) -> str:
    """Send `stop`, wait for the exit; its standard error."""
    try:
        process.send_signal(stop)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return err


def wal(database: Path) -> Path:
    return Path(f"{database}.wal")


def assert_closed_cleanly(process: subprocess.Popen, err: str, database: Path) -> None:
    assert process.returncode == 0, err
    assert "Traceback" not in err and "stopping" in err
    assert not wal(database).exists()  # closed: checkpointed, nothing left to replay


def stored(database: Path, sql: str) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchone()[0]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_closes_the_servers_store_and_exits_cleanly(data_dir, stop):
    process, url = start(data_dir)
    try:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        opened = urllib.request.Request(url + "/api/v1/conversations", data=b"{}", method="POST",
                                        headers={"Content-Type": "application/json"})
        with browser.open(opened, timeout=60) as response:
            assert response.status == 201  # committed: in the write-ahead log, not yet in the file
        assert wal(data_dir / "firstline.duckdb").exists()
    finally:
        err = stopped(process, stop)
    assert_closed_cleanly(process, err, data_dir / "firstline.duckdb")
    assert stored(data_dir / "firstline.duckdb", "SELECT count(*) FROM conversations") == 1


@pytest.mark.parametrize("stops", [[signal.SIGINT] * 3, [signal.SIGTERM, signal.SIGINT, signal.SIGTERM]])
def test_a_stop_pressed_again_during_the_clean_up_is_waited_for(data_dir, stops):
    """Ctrl+C three times in quick succession (or a supervisor repeating SIGTERM): one clean stop, not the process
    ended by the signal half-way through closing the store (exit -2 before)."""
    process, _ = start(data_dir)
    try:
        for stop in stops[:-1]:
            process.send_signal(stop)
            time.sleep(0.05)
    finally:
        err = stopped(process, stops[-1])
    assert_closed_cleanly(process, err, data_dir / "firstline.duckdb")


@pytest.mark.parametrize("level", ["", "WARNING", "error"])
def test_the_server_logs_when_what_and_how_bad_at_the_level_set(data_dir, level):
    process, url = start(data_dir, **({"FIRSTLINE_LOG_LEVEL": level} if level else {}))
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/metrics", timeout=60)  # no operator's token: refused, and logged
        refused.value.close()
        assert refused.value.code == 401
    finally:
        err = stopped(process, signal.SIGTERM)
    lines = [line for line in err.splitlines() if "refused GET /metrics" in line]
    if level == "error":
        assert lines == [], err
    else:
        (line,) = lines
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING web\.app: refused GET /metrics from "
                            r"127\.0\.0\.1: unauthorized", line), line


def test_sigterm_stops_the_monitor_alone_as_ctrl_c_does(tmp_path):
    process, _ = start(tmp_path, "heal", re.compile(r"(watching) simulation telemetry"))
    assert wait_until(lambda: wal(tmp_path / "firstline.duckdb").exists(), 60)  # the schema, at least, is written
    assert_closed_cleanly(process, stopped(process, signal.SIGTERM), tmp_path / "firstline.duckdb")
    assert stored(tmp_path / "firstline.duckdb", "SELECT count(*) FROM schema_version") >= 1


def test_serving_with_the_monitor_off_says_that_alerts_wait_for_one(data_dir):
    process, _ = start(data_dir, FIRSTLINE_MONITOR_ENABLED="false")
    err = stopped(process, signal.SIGTERM)
    assert_closed_cleanly(process, err, data_dir / "firstline.duckdb")
    assert "the monitor is off (FIRSTLINE_MONITOR_ENABLED=false): alerts the receiver takes are stored" in err
