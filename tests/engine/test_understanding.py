"""Reading replies: measured on held-out replies that are not among the examples."""

import csv

import pytest

from core.errors import ConfigurationError
from engine.chat.understanding import ReplyIntent, ReplyReader, load_reply_examples
from tests.conftest import ROOT

HOLDOUT = ROOT / "data" / "eval" / "replies_holdout.csv"


@pytest.fixture(scope="module")
def reader(fresh_knowledge):
    return ReplyReader(load_reply_examples(ROOT / "data" / "reply_examples.yaml"), fresh_knowledge().embedder)


def test_held_out_replies_are_read_right(reader):
    with HOLDOUT.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    examples = {t.lower() for texts in load_reply_examples(ROOT / "data" / "reply_examples.yaml").values()
                for t in texts}
    assert not {r["text"].lower() for r in rows} & examples, "held-out replies must not be training examples"
    readings = [(reader.read(r["text"]), ReplyIntent(r["label"])) for r in rows]
    read = [(reading.intent, label) for reading, label in readings if reading.intent is not None]
    accuracy = sum(intent is label for intent, label in read) / len(read)
    coverage = len(read) / len(rows)
    # Measured: 34 replies, 97% read at all, 97% of those right (one "no" for a new problem); bars leave slack.
    assert accuracy >= 0.9, f"accuracy {accuracy:.0%} on {len(read)} read replies"
    assert coverage >= 0.8, f"only {coverage:.0%} of replies were read"


def test_the_margin_is_calibrated_to_the_target(reader):
    calibration = reader.calibration
    assert calibration.accuracy >= 0.9 and 0 < calibration.kept <= 1
    assert calibration.raw_accuracy <= calibration.accuracy


def test_readings_can_be_restricted_to_what_was_asked(reader):
    reading = reader.read("no, that's not it", allowed=(ReplyIntent.YES, ReplyIntent.NO))
    assert reading.intent is ReplyIntent.NO and reading.margin > 0.5


def test_unquoted_yes_and_no_keys_are_caught(tmp_path):
    path = tmp_path / "replies.yaml"
    path.write_text("yes: [a, b, c, d, e]\nno: [a, b, c, d, e]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown meaning"):
        load_reply_examples(path)
    path.write_text("".join(f'"{i.value}": [a, b]\n' for i in ReplyIntent), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="at least 5"):
        load_reply_examples(path)
