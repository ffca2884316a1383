"""Staff users who sign in with a password: created with an argon2id hash only, authenticated without telling
which names exist, limited to categories, and disabled at once with every session of theirs."""

import pytest
from argon2 import PasswordHasher, profiles

from core.errors import ConflictError, InputError, NotFoundError
from core.taxonomy import BUSINESS
from engine.access.administration import Administration
from engine.access.sessions import SessionBook
from engine.access.tokens import Identity, Role, TokenBook
from engine.access.users import UserBook
from engine.store import Decisions, StaffSessions, StaffUsers, Tokens

PASSWORD = "correct horse battery staple"
# The real argon2id at the smallest cost it allows: the library's defaults take about 0.1 s a hash.
CHEAP = PasswordHasher.from_parameters(profiles.CHEAPEST)


class CountingHasher(PasswordHasher):
    """argon2-cffi's own hasher, counting the passwords it checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash, password):
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def users(store, clock):
    return UserBook(StaffUsers(store), clock, CHEAP)


@pytest.fixture
def sessions(store, clock):
    return SessionBook(StaffSessions(store), idle_s=600, max_age_s=3600, clock=clock)


def stored(store):
    return store.execute("SELECT name, role, categories, password_hash, created_at, disabled_at FROM staff_users")


def test_a_user_signs_in_with_their_password_and_only_an_argon2id_hash_is_stored(users, store, clock):
    made = users.create("dana", "decider", PASSWORD)
    assert (made.name, made.role, made.categories, made.created_at, made.disabled) == \
        ("dana", Role.DECIDER, (), clock(), False)
    assert users.authenticate("dana", PASSWORD) == Identity("dana", Role.DECIDER, "user:dana")
    (row,) = stored(store)
    assert row[3].startswith("$argon2id$") and PASSWORD not in repr(row)
    assert "password_hash" not in repr(made)


def test_a_wrong_password_an_unknown_name_or_a_disabled_user_opens_nothing(store, clock):
    hasher = CountingHasher()
    users = UserBook(StaffUsers(store), clock, hasher)
    users.create("dana", "decider", PASSWORD)
    checked = hasher.verified
    assert users.authenticate("dana", PASSWORD + "!") is None
    assert users.authenticate("Dana", PASSWORD) is None  # names are exact
    assert users.authenticate("nobody", PASSWORD) is None
    assert users.authenticate("", "") is None
    # Every attempt checked a password against a hash, an unknown name's too: the time taken tells nothing.
    assert hasher.verified - checked == 4
    users.disable("dana")
    assert users.authenticate("dana", PASSWORD) is None


def test_a_password_is_the_same_however_its_accents_were_typed(users):
    users.create("zoe", "curator", "caf\u00e9 au lait tous les matins")  # é as one code point
    assert users.authenticate("zoe", "cafe\u0301 au lait tous les matins") is not None  # e + combining accent


def test_a_hash_made_under_older_parameters_is_redone_at_the_next_sign_in(store, clock):
    UserBook(StaffUsers(store), clock, CHEAP).create("dana", "decider", PASSWORD)
    (old,) = [row[3] for row in stored(store)]
    stronger = UserBook(StaffUsers(store), clock, PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    assert stronger.authenticate("dana", PASSWORD + "!") is None
    assert [row[3] for row in stored(store)] == [old]  # a wrong password changes nothing
    assert stronger.authenticate("dana", PASSWORD) is not None
    (new,) = [row[3] for row in stored(store)]
    assert new != old and "m=16,t=2,p=1" in new
    assert stronger.authenticate("dana", PASSWORD) is not None


def test_a_taken_name_is_a_conflict_and_nothing_changes(users, store):
    users.create("dana", "decider", PASSWORD, ("pricing",))
    with pytest.raises(ConflictError, match="a staff user named 'dana' already exists"):
        users.create("dana", "curator", "another long password")
    users.disable("dana")
    with pytest.raises(ConflictError):  # a disabled user keeps the name: what they decided stays theirs
        users.create("dana", "decider", PASSWORD)
    assert [(row[0], row[1], row[2]) for row in stored(store)] == [("dana", "decider", '["pricing"]')]


@pytest.mark.parametrize(("name", "role", "password", "categories", "says"), [
    ("dana smith", "decider", PASSWORD, (), "1 to 64 letters, digits, '.', '_', '-' or '@'"),
    ("", "decider", PASSWORD, (), "got ''"),
    ("d" * 65, "decider", PASSWORD, (), "1 to 64"),
    ("dana", "operator", PASSWORD, (), "role is decider, curator, analyst or engineer, got 'operator'"),
    ("dana", "user", PASSWORD, (), "use API tokens"),
    ("dana", "decider", "fourteen chars", (), "at least 15 characters (it is 14)"),
    ("dana", "decider", "x" * 1025, (), "at most 1024 characters"),
    ("dana.smith@example.com", "decider", "DANA.SMITH@example.com", (), "must not be the user's name"),
    ("dana", "decider", PASSWORD, ("pricing", "discounts"), "unknown business category discounts; the categories "
                                                            "are hosting_capacity, pricing, policy"),
    ("cora", "curator", PASSWORD, ("pricing",), "a curator decides nothing"),
])
def test_bad_input_is_refused_with_a_clear_message_and_nothing_is_stored(users, store, name, role, password,
                                                                         categories, says):
    with pytest.raises(InputError) as refused:
        users.create(name, role, password, categories)
    assert says in str(refused.value)
    assert not isinstance(refused.value, ConflictError | NotFoundError)
    assert stored(store) == []


def test_a_name_may_be_an_email_address_and_categories_keep_the_taxonomys_order(users):
    made = users.create("dana.smith@example.com", "decider", PASSWORD, ["policy", "pricing", "policy"])
    assert made.categories == ("pricing", "policy")
    assert users.categories("dana.smith@example.com") == ("pricing", "policy")


def test_categories_limit_what_a_decider_may_decide(users):
    users.create("pat", "decider", PASSWORD, ("pricing",))
    users.create("dana", "decider", PASSWORD)
    users.create("cora", "curator", PASSWORD)
    assert users.may_decide("pat", "pricing") and not users.may_decide("pat", "policy")
    assert all(users.may_decide("dana", category) for category in BUSINESS) and users.categories("dana") == ()
    # A decider known only by an API token has no staff user: every business category, as before.
    assert users.categories("tess") == () and all(users.may_decide("tess", category) for category in BUSINESS)
    assert not users.may_decide("tess", "performance")  # nobody decides a technical category
    assert not users.may_decide("cora", "pricing")
    assert users.set_categories("pat", ["policy", "hosting_capacity"]).categories == ("hosting_capacity", "policy")
    assert users.may_decide("pat", "policy") and not users.may_decide("pat", "pricing")
    assert users.set_categories("pat", []).categories == () and users.may_decide("pat", "pricing")
    users.disable("dana")
    assert not users.may_decide("dana", "pricing")


def test_changing_an_unknown_user_says_so(users):
    for change in (lambda: users.disable("nobody"), lambda: users.set_categories("nobody", ["pricing"]),
                   lambda: users.set_password("nobody", PASSWORD)):
        with pytest.raises(NotFoundError, match="no staff user named 'nobody'"):
            change()
    users.create("pat", "decider", PASSWORD, ("pricing",))
    with pytest.raises(InputError, match="unknown business category refunds"):
        users.set_categories("pat", ["refunds"])
    assert users.categories("pat") == ("pricing",)


def test_a_password_users_session_is_live_and_ends_at_once_when_they_are_disabled(users, sessions, store, clock):
    tokens = TokenBook(Tokens(store), clock)
    users.create("dana", "decider", PASSWORD)
    desk = sessions.open(users.authenticate("dana", PASSWORD), "10.0.0.7")
    laptop = sessions.open(users.authenticate("dana", PASSWORD), "10.0.0.8")
    with_token = sessions.open(tokens.identify(tokens.create("dana", Role.DECIDER).token), "10.0.0.9")
    other = sessions.open(tokens.identify(tokens.create("otto", Role.CURATOR).token), "10.0.0.10")
    live = sessions.check(desk)
    assert (live.user_id, live.role) == ("dana", Role.DECIDER)
    assert store.execute("SELECT DISTINCT credential FROM staff_sessions WHERE address IN ('10.0.0.7', "
                         "'10.0.0.8')") == [("user:dana",)]
    clock.advance(60)
    users.disable("dana")
    # Every session of dana's ends in the same transaction, the one opened with a token too; otto's does not.
    assert sessions.check(desk) is None and sessions.check(laptop) is None and sessions.check(with_token) is None
    assert sessions.check(other) is not None
    ended = store.execute("SELECT DISTINCT end_reason, ended_at FROM staff_sessions WHERE user_id = 'dana'")
    assert ended == [("user disabled", clock())]
    assert users.get("dana").disabled_at == clock()
    clock.advance(60)
    users.disable("dana")  # again: the first moment is kept
    assert users.get("dana").disabled_at == clock() - 60


def test_a_session_whose_password_user_does_not_exist_is_refused(sessions, store):
    secret = sessions.open(Identity("ghost", Role.DECIDER, "user:ghost"), "10.0.0.7")
    assert sessions.check(secret) is None
    assert store.execute("SELECT end_reason FROM staff_sessions") == [("user disabled",)]


def test_token_sessions_are_checked_against_their_token_as_before(users, sessions, store, clock):
    tokens = TokenBook(Tokens(store), clock)
    users.create("cora", "curator", PASSWORD)  # a staff user of the same name changes nothing for the token
    issued = tokens.create("cora", Role.CURATOR)
    secret = sessions.open(tokens.identify(issued.token), "10.0.0.7")
    assert sessions.check(secret) is not None
    tokens.revoke(issued.id)
    assert sessions.check(secret) is None
    assert store.execute("SELECT end_reason FROM staff_sessions") == [("token revoked",)]
    assert users.authenticate("cora", PASSWORD) is not None  # and revoking a token leaves the password alone


def test_a_new_password_works_the_old_one_does_not_and_the_old_ones_sessions_end(users, sessions, store, clock):
    tokens = TokenBook(Tokens(store), clock)
    users.create("dana", "decider", PASSWORD)
    old = sessions.open(users.authenticate("dana", PASSWORD), "10.0.0.7")
    with_token = sessions.open(tokens.identify(tokens.create("dana", Role.DECIDER).token), "10.0.0.8")
    with pytest.raises(InputError, match="at least 15"):
        users.set_password("dana", "too short")
    assert sessions.check(old) is not None and users.authenticate("dana", PASSWORD) is not None
    users.set_password("dana", "a completely different passphrase")
    assert users.authenticate("dana", PASSWORD) is None
    assert users.authenticate("dana", "a completely different passphrase") is not None
    assert sessions.check(old) is None and sessions.check(with_token) is not None
    assert store.execute("SELECT end_reason FROM staff_sessions WHERE credential = 'user:dana'") == \
        [("password changed",)]


def test_the_administration_shows_users_as_plain_data_without_their_hash(store, clock):
    admin = Administration(TokenBook(Tokens(store), clock), Decisions(store),
                           UserBook(StaffUsers(store), clock, CHEAP))
    made = admin.create_user("pat", "decider", PASSWORD, ["pricing"])
    assert made == {"name": "pat", "role": "decider", "categories": ["pricing"], "created_at": clock(),
                    "disabled": False, "disabled_at": None}
    admin.create_user("cora", "curator", PASSWORD)
    assert [found["name"] for found in admin.list_users()] == ["cora", "pat"]  # same moment: by name
    assert "argon2" not in repr(admin.list_users())
    assert admin.set_user_categories("pat", ["policy"])["categories"] == ["policy"]
    assert admin.disable_user("pat")["disabled"] is True
    with pytest.raises(InputError, match="categories must be a list"):
        admin.set_user_categories("cora", "pricing")
    with pytest.raises(InputError, match="password must be a string"):
        admin.set_user_password("cora", None)


def test_an_account_cannot_begin_in_the_future(store, clock):
    admin = Administration(TokenBook(Tokens(store), clock), Decisions(store),
                           UserBook(StaffUsers(store), clock, CHEAP), clock)
    with pytest.raises(InputError, match="since is in the future"):
        admin.set_account("eve", "Team", 10, "admin", since=clock() + 40 * 86400)
    assert admin.set_account("eve", "Team", 10, "admin", since=clock() - 86400)["since"] == clock() - 86400
