"""The learned-rules scale bench on a small size: every rule is learned from two users, goes live, is
published, loads with the built-in rules and fires for the decisions it applies to."""

import argparse

from bench import learned_scale, synthetic
from core.settings import PROJECT_ROOT
from engine.actions.catalogue import action_targets
from engine.infra.topology import load_topology


def test_learned_rules_are_proposed_published_and_fire(tmp_path):
    pack = synthetic.default_pack()
    topology = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
    playbooks = frozenset(p.stem for p in (PROJECT_ROOT / "data" / "playbooks").rglob("*.yaml"))
    args = argparse.Namespace(confirmations=5, decisions=10)
    row = learned_scale.one_size(30, args, pack, (action_targets(topology), playbooks), tmp_path)
    assert row["active"] == 27  # one in ten stays in shadow
    assert row["learned_rule_fired"] == 1.0
    assert "learned_" in (tmp_path / "active_30.yaml").read_text(encoding="utf-8")
