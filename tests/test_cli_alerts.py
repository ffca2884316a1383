"""`firstline alerts`: the receiver's dead letters and the alert storms' incidents, read on the data folder when no
server runs (through the running server: tests/web/test_ops_intake.py); a missing database or a malformed period is
one message and exit 2."""

import json
import time

import pytest

from engine.store import DuckDBStore
from engine.store.alert_intake import AlertIntake, AlertWindow, Incident
from engine.store.healing import HealingLedger
from tests.conftest import sequential_ids
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture


@pytest.fixture
def data_dir(tmp_path):
    """A data folder with two refusals and one alert storm in it."""
    folder = tmp_path / "data"
    store = DuckDBStore(folder / "firstline.duckdb")
    intake = AlertIntake(HealingLedger(store, sequential_ids()))
    now = time.time()
    intake.refuse(sender="10.1.2.3", caller="alertmanager", path="/api/v1/alerts/alertmanager", status=400,
                  code="invalid_alert", reason="not an Alertmanager webhook: alerts[0].startsAt: required",
                  content_type="application/json", body=b'{"version": "4",\n "alerts": [{}]}', body_bytes=33,
                  now=now - 7200)
    intake.refuse(sender="10.9.9.9", caller=None, path="/api/v1/alerts/alertmanager", status=401,
                  code="unauthorized", reason="this endpoint wants an operator's token", content_type="",
                  body=b"", body_bytes=900, now=now - 60)
    window = AlertWindow(now - 300, 500, 0, 120, {"web": 250, "database": 370}, now - 10)
    incident = intake.begin_incident(window, ["database"], now - 5)
    intake.escalate_incident(incident.id, "Alert storm: 620 firing alerts", {}, now - 5)
    store.close()
    return folder


def test_dead_letters_are_listed_newest_first_with_why_and_the_body_start(cli, data_dir):  # noqa: F811
    ran = cli("alerts", "dead-letters", data_dir=data_dir)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.decode().splitlines()
    assert lines[0].startswith("00000000000000000000000000000002  ") and "from 10.9.9.9  401 unauthorized" in lines[0]
    assert "body not kept: the sender was not let in" in lines[0]
    assert "from 10.1.2.3 (alertmanager)  400 invalid_alert  33 of 33 bytes kept" in lines[2]
    assert lines[3] == "    not an Alertmanager webhook: alerts[0].startsAt: required"
    assert lines[4] == '    {"version": "4", "alerts": [{}]}'


def test_the_period_limits_the_list_and_json_gives_the_apis_shape(cli, data_dir):  # noqa: F811
    found = json.loads(cli("alerts", "dead-letters", "--since", "30m", "--json", data_dir=data_dir).stdout)
    assert [d["status"] for d in found["dead_letters"]] == [401]
    assert set(found["dead_letters"][0]) == {"id", "received_at", "sender", "caller", "path", "status", "code",
                                             "reason", "content_type", "body_bytes", "kept_bytes", "body"}
    assert cli("alerts", "dead-letters", "--limit", "1", data_dir=data_dir).stdout.decode().count(" from ") == 1


def test_one_dead_letter_prints_all_of_its_kept_body(cli, data_dir):  # noqa: F811
    shown = cli("alerts", "dead-letter", "00000000000000000000000000000001", data_dir=data_dir)
    assert shown.returncode == 0
    assert shown.stdout.decode().endswith('{"version": "4",\n "alerts": [{}]}\n')
    raw = cli("alerts", "dead-letter", "00000000000000000000000000000001", "--body", data_dir=data_dir)
    assert raw.stdout == b'{"version": "4",\n "alerts": [{}]}'
    missing = cli("alerts", "dead-letter", "0123", data_dir=data_dir)
    assert missing.returncode == 1 and "no dead letter with id '0123'" in missing.stderr.decode()


def test_incidents_name_their_alerts_root_causes_and_hand_off(cli, data_dir):  # noqa: F811
    text = cli("alerts", "incidents", data_dir=data_dir).stdout.decode()
    assert "alert_storm  open" in text
    assert "620 alerts (120 truncated by Alertmanager, 0 summarised) across database 370, web 250" in text
    assert "root causes: database; hand-off: 00000000000000000000000000000004" in text
    found = json.loads(cli("alerts", "incidents", "--json", data_dir=data_dir).stdout)["incidents"]
    assert found[0]["handoff_id"] == "00000000000000000000000000000004" and found[0]["root_causes"] == ["database"]


@pytest.mark.parametrize("args", [("alerts", "dead-letters", "--since", "yesterday"),
                                  ("alerts", "dead-letters", "--limit", "0"),
                                  ("alerts", "dead-letter", "../etc")])
def test_a_malformed_argument_is_one_message_and_exit_2(cli, data_dir, args):  # noqa: F811
    ran = cli(*args, data_dir=data_dir)
    assert ran.returncode == 2 and ran.stderr.decode().count("\n") <= 3


def test_no_database_is_refused_not_created(cli, tmp_path):  # noqa: F811
    ran = cli("alerts", "dead-letters", data_dir=tmp_path / "typo")
    assert ran.returncode == 2 and "no database at" in ran.stderr.decode()
    assert not (tmp_path / "typo").exists()


def test_an_incident_over_hundreds_of_odd_services_lists_in_three_short_lines():
    from firstline.alerts import _incident_lines

    services = {f"svc-{n:03d}-" + "x" * 2000 + "\n\x1b[31mforged": 2 for n in range(500)}
    incident = Incident("i1", "alert_storm", 0.0, 0.0, 0.0, None, 1000, 0, 0, services, ("database",), None, ())
    lines = list(_incident_lines([incident]))
    assert len(lines) == 3 and sum(len(line) for line in lines) < 3_000, [len(line) for line in lines]
    assert "and 480 more with 960 alerts" in lines[1]
    assert not any("\n" in line or "\x1b" in line for line in lines)
