"""The decision policy file: the shipped one loads against the real pack; every kind of bad file is refused with
its file, line and what is wrong; conditions, approval rules and the figures read from a request."""

import json
import os
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from core.errors import DataFileError
from core.taxonomy import BUSINESS
from engine.desk.policy import (
    FACTS,
    SCHEMA_PATH,
    ApprovalRule,
    CategoryPolicy,
    Condition,
    DecisionPolicy,
    NumberTest,
    PlanTest,
    load_decision_policy,
    request_figures,
)
from engine.wiring import load_pack, load_policy
from firstline.cli import main
from tests.conftest import make_settings

PLAYBOOKS = {"nonprofit_education_discount": "pricing", "volume_seat_discount": "pricing",
             "refund_request": "policy", "capacity_for_large_onboarding": "hosting_capacity"}
SERVICES = {"api": frozenset({"cpu_pct", "latency_p95_ms"}), "database": frozenset({"pool_used_pct"})}
GOOD = """\
categories:
  pricing:
    guidelines:
      - id: nonprofit_discount_up_to_20
        text: "Non-profit discounts of up to 20% are usually approved."
        playbooks: [nonprofit_education_discount]
        when: {percent: {at_most: 20}}
        recommend: approved
"""


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("data"))
    topology, playbooks = load_pack(settings)
    return settings, topology, playbooks


