from collections import Counter
from pathlib import Path

import pytest

from core.errors import PlaybookError
from core.settings import PROJECT_ROOT
from core.taxonomy import BUSINESS, OUT_OF_SCOPE, TECHNICAL
from engine.wiring import load_pack
from knowledge.playbooks import Vocabulary, load_playbooks

PACK = PROJECT_ROOT / "data" / "playbooks"

GOOD = """\
id: {id}
title: Something is broken
category: {category}
description: A problem that users describe in many ways.
examples: [one, two, three, four, five, six, seven, eight, nine, ten]
remedies:
  - action: restart_service
    target: api
    explain: restarted the API
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path, vocabulary: Vocabulary | None = None) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        load_playbooks(folder, vocabulary)
    return [str(p) for p in caught.value.problems]


def test_default_pack_covers_every_category(settings):
    _, playbooks = load_pack(settings)
    per_category = Counter(p.category for p in playbooks.values())
    assert sum(n for c, n in per_category.items() if c != OUT_OF_SCOPE) >= 60
    for category in TECHNICAL:
        assert per_category[category] >= 4, category
    for category in BUSINESS:
        assert per_category[category] >= 3, category
    assert per_category[OUT_OF_SCOPE] >= 1
    assert all(len(p.examples) >= 10 for p in playbooks.values())


def test_default_pack_business_playbooks_carry_what_the_decider_needs(settings):
    _, playbooks = load_pack(settings)
    for playbook in playbooks.values():
        if playbook.category in BUSINESS:
            assert playbook.escalation and playbook.escalation.must_include and not playbook.remedies
        if playbook.category in TECHNICAL:
            assert playbook.remedies and playbook.escalation is None
            assert any(r.indicated_by is None for r in playbook.remedies), f"{playbook.id} has no safe default"


def test_a_valid_playbook_loads(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="api_down", category="bug_error"))
    playbooks = load_playbooks(tmp_path)
    assert playbooks["api_down"].remedies[0].action == "restart_service"


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    write(tmp_path, "broken.yaml", "id: x\nexamples: [a, b\n")
    (problem,) = problems_of(tmp_path)
    assert "broken.yaml:" in problem and "YAML syntax" in problem


def test_schema_errors_name_file_line_and_field_all_at_once(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="first_one", category="weather"))
    write(tmp_path, "b.yaml", GOOD.format(id="second_one", category="bug_error").replace(
        "examples: [one, two, three, four, five, six, seven, eight, nine, ten]", "examples: [one, two]"))
    problems = problems_of(tmp_path)
    assert any(p.startswith(f"{tmp_path / 'a.yaml'}:3: category: 'weather' is not one of") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'b.yaml'}:5: examples:") and "too short" in p for p in problems)


def test_duplicate_ids_are_refused(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="same_id", category="bug_error"))
    write(tmp_path, "b.yaml", GOOD.format(id="same_id", category="bug_error"))
    (problem,) = problems_of(tmp_path)
    assert "b.yaml:1: id: duplicate id, also in" in problem and "a.yaml" in problem


def test_unknown_keys_are_refused_with_the_allowed_ones(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="api_down", category="bug_error") + "colour: blue\n")
    (problem,) = problems_of(tmp_path)
    assert "colour" in problem and "allowed keys" in problem


def test_unknown_action_or_metric_is_refused_at_load(tmp_path):
    text = GOOD.format(id="api_down", category="bug_error").replace("restart_service", "reboot_universe")
    text += "diagnostics:\n  - {service: api, metric: happiness}\n"
    write(tmp_path, "a.yaml", text)
    vocabulary = Vocabulary(actions={"restart_service": frozenset({"api"})}, metrics={"api": frozenset({"cpu_pct"})})
    problems = problems_of(tmp_path, vocabulary)
    assert any("remedies[0].action: unknown action 'reboot_universe'" in p for p in problems)
    assert any("diagnostics[0].metric: api has no metric 'happiness'" in p for p in problems)


def test_business_playbook_must_not_remediate(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="discount", category="pricing"))
    problems = problems_of(tmp_path)
    assert any("business" in p for p in problems)


def test_unknown_reply_placeholder_is_refused(tmp_path):
    text = GOOD.format(id="api_down", category="bug_error") + "replies:\n  resolved: 'I {did} it'\n"
    write(tmp_path, "a.yaml", text)
    (problem,) = problems_of(tmp_path)
    assert "replies.resolved" in problem and "{did}" in problem


def test_a_remedy_says_what_the_user_can_do_themselves(tmp_path):
    words = "Use Forgot password on the {product} sign-in page:\n      a new password lifts the lock."
    text = GOOD.format(id="api_down", category="bug_error") + f'    self_service: "{words}"\n'
    write(tmp_path, "a.yaml", text)
    (remedy,) = load_playbooks(tmp_path)["api_down"].remedies
    assert remedy.self_service == "Use Forgot password on the {product} sign-in page: a new password lifts the lock."
    plain = GOOD.format(id="api_down", category="bug_error")
    write(tmp_path, "a.yaml", plain)
    assert load_playbooks(tmp_path)["api_down"].remedies[0].self_service == ""


def test_self_service_words_are_checked_like_replies(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="api_down", category="bug_error") + "    self_service: 'Ask {who}'\n")
    write(tmp_path, "b.yaml", GOOD.format(id="api_gone", category="bug_error") + "    self_service: ''\n")
    problems = problems_of(tmp_path)
    assert any("a.yaml" in p and "remedies[0].self_service" in p and "{who}" in p for p in problems)
    assert any("b.yaml" in p and "self_service" in p for p in problems)


def test_empty_folder_is_an_error(tmp_path):
    assert "no playbook files" in problems_of(tmp_path)[0]
