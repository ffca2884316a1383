"""Remedy parameters: one schema per action, checked where playbooks, curated and learned rules are loaded, again
before an action reaches an adapter, and the webhook posts strict JSON only."""

import math
import re

import pytest

from core.errors import ConfigurationError, PlaybookError, RemediationError, RuleError
from core.settings import PROJECT_ROOT
from engine.actions.adapters import build_router
from engine.actions.adapters.webhook import WebhookAdapter
from engine.actions.catalogue import ACTIONS, param_problems, params_checker
from engine.decision.pack import load_pack, load_rulebase, vocabulary
from engine.infra.simulation import SimulatedInfrastructure
from engine.infra.topology import load_topology
from knowledge.playbooks import load_playbooks
from tests.conftest import make_settings
from tests.peers import HTTPPeer

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")


def messages(action: str, target: str | None, params: dict) -> list[str]:
    return [f"{name}: {message}" for name, message in param_problems(action, target, params, TOPOLOGY)]


@pytest.mark.parametrize(("params", "fragment"), [
    ({"replicas": -2}, "replicas: -2 is outside api's replicas, 2 to 8"),
    ({"replicas": 0}, "replicas: 0 is outside api's replicas"),
    ({"replicas": 9}, "replicas: 9 is outside api's replicas, 2 to 8 (the infrastructure file)"),
    ({"replicas": 4.0}, "replicas: 4.0 is not a whole number"),
    ({"replicas": 3.5}, "replicas: 3.5 is not a whole number"),
    ({"replicas": math.nan}, "replicas: nan is not a finite number"),
    ({"replicas": -math.inf}, "replicas: -inf is not a finite number"),
    ({"replicas": "4"}, "replicas: '4' is not a whole number"),
    ({"replicas": True}, "replicas: True is not a whole number"),
    ({"replicas": [4]}, "replicas: [4] is not a whole number"),
    ({"count": 4}, "count: scale_out takes no parameter 'count'; it takes: replicas"),
])
def test_scale_out_takes_a_whole_number_of_replicas_within_the_service_limits(params, fragment):
    (problem,) = messages("scale_out", "api", params)
    assert problem.startswith(fragment), problem


def test_the_bounds_come_from_the_service_or_from_every_service():
    assert messages("scale_out", "queue", {"replicas": 10}) == []  # queue declares up to 10, api up to 8
    assert messages("scale_out", "api", {"replicas": 10}) != []
    assert "database declares no `replicas`" in messages("scale_out", "database", {"replicas": 2})[0]
    # A target a rule fills in when it runs: the widest bounds any service declares, checked again at run time.
    assert messages("scale_out", None, {"replicas": 10}) == []
    assert messages("scale_out", None, {"replicas": 11}) == ["replicas: 11 is outside every service's replicas (2 to "
                                                             "10)"]
    assert messages("scale_out", "api", {}) == []


@pytest.mark.parametrize(("action", "params", "fragment"), [
    ("kill_slow_queries", {"older_than_s": -5}, "older_than_s: -5 is below the minimum 1"),
    ("kill_slow_queries", {"older_than_s": 1e9}, "older_than_s: 1e+09 is above the maximum 86400"),
    ("kill_slow_queries", {"older_than_s": math.inf}, "older_than_s: inf is not a finite number"),
    ("reset_connection_pool", {"idle_s": math.nan}, "idle_s: nan is not a finite number"),
    ("analyze_tables", {"table": "jobs; DROP TABLE users"}, "table: 'jobs; DROP TABLE users' is not a name"),
    ("analyze_tables", {"table": "x" * 64}, "table: 'xxxxxxxxx"),
    ("reconnect_integration", {"integration": 7}, "integration: 7 is not a name"),
    ("restart_service", {"force": True}, "force: restart_service takes no parameter 'force'; it takes: none"),
])
def test_every_action_has_its_own_schema(action, params, fragment):
    (problem,) = messages(action, "database" if action in ("kill_slow_queries", "reset_connection_pool",
                                                          "analyze_tables") else "api", params)
    assert problem.startswith(fragment), problem


def test_what_the_pack_uses_is_accepted():
    assert messages("analyze_tables", "database", {"table": "public.jobs"}) == []
    assert messages("kill_slow_queries", "database", {"older_than_s": 30}) == []
    assert messages("kill_slow_queries", "database", {"older_than_s": 7.5}) == []
    assert messages("resend_email", "mail", {"kind": "password_reset"}) == []
    assert all(param.help for spec in ACTIONS.values() for param in spec.params.values())


# -- at load time: playbooks, curated rules, learned rules --------------------------------------------------------

PLAYBOOK = """\
id: slow_api
title: The API is slow
category: performance
description: Requests to the API take a long time.
examples: [one, two, three, four, five, six, seven, eight, nine, ten]
remedies:
  - action: scale_out
    target: {target}
    params: {params}
    explain: added instances to the API
"""


