"""The remedy replay: its world, its user, and a short stream where only learning brings the working fix forward."""

import random
from dataclasses import replace as changed

import pytest

from bench.remedy_replay import (
    BROKEN,
    FIXED,
    NO,
    NONE_OFFERED,
    YES,
    make_stream,
    replay,
    reply,
    scenarios,
    settings_for,
    summarize,
)
from engine.chat.dialogue import ConversationState, Exchange, Stage
from engine.wiring import load_pack

CACHE = ("clear_user_cache", "cache")


@pytest.fixture
def one_thread():
    """Short texts encode fastest on one torch thread, by far when other tests keep the second core busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def playbooks(tmp_path_factory):
    return load_pack(settings_for(tmp_path_factory.mktemp("pack"), True))[1]


def test_the_world_points_telemetry_at_an_earlier_remedy_and_the_last_one_works(playbooks):
    world = scenarios(playbooks)
    slow = world["dashboard_slow"]
    assert slow.fault == "slow_queries@database" and slow.working == CACHE
    assert slow.remedies[0] == ("kill_slow_queries", "database")
    for scenario in world.values():
        remedies = playbooks[scenario.playbook].remedies
        assert len(remedies) >= 2 and remedies[-1].indicated_by is None
    assert "dashboard_slow" in world and "refund_request" not in world  # business problems have no remedies


def test_the_user_confirms_only_their_own_problem_and_judges_by_the_world(playbooks):
    (visit,) = make_stream(scenarios(playbooks), playbooks, 1, 1, 1.0, 0.0, random.Random(3))
    titles = {p: playbooks[p].title for p in playbooks}
    other = next(p for p in scenarios(playbooks) if p != visit.playbook)

    def says(stage, options=(), applied=()):
        state = ConversationState(stage=stage, options=list(options))
        return reply(Exchange("c", stage, ()), state, visit, set(applied), titles)

    assert says(Stage.CONFIRMING, [visit.playbook]) == YES and says(Stage.CONFIRMING, [other]) == NO
    assert says(Stage.CHOOSING, [other, visit.playbook]) == titles[visit.playbook]
    assert says(Stage.CHOOSING, [other]) == NONE_OFFERED
    working = scenarios(playbooks)[visit.playbook].working
    assert says(Stage.VERIFYING, applied=[working]) == FIXED and says(Stage.VERIFYING) == BROKEN
    assert says(Stage.RATING) is None


def test_only_learning_comes_to_try_the_working_remedy_first(tmp_path, knowledge, playbooks, one_thread):
    world = {"dashboard_slow": scenarios(playbooks)["dashboard_slow"]}
    drawn = make_stream(world, playbooks, 20, 20, 1.0, 0.0, random.Random(0))  # the last remedy always works
    # One user each: a remedy that failed for a user is vetoed for an hour, which would blur "off" here.
    stream = [changed(visit, user=f"u{i:02d}") for i, visit in enumerate(drawn)]
    off = replay(settings_for(tmp_path / "off", False), knowledge, world, stream)
    on = replay(settings_for(tmp_path / "on", True), knowledge, world, stream)
    learned, ignored = summarize(on), summarize(off)

    # Off: telemetry's remedy goes first every time, so no problem is ever fixed at the first check.
    assert ignored["fixed_first_check"] == 0 and ignored["outcomes_recorded"] == 0 and off.ledger["rules"] == []
    # On: the fix users confirmed became a live rule, and by the second half it is tried at once.
    assert learned["fixed_first_check_second_half"] >= 0.9 and learned["learned_rule_fired_second_half"] >= 0.9
    assert learned["working_remedy_live_rule"] == 1 and learned["working_remedy_ranked_first"] == 1
    assert learned["checks_mean"] < ignored["checks_mean"]
