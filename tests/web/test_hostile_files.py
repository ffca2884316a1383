"""Hostile data files dropped into a running server's folders: the real server on loopback refuses each one (the
rules it reloads; the playbooks it does not read while serving), says why in its log, and goes on answering
with the rules it had."""

import http.cookiejar
import json
import logging
import shutil
import urllib.request

import pytest

from core.settings import PROJECT_ROOT
from tests.conftest import build_parts, make_settings
from web.server import BackgroundServer, make_server

MESSAGE = b'{"text": "what\'s the capital of Peru"}'  # declined, whatever the infrastructure does
# Each, if it were taken as PyYAML would take it, makes every message escalate ("hijacked"), or cannot be read.
HIJACK = "{escalate: {category: engineering, summary: hijacked}}"
RULE_FILES = {
    "twice.yaml": (f"rules:\n  - name: sneaky\n    when: {{all: [{{match: {{}}}}]}}\n    then: [{{decline: {{}}}}]\n"
                   f"    salience: 1\n    then: [{HIJACK}]\n    salience: 990\n",
                   "twice.yaml:6: rules[0].then: duplicate key 'then': first on line 4"),
    "laughs.yaml": ("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)) + "rules: *l9\n",
        "laughs.yaml:1: l0: anchors (&l0) are not allowed in data files"),
    "infinite.yaml": (f"rules:\n  - name: scale_forever\n    salience: 990\n    when: {{all: [{{match: {{}}}}]}}\n"
                      f"    then: [{{remediate: {{name: scale_out, target: api, params: {{replicas: .inf}}}}}}, "
                      f"{HIJACK}]\n", "infinite.yaml:5: rules[0].then[0].remediate.params.replicas: '.inf' is not a "
                      "finite number"),
    "too_many.yaml": (f"rules:\n  - name: scale_lots\n    salience: 990\n    when: {{all: [{{match: {{}}}}]}}\n"
                      f"    then: [{{remediate: {{name: scale_out, target: api, params: {{replicas: 500}}}}}}, "
                      f"{HIJACK}]\n", "replicas: 500 is outside api's replicas, 2 to 8"),
}


@pytest.fixture
def served(tmp_path, knowledge):
    rules, playbooks = tmp_path / "rules", tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "rules" / "builtin", rules)
    shutil.copytree(PROJECT_ROOT / "data" / "playbooks", playbooks)
    settings = make_settings(tmp_path / "data", port=0, threads=4, rules_dir=rules, playbooks_dir=playbooks,
                             rules_reload_s=0.001, simulation_faults=["slow_queries"])
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield f"http://127.0.0.1:{server.server.effective_port}", parts, rules, playbooks
    server.stop()
    parts.close()


def ask(base_url: str) -> dict:
    client = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    request = urllib.request.Request(base_url + "/api/v1/messages", data=MESSAGE, method="POST",
                                     headers={"Content-Type": "application/json"})
    with client.open(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


def version(base_url: str) -> str:
    with urllib.request.urlopen(base_url + "/api/v1/health", timeout=10) as response:
        return json.loads(response.read())["ruleset_version"]


def test_the_server_refuses_hostile_files_and_keeps_serving_the_old_rules(served, caplog):
    base_url, parts, rules, playbooks = served
    before, first = version(base_url), ask(base_url)
    assert first["decision"] == "decline"
    for name, (text, problem) in RULE_FILES.items():
        (rules / name).write_text(text, encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="firstline.rules"):
            answer = ask(base_url)  # each decision checks the folder first
        assert answer["decision"] == first["decision"] and "hijacked" not in json.dumps(answer), name
        assert version(base_url) == before
        source = parts.assistant.rule_source
        assert source is not None and problem in str(source.last_error), source.last_error
        assert any(problem in r.getMessage() and f"still running version {before}" in r.getMessage()
                   for r in caplog.records), name
        (rules / name).unlink()
    # The same kinds in the playbook folder: not read while serving, and refused by `firstline check` (test_cli).
    slow = playbooks / "performance" / "dashboard_slow.yaml"
    slow.write_text(slow.read_text(encoding="utf-8").replace("older_than_s: 30", "older_than_s: .inf")
                    + "id: twice\n", encoding="utf-8")
    assert ask(base_url)["decision"] == "decline" and version(base_url) == before
    # The folder is really watched: a valid edit goes live.
    healing = rules / "healing.yaml"
    healing.write_text(healing.read_text(encoding="utf-8").replace("salience: 300", "salience: 301", 1),
                       encoding="utf-8")
    assert ask(base_url)["decision"] == "decline" and version(base_url) != before