@pytest.mark.parametrize(("target", "params", "fragment"), [
    ("api", "{replicas: .inf}", "remedies[0].params.replicas: '.inf' is not a finite number"),
    ("api", "{replicas: -3}", "remedies[0].params.replicas: -3 is outside api's replicas, 2 to 8"),
    ("web", "{replicas: 2.5}", "remedies[0].params.replicas: 2.5 is not a whole number"),
    ("auth", "{replicas: 7}", "remedies[0].params.replicas: 7 is outside auth's replicas, 2 to 6"),
    ("api", "{replicas: 4, speed: 11}", "remedies[0].params.speed: scale_out takes no parameter 'speed'"),
])
def test_a_playbook_remedy_with_bad_params_is_refused_with_file_line_and_field(tmp_path, target, params, fragment):
    path = tmp_path / "slow_api.yaml"
    path.write_text(PLAYBOOK.format(target=target, params=params), encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_playbooks(tmp_path, vocabulary(TOPOLOGY))
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:9: {fragment}"), problem


RULE = """\
rules:
  - name: scale_the_slow_service
    when:
      all:
        - metric: {{status: unhealthy}}
    then:
      - remediate: {{name: scale_out, target: {target}, params: {params}}}
"""


@pytest.mark.parametrize(("folder", "target", "params", "fragment"), [
    ("rules", "api", "{replicas: 12}", "rule scale_the_slow_service: then[0].remediate.params.replicas: 12 is outside "
                                       "api's replicas"),
    ("rules", '"{metric.service}"', "{replicas: 0}", "params.replicas: 0 is outside every service's replicas"),
    ("learned_rules", "queue", "{replicas: 3, now: true}", "params.now: scale_out takes no parameter 'now'"),
    ("learned_rules", "api", "{replicas: -.inf}", "then[0].remediate.params.replicas: '-.inf' is not a finite"),
])
def test_curated_and_learned_rules_are_held_to_the_same_schema(tmp_path, folder, target, params, fragment):
    settings = make_settings(tmp_path / "data", rules_dir=tmp_path / "rules")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "base.yaml").write_text(RULE.format(target="web", params="{replicas: 3}"), encoding="utf-8")
    assert len(load_rulebase(settings, TOPOLOGY)) == 1
    bad = (settings.learned_rules_dir if folder == "learned_rules" else tmp_path / "rules") / "bad.yaml"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(RULE.format(target=target, params=params).replace("scale_the_slow", "also_scale_the_slow"),
                   encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rulebase(settings, TOPOLOGY)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{bad}:7: ") and fragment.replace("scale_the_slow", "also_scale_the_slow") \
        in str(problem), problem


def test_a_parameter_filled_from_a_fact_waits_for_the_run(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(target='"{metric.service}"', params='{replicas: "{metric.value}"}'), encoding="utf-8")
    settings = make_settings(tmp_path / "data")
    assert len(load_rulebase(settings, TOPOLOGY, paths=[path])) == 1


# -- at run time: the router, and the webhook's strict JSON ------------------------------------------------------

def test_the_router_refuses_bad_params_before_any_adapter_runs(tmp_path):
    infrastructure = SimulatedInfrastructure(TOPOLOGY)
    router = build_router(make_settings(tmp_path), infrastructure, TOPOLOGY)
    for params, fragment in (({"replicas": math.nan}, "replicas: nan is not a finite number"),
                             ({"replicas": 40}, "replicas: 40 is outside api's replicas"),
                             ({"replicas": 3, "to": "moon"}, "to: scale_out takes no parameter 'to'")):
        with pytest.raises(RemediationError, match=fragment):
            router.execute("scale_out", "api", params)
    assert infrastructure.operations() == []  # nothing reached the infrastructure
    assert router.execute("scale_out", "api", {"replicas": 3}).startswith("scale_out on api")


def test_the_webhook_never_posts_what_is_not_json():
    with HTTPPeer(status=200) as peer:
        adapter = WebhookAdapter(peer.url, timeout_s=10)
        for value in (math.inf, -math.inf, math.nan):
            with pytest.raises(RemediationError, match="not plain JSON"):
                adapter.execute("scale_out", "api", {"replicas": value})
        assert peer.requests == []
        adapter.execute("scale_out", "api", {"replicas": 4})
        assert peer.requests == [{"action": "scale_out", "target": "api", "params": {"replicas": 4}, "undo": False}]


def test_the_checker_the_loaders_get_is_this_topology():
    check = params_checker(TOPOLOGY)
    assert check("scale_out", "auth", {"replicas": 7}) == [("replicas", "7 is outside auth's replicas, 2 to 6 (the "
                                                              "infrastructure file)")]


def test_the_shipped_pack_passes(settings):
    topology, playbooks = load_pack(settings)
    assert sum(len(p.remedies) for p in playbooks.values()) > 100 and len(load_rulebase(settings, topology, playbooks))


@pytest.mark.parametrize(("declared", "fragment"), [
    ("{min: 9, max: 2}", "services.web.replicas: Value error, min 9 is above max 2"),
    ("{min: 2, max: 8.5}", "services.web.replicas.max: Input should be a valid integer"),
    ("{min: 0, max: 4}", "services.web.replicas.min: Input should be greater than or equal to 1"),
    ("{min: 2, max: .inf}", "'.inf' is not a finite number"),
    ("{min: 2, max: 4, most: 5}", "services.web.replicas.most: Extra inputs are not permitted"),
])
def test_a_service_declares_its_replicas_as_whole_numbers_in_order(tmp_path, declared, fragment):
    text = (PROJECT_ROOT / "data" / "infrastructure.yaml").read_text(encoding="utf-8")
    path = tmp_path / "infrastructure.yaml"
    path.write_text(text.replace("replicas: {min: 2, max: 8}", f"replicas: {declared}", 1), encoding="utf-8")
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        load_topology(path)
