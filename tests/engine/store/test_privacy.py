"""Forgetting a user, at the store: every row of theirs goes in one transaction, whoever's rows sit beside; their
e-mail address, presence and notices too ("deleting history really deletes")."""

from engine.store import Decisions, Notifications, Privacy
from engine.store.decisions import Account
from engine.store.notifications import Notice, NoticeKind


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


def test_forget_deletes_the_address_presence_notices_and_closure_notes_of_the_user_only(store):
    notices = Notifications(store)
    for user in ("ann", "bob"):
        notices.set_email(user, f"{user}@example.org", 1.0)
        notices.mark_seen(user, f"c-{user}", 2.0)
        store.transaction([Notifications.notice_sql(Notice(f"n-{user}", user, f"c-{user}", NoticeKind.APPROVED,
                                                           "esc", "Good news", 3.0)),
                           Notifications.notice_sql(Notice(f"n2-{user}", user, f"c-{user}", NoticeKind.ASKED,
                                                           "esc", "A question", 4.0))])
        store.transaction([("INSERT INTO handoff_closures VALUES (?, ?, ?, ?, ?)",
                            (f"h-{user}", user, "sam", "Fixed.", 5.0))])
    assert notices.claim("n-ann", "sender", 6.0) and notices.sent("n-ann", "sender", 7.0)  # sent and pending alike
    counts = Privacy(store).forget("ann")
    assert (counts["user_contacts"], counts["user_presence"], counts["notifications"],
            counts["handoff_closures"]) == (1, 1, 2, 1)
    assert notices.email("ann") is None and notices.email("bob") == "bob@example.org"
    for table in ("user_contacts", "user_presence", "notifications", "handoff_closures"):
        assert store.execute(f"SELECT DISTINCT user_id FROM {table}") == [("bob",)], table