def write(tmp_path, text: str, name: str = "decision_policy.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(path, playbooks=PLAYBOOKS, services=SERVICES) -> DataFileError:
    with pytest.raises(DataFileError) as caught:
        load_decision_policy(path, playbooks, services)
    return caught.value


# -- the shipped file ---------------------------------------------------------------------------------------


def test_the_shipped_policy_loads_against_the_real_playbooks_and_services(pack):
    settings, topology, playbooks = pack
    policy = load_decision_policy(settings.decision_policy_file, playbooks, topology.signals())
    assert set(policy.categories) == set(BUSINESS)
    assert policy.source == str(settings.decision_policy_file)
    for category, found in policy.categories.items():
        assert found.guidelines, category
        for guideline in found.guidelines:
            assert guideline.category == category
            assert all(playbooks[p].category == category for p in guideline.playbooks), guideline.id
    measures = policy.for_category("hosting_capacity").capacity_measures
    assert ("api", "cpu_pct") in measures and ("queue", "queue_depth") in measures
    assert all(metric in topology.services[service].limits for service, metric in measures)
    # as the server loads it at start-up
    assert load_policy(settings, topology, playbooks) == policy


def test_the_shipped_policy_says_what_the_issue_asks_for(pack):
    settings, topology, playbooks = pack
    policy = load_decision_policy(settings.decision_policy_file, playbooks, topology.signals())
    nonprofit = {"percent": 15.0, "plan": "Team"}
    approving = [g.id for g in policy.guidelines("pricing") if g.applies(nonprofit) and g.recommend == "approved"
                 and "nonprofit_education_discount" in g.playbooks]
    assert approving == ["nonprofit_discount_up_to_20"]
    assert policy.for_category("pricing").approvers_required({"percent": 40.0})[0] == 2
    eu = {g.id: g.applies({"plan": "enterprise"}) for g in policy.guidelines("hosting_capacity")}
    assert eu["eu_residency_on_enterprise"] and not eu["eu_residency_below_enterprise"]
    plan_needed = next(g for g in policy.guidelines("hosting_capacity") if g.id == "capacity_needs_engineering_plan")
    assert plan_needed.recommend is None  # context for the decider, no vote


def test_the_schema_lists_exactly_the_facts_the_docs_and_the_desk_know():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert set(schema["$defs"]["condition"]["properties"]) == set(FACTS)


# -- bad files ----------------------------------------------------------------------------------------------

BAD = [
    ("unknown category", """\
        categories:
          pricing: {}
          pricng:
            guidelines: []
        """, 4, ["categories.pricng", "unknown category 'pricng'",
                 "hosting_capacity, pricing, policy, subscription_benefits"]),
    ("technical category", """\
        categories:
          performance: {}
        """, 2, ["'performance' is not a business category", "pricing"]),
    ("unknown playbook", """\
        categories:
          policy:
            guidelines:
              - id: refunds
                text: "Refunds within 14 days are usually approved."
                playbooks: [refund_requests]
        """, 6, ["categories.policy.guidelines[0].playbooks[0]", "unknown playbook 'refund_requests'",
                 "did you mean 'refund_request'?"]),
    ("playbook of another category", """\
        categories:
          pricing:
            guidelines:
              - id: refunds
                text: "Refunds within 14 days are usually approved."
                playbooks: [refund_request]
        """, 6, ["'refund_request' is a policy playbook, but this guideline is under pricing"]),
    ("unknown service", """\
        categories:
          hosting_capacity:
            capacity_measures: [api.cpu_pct, web.cpu_pct]
        """, 3, ["capacity_measures[1]", "unknown service 'web' in 'web.cpu_pct'", "has: api, database"]),
    ("unknown metric", """\
        categories:
          hosting_capacity:
            capacity_measures:
              - api.cpu_pct
              - database.cpu_pct
        """, 5, ["capacity_measures[1]", "database has no metric 'cpu_pct'; it has: pool_used_pct"]),
    ("measure without a metric", """\
        categories:
          hosting_capacity:
            capacity_measures: [api]
        """, 3, ["capacity_measures[0]", "does not match"]),
    ("measures on another category", """\
        categories:
          pricing:
            capacity_measures: [api.cpu_pct]
        """, 3, ["categories.pricing.capacity_measures", "shown on hosting_capacity requests only"]),
    ("duplicate id", """\
        categories:
          pricing:
            guidelines:
              - {id: discounts, text: "Small discounts are fine."}
          policy:
            guidelines:
              - {id: discounts, text: "Refund discounts are fine."}
        """, 7, ["categories.policy.guidelines[0].id", "duplicate guideline id 'discounts', also at", ":4"]),
    ("contradictory bounds", """\
        categories:
          pricing:
            guidelines:
              - id: impossible
                text: "Never."
                when:
                  percent: {at_least: 30, at_most: 20}
        """, 7, ["guidelines[0].when.percent", "no number is at least 30 and at most 20", "can never hold"]),
    ("a bound that is not a number", """\
        categories:
          pricing:
            guidelines:
              - id: nothing
                text: "Not a number."
                when:
                  percent: {at_most: .nan}
        """, 7, ["guidelines[0].when.percent.at_most", "'.nan' is not a finite number"]),  # refused as it is read
    ("an infinite bound", """\
        categories:
          pricing:
            approvals:
              - when: {seats: {below: -.inf}}
                approvers: 2
        """, 4, ["approvals[0].when.seats.below", "'-.inf' is not a finite number"]),
    ("an empty open range", """\
        categories:
          pricing:
            approvals:
              - when: {seats: {above: 10, below: 10}}
                approvers: 2
        """, 4, ["approvals[0].when.seats", "no number is above 10 and below 10"]),
    ("no approver", """\
        categories:
          pricing:
            approvals:
              - approvers: 0
        """, 4, ["approvals[0].approvers", "approvers must be at least 1", "got 0"]),
    ("an approval rule that can never be reached", """\
        categories:
          pricing:
            approvals:
              - approvers: 1
              - when: {percent: {above: 30}}
                approvers: 2
        """, 5, ["approvals[1]", "never used: rule 0 above it has no `when`"]),
    ("unknown fact", """\
        categories:
          pricing:
            guidelines:
              - id: big
                text: "Big accounts."
                when: {employees: {at_least: 500}}
        """, 6, ["guidelines[0].when", "'employees' was unexpected", "allowed keys: capacity_used"]),
    ("unknown outcome", """\
        categories:
          pricing:
            guidelines:
              - id: yes_please
                text: "Always."
                recommend: yes
        """, 6, ["guidelines[0].recommend", "True is not one of: approved, rejected"]),
    ("a YAML syntax error", """\
        categories:
          pricing:
            guidelines:
              - id: broken
                text: "an unclosed quote
        """, 6, ["YAML syntax"]),
    ("a list, not a mapping", """\
        - pricing
        - policy
        """, 1, ["expected a mapping with `categories:` at the top, found a list"]),
    ("two documents", """\
        categories: {}
        ---
        categories: {}
        """, 3, ["one YAML document expected, found 2"]),
]


@pytest.mark.parametrize(("text", "line", "fragments"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_file_is_refused_with_its_file_line_and_what_is_wrong(tmp_path, text, line, fragments):
    path = write(tmp_path, text)
    error = refused(path)
    message = str(error)
    assert f"{path}:{line}: " in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_every_problem_is_reported_at_once(tmp_path):
    path = write(tmp_path, """\
        categories:
          pricng: {}
          pricing:
            guidelines:
              - {id: a, text: "A.", playbooks: [nope]}
              - {id: a, text: "B.", when: {percent: {above: 5, at_most: 1}}}
            approvals:
              - approvers: 0
        """)
    assert [(p.line, p.field) for p in refused(path).problems] == [
        (2, "categories.pricng"), (5, "categories.pricing.guidelines[0].playbooks[0]"),
        (6, "categories.pricing.guidelines[1].id"), (6, "categories.pricing.guidelines[1].when.percent"),
        (8, "categories.pricing.approvals[0].approvers")]


def test_missing_and_empty_files_are_refused_by_name(tmp_path):
    missing = refused(tmp_path / "nowhere.yaml")
    assert "nowhere.yaml: decision policy file does not exist" in str(missing)
    empty = refused(write(tmp_path, "# nothing yet\n"))
    assert "the file is empty; start it with `categories:`" in str(empty)


def test_without_playbooks_or_services_those_checks_are_skipped(tmp_path):
    path = write(tmp_path, """\
        categories:
          hosting_capacity:
            capacity_measures: [anything.at_all]
            guidelines:
              - {id: a, text: "A.", playbooks: [not_checked]}
        """)
    policy = load_decision_policy(path)
    assert policy.for_category("hosting_capacity").capacity_measures == (("anything", "at_all"),)
    with pytest.raises(DataFileError, match="unknown playbook 'not_checked'"):
        load_decision_policy(path, frozenset(PLAYBOOKS))  # ids only: known ids are checked, categories are not


def test_a_guideline_is_read_into_a_frozen_record_with_its_defaults(tmp_path):
    policy = load_decision_policy(write(tmp_path, GOOD), PLAYBOOKS, SERVICES)
    (guideline,) = policy.guidelines("pricing")
    assert (guideline.id, guideline.category, guideline.playbooks, guideline.recommend, guideline.weight) == (
        "nonprofit_discount_up_to_20", "pricing", ("nonprofit_education_discount",), "approved", 3.0)
    assert guideline.when.describe() == "percent at most 20"
    assert guideline.applies({"percent": 20}) and not guideline.applies({"percent": 25})


# -- conditions and approvals -------------------------------------------------------------------------------


def test_an_unknown_fact_satisfies_no_condition():
    condition = Condition((NumberTest("percent", at_most=20),))
    assert not condition.holds({"percent": None})
    assert not condition.holds({})
    assert not condition.holds({"percent": "20"})  # text is not a number
    assert not condition.holds({"percent": True})  # nor is a boolean
    assert not Condition((PlanTest(("Enterprise",)),)).holds({"plan": None})
    assert Condition().holds({}) and Condition().describe() == ""


@pytest.mark.parametrize(("test", "inside", "outside"), [
    (NumberTest("seats", at_least=10), [10, 11.5], [9.99]),
    (NumberTest("seats", above=10), [10.01], [10]),
    (NumberTest("seats", at_most=10), [10, 0], [10.5]),
    (NumberTest("seats", below=10), [9], [10]),
    (NumberTest("seats", at_least=10, below=20), [10, 19], [20, 9]),
])
def test_number_bounds(test, inside, outside):
    assert all(test.holds({"seats": value}) for value in inside)
    assert not any(test.holds({"seats": value}) for value in outside)


def test_plans_match_in_any_case_and_read_as_words():
    condition = Condition((NumberTest("percent", at_most=20), PlanTest(("Team", "Enterprise"))))
    assert condition.holds({"plan": "ENTERPRISE", "percent": 10}) and condition.holds({"plan": " team", "percent": 0})
    assert not condition.holds({"plan": "Pro", "percent": 10})
    assert condition.describe() == "percent at most 20, plan is Team or Enterprise"
    assert NumberTest("tenure_days", at_least=30, at_most=365).describe() == "tenure_days at least 30 and at most 365"


def test_the_first_matching_approval_rule_wins_and_one_approver_is_the_default():
    rules = (ApprovalRule(Condition((NumberTest("percent", above=50),)), 3),
             ApprovalRule(Condition((NumberTest("percent", above=30),)), 2))
    pricing = CategoryPolicy("pricing", approvals=rules)
    assert pricing.approvers_required({"percent": 60}) == (3, "3 approvers: percent above 50")
    assert pricing.approvers_required({"percent": 40}) == (2, "2 approvers: percent above 30")
    assert pricing.approvers_required({"percent": 10})[0] == 1
    assert pricing.approvers_required({"percent": None})[0] == 1
    every = CategoryPolicy("policy", approvals=(ApprovalRule(Condition(), 2),))
    assert every.approvers_required({}) == (2, "2 approvers: every policy request")


def test_a_category_the_file_leaves_out_has_an_empty_policy(tmp_path):
    policy = load_decision_policy(write(tmp_path, GOOD), PLAYBOOKS, SERVICES)
    assert isinstance(policy, DecisionPolicy)
    assert policy.guidelines("subscription_benefits") == ()
    assert policy.for_category("policy") == CategoryPolicy("policy")
    assert policy.for_category("policy").approvers_required({"percent": 90}) == (
        1, "1 approver: no approval rule of the decision policy asks for more")


# -- the figures in a request -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "percent", "quantity"), [
    ("Can we get a 40% discount? We are onboarding 8,000 users.", 40, 8000),
    ("we'd like 25 percent off for our 120 seats", 25, 120),
    ("Is 12.5 per cent possible?", 12.5, None),
    ("about 8k users next term", None, 8000),
    ("2.5k seats, maybe 3K later", None, 3000),
    ("we expect 1.2 million job records", None, 1_200_000),
    ("We're a charity, any discount?", None, None),
    ("Extend my trial by a week please", None, None),
    ("Extend my trial by 10 days, it ended on 2026-03-01", None, 10),
    ("We start on March 3 at 10:30 with 300 students", None, 300),
    ("since 2019 we pay $450 a month for 30 seats", None, 30),
    ("by the end of 2026 we will have 250 people", None, 250),
    ("ticket #4521 on version 2.4.1: 60 users", None, 60),
    ("we need 2000 users on the 3rd", None, 2000),
    ("99.95% uptime, not 99.9 %", 99.95, None),
    ("a 20-30% discount for 45 seats", 30, 45),
    # identifiers and phone numbers are not amounts
    ("Our PO-4471 covers 120 seats", None, 120),
    ("our charity number is 1234567 and we have 30 staff", None, 30),
    ("reg. no: 55, 300 students", None, 300),
    ("on the Charity Commission register 1122334, 18 seats", None, 18),
    ("invoice INV2024-0042: is 15% off possible?", 15, None),
    ("ticket 4471-B, about 60 users", None, 60),
    ("call me on +44 20 7946 0958 about 80 seats", None, 80),
    ("order no 12 for 25 people", None, 25),
    ("555-123-4567 is my number, we are 90 users", None, 90),
    ("we want to order 500 seats", None, 500),
    ("the number of users is 8000", None, 8000),
])
def test_request_figures(text, percent, quantity):
    assert request_figures(text) == {"percent": percent, "quantity": quantity}


# -- firstline check ----------------------------------------------------------------------------------------


def firstline_check(tmp_path, policy_file) -> subprocess.CompletedProcess:
    """`firstline check` in this process, with the decision policy file pointed at `policy_file`."""
    env = {name: None for name in os.environ if name.startswith("FIRSTLINE_")}
    env |= {"FIRSTLINE_DATA_DIR": str(tmp_path / "data"), "FIRSTLINE_DECISION_POLICY_FILE": str(policy_file)}
    with CliRunner().isolation(env=env) as (out, err, _):
        status = main(["check"])
    return subprocess.CompletedProcess(["check"], status, out.getvalue(), err.getvalue())


def test_firstline_check_reports_a_broken_decision_policy_file(tmp_path):
    path = write(tmp_path, """\
        categories:
          pricing:
            guidelines:
              - id: refunds
                text: "Refunds."
                playbooks: [refund_request]
          discounts: {}
        """)
    result = firstline_check(tmp_path, path)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert err.startswith("firstline: error: 2 data file problems:")
    assert f"{path}:6: categories.pricing.guidelines[0].playbooks[0]: playbook 'refund_request' is a policy" in err
    assert f"{path}:7: categories.discounts: unknown category 'discounts'" in err


def test_firstline_check_counts_the_guidelines_of_a_good_file(tmp_path):
    result = firstline_check(tmp_path, write(tmp_path, GOOD))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().rstrip().endswith(", 1 decision policy guidelines")
