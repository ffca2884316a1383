"""Staff sessions held on the server: open, checked each time, ended by sign-out, revocation, idleness or age."""

import pytest

from engine.access.sessions import SessionBook
from engine.access.tokens import Role, TokenBook
from engine.store import StaffSessions, Tokens


@pytest.fixture
def books(store, clock):
    tokens = TokenBook(Tokens(store), clock)
    return tokens, SessionBook(StaffSessions(store), idle_s=600, max_age_s=3600, clock=clock)


def open_session(tokens, sessions, user="cora", role=Role.CURATOR):
    issued = tokens.create(user, role)
    return issued, sessions.open(tokens.identify(issued.token), "10.0.0.7")


def test_a_session_opens_for_its_user_and_role_and_only_a_hash_is_stored(books, store):
    tokens, sessions = books
    _, secret = open_session(tokens, sessions, "dora", Role.DECIDER)
    found = sessions.check(secret)
    assert (found.user_id, found.role) == ("dora", Role.DECIDER)
    stored = store.execute("SELECT id, address FROM staff_sessions")
    assert stored[0][0] != secret and secret not in repr(stored) and stored[0][1] == "10.0.0.7"
    assert sessions.check("") is None and sessions.check(secret + "x") is None


def test_revoking_the_token_ends_its_sessions_at_once_and_says_why(books, store):
    tokens, sessions = books
    issued, first = open_session(tokens, sessions)
    second = sessions.open(tokens.identify(issued.token), "10.0.0.8")
    _, other = open_session(tokens, sessions, "otto")
    assert tokens.revoke(issued.id)
    assert sessions.check(first) is None and sessions.check(second) is None
    assert sessions.check(other) is not None  # someone else's session is untouched
    reasons = store.execute("SELECT DISTINCT end_reason FROM staff_sessions WHERE user_id = 'cora'")
    assert reasons == [("token revoked",)]


def test_a_session_idle_too_long_ends_but_use_keeps_it_alive(books, clock):
    tokens, sessions = books
    _, busy = open_session(tokens, sessions, "busy")
    _, idle = open_session(tokens, sessions, "idle")
    for _ in range(5):  # 5 x 200 s: never 600 s without use
        clock.advance(200)
        assert sessions.check(busy) is not None
    assert sessions.check(idle) is None
    clock.advance(601)
    assert sessions.check(busy) is None


def test_a_busy_session_still_ends_at_its_maximum_age(books, clock):
    tokens, sessions = books
    _, secret = open_session(tokens, sessions)
    for _ in range(12):  # 12 x 300 s = 3600 s, used every 300 s
        clock.advance(300)
        sessions.check(secret)
    clock.advance(1)
    assert sessions.check(secret) is None


def test_signing_out_ends_one_session_and_everywhere_ends_them_all(books):
    tokens, sessions = books
    issued, laptop = open_session(tokens, sessions)
    phone = sessions.open(tokens.identify(issued.token), "10.0.0.9")
    sessions.end(laptop)
    assert sessions.check(laptop) is None and sessions.check(phone) is not None
    tablet = sessions.open(tokens.identify(issued.token), "10.0.0.10")
    assert sessions.end_for_user("cora") == 2
    assert sessions.check(phone) is None and sessions.check(tablet) is None
