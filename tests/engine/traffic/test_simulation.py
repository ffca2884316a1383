"""A simulated month in small: real parts on a fresh data folder, simulated time, one seed. The run writes the
product's own rows (conversations, messages, decisions, ratings, the desk's record, remediations), a seed gives
the same run twice, and a second run on the same folder does not trip over the first one's ids."""

import io
import os
from pathlib import Path

import pytest

from core.errors import InputError
from engine.chat.understanding import Option, Question, ReplyIntent
from engine.healing.scenarios import SCENARIOS
from engine.traffic import messages
from engine.traffic.faults import FaultPolicy, manual_fix
from engine.traffic.messages import load_phrasings, matches
from engine.traffic.parts import RunSpec, simulated_parts
from engine.traffic.simulation import Simulation
from engine.traffic.users import Say
from engine.wiring import build
from tests.conftest import ROOT, make_settings

MESSAGES = ROOT / "data" / "simulation" / "messages.tsv"
START = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday
CATEGORIES = {"dashboard_slow": "performance", "refund_request": "policy"}
TABLES = ("conversations", "messages", "decisions", "feedback", "escalations", "escalation_events", "remediations",
          "telemetry", "accounts")


def phrasings(playbooks):
    return load_phrasings(MESSAGES, {pid: p.category for pid, p in playbooks.items()}, 4000)


def run(data_dir: Path, knowledge, spec: RunSpec, **policies):
    """One run on `data_dir`; returns its report (without the wall time) and the rows per table it left."""
    with simulated_parts(make_settings(data_dir), spec, build, knowledge=knowledge) as (parts, clock):
        report = Simulation(parts, clock, spec, phrasings(knowledge.playbooks), **policies).run()
        rows = {table: parts.store.execute(f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}
        assert clock() == spec.end_s
    figures = report.to_json()
    figures.pop("wall_s")
    return figures, rows


def test_a_short_run_writes_the_products_rows_and_its_seed_repeats_it(tmp_path, fresh_knowledge):
    spec = RunSpec(days=2, users=5, seed=1, start_s=START)
    faults = FaultPolicy(per_day=1.0)  # a fault or two in two days, so the monitor has something to heal
    first, rows = run(tmp_path / "a", fresh_knowledge(), spec, fault_policy=faults)
    again, rows_again = run(tmp_path / "b", fresh_knowledge(), spec, fault_policy=faults)
    assert first == again and rows == rows_again
    assert first["conversations"] == rows["conversations"] > 0
    assert first["user_messages"] > first["conversations"] and rows["messages"] > first["user_messages"]
    assert rows["decisions"] == sum(first["decisions"].values()) > 0
    assert rows["feedback"] == first["ratings"] > 0
    assert rows["escalations"] == sum(first["escalations"].values()) > 0 and rows["escalation_events"] > 0
    assert first["faults"]["injected"] > 0 and rows["remediations"] == sum(first["remediations"].values()) > 0
    assert rows["accounts"] == spec.users and rows["telemetry"] > 0
    assert sum(first["outcomes"].values()) == first["conversations"]  # every conversation is accounted for
    assert first["assumptions"] and all(isinstance(line, str) for line in first["assumptions"])


def test_a_second_run_on_the_same_folder_adds_to_it(tmp_path, fresh_knowledge):
    spec = RunSpec(days=1, users=3, seed=5, start_s=START)
    first, rows = run(tmp_path, fresh_knowledge(), spec)
    second, rows_after = run(tmp_path, fresh_knowledge(), spec)  # same seed, same start: ids must not collide
    assert first["conversations"] > 0 and second["conversations"] > 0
    assert rows_after["conversations"] == rows["conversations"] + second["conversations"]


def test_what_simulated_users_type_is_read_as_they_mean_it(parts):
    reader = parts.dialogue.reader
    options = (Option("the first thing"), Option("another thing"))
    meant = {(Say.YES, Question.CONFIRM): ReplyIntent.YES, (Say.NO, Question.CONFIRM): ReplyIntent.NO,
             (Say.NONE_OF_THESE, Question.CHOOSE): ReplyIntent.NO, (Say.WORKS, Question.VERIFY): ReplyIntent.YES,
             (Say.PARTLY, Question.VERIFY): ReplyIntent.PARTLY, (Say.BROKEN, Question.VERIFY): ReplyIntent.NO,
             (Say.SETTLED, Question.SETTLED): ReplyIntent.YES, (Say.NOT_SETTLED, Question.SETTLED): ReplyIntent.NO}
    assert {(text, q): reader.read(text, q, options=options).intent for text, q in meant} == meant


def test_the_shipped_messages_cover_every_category(knowledge):
    found = phrasings(knowledge.playbooks)
    assert len(found) >= 90
    assert {p.label for p in found} == {p.category for p in knowledge.playbooks.values()}


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("text\tlabel\nthe dashboard is slow\tperformance\nno tab here\n", [":3:", "no tab"]),
        ("the dashboard is slow\tperformance\nrefund please\tbilling\n", [":2:", "unknown label 'billing'"]),
        ("# only a comment\n\n", ["no messages in it"]),
        ("a\tb\tc\n", [":1:", "3 columns"]),
        ("\tperformance\n", [":1:", "the text is empty"]),
    ],
)
def test_a_malformed_messages_file_names_the_line(tmp_path, content, fragments):
    path = tmp_path / "set.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as raised:
        load_phrasings(path, CATEGORIES, 4000)
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_only_a_regular_file_is_read(tmp_path):
    folder = tmp_path / "folder.tsv"
    folder.mkdir()
    fifo = tmp_path / "pipe.tsv"
    os.mkfifo(fifo)  # opening it to read would wait for a writer: it must be refused from its status alone
    refused = {folder: "(a folder)", fifo: "(a FIFO)"}
    if Path("/dev/null").is_char_device():  # a device that ends at once (never try one that does not)
        refused[Path("/dev/null")] = "(a device)"
    for path, kind in refused.items():
        with pytest.raises(InputError) as raised:
            load_phrasings(path, CATEGORIES, 4000)
        assert f"{path} is not a regular file {kind}" in str(raised.value)


