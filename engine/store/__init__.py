"""The store: every SQL statement Firstline runs, and nothing else.

`DuckDBStore` is the one database (a DuckDB file, migrated by `schema`); each repository owns the tables of one
concern and is built on it:

- `Decisions`: conversations, messages, what each answered message decided (facts, rules, actions, trace)
- `Conversations`: a conversation's state and version, the user's verdicts on fixes, feedback, learned examples
- `Escalations`: business escalations and the decisions recorded on them
- `Tokens`: API tokens (salted hashes only)
- `StaffSessions`: staff sign-ins held on the server (hashes of the cookies' secrets)
- `StaffUsers`: staff who sign in with a password (argon2 hashes only); disabling one ends their sessions
- `Privacy`: forgetting a user everywhere, in one transaction
- `Notifications`: the outbox of "a person answered you" notices, users' vouched e-mail addresses, their presence
- `Handoffs`: problems handed to engineering, as engineers list and close them
- `HealingLedger`: telemetry, signals, alerts, remediations and the state the safety gate reads
- `LearningRecords`: remedy outcomes, votes, learned rules and shadow cases
- `CurationQueries`: the curators' read-only views across decisions and learning

No other package imports `duckdb` or writes SQL (tests/core/test_layering.py checks both). A PostgreSQL store
answers the same methods.
"""

from engine.store.conversations import Conversations
from engine.store.curation import CurationQueries
from engine.store.database import DuckDBStore
from engine.store.decisions import Decisions
from engine.store.escalations import Escalations
from engine.store.handoffs import Handoffs
from engine.store.healing import HealingLedger
from engine.store.learning import LearningRecords
from engine.store.notifications import Notifications
from engine.store.privacy import Privacy
from engine.store.sessions import StaffSessions
from engine.store.tokens import Tokens
from engine.store.users import StaffUsers

__all__ = ["Conversations", "CurationQueries", "Decisions", "DuckDBStore", "Escalations", "Handoffs", "HealingLedger",
           "LearningRecords", "Notifications", "Privacy", "StaffSessions", "StaffUsers",
           "Tokens"]
