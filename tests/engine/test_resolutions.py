from bench import synthetic
from core.settings import PROJECT_ROOT
from engine.resolutions import ResolutionBook
from engine.ruleengine import RuleEngine
from engine.store import ResolutionRow
from rules.loader import load_rules


def test_five_thousand_learned_resolutions_as_facts_with_one_generic_rule():
    pack = synthetic.default_pack()
    book = ResolutionBook(synthetic.rows(5000, pack))
    assert len(book) == 5000
    engine = RuleEngine(load_rules([PROJECT_ROOT / "rules" / "builtin"]))
    assert engine.shards == 1  # the rule base stays small however many resolutions are learned
    for i in range(0, len(pack.playbooks), 5):
        playbook, signal = pack.playbooks[i], pack.signals[(5 * i + 1) % len(pack.signals)]
        facts = synthetic.decision(pack, playbook, signal) + book.facts_for(playbook)
        assert sum(f.type == "resolution" for f in facts) == sum(k % len(pack.playbooks) == i for k in range(5000))
        run = engine.run(facts)
        want = synthetic.expected(5000, pack, playbook, signal)
        proposals = {(f.fields["action"], f.fields["target"]): f.fields["reason"] for f in run.asserted
                     if f.type == "proposal"}
        assert not run.errors
        assert set(proposals) == set(want)
        assert all(reason.removeprefix("learned ") in want[key] for key, reason in proposals.items())
        remediations = {(i.args["name"], i.args["target"]) for i in run.intents if i.verb == "remediate"}
        assert remediations == set(want)


def test_the_book_replaces_a_resolution_by_name_and_keeps_playbooks_apart():
    first = ResolutionRow("r1", "dashboard_slow", "database", "slow_queries", "analyze_tables", "database")
    book = ResolutionBook([first, ResolutionRow("r2", "search_slow", "cache", "cache_hit_ratio", "rebuild_cache",
                                                "cache")])
    book.add([ResolutionRow("r1", "dashboard_slow", "database", "slow_queries", "kill_slow_queries", "database", 3)])
    (fact,) = book.facts_for("dashboard_slow")
    assert (fact.fields["action"], fact.fields["successes"]) == ("kill_slow_queries", 3)
    assert book.facts_for("nothing") == [] and book.facts_for(None) == [] and len(book) == 2
