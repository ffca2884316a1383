"""The Alertmanager receiver loses nothing: every refusal logged and kept as a dead letter an operator can read,
fingerprints derived as Alertmanager does, large notifications accepted and summarised, `truncatedAlerts` kept;
through the Flask app, on a real server on loopback, and with a real Alertmanager."""

import copy
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from engine.access.tokens import Role
from engine.healing.alerts import MAX_STORED_ALERTS, fingerprint
from engine.store.alert_intake import DEAD_LETTER_BODY_BYTES, PREVIEW_CHARS
from tests.conftest import build_parts, make_settings
from tests.peers import free_port, unavailable, wait_until
from tests.web.test_admin import cli  # noqa: F401 - the in-process command line fixture
from tests.web.test_ops import FIRING, RECEIVER, receipt
from web import create_app
from web.ops import DEAD_LETTER_HEADER, DEAD_LETTERS_PATH, MAX_BODY_BYTES
from web.server import BackgroundServer, make_server

LABELS = FIRING["alerts"][0]["labels"]


@pytest.fixture
def token(parts) -> str:
    return parts.tokens.create("alertmanager", Role.OPERATOR).token


@pytest.fixture
def client(settings, parts, token):
    app = create_app(settings, parts)
    app.testing = True
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def notification(count: int, status: str = "firing", note_chars: int = 0, **top) -> dict:
    body = copy.deepcopy(FIRING)
    body["alerts"] = [{**FIRING["alerts"][0], "status": status, "fingerprint": "",
                       "labels": {**LABELS, "instance": f"api-{i}"},
                       "annotations": {"summary": "api memory will pass 90% within 30 minutes",
                                       "description": "x" * note_chars}} for i in range(count)]
    return body | top


def kept(parts) -> list[dict]:
    rows = parts.store.execute("SELECT id, sender, caller, status, code, reason, body_bytes, kept_bytes, body "
                               "FROM dead_letters ORDER BY received_at, id")
    names = ("id", "sender", "caller", "status", "code", "reason", "body_bytes", "kept_bytes", "body")
    return [dict(zip(names, row, strict=True)) for row in rows]


# -- fingerprints ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sent", ["", None])
def test_an_alert_without_a_fingerprint_is_stored_under_alertmanagers_and_its_resolution_meets_it(client, parts,
                                                                                                   sent):
    parts.infrastructure.inject("memory_leak@api", ramp_s=0)
    firing = copy.deepcopy(FIRING)
    firing["alerts"][0]["fingerprint"] = sent
    answer = client.post(RECEIVER, json=firing)
    assert answer.status_code == 200 and answer.get_json() == receipt(1, 1, 1, derived_fingerprints=1)
    stored = parts.store.execute("SELECT fingerprint FROM alerts")[0][0]
    assert stored == fingerprint(LABELS) and len(stored) == 16
    resolved = copy.deepcopy(FIRING)  # what Alertmanager sends next: the same alert, with its own fingerprint
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    resolved["alerts"][0]["fingerprint"] = fingerprint(LABELS)
    assert client.post(RECEIVER, json=resolved).get_json() == receipt(1, 1, 0)
    parts.healing.monitor.tick()
    assert parts.healing.ledger.remediations() == []  # resolved before it was acted on: the two met
    assert kept(parts) == []


# -- refusals -------------------------------------------------------------------------------------------------------

def over_the_limit() -> bytes:
    return b'{"version": "4", "alerts": [' + b" " * MAX_BODY_BYTES + b"]}"


@pytest.mark.parametrize(("kwargs", "status", "code", "reason"), [
    ({"data": b"{broken", "content_type": "application/json"}, 400, "invalid_alert", "not valid JSON"),
    ({"data": b"version=4", "content_type": "application/x-www-form-urlencoded"}, 400, "invalid_alert", "as JSON"),
    ({"json": {**FIRING, "alerts": [{**FIRING["alerts"][0], "startsAt": "soon"}]}}, 400, "invalid_alert",
     "alerts[0].startsAt"),
    ({"data": json.dumps(FIRING).replace('"api"', '"\\ud800"').encode(), "content_type": "application/json"}, 400,
     "invalid_alert", "not valid Unicode"),
    ({"data": b"\xff\xfe not utf-8", "content_type": "application/json"}, 400, "invalid_alert", "not valid"),
    ({"data": b'{"version": "4", "x": "\xc3("}', "content_type": "application/json"}, 400, "invalid_alert",
     "not valid UTF-8"),
    ({"data": over_the_limit(), "content_type": "application/json"}, 413, "request_entity_too_large",
     f"takes at most {MAX_BODY_BYTES:,} bytes"),
])
def test_every_refusal_is_logged_with_its_reason_and_kept_with_its_body(client, parts, caplog, kwargs, status, code,
                                                                        reason):
    response = client.post(RECEIVER, **kwargs)
    assert response.status_code == status and response.get_json()["error"]["code"] == code
    sent = kwargs.get("data") or json.dumps(kwargs.get("json")).encode()
    (letter,) = kept(parts)
    assert letter["id"] == response.headers[DEAD_LETTER_HEADER]
    assert (letter["status"], letter["code"], letter["sender"], letter["caller"]) == (status, code, "127.0.0.1",
                                                                                     "alertmanager")
    assert reason in letter["reason"] and letter["body_bytes"] == len(sent)
    assert letter["kept_bytes"] == min(len(sent), DEAD_LETTER_BODY_BYTES)
    assert letter["body"] == sent[:DEAD_LETTER_BODY_BYTES].decode("utf-8", errors="replace")
    assert f"alert notification refused from 127.0.0.1 ({status} {code}" in caplog.text
    assert f"kept as dead letter {letter['id']}" in caplog.text and reason in caplog.text
    assert parts.store.execute("SELECT count(*) FROM alerts")[0][0] == 0


