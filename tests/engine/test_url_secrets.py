"""Secrets in the scrape and webhook URLs, against real servers on 127.0.0.1: `user:password@` goes as HTTP Basic
auth (not into the host, where it was a DNS error), and no error, detail or source ever shows the password or a
query-string value."""

from __future__ import annotations

import base64
import json
import threading

import pytest

from core.errors import RemediationError, TelemetryError
from core.settings import PROJECT_ROOT
from engine.actions.adapters.webhook import WebhookAdapter
from engine.actions.catalogue import ACTIONS
from engine.infra.telemetry import ScrapeSource
from engine.infra.topology import load_topology
from tests.peers import LoopbackServer, QuietHandler, free_port

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml",
                         {name: spec.needs for name, spec in ACTIONS.items()})
SECRETS = ("ScS3cret", "QTOK2345")
BODY = 'firstline_cpu_pct{service="api"} 97\n'


class Recorder(LoopbackServer):
    """A real HTTP peer that records each request (method, path, Authorization, body) and answers `status` with
    `body`; with `redirect_to`, it answers 302 to that URL instead."""

    def __init__(self, status: int = 200, body: str = BODY, redirect_to: str | None = None) -> None:
        self.seen: list[dict] = []
        self.status, self.body, self.redirect_to = status, body, redirect_to
        self.lock = threading.Lock()
        recorder = self

        class Handler(QuietHandler):
            def answer(self) -> None:
                sent = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder.lock:
                    recorder.seen.append({"method": self.command, "path": self.path, "body": sent,
                                          "authorization": self.headers.get("Authorization")})
                if recorder.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", recorder.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                payload = recorder.body.encode()
                self.send_response(recorder.status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = answer

        super().__init__(Handler, "/metrics")

    def with_secrets(self, user: str = "user", password: str = "ScS3cret") -> str:
        return self.url.replace("http://", f"http://{user}:{password}@") + "?token=QTOK2345&job=firstline"


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, text


# -- the scrape ----------------------------------------------------------------------------------------------

def test_a_scrape_with_credentials_sends_them_as_basic_auth():
    with Recorder() as exporter:
        url = exporter.with_secrets(password="Sc%40S3cret")  # percent-encoded "@", sent decoded
        snapshot = ScrapeSource(url, TOPOLOGY, timeout_s=5, clock=lambda: 1000.0).read()
    assert snapshot.metrics == {"api": {"cpu_pct": 97.0}}
    assert exporter.seen == [{"method": "GET", "path": "/metrics?token=QTOK2345&job=firstline", "body": b"",
                              "authorization": basic("user:Sc@S3cret")}]


def test_a_scrape_without_credentials_sends_no_authorization():
    with Recorder() as exporter:
        ScrapeSource(exporter.url, TOPOLOGY, timeout_s=5, clock=lambda: 1000.0).read()
    assert exporter.seen[0]["authorization"] is None


def test_the_credentials_do_not_follow_a_redirect():
    with Recorder() as elsewhere, Recorder(redirect_to=elsewhere.url) as exporter:
        ScrapeSource(exporter.with_secrets(), TOPOLOGY, timeout_s=5, clock=lambda: 1000.0).read()
    assert exporter.seen[0]["authorization"] == basic("user:ScS3cret")
    assert elsewhere.seen[0]["authorization"] is None


@pytest.mark.parametrize("how", ["refused", "503", "not metrics"])
def test_a_failing_scrape_names_the_url_without_its_secrets(how):
    with Recorder(status=503 if how == "503" else 200, body="nothing\n" if how == "not metrics" else BODY) as peer:
        url = peer.with_secrets() if how != "refused" else f"http://user:ScS3cret@127.0.0.1:{free_port()}/m?token=QTOK2345"
        with pytest.raises(TelemetryError) as caught:
            ScrapeSource(url, TOPOLOGY, timeout_s=5, clock=lambda: 1000.0).read()
    message = str(caught.value)
    assert_no_secret(message, caught.value.source)
    assert caught.value.source.startswith("http://user:***@127.0.0.1:") and "token=***" in caught.value.source
    if how != "not metrics":
        assert message.startswith(f"cannot scrape {caught.value.source}: ")
    assert {"refused": "Connection refused", "503": "HTTP Error 503", "not metrics": "no firstline_"}[how] in message


def test_a_scrape_url_urllib_cannot_open_is_not_echoed():
    with pytest.raises(TelemetryError) as caught:
        ScrapeSource("htp://user:ScS3cret@127.0.0.1/m?token=QTOK2345", TOPOLOGY, timeout_s=1).read()
    assert "unknown url type" in str(caught.value)
    assert_no_secret(str(caught.value), caught.value.source)


# -- the webhook ---------------------------------------------------------------------------------------------

def test_a_webhook_with_credentials_sends_them_as_basic_auth_and_does_not_show_them():
    with Recorder(body="done") as peer:
        detail = WebhookAdapter(peer.with_secrets("hookuser"), timeout_s=10).execute("rollback_deploy", "api", {})
    assert detail.endswith(": 200 done") and "via http://hookuser:***@127.0.0.1:" in detail
    assert_no_secret(detail)
    [seen] = peer.seen
    assert seen["method"] == "POST" and seen["authorization"] == basic("hookuser:ScS3cret")
    assert seen["path"] == "/metrics?token=QTOK2345&job=firstline"
    assert json.loads(seen["body"]) == {"action": "rollback_deploy", "target": "api", "params": {}, "undo": False}


@pytest.mark.parametrize(("how", "said"), [
    ("refused", "did not take scale_out on api"),
    ("503", "answered 503 to scale_out on api: "),
    ("malformed", "did not take scale_out on api: unknown url type: '127.0.0.1/hook?token=***'"),
])
def test_a_failing_webhook_names_the_url_without_its_secrets(how, said):
    # The 503 answer echoes the request line back, as some servers' error pages do: that is cleaned too.
    with Recorder(status=503, body="no: POST /hook?token=QTOK2345 refused") as peer:
        url = {"refused": f"http://hookuser:ScS3cret@127.0.0.1:{free_port()}/hook?token=QTOK2345",
               "503": peer.with_secrets("hookuser"),
               # No scheme: urllib's ValueError echoed the whole URL, and escaped the adapter as a bare ValueError.
               "malformed": "127.0.0.1/hook?token=QTOK2345"}[how]
        with pytest.raises(RemediationError) as caught:
            WebhookAdapter(url, timeout_s=10).execute("scale_out", "api", {})
    message = str(caught.value)
    assert said in message
    if how == "malformed":
        assert message.startswith("127.0.0.1/hook?token=*** did not take")
    else:
        assert message.startswith("http://hookuser:***@127.0.0.1:") and "token=***" in message
    assert_no_secret(message)
