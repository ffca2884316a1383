"""`firstline escalations list|show|decide|ask`: on a running server through its admin socket, and on the data
folder when none runs, with the desk's rules and one-line errors that change nothing."""

import json
import re

import pytest

import firstline.escalations
from engine.wiring import build
from tests.conftest import build_parts, make_settings
from tests.test_cli import assert_one_line_error
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from web.server import BackgroundServer, make_server

PASSWORD = "correct horse battery staple"


@pytest.fixture
def serving(tmp_path, knowledge):
    settings = make_settings(tmp_path, port=0, threads=4, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge)
    parts.users.create("dana", "decider", PASSWORD)
    parts.users.create("pat", "decider", PASSWORD, categories=("policy",))
    server = BackgroundServer(make_server(settings, parts)).start()
    yield settings, parts
    server.stop()
    parts.close()


def test_list_show_decide_while_the_server_runs(serving, cli):  # noqa: F811
    settings, parts = serving
    exchange = parts.dialogue.turn("We're a charity, can we get a non-profit discount?", "eve")
    listed = cli("escalations", "list", "--as", "dana", "--json", data_dir=settings.data_dir)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)["escalations"]
    assert row["conversation_id"] == exchange.conversation_id and row["category"] == "pricing"
    text = cli("escalations", "list", "--as", "dana", data_dir=settings.data_dir).stdout.decode()
    # The server's clock is the wall clock: a slow machine may take minutes to get here from the 48 h deadline.
    assert row["id"] in text and re.search(r"(2\.0 days|4[0-7]\.\d h) left", text), text
    assert "We're a charity, can we get a non-profit discount?" in text
    shown = cli("escalations", "show", row["id"], "--as", "dana", data_dir=settings.data_dir).stdout.decode()
    assert shown.index("Facts:") < shown.index("Options:") < shown.index("Recommendation:") < shown.index(
        "Precedents:")
    digest = shown.rsplit("digest: ", 1)[1].strip()

    refused = cli("escalations", "decide", row["id"], "--as", "dana", "--outcome", "rejected",
                  data_dir=settings.data_dir)
    assert_one_line_error(refused, "a reason is required to reject")
    other = cli("escalations", "decide", row["id"], "--as", "pat", "--outcome", "approved", "--reason", "ok",
                data_dir=settings.data_dir)
    assert_one_line_error(other, "you decide policy requests only; this one is pricing")
    stranger = cli("escalations", "list", "--as", "mallory", data_dir=settings.data_dir)
    assert_one_line_error(stranger, "'mallory' is not a decider")
    unknown = cli("escalations", "show", "nope", "--as", "dana", data_dir=settings.data_dir)
    assert_one_line_error(unknown, "no escalation with id 'nope'")
    for odd in ("../users", "a/b", "x?as=pat", "%2F"):  # never a path or a query on the socket
        assert_one_line_error(cli("escalations", "decide", odd, "--as", "dana", "--outcome", "approved",
                                  data_dir=settings.data_dir), f"no escalation with id {odd!r}")
    assert parts.dialogue.escalations.get(row["id"]).status == "open"

    done = cli("escalations", "decide", row["id"], "--as", "dana", "--outcome", "rejected", "--digest", digest,
               "--reason", "Only for registered charities.", data_dir=settings.data_dir)
    assert done.returncode == 0 and b"rejected" in done.stdout
    assert parts.dialogue.escalations.get(row["id"]).status == "rejected"
    decided = cli("escalations", "list", "--as", "dana", "--status", "decided", data_dir=settings.data_dir)
    assert "rejected by dana" in decided.stdout.decode() and "Only for registered charities." in decided.stdout.decode()
    record = json.loads(cli("escalations", "show", row["id"], "--as", "dana", "--json",
                            data_dir=settings.data_dir).stdout)["record"]
    decided = next(e for e in record if e["kind"] == "decided")
    assert decided["actor"] == "dana" and decided["detail"]["via"] == "cli"


def test_the_same_commands_work_on_the_data_folder_without_a_server(tmp_path, knowledge, cli, monkeypatch):  # noqa: F811
    settings = make_settings(tmp_path, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge)
    parts.users.create("dana", "decider", PASSWORD)
    parts.dialogue.turn("Could you extend my free trial by a week?", "eve")
    parts.close()
    # The command builds the parts itself; here it gets the test's shared index instead of building one.
    monkeypatch.setattr(firstline.escalations, "build", lambda s: build(s, knowledge=knowledge))
    listed = cli("escalations", "list", "--as", "dana", "--json", data_dir=settings.data_dir)
    (row,) = json.loads(listed.stdout)["escalations"]
    asked = cli("escalations", "ask", row["id"], "--as", "dana", "--question", "Which plan are you on?",
                data_dir=settings.data_dir)
    assert asked.returncode == 0 and b"asked" in asked.stdout, asked.stderr
    empty = cli("escalations", "ask", row["id"], "--as", "dana", "--question", " ", data_dir=settings.data_dir)
    assert_one_line_error(empty, "`question` is required")


def test_the_time_left_reads_in_the_unit_it_prints():
    from firstline.escalations import _left
    assert _left(48 * 3600 - 60) == "2.0 days left"  # 47.98 h prints as 48.0: in days
    assert _left(47.9 * 3600) == "47.9 h left"
    assert _left(0) == "past its deadline"
