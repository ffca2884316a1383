"""The link in a notification e-mail, opened: `/?conversation=ID&token=TOKEN` (the token: engine/notify/links.py).

A valid token makes this browser's chat session that of the user the e-mail was sent to, not verified (an account
action needs the host app to vouch again), and sends the browser on to `/?conversation=ID`, where the page shows the
conversation as for any link: so a user who chatted in the widget, whose session lives in the host page's frame,
finds their conversation on Firstline's own page too. A browser the host app vouched for as someone else is not
taken over. The token leaves the address at once (a reload, the history and a copied address do not carry it).
Anything else (changed, cut short, expired, made for another conversation) shows the chat with a notice saying
what to do, and nothing of the conversation. A link without a token is answered as before, by the page alone.
"""

from __future__ import annotations

from flask import current_app, redirect, request, session, url_for
from werkzeug.wrappers import Response

from engine.notify.links import NoticeLinks, Refusal

# Where the notice waits for the chat page, in the session: its own key, not Flask's flashes, which the desk's
# pages read (and reading takes them all).
NOTICE_KEY = "link_notice"

EXPIRED = ("This link has expired: the links in our e-mails work for {ttl}. To see your conversations, open the "
           "chat from {product}.")
INVALID = ("This link doesn't work: it may have been cut short or changed on the way, or it was made for another "
           "conversation. Open the link exactly as it came in the e-mail, or open the chat from {product} to see "
           "your conversations.")
OTHER_ACCOUNT = ("This link was sent to another account than the one signed in to the chat in this browser, so it "
                 "wasn't opened here. Open the chat from {product} to see your conversations.")


def follow_link(links: NoticeLinks, product: str) -> Response:
    """Answer `/?conversation=ID&token=TOKEN`: continue as the token's user on that conversation, or say why not."""
    conversation_id = request.args.get("conversation", "")
    checked = links.check(request.args.get("token", ""), conversation_id)
    if checked.refusal is not None:
        message = (EXPIRED if checked.refusal is Refusal.EXPIRED else INVALID).format(ttl=_span(links.ttl_s),
                                                                                       product=product)
        return _refused(checked.refusal.value, message)
    if session.get("user_id") != checked.user_id:
        if session.get("verified"):
            return _refused("another account is signed in", OTHER_ACCOUNT.format(product=product))
        session["user_id"] = checked.user_id
        session.pop("verified", None)
        session.permanent = True
    return redirect(url_for("chat_page", conversation=conversation_id), 303)


def _refused(reason: str, message: str) -> Response:
    # Logged as the other refusals are (web/app.py): from where and why, never the token.
    current_app.logger.warning("refused a notification link from %s: %s", request.remote_addr, reason)
    session[NOTICE_KEY] = message
    return redirect(url_for("chat_page"), 303)


def refused_notice() -> str:
    """The notice of a link refused on the way to this page ('' when none); said once."""
    return str(session.pop(NOTICE_KEY, ""))


def _span(seconds: float) -> str:
    """`seconds` in the largest whole unit a person reads: "14 days", "1 hour", "90 seconds"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}" + ("s" if count != 1 else "")
    return f"{seconds:g} seconds"
