"""A turn commits at once: its replies, decision and the conversation's new state in one transaction, saved only
over the state it started from. Two turns of one conversation answered at the same moment never overwrite each
other, and a process killed in the middle of a turn loses nothing it had accepted."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from core.errors import ConflictError
from engine.chat.dialogue import Stage
from tests.conftest import ROOT, build_parts, make_settings


def test_two_turns_of_one_conversation_at_once_keep_both_messages_and_one_state(chat):
    start = chat.dialogue.start("ann")
    both_read = threading.Barrier(2, timeout=20)

    def hold(message: str) -> None:
        if message == "Let me check a few things…":  # said after the turn has read the state
            both_read.wait()

    outcomes: dict[str, object] = {}

    def post(text: str) -> None:
        try:
            outcomes[text] = chat.dialogue.turn(text, "ann", start.conversation_id, progress=hold)
        except ConflictError as error:
            outcomes[text] = error

    texts = ["The dashboard is loading really slowly", "I never got the verification email"]
    threads = [threading.Thread(target=post, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lost = [t for t, o in outcomes.items() if isinstance(o, ConflictError)]
    won = [t for t, o in outcomes.items() if not isinstance(o, ConflictError)]
    assert len(lost) == 1 and len(won) == 1
    assert "Your message is kept" in str(outcomes[lost[0]])
    users = [text for role, text, _ in chat.assistant.store.messages(start.conversation_id, "ann") if role == "user"]
    assert sorted(users) == sorted(texts)  # both messages stored
    decisions = chat.store.execute("SELECT count(*) FROM decisions WHERE conversation_id = ?",
                                   (start.conversation_id,))
    assert decisions == [(1,)]  # the loser's decision went with its transaction
    ((payload, version),) = chat.store.execute(
        "SELECT payload, version FROM conversation_state WHERE conversation_id = ?", (start.conversation_id,))
    assert version == 2 and json.loads(payload)["problem"] == won[0]  # the winner's state, saved once over v1
    again = chat.dialogue.turn(lost[0], "ann", start.conversation_id)  # the conversation goes on
    assert again.replies


KILLED_TURN = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[2])
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tests.conftest import build_parts, make_settings
    from pathlib import Path
    parts = build_parts(make_settings(Path(sys.argv[1])))
    conversation = parts.dialogue.start("kim").conversation_id
    print("CONVERSATION", conversation, flush=True)

    def stop_here(message):
        if message == "Let me check a few things…":  # accepted and stored, not answered yet
            print("ACCEPTED", flush=True)
            time.sleep(600)

    parts.dialogue.turn("The dashboard is loading really slowly", "kim", conversation, progress=stop_here)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_mid_turn_keeps_the_message_and_the_conversation_goes_on(tmp_path, session_settings,
                                                                                 knowledge):
    data = tmp_path / "data"
    settings = make_settings(data)
    shutil.copytree(session_settings.index_dir, settings.index_dir)  # the session's index: no rebuild
    if session_settings.cache_dir.exists():
        shutil.copytree(session_settings.cache_dir, settings.cache_dir)
    child = subprocess.Popen([sys.executable, "-c", KILLED_TURN, str(data), str(ROOT)], stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        conversation = ""
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("CONVERSATION"):
                conversation = line.split()[1]
            if line.startswith("ACCEPTED"):
                break
        else:
            pytest.fail(f"the child process never accepted the message (exit {child.wait()})")
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    parts = build_parts(settings, knowledge=knowledge)
    try:
        texts = [(role, text) for role, text, _ in parts.assistant.store.messages(conversation, "kim")]
        assert ("user", "The dashboard is loading really slowly") in texts  # accepted, so kept
        assert parts.dialogue.status(conversation, "kim")[0] is Stage.OPEN  # the half-done turn left no state
        after = parts.dialogue.turn("The dashboard is loading really slowly", "kim", conversation)
        assert after.answer is not None and after.answer.decision == "resolve"
    finally:
        parts.close()
