"""Forgetting a user, at the store: every row of theirs goes in one transaction, whoever's rows sit beside."""

from engine.store import Decisions, Privacy
from engine.store.decisions import Account


def test_forget_deletes_the_account_and_learning_rows_from_before_user_ids_were_kept(store):
    decisions = Decisions(store)
    for user, conversation in (("ann", "c-ann"), ("bob", "c-bob")):
        decisions.start_conversation(conversation, user, "web")
        decisions.set_account(user, Account("pro", 3, "admin"))
        # A shadow case written before shadow_cases kept user ids: only its conversation leads to the user.
        store.transaction([("INSERT INTO shadow_cases (name, conversation_id, agreed, at_s, user_id) "
                            "VALUES (?, ?, ?, ?, NULL)", ("learned_x", conversation, True, 1.0))])
    counts = Privacy(store).forget("ann")
    assert counts["accounts"] == 1 and counts["learning_votes"] == 1 and counts["conversations"] == 1
    assert decisions.account("ann") is None and decisions.account("bob") is not None
    assert store.execute("SELECT conversation_id FROM shadow_cases") == [("c-bob",)]
    assert store.execute("SELECT user_id FROM conversations") == [("bob",)]
