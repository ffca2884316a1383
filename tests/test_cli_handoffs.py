"""`firstline handoffs list|show|close` and `firstline notify status|send|retry`: on the data folder when no server
runs (no model loaded), through the running server's admin socket when one does; `firstline user create NAME --role
engineer` makes the engineer who closes."""

import json

import pytest

from engine.store import DuckDBStore
from tests.conftest import ManualClock, build_parts, make_settings
from tests.engine.desk.test_reaching_users import handed_off
from tests.test_cli import assert_one_line_error
from tests.test_cli_users import PASSWORD, typed
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from web.server import BackgroundServer, make_server


def hand_off(parts, user):
    """An open hand-off in `user`'s conversation (see `handed_off`); its conversation id."""
    return handed_off(parts, user)[1]


@pytest.fixture
def data_dir(tmp_path, knowledge):
    """A data folder holding one open hand-off (ivy's) and an engineer, sam; no server running."""
    settings = make_settings(tmp_path, monitor_enabled=False, simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge, clock=ManualClock())  # ivy chatted in 2023: long gone
    try:
        hand_off(parts, "ivy")
    finally:
        parts.close()
    made = typed("user", "create", "sam", "--role", "engineer", data_dir=tmp_path, stdin=PASSWORD + "\n")
    assert made.returncode == 0 and made.stdout.decode() == "created sam  engineer  -\n", made.stderr.decode()
    return tmp_path


def test_an_engineer_closes_a_handoff_on_the_data_folder_and_the_user_is_told(data_dir, cli):  # noqa: F811
    listed = cli("handoffs", "list", "--json", data_dir=data_dir)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["handoffs"]
    assert row["status"] == "open" and row["user_id"] == "ivy"
    text = cli("handoffs", "list", data_dir=data_dir).stdout.decode()
    assert row["id"] in text and "(user ivy, conversation" in text
    shown = cli("handoffs", "show", row["id"], data_dir=data_dir).stdout.decode()
    assert row["summary"] in shown

    assert_one_line_error(cli("handoffs", "close", row["id"], "--as", "mallory", "--note", "done",
                              data_dir=data_dir), "'mallory' is not an engineer", "--role engineer")
    assert_one_line_error(cli("handoffs", "close", "../x", "--as", "sam", "--note", "done", data_dir=data_dir),
                          "no hand-off with id '../x'")
    closed = cli("handoffs", "close", row["id"], "--as", "sam", "--note", "The slow report query is fixed",
                 data_dir=data_dir)
    assert closed.returncode == 0, closed.stderr
    assert closed.stdout.decode().startswith(f"{row['id']}: closed by sam. The note was posted")
    assert_one_line_error(cli("handoffs", "close", row["id"], "--as", "sam", "--note", "again", data_dir=data_dir),
                          "already closed by sam")
    done = cli("handoffs", "list", "--status", "closed", data_dir=data_dir).stdout.decode()
    assert "closed by sam" in done and "The slow report query is fixed." in done
    assert cli("handoffs", "list", data_dir=data_dir).stdout.decode() == "no open hand-offs\n"

    store = DuckDBStore(data_dir / "firstline.duckdb")
    try:
        (told,), = store.execute("SELECT text FROM messages WHERE user_id = 'ivy' AND role = 'team'")
        assert "The slow report query is fixed." in told
        assert store.execute("SELECT kind, status FROM notifications") == [("handoff_closed", "pending")]
    finally:
        store.close()
    status = cli("notify", "status", data_dir=data_dir).stdout.decode()
    assert status.startswith("e-mail is off (set FIRSTLINE_SMTP_HOST") and "pending 1" in status
    sent = cli("notify", "send", data_dir=data_dir).stdout.decode()
    assert "skipped 1" in sent  # e-mail is off here: said, and nothing waits for ever
    assert json.loads(cli("notify", "status", "--json", data_dir=data_dir).stdout)["counts"]["skipped"] == 1


def test_handoffs_and_the_outbox_through_the_running_server(tmp_path, knowledge, cli):  # noqa: F811
    settings = make_settings(tmp_path, port=0, threads=4, monitor_enabled=False, simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge)
    parts.users.create("sam", "engineer", PASSWORD)
    conversation = hand_off(parts, "ivy")
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        (row,) = json.loads(cli("handoffs", "list", "--json", data_dir=settings.data_dir).stdout)["handoffs"]
        closed = cli("handoffs", "close", row["id"], "--as", "sam", "--note", "Fixed on our side",
                     data_dir=settings.data_dir)
        assert closed.returncode == 0, closed.stderr
        assert parts.assistant.history(conversation, "ivy")[-1]["role"] == "team"
        assert_one_line_error(cli("handoffs", "show", "nope", data_dir=settings.data_dir), "no hand-off with id")
        assert json.loads(cli("notify", "status", "--json", data_dir=settings.data_dir).stdout)["counts"][
            "pending"] == 1
        retried = cli("notify", "retry", data_dir=settings.data_dir).stdout.decode()
        assert retried == "nothing to queue again\n"
    finally:
        server.stop()
        parts.close()


def test_no_database_is_refused_never_created(tmp_path, cli):  # noqa: F811
    missing = tmp_path / "nowhere"
    assert_one_line_error(cli("handoffs", "list", data_dir=missing), "no database at")
    assert_one_line_error(cli("notify", "status", data_dir=missing), "no database at")
    assert not missing.exists()
