"""The notification link's token: made for one user and one conversation, until it expires, under the server's
secret; anything else is refused, and nothing raises, whatever the address holds. Time from a manual clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.notify.links import LinkCheck, NoticeLinks, Refusal
from engine.notify.mail import conversation_link
from tests.conftest import ManualClock

SECRET = "0123456789abcdef" * 4
DAY = 86400.0


@pytest.fixture
def links(clock):
    return NoticeLinks(SECRET, 14 * DAY, clock)


@pytest.mark.parametrize("user", ["u-1042", "9f" * 16, "ann.o'neil@example.org", "two\nlines", "Zoë 🦊", "x" * 200])
def test_a_token_opens_as_its_user_on_its_conversation(links, user):
    assert links.check(links.token(user, "c-1"), "c-1") == LinkCheck(user_id=user)


def test_it_works_until_it_expires_and_then_says_so(links, clock):
    token = links.token("u-1", "c-1")
    clock.advance(14 * DAY)
    assert links.check(token, "c-1").user_id == "u-1"  # to the second
    clock.advance(1)
    assert links.check(token, "c-1") == LinkCheck(refusal=Refusal.EXPIRED)


def test_it_opens_no_other_conversation(links):
    token = links.token("u-1", "c-1")
    assert links.check(token, "c-2") == LinkCheck(refusal=Refusal.INVALID)
    assert links.check(token, "") == LinkCheck(refusal=Refusal.INVALID)


def test_a_changed_token_opens_nothing(links, clock):
    expires, user, mac = links.token("u-1", "c-1").split(".")
    other_user = links.token("u-2", "c-1").split(".")[1]
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    for changed in (f"{int(expires) + DAY:.0f}.{user}.{mac}",  # a later expiry
                    f"{expires}.{other_user}.{mac}",  # another user
                    f"{expires}.{user}.{flipped}",
                    f"{expires}.{user}.{mac[:-1]}",  # cut short
                    f"{expires}.{user}", "", "x", "...", f"{expires}..{mac}"):
        assert links.check(changed, "c-1") == LinkCheck(refusal=Refusal.INVALID), changed
    clock.advance(30 * DAY)  # an expired token changed is invalid, not "expired": nothing unsigned learns anything
    assert links.check(f"{expires}.{other_user}.{mac}", "c-1").refusal is Refusal.INVALID


def test_another_secret_or_another_purpose_opens_nothing(links, clock):
    token = links.token("u-1", "c-1")
    assert NoticeLinks("another secret", 14 * DAY, clock).check(token, "c-1").refusal is Refusal.INVALID
    # What the secret itself would sign with plain HMAC (no purpose) is not a token either.
    expires, user, _ = token.split(".")
    plain = hmac.new(SECRET.encode(), json.dumps(["u-1", "c-1", int(expires)]).encode(), hashlib.sha256).digest()
    forged = f"{expires}.{user}.{base64.urlsafe_b64encode(plain).rstrip(b'=').decode()}"
    assert links.check(forged, "c-1").refusal is Refusal.INVALID


def test_a_link_carries_its_token_after_the_conversation(links):
    token = links.token("u-1", "c 1")
    assert conversation_link("https://support.example.com/", "c 1", token) == \
        f"https://support.example.com/?conversation=c%201&token={token}"
    assert conversation_link("https://support.example.com", "c-1") == "https://support.example.com/?conversation=c-1"


def test_a_server_without_a_secret_makes_no_links():
    with pytest.raises(ValueError, match="secret"):
        NoticeLinks("", DAY)


@given(st.text(max_size=1200), st.text(max_size=40))
def test_whatever_the_address_holds_the_check_answers_and_never_raises(token, conversation):
    checked = NoticeLinks(SECRET, DAY, ManualClock()).check(token, conversation)
    assert checked.refusal is Refusal.INVALID and checked.user_id == ""
