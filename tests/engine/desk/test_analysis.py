"""What the desk reads off an account for a pricing request: similar accounts in whole seats."""

from engine.desk.analysis import pricing_facts
from engine.store.decisions import Account
from engine.store.escalations import AccountPrice


def test_similar_accounts_are_the_same_plan_with_half_to_twice_the_seats_in_whole_seats():
    mine = Account("Team", 5, "admin", "", None, 100.0)
    others = [AccountPrice("a", "team", 3, 75.0), AccountPrice("b", "Team", 10, 150.0),
              AccountPrice("c", "Team", 2, 10.0), AccountPrice("d", "Team", 11, 10.0),
              AccountPrice("e", "Pro", 5, 10.0)]
    found = pricing_facts(mine, others)
    assert found["note"] == "2 similar accounts on Team with 3 to 10 seats"
    assert found["similar"] == {"accounts": 2, "median_monthly_price": 112.5, "median_price_per_seat": 20.0,
                                "min_price_per_seat": 15.0, "max_price_per_seat": 25.0}
    assert found["price_per_seat"] == 20.0


def test_one_seat_reads_as_one_seat_and_no_match_says_so():
    found = pricing_facts(Account("Solo", 1, "admin", "", None, 9.0), [AccountPrice("a", "Solo", 3, 27.0)])
    assert found["similar"] is None and found["note"] == "no other priced account on Solo with 1 to 2 seats"
    assert pricing_facts(None, [])["note"].startswith("no account recorded")
