"""The tenant's pack as the decisions see it: its topology, playbooks and rule files, checked against each other.

Loading them needs YAML, the schemas, the action catalogue and the topology, and nothing heavier: no model, no
index, no database, no web server. That is why this lives apart from `engine.wiring` (which builds every part,
and imports them all): `firstline check` reads a pack through here and refuses a bad file in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from core.settings import Settings
from engine.actions.catalogue import ACTIONS, action_targets, params_checker
from engine.infra.topology import Topology, load_topology
from knowledge.playbooks import Playbook, Vocabulary, load_playbooks
from rules.loader import load_rules
from rules.model import RuleBase


def vocabulary(topology: Topology) -> Vocabulary:
    return Vocabulary(actions=action_targets(topology), metrics=topology.signals(), params=params_checker(topology))


def load_pack(settings: Settings) -> tuple[Topology, dict[str, Playbook]]:
    """The tenant's topology and its playbooks, checked against each other."""
    topology = load_topology(settings.infrastructure_file, {name: spec.needs for name, spec in ACTIONS.items()})
    return topology, load_playbooks(settings.playbooks_dir, vocabulary(topology))


def rule_paths(settings: Settings) -> list[Path]:
    """The rule folders: the curated one and the learned one (created empty on first use)."""
    settings.learned_rules_dir.mkdir(parents=True, exist_ok=True)
    return [settings.rules_dir, settings.learned_rules_dir]


def load_rulebase(settings: Settings, topology: Topology, playbooks: Mapping[str, Playbook] | None = None,
                  paths: list[Path] | None = None) -> RuleBase:
    """The rule files (by default the configured folder and the active learned rules), checked against the
    actions and playbooks."""
    return load_rules(paths or rule_paths(settings), action_targets(topology),
                      known_playbooks=frozenset(playbooks) if playbooks is not None else None,
                      check_params=params_checker(topology))
