"""`firstline metrics`: the seed's table on the data folder when no server runs and through the running server
while it chats; every line names its view; `--json` gives the same figures; a malformed period is exit 2."""

import json

import pytest

from engine.analytics.metrics import METRICS
from engine.store import DuckDBStore
from tests.conftest import build_parts, make_settings
from tests.test_cli_sql import refused
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from web.server import BackgroundServer, make_server

LABELS = {m.label for m in METRICS if m.key != "escalations_by_category"}


@pytest.fixture
def data_dir(tmp_path):
    """A data folder with an empty store in it (as a first `firstline serve` leaves it)."""
    folder = tmp_path / "data"
    DuckDBStore(folder / "firstline.duckdb").close()
    return folder


def printed_lines(ran) -> list[str]:
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.decode().splitlines()


def test_every_line_of_the_table_names_its_view(cli, data_dir):  # noqa: F811
    lines = printed_lines(cli("metrics", data_dir=data_dir))
    assert lines[0].startswith("Success metrics since ")
    body = [line for line in lines[2:] if line]
    for label in LABELS:
        (line,) = [x for x in body if x.startswith(label + " ")]
        view = next(m.view for m in METRICS if m.label == label)
        assert line.endswith(f"[{view}]")
    categories = [x for x in body if x.startswith("Escalations by category: ")]
    assert len(categories) == 4 and all("0 raised" in x for x in categories)


def test_json_has_the_same_figures_as_the_table(cli, data_dir):  # noqa: F811
    found = json.loads(cli("metrics", "--json", "--since", "2w", data_dir=data_dir).stdout)
    assert {"since", "metrics"} == set(found)
    assert {line["label"] for line in found["metrics"]} >= LABELS
    assert all({"key", "label", "view", "value", "display"} <= set(line) for line in found["metrics"])
    table = cli("metrics", "--since", "2w", data_dir=data_dir).stdout.decode()
    assert all(line["display"] in table for line in found["metrics"])


@pytest.mark.parametrize("since", ["30", "2026-02-30", "9999-01-01"])  # every kind: engine/analytics tests
def test_a_malformed_period_is_one_message_and_exit_2(cli, data_dir, since):  # noqa: F811
    refused(cli("metrics", "--since", since, data_dir=data_dir), "--since")


def test_the_table_comes_from_the_running_server_while_it_chats(cli, tmp_path, knowledge):  # noqa: F811
    settings = make_settings(tmp_path / "served", port=0, threads=4, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        exchange = parts.dialogue.turn("The dashboard is loading really slowly", "eve")
        assert exchange.stage.value == "verifying", exchange.replies
        parts.dialogue.turn("yes it works now", "eve", exchange.conversation_id)
        found = json.loads(cli("metrics", "--json", data_dir=settings.data_dir).stdout)
        parts.dialogue.turn("I can't log in", "ann")  # the server still writes after the analyst read
    finally:
        server.stop()
        parts.close()
    rate = next(line for line in found["metrics"] if line["key"] == "ai_resolution_confirmed")
    assert (rate["numerator"], rate["denominator"], rate["value"]) == (1, 1, 1.0)  # the user said it works