@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.USER, 403), ("made-up", 401)])
def test_a_stranger_is_refused_and_only_that_it_came_is_kept(settings, parts, caplog, role, status):
    stranger = create_app(settings, parts).test_client()
    headers = {}
    if role == "made-up":
        headers["Authorization"] = "Bearer fl_abcdef123456_notasecret"
    elif role is not None:
        headers["Authorization"] = f"Bearer {parts.tokens.create('someone', role).token}"
    response = stranger.post(RECEIVER, json=FIRING, headers=headers)
    assert response.status_code == status
    (letter,) = kept(parts)
    assert (letter["status"], letter["caller"], letter["kept_bytes"], letter["body"]) == (status, None, 0, "")
    assert letter["body_bytes"] == len(json.dumps(FIRING))
    assert "alert notification refused from 127.0.0.1" in caplog.text


def test_operators_read_the_dead_letters_newest_first(client, parts, settings):
    ids = []
    for i in range(3):
        bad = {**FIRING, "version": str(i)}
        ids.append(client.post(RECEIVER, json=bad).headers[DEAD_LETTER_HEADER])
    listed = client.get(DEAD_LETTERS_PATH).get_json()["dead_letters"]
    assert [d["id"] for d in listed] == ids[::-1]
    assert listed[0]["reason"] == "not an Alertmanager webhook: version: expected \"4\", got '2'"
    assert all(len(d["body"]) <= PREVIEW_CHARS for d in listed)
    assert [d["id"] for d in client.get(f"{DEAD_LETTERS_PATH}?limit=1").get_json()["dead_letters"]] == [ids[2]]
    later = client.get(f"{DEAD_LETTERS_PATH}?since={time.time() + 60}").get_json()["dead_letters"]
    assert later == []
    one = client.get(f"{DEAD_LETTERS_PATH}/{ids[0]}").get_json()
    assert json.loads(one["body"])["version"] == "0"  # all of it: to be fixed and posted again
    assert client.get(f"{DEAD_LETTERS_PATH}/nope").status_code == 404
    for query in ("limit=0", "limit=5000", "limit=x", "since=soon", "since=nan"):
        refused = client.get(f"{DEAD_LETTERS_PATH}?{query}")
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_query", query
    stranger = create_app(settings, parts).test_client()
    assert stranger.get(DEAD_LETTERS_PATH).status_code == 401
    assert len(kept(parts)) == 3  # reading them refused nothing new


# -- sizes ----------------------------------------------------------------------------------------------------------

