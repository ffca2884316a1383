"""The ledger: what the server accepted (conversations, user messages, alerts) and refused, kept by the workers."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bench.soaklib.client import Client


@dataclass
class Conversation:
    owner: str
    texts: list[str] = field(default_factory=list)  # user messages answered 2xx, in order
    refused: list[str] = field(default_factory=list)  # user messages answered 429 (nothing stored)
    deleted: bool = False  # its user deleted their history after it


class Ledger:
    """Conversations and their accepted user messages; alerts accepted and refusals; decision ids for the curator."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conversations: dict[str, Conversation] = {}
        self.owners: dict[str, Client] = {}  # a user's latest client, to read their conversations back
        self.decisions: deque[str] = deque(maxlen=300)
        self.counts: Counter[str] = Counter()
        self.alert_keys: set[tuple[str, str, str]] = set()  # (fingerprint, startsAt, status) of 2xx notifications
        self.notifications_accepted = 0
        self.summarised_expected = 0
        self.truncated_sent = 0
        self.refusals: list[dict[str, Any]] = []  # each refused notification: kind, status, dead-letter id
        self.alert_posts: list[tuple[str, int]] = []  # kind, status
        self.bench_errors: list[str] = []
        self.outage_probes: list[dict[str, Any]] = []  # GET /metrics while the telemetry source is down

    def conversation(self, conversation_id: str, owner: str, client: Client) -> None:
        with self.lock:
            self.conversations.setdefault(conversation_id, Conversation(owner))
            self.owners[owner] = client

    def forget(self, owner: str) -> None:
        """The user deleted their history: each of their conversations so far must be gone."""
        with self.lock:
            for conversation in self.conversations.values():
                if conversation.owner == owner:
                    conversation.deleted = True
            self.counts["users who deleted their history"] += 1

    def accepted(self, conversation_id: str, text: str, decision_id: str | None) -> None:
        with self.lock:
            self.conversations[conversation_id].texts.append(text)
            self.counts["messages accepted"] += 1
            if decision_id:
                self.decisions.append(decision_id)

    def refused(self, conversation_id: str, text: str) -> None:
        with self.lock:
            self.conversations[conversation_id].refused.append(text)
            self.counts["messages refused (429)"] += 1

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

