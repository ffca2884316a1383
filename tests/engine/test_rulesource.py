import os
import threading
import time
from pathlib import Path

import pytest

from core.errors import RuleError
from engine.decision.ruleengine import Fact, RuleEngine
from engine.decision.rulesource import RuleSource
from rules.loader import load_rules
from rules.model import RuleBase
from tests.conftest import ManualClock

RULE = "rules:\n  - {{name: {name}, when: {{all: [{{match: {{}}}}]}}, then: [{{{verb}: {{}}}}]}}\n"
MATCH = Fact("match", {"band": "answer"})


def put(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a visibly newer mtime


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    put(tmp_path / "a.yaml", RULE.format(name="first_rule", verb="clarify"))
    return tmp_path


def source_for(folder: Path, clock: ManualClock) -> RuleSource:
    engine = RuleEngine(load_rules([folder]))
    return RuleSource([folder], lambda: load_rules([folder]), engine, interval_s=1.0, clock=clock)


def fired(source: RuleSource) -> list[str]:
    return [f.rule for f in source.engine.run([MATCH]).firings]


def test_added_changed_and_removed_rules_go_live_without_a_restart(folder):
    clock = ManualClock(100.0)
    source = source_for(folder, clock)
    assert not source.check()  # nothing changed
    put(folder / "b.yaml", RULE.format(name="added_rule", verb="decline"))
    assert not source.check()  # not yet: checks are at most once a second
    clock.now += 1.5
    assert source.check() and sorted(fired(source)) == ["added_rule", "first_rule"]
    put(folder / "a.yaml", RULE.format(name="changed_rule", verb="clarify"))
    clock.now += 1.5
    assert source.check() and sorted(fired(source)) == ["added_rule", "changed_rule"]
    (folder / "b.yaml").unlink()
    clock.now += 1.5
    assert source.check() and fired(source) == ["changed_rule"]
    assert source.reloads == 3 and source.engine.deleted_versions == 3


def test_a_broken_edit_keeps_the_running_rules_and_says_why(folder):
    clock = ManualClock(100.0)
    source = source_for(folder, clock)
    before = source.engine.rulebase.version
    put(folder / "a.yaml", RULE.format(name="first_rule", verb="teleport"))
    clock.now += 1.5
    assert not source.check()
    assert source.engine.rulebase.version == before and fired(source) == ["first_rule"]
    assert "teleport" in str(source.last_error)
    with pytest.raises(RuleError, match="teleport"):
        source.reload()
    put(folder / "a.yaml", RULE.format(name="fixed_rule", verb="clarify"))
    assert source.reload().get("fixed_rule") is not None and source.last_error is None


def test_decisions_keep_running_while_rules_are_edited(folder):
    clock = ManualClock(100.0)
    source = source_for(folder, clock)
    stop = threading.Event()
    problems: list[str] = []
    names = {f"rule_{i}" for i in range(20)} | {"first_rule"}

    def decide() -> None:
        while not stop.is_set():
            source.check()  # as the assistant does at the start of each decision
            run = source.engine.run([MATCH])
            if run.errors or len(run.firings) != 1 or run.firings[0].rule not in names:
                problems.append(f"{[f.rule for f in run.firings]} {run.errors}")
            time.sleep(0.001)  # busy, not starving the thread that edits the files

    threads = [threading.Thread(target=decide) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(20):
        put(folder / "a.yaml", RULE.format(name=f"rule_{i}", verb="clarify"))
        clock.now += 1.5
        source.reload()
    stop.set()
    for thread in threads:
        thread.join()
    assert not problems, problems[:3]
    assert fired(source) == ["rule_19"]
    assert source.engine.registered_rulesets() == 1  # every old version was drained and deleted


def test_a_rule_base_too_big_for_durable_rules_is_refused_and_the_old_one_kept(folder):
    clock = ManualClock(100.0)
    source = source_for(folder, clock)
    many = "rules:\n" + "".join(f"  - {{name: rule_{i:03d}, when: {{all: [{{metric: {{value: {{gt: {i}}}}}}}]}}, "
                                "then: [{decline: {}}]}\n" for i in range(420))
    put(folder / "many.yaml", many)
    clock.now += 1.5
    assert not source.check()
    assert "421 compiled rules test no literal match.playbook" in str(source.last_error)  # with first_rule
    assert fired(source) == ["first_rule"]


# -- hostile files dropped into the folder: refused, logged, and the running rules stay -------------------------

HOSTILE = {
    "twice.yaml": ("rules:\n  - name: sneaky\n    when: {all: [{match: {}}]}\n    then: [{decline: {}}]\n"
                   "    salience: 1\n    salience: 900\n", "twice.yaml:6: rules[0].salience: duplicate key 'salience': "
                   "first on line 5"),
    "laughs.yaml": ("l0: &l0 [a, a, a, a, a, a, a, a, a]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "rules: *l8\n",
        "laughs.yaml:1: l0: anchors (&l0) are not allowed"),
    "infinite.yaml": ("rules:\n  - name: scale_forever\n    when: {all: [{match: {}}]}\n"
                      "    then: [{remediate: {name: scale_out, target: api, params: {replicas: .inf}}}]\n",
                      "infinite.yaml:4: rules[0].then[0].remediate.params.replicas: '.inf' is not a finite number"),
    "deep.yaml": ("rules: " + "[" * 40 + "]" * 40 + "\n", "deep.yaml:1: rules[0]"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_is_refused_and_the_running_rules_stay(folder, name, caplog):
    clock = ManualClock(100.0)
    source = source_for(folder, clock)
    before = source.engine.rulebase.version
    text, problem = HOSTILE[name]
    put(folder / name, text)
    clock.now += 1.5
    with caplog.at_level("ERROR", logger="firstline.rules"):
        assert not source.check()
    assert source.engine.rulebase.version == before and fired(source) == ["first_rule"]
    assert problem in str(source.last_error), source.last_error
    (record,) = caplog.records
    assert "still running version " + before in record.getMessage() and problem in record.getMessage()
    assert len(record.getMessage()) < 2_000  # short, whatever the file holds
    (folder / name).unlink()  # fixed: the next check goes back to a clean state
    clock.now += 1.5
    assert source.check() and source.last_error is None and fired(source) == ["first_rule"]


def test_a_load_that_fails_in_any_other_way_keeps_the_running_rules(folder, caplog):
    clock = ManualClock(100.0)
    engine = RuleEngine(load_rules([folder]))

    def exhausted() -> RuleBase:
        raise MemoryError("out of memory")  # what the unbounded loader did with a billion laughs

    source = RuleSource([folder], exhausted, engine, interval_s=1.0, clock=clock)
    put(folder / "b.yaml", RULE.format(name="added_rule", verb="decline"))
    clock.now += 1.5
    with caplog.at_level("ERROR", logger="firstline.rules"):
        assert not source.check()
    assert fired(source) == ["first_rule"] and "MemoryError: out of memory" in str(source.last_error)
    assert "could not be loaded; still running version" in caplog.records[0].getMessage()
