"""The e-mail that tells a user a person answered them: plain text in the product's voice, about their own request
only (what they were told in their conversation, nothing of anyone else's), with a link back to the conversation
that carries a signed token (engine/notify/links.py), so it opens as that user in any browser until it expires.

Headers: From (the configured sender), To, Subject, Date, a Message-ID made from the notice's id (the same on
every attempt, so a mail system that got it twice can tell), and `Auto-Submitted: auto-generated` (RFC 3834), so
out-of-office replies are not sent back.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import quote

from engine.notify.links import NoticeLinks
from engine.store.notifications import NoticeKind, NoticeRow

WIDTH = 72  # plain-text mail is read in fixed-width windows; links are never broken

SUBJECTS = {
    NoticeKind.APPROVED: "Good news about your {product} request",
    NoticeKind.REJECTED: "An answer to your {product} request",
    NoticeKind.ASKED: "A question about your {product} request",
    NoticeKind.EXPIRED: "Your {product} request was closed",
    NoticeKind.EXPIRED_UNANSWERED: "Your {product} request was closed",
    NoticeKind.HANDOFF_CLOSED: "An update on the problem you reported to {product}",
}


@dataclass(frozen=True)
class Letterhead:
    """Who the e-mails come from: the From header, the product's name, the chat's public address, and what signs
    the links back to it (None: links without a token, which open only in the browser the user chatted in)."""

    sender: str
    product: str
    chat_url: str
    links: NoticeLinks | None = None

    @property
    def domain(self) -> str:
        return parseaddr(self.sender)[1].rpartition("@")[2] or "localhost"


def conversation_link(chat_url: str, conversation_id: str, token: str = "") -> str:
    """Where the user reads the conversation and answers: the chat page, opened on it, as the user `token` names."""
    link = f"{chat_url.rstrip('/')}/?conversation={quote(conversation_id, safe='')}"
    return f"{link}&token={quote(token, safe='')}" if token else link


def subject(kind: NoticeKind, product: str) -> str:
    return SUBJECTS[kind].format(product=product)


def body(row: NoticeRow, letterhead: Letterhead, now: float) -> str:
    """The text: a greeting, what the person said (as the user was told it in the chat), how to answer with a link
    made at `now` (epoch s), the product's sign-off, and why this e-mail came."""
    notice, product = row.notice, letterhead.product
    token = letterhead.links.token(notice.user_id, notice.conversation_id, now) if letterhead.links else ""
    link = conversation_link(letterhead.chat_url, notice.conversation_id, token)
    if notice.kind is NoticeKind.ASKED:
        said = [_fill(f"The {product} team needs a little more information before they can decide your request. "
                      "They ask:"), "", textwrap.indent(_fill(notice.text, WIDTH - 4), "    "), "",
                _fill("To answer, open your conversation and reply there:")]
    else:
        said = [_fill(notice.text), "", _fill("You can read the whole conversation, and reply, here:")]
    why = (f"You're getting this because you asked {product} support about something a person had to answer, and "
           "you had left the chat when they did. Replies to this e-mail aren't read: write in the chat instead.")
    return "\n".join(["Hi,", "", *said, link, "", "Thanks for your patience,", f"The {product} assistant", "",
                      "-- ", _fill(why), ""])


def compose(row: NoticeRow, address: str, now: float, letterhead: Letterhead) -> EmailMessage:
    """The e-mail for `row`, to `address`, dated `now` (epoch s)."""
    message = EmailMessage()
    message["From"] = letterhead.sender
    message["To"] = address
    message["Subject"] = subject(row.notice.kind, letterhead.product)
    message["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    message["Message-ID"] = f"<notice-{row.id}@{letterhead.domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body(row, letterhead, now))
    return message


def _fill(text: str, width: int = WIDTH) -> str:
    return "\n".join(textwrap.fill(part, width, break_long_words=False, break_on_hyphens=False) if part.strip() else ""
                     for part in text.split("\n"))
