"""The default pack covers what users of a job-tracking SaaS write: enough playbooks per category, each with
enough varied examples, and the job-search near misses on the out-of-scope side."""

from collections import Counter

from core.settings import PROJECT_ROOT
from core.taxonomy import BUSINESS, OUT_OF_SCOPE, TECHNICAL
from knowledge.playbooks import load_playbooks

PACK = load_playbooks(PROJECT_ROOT / "data" / "playbooks")


def test_enough_playbooks_per_category():
    per_category = Counter(p.category for p in PACK.values())
    assert all(per_category[c] >= 10 for c in TECHNICAL), per_category
    assert all(per_category[c] >= 6 for c in BUSINESS), per_category


def test_every_playbook_has_at_least_twenty_examples():
    thin = {p.id: len(p.examples) for p in PACK.values() if len(p.examples) < 20}
    assert not thin, thin


def test_no_example_is_in_two_playbooks():
    owners = Counter(e.casefold().strip() for p in PACK.values() for e in p.examples)
    assert [e for e, n in owners.items() if n > 1] == []


def test_the_job_search_near_misses_are_out_of_scope():
    near_misses = {"cover_letter_and_resume_help", "interview_preparation", "salary_and_offer_advice", "find_me_a_job",
                   "company_or_recruiter_legitimacy"}
    assert {p.id for p in PACK.values() if p.category == OUT_OF_SCOPE} >= near_misses


def test_examples_vary_in_length():
    """Terse messages and long stories both, in every category."""
    for category in (*TECHNICAL, *BUSINESS):
        lengths = [len(e.split()) for p in PACK.values() if p.category == category for e in p.examples]
        assert min(lengths) <= 4 and max(lengths) >= 25, (category, min(lengths), max(lengths))