def test_a_file_over_the_cap_is_refused_unread(tmp_path):
    path = tmp_path / "huge.tsv"
    with path.open("wb") as handle:
        handle.truncate(messages.MAX_FILE_BYTES + 300_000)  # sparse: its size, not its bytes
    with pytest.raises(InputError) as raised:
        load_phrasings(path, CATEGORIES, 4000)
    assert str(raised.value) == f"{path} is 50.3 MB; the most read is 50 MB"


def test_a_line_too_long_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    limit = messages.max_line_bytes(10)
    path = tmp_path / "long.tsv"
    path.write_bytes(b"x" * (10 * limit) + b"\tperformance\nthe dashboard is slow\tperformance\nhi\tbilling\n")
    reads: list[int] = []
    original = messages._lines

    class Counted:
        def __init__(self, handle):
            self.handle = handle

        def readline(self, size):
            chunk = self.handle.readline(size)
            reads.append(len(chunk))
            return chunk

    monkeypatch.setattr(messages, "_lines", lambda path, handle, limit: original(path, Counted(handle), limit))
    with pytest.raises(InputError) as raised:
        load_phrasings(path, CATEGORIES, 10)
    error = str(raised.value)
    assert f"long.tsv:1: the line is longer than {limit:,} bytes; the chat accepts 10 characters" in error
    assert "long.tsv:3: unknown label 'billing'" in error  # the lines after it are still checked
    assert max(reads) <= limit + 1  # never more than a line's worth at a time


def test_a_text_of_wide_characters_up_to_the_limit_is_read(tmp_path):
    path = tmp_path / "wide.tsv"
    path.write_text("\U0001F600" * 4000 + "\tperformance\n", encoding="utf-8")  # 4 bytes a character
    (found,) = load_phrasings(path, CATEGORIES, 4000)
    assert len(found.text) == 4000


def test_a_file_that_grows_past_the_cap_while_read_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(messages, "MAX_FILE_BYTES", 100)
    lines = messages._lines(tmp_path / "g.tsv", io.BytesIO(b"a\tperformance\n" * 20), 50)
    with pytest.raises(InputError, match="grew past"):
        list(lines)


def test_a_header_picks_the_text_and_label_columns_of_a_wider_file(tmp_path):
    path = tmp_path / "hard.tsv"
    path.write_text("# comment\ntext\tkind\tlabel\nmy money back\tplain\trefund_request\n", encoding="utf-8")
    (found,) = load_phrasings(path, CATEGORIES, 4000)
    assert (found.text, found.label, found.line) == ("my money back", "refund_request", 3)
    assert matches("refund_request", "refund_request", CATEGORIES) and not matches("policy", "dashboard_slow",
                                                                                     CATEGORIES)
    assert matches("performance", "dashboard_slow", CATEGORIES)


def test_every_fault_an_engineer_may_fix_by_hand_has_an_action():
    for spec in SCENARIOS.values():
        if spec.fault:
            assert manual_fix(spec.fault.partition("@")[0])
