"""Engineering's side of hand-offs: the problems the automation could not fix, listed for engineers, and closed
by one with a note for the user. Closing posts the note into the user's conversation in the product's voice and
queues a notice (e-mailed if they have left, engine/notify/), in one transaction behind a guard on the hand-off's
status, so two engineers closing it at once cannot both post. A hand-off the monitor raised (no conversation) is
closed with its note and tells nobody.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import ConflictError, InputError, NotFoundError
from engine.chat.dialogue import Stage, versioned_state
from engine.chat.voice import Voice
from engine.store.conversations import Conversations
from engine.store.database import Statement
from engine.store.handoffs import CLOSED_PREFIX, HandoffRow, Handoffs
from engine.store.notifications import Notice, NoticeKind, Notifications

MAX_NOTE_CHARS = 2000
STATUSES = ("open", "closed", "all")
# What the user reads when engineering closes their problem; the note is the engineer's own words. (The voice file,
# data/replies.yaml, may say it instead under `handoff_closed`.)
HANDOFF_CLOSED = (
    "Our engineers have an update on the problem I handed to them: {decision} If anything's still not right, just "
    "tell me here.",
)


@dataclass(frozen=True)
class Engineer:
    """Who is closing, and how they came (`cli`, `api`)."""

    name: str
    via: str = "cli"


class HandoffDesk:
    """Lists hand-offs and closes them; stateless itself (everything lives in the store)."""

    def __init__(self, handoffs: Handoffs, conversations: Conversations, voice: Voice,
                 clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.handoffs = handoffs
        self.chats = conversations
        self.voice = voice
        self.clock = clock
        self.new_id = new_id

    def listing(self, status: str = "open") -> list[dict[str, Any]]:
        """Hand-offs by status: `open` (oldest first), `closed` (latest closed first) or `all`. InputError for
        another status."""
        if status not in STATUSES:
            raise InputError(f"unknown status {status!r}; one of {', '.join(STATUSES)}", code="invalid_query")
        closed = {"open": False, "closed": True, "all": None}[status]
        return [handoff_json(row) for row in self.handoffs.find(closed)]

    def detail(self, handoff_id: str) -> dict[str, Any]:
        return handoff_json(self._existing(handoff_id))

    def close(self, handoff_id: str, engineer: Engineer, note: object) -> dict[str, Any]:
        """Close an open hand-off with `note`, told to its user in their conversation (and by e-mail if they have
        left). NotFoundError (unknown id), ConflictError (already closed), InputError (no note, or too long)."""
        text = _note(note)
        row = self._existing(handoff_id)
        if not row.is_open:
            raise ConflictError(f"hand-off {handoff_id} is already {row.status}", code="already_closed")
        now = self.clock()
        statements = [self.handoffs.closure_sql(row, engineer.name, text, now)]
        told = None
        if row.conversation_id:
            lines = self.voice.templates.get("handoff_closed") or HANDOFF_CLOSED
            told = self.voice.say("handoff_closed", f"{row.id}:closed", overrides=lines, decision=text)
            statements += [
                self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "team", told, now),
                Notifications.notice_sql(Notice(self.new_id(), row.user_id, row.conversation_id,
                                                NoticeKind.HANDOFF_CLOSED, row.id, told, now)),
                *self._ask_to_check(row, now),
            ]
        self.chats.commit(statements, self.handoffs.close_guard(
            row.id, engineer.name, f"hand-off {row.id} was closed by someone else meanwhile; list it again"))
        return {"id": row.id, "status": CLOSED_PREFIX + engineer.name, "closed_at": now, "told": told,
                "message": ("The note was posted into the user's conversation; they are e-mailed if they have left "
                            "and the host app gave their address." if told else
                            "Closed. It came from the monitor, not a conversation, so nobody is told.")}

    def _ask_to_check(self, row: HandoffRow, now: float) -> list[Statement]:
        """A user still where the hand-off left them (its problem in hand, asked only for a rating) is asked
        whether it works now, as after any fix; their answer is read like one (engine/chat/dialogue.py). One who
        moved on is told the note without being interrupted. A plain statement, not the guard: if the user's own
        turn saved the state meanwhile, theirs stands."""
        state, version = versioned_state(self.chats, row.conversation_id)
        if not (state.stage is Stage.RATING and state.handed_off and state.playbook == row.playbook):
            return []
        state.stage = Stage.VERIFYING
        sql, params, _ = self.chats.state_guard(row.conversation_id, row.user_id, state.stage, state.payload(), now,
                                                version)
        check = self.voice.say("handoff_check", f"{row.id}:check")
        return [self.chats.message_sql(self.new_id(), row.conversation_id, row.user_id, "assistant", check, now),
                (sql, params)]

    def _existing(self, handoff_id: str) -> HandoffRow:
        row = self.handoffs.get(handoff_id)
        if row is None:
            raise NotFoundError(f"no hand-off with id {handoff_id!r}; `firstline handoffs list --status all` lists "
                                "them")
        return row


def handoff_json(row: HandoffRow) -> dict[str, Any]:
    return {"id": row.id, "status": "open" if row.is_open else "closed", "closed_by":
            row.status.removeprefix(CLOSED_PREFIX) if not row.is_open else None, "team": row.team,
            "summary": row.summary, "playbook": row.playbook, "user_id": row.user_id,
            "conversation_id": row.conversation_id or None, "created_at": row.created_at, "closed_at": row.closed_at,
            "note": row.note, "diagnostics": row.diagnostics}


def cli_engineer(users: Any, tokens: Any, name: str, via: str = "cli") -> Engineer:
    """The engineer `--as NAME` names: an engineer's staff account that is not disabled, else the user of a live
    engineer API token. InputError otherwise. `users` is an `engine.access.users.UserBook`, `tokens` a `TokenBook`
    (duck-typed: the desk room sits below access)."""
    staff = users.get(name)
    if staff is not None:
        if staff.disabled or staff.role.value != "engineer":
            raise InputError(f"{name!r} is not an active engineer (firstline user list shows who is)",
                             code="invalid_body")
        return Engineer(name, via)
    if any(t.user_id == name and t.role == "engineer" and not t.revoked for t in tokens.listing()):
        return Engineer(name, via)
    raise InputError(f"{name!r} is not an engineer: create one with `firstline user create {name} --role engineer`",
                     code="invalid_body")


def _note(note: object) -> str:
    if not isinstance(note, str) or not note.strip():
        raise InputError("a note is required: what was found or done, in words the user understands; it is posted "
                         "into their conversation", code="invalid_body")
    text = " ".join(note.split())
    if len(text) > MAX_NOTE_CHARS:
        raise InputError(f"the note is {len(text):,} characters long; the limit is {MAX_NOTE_CHARS:,}",
                         code="invalid_body")
    return text if text[-1] in ".!?…" else text + "."
