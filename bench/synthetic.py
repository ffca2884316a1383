"""Synthetic learned knowledge for scale tests and benchmarks: N learned rules.

Each says "for playbook P, when service S's metric M is unhealthy, run action A on S", as one rule file entry
routed by its literal playbook, the shape the learning loop writes back. Playbooks, services and metrics are
the default pack's, so decisions look like real ones (about 50 facts each).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT
from engine.decision.trace import Fact
from engine.infra.topology import load_topology

ACTIONS = ("restart_service", "scale_out", "rollback_deploy")  # actions any service accepts


@dataclass(frozen=True)
class Pack:
    playbooks: tuple[str, ...]
    signals: tuple[tuple[str, str], ...]  # (service, metric)
    limits: dict[tuple[str, str], float]


def default_pack() -> Pack:
    topology = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
    folders = sorted((PROJECT_ROOT / "data" / "playbooks").iterdir())
    technical = [p.stem for folder in folders if folder.name in TECHNICAL for p in sorted(folder.glob("*.yaml"))]
    signals = tuple((s, m) for s, spec in sorted(topology.services.items()) for m in sorted(spec.limits))
    limits = {(s, m): topology.services[s].limits[m] for s, m in signals}
    return Pack(tuple(technical), signals, limits)


TECHNICAL = ("performance", "authentication", "data_sync", "feature_malfunction", "integration", "configuration",
             "account", "bug_error")


@dataclass(frozen=True)
class Learned:
    """One learned fix: for `playbook`, when `service`'s `metric` was unhealthy, `action` on `target`."""

    name: str
    playbook: str
    service: str
    metric: str
    action: str
    target: str


def learned(k: int, pack: Pack) -> Learned:
    playbook = pack.playbooks[k % len(pack.playbooks)]
    j = k // len(pack.playbooks)
    service, metric = pack.signals[j % len(pack.signals)]
    action = ACTIONS[(j // len(pack.signals)) % len(ACTIONS)]
    return Learned(f"learned_{k:05d}", playbook, service, metric, action, service)


def rows(n: int, pack: Pack) -> list[Learned]:
    return [learned(k, pack) for k in range(n)]


def rules_yaml(n: int, pack: Pack) -> str:
    """N learned rules (the sharded design)."""
    out = ["ruleset: learned_rules", "rules:"]
    for r in rows(n, pack):
        out += [
            f"  - name: {r.name}",
            "    salience: 450",
            "    when:",
            "      all:",
            f"        - match: {{playbook: {r.playbook}, kind: technical, band: answer}}",
            f"        - metric: {{service: {r.service}, name: {r.metric}, status: unhealthy}}",
            f"        - none: {{proposal: {{action: {r.action}, target: {r.target}}}}}",
            "    then:",
            f"      - assert: {{proposal: {{action: {r.action}, target: {r.target}, reason: learned {r.name}}}}}",
        ]
    return "\n".join(out) + "\n"


def write_rules(folder: Path, n: int, pack: Pack, with_builtin: bool = True) -> list[Path]:
    """A rules folder: the built-in rules (optional) and a file of N learned rules."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "learned_rules.yaml").write_text(rules_yaml(n, pack), encoding="utf-8")
    paths = [folder / "learned_rules.yaml"]
    if with_builtin:
        paths += sorted((PROJECT_ROOT / "rules" / "builtin").glob("*.yaml"))
    return paths


def decision(pack: Pack, playbook: str, unhealthy: tuple[str, str]) -> list[Fact]:
    """The facts of a realistic decision about `playbook` with one unhealthy metric."""
    facts = [Fact("match", {"playbook": playbook, "title": playbook, "category": "performance", "kind": "technical",
                            "band": "answer", "confidence": 0.97, "score": 0.81}),
             Fact("message", {"text": f"trouble with {playbook}", "length": 20})]
    for service, metric in pack.signals:
        limit = pack.limits[(service, metric)]
        bad = (service, metric) == unhealthy
        facts.append(Fact("metric", {"service": service, "name": metric, "value": limit * (2 if bad else 0.5),
                                     "limit": limit, "status": "unhealthy" if bad else "ok", "worse": "above",
                                     "trend": "steady", "slope_per_min": 0.0}))
    for service in sorted({s for s, _ in pack.signals}):
        facts.append(Fact("service", {"name": service, "healthy": service != unhealthy[0],
                                      "root_cause": service == unhealthy[0]}))
    facts.append(Fact("conversation", {"attempt": 1, "channel": "web", "failed_actions": 0, "succeeded_actions": 0}))
    return facts


def expected(n: int, pack: Pack, playbook: str, unhealthy: tuple[str, str]) -> dict[tuple[str, str], set[str]]:
    """The remediations learned for a decision, each with the learned rules that teach it (any one may fire:
    once one has proposed a remediation, the others that teach the same are redundant)."""
    found: dict[tuple[str, str], set[str]] = {}
    for r in rows(n, pack):
        if r.playbook == playbook and (r.service, r.metric) == unhealthy:
            found.setdefault((r.action, r.target), set()).add(r.name)
    return found