def test_a_thousand_alerts_in_over_a_megabyte_are_accepted_and_stored(client, parts):
    body = notification(1000, note_chars=1200)
    assert len(json.dumps(body)) > 1_300_000
    response = client.post(RECEIVER, json=body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == receipt(1000, 1000, 1000, derived_fingerprints=1000)
    assert parts.store.execute("SELECT count(*) FROM alerts")[0][0] == 1000 and kept(parts) == []


def test_alerts_past_the_cap_are_summarised_not_refused_and_truncated_alerts_is_kept(client, parts):
    body = notification(MAX_STORED_ALERTS + 250, truncatedAlerts=77)
    response = client.post(RECEIVER, json=body)
    assert response.status_code == 200
    assert response.get_json() == {**receipt(MAX_STORED_ALERTS + 250, MAX_STORED_ALERTS, MAX_STORED_ALERTS,
                                             summarised=250, truncated=77,
                                             derived_fingerprints=MAX_STORED_ALERTS + 250),
                                   "stored": MAX_STORED_ALERTS}
    row = parts.store.execute("SELECT sender, alerts, stored, new, summarised, summarised_firing, truncated, summary "
                              "FROM alert_notifications")
    assert row == [("127.0.0.1", 1250, 1000, 1000, 250, 250, 77, '{"api": 250}')]


# -- a real server on loopback --------------------------------------------------------------------------------------

def post(url: str, data: bytes, token: str = "") -> tuple[int, dict, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_on_a_real_server_big_notifications_pass_and_refusals_are_kept_and_listed(tmp_path, knowledge,
                                                                                   cli):  # noqa: F811
    settings = make_settings(tmp_path / "data", port=0, threads=4, monitor_enabled=False)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        token = parts.tokens.create("alertmanager", Role.OPERATOR).token
        url = server.url + RECEIVER
        big = json.dumps(notification(1000, note_chars=1200)).encode()
        status, _, answer = post(url, big, token)
        assert (status, answer["stored"]) == (200, 1000)
        status, headers, answer = post(url, over_the_limit(), token)
        assert status == 413 and answer["error"]["code"] == "request_entity_too_large"
        status, _, _ = post(url, json.dumps(FIRING).encode())  # no token
        assert status == 401
        letters = kept(parts)
        assert [(d["status"], d["kept_bytes"]) for d in letters] == [(413, DEAD_LETTER_BODY_BYTES), (401, 0)]
        assert letters[0]["id"] == headers[DEAD_LETTER_HEADER]
        # The command line reads them through the running server (DuckDB admits one writing process).
        listed = cli("alerts", "dead-letters", "--json", data_dir=settings.data_dir)
        assert listed.returncode == 0, listed.stderr
        assert [d["id"] for d in json.loads(listed.stdout)["dead_letters"]] == [d["id"] for d in letters[::-1]]
        shown = cli("alerts", "dead-letter", letters[0]["id"], data_dir=settings.data_dir).stdout.decode()
        assert "413 request_entity_too_large" in shown and shown.count(" ") >= DEAD_LETTER_BODY_BYTES - 100
    finally:
        server.stop()
        parts.close()


# -- a real Alertmanager --------------------------------------------------------------------------------------------

ALERTMANAGER_CONFIG = """
route: {{receiver: firstline, group_by: [storm], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}}
receivers:
  - name: firstline
    webhook_configs:
      - url: "{url}"
        max_alerts: 10
        http_config: {{authorization: {{credentials: "{token}"}}}}
"""


@pytest.fixture
def alertmanager(tmp_path):
    """Start Alertmanager posting to a Firstline URL; stop it by its pid afterwards."""
    started: list[subprocess.Popen] = []

    def start(url: str, token: str) -> str:
        binary = shutil.which("prometheus-alertmanager")
        if binary is None:
            unavailable("prometheus-alertmanager (apt-get install -y prometheus-alertmanager)")
        port = free_port()
        config = tmp_path / "alertmanager.yml"
        config.write_text(ALERTMANAGER_CONFIG.format(url=url, token=token), encoding="utf-8")
        with open(tmp_path / "alertmanager.log", "wb") as log:
            started.append(subprocess.Popen(
                [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: _answers(base + "/-/ready"), 30), "Alertmanager did not start"
        return base

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_real_alertmanager_storm_is_received_truncated_alerts_kept_and_fingerprints_agree(tmp_path, knowledge,
                                                                                           alertmanager):
    settings = make_settings(tmp_path / "data", port=0, threads=4, monitor_enabled=False,
                             ops_listen="127.0.0.1:0")
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        token = parts.tokens.create("alertmanager", Role.OPERATOR).token
        base = alertmanager(server.ops_url + RECEIVER, token)
        sent = [{"labels": {"alertname": "Slow", "storm": "s1", "service": service, "instance": f"{service}-{i}"},
                 "annotations": {"summary": "slow"}} for i, service in enumerate(["web", "api", "database"] * 10)]
        request = urllib.request.Request(base + "/api/v2/alerts", data=json.dumps(sent).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        def arrived() -> list[tuple]:
            return parts.store.execute("SELECT alerts, stored, truncated FROM alert_notifications ORDER BY received_at")

        assert wait_until(lambda: arrived() != [], 30), "Alertmanager posted nothing"
        assert arrived()[0] == (10, 10, 20)  # max_alerts: 10 of 30 in the body, truncatedAlerts 20
        with urllib.request.urlopen(base + "/api/v2/alerts", timeout=10) as response:
            theirs = {a["fingerprint"]: a["labels"] for a in json.loads(response.read())}
        assert len(theirs) == 30
        assert all(fingerprint(labels) == fp for fp, labels in theirs.items())  # our derivation is theirs
        ours = {fp for (fp,) in parts.store.execute("SELECT fingerprint FROM alerts")}
        assert len(ours) == 10 and ours <= set(theirs)
    finally:
        server.stop()
        parts.close()

