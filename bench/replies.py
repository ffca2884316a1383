"""How well replies to the assistant's questions are read, on replies written by people who never saw the
reader's vocabulary: `ReplyReader.read` with the question each situation asks and the playbook index as judge,
exactly as the dialogue reads them.

usage: .venv/bin/python bench/replies.py [SET.tsv ...] [--errors] [--out FILE]
Default sets: ../shared/datasets/jtp-replies/replies.tsv (`situation<TAB>reply<TAB>label`) and
data/eval/independent/replies_dev.tsv (`situation<TAB>reply<TAB>label<TAB>asked<TAB>option`). Situations:
A "is it working now?", B "is that right?", C "(1) or (2)?", D "rate me 1 to 5", E "does that answer it?".
Per situation: accuracy (the reading is the label; for choices and ratings of sets that give the option, the
right one), the share left open (read as answering nothing), and false "fixed" (a reply after a fix read as
fixed though its label is not yes). Writes bench/results/replies.json and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from core.settings import Settings  # noqa: E402
from engine.chat.lexicon import load_lexicon  # noqa: E402
from engine.chat.topics import index_judge  # noqa: E402
from engine.chat.understanding import Option, Question, Reading, ReplyIntent, ReplyReader  # noqa: E402
from engine.wiring import load_pack, open_index  # noqa: E402
from knowledge.base import KnowledgeBase  # noqa: E402

DEFAULT_SETS = (ROOT.parent / "shared" / "datasets" / "jtp-replies" / "replies.tsv",
                ROOT / "data" / "eval" / "independent" / "replies_dev.tsv")
QUESTIONS = {"A": Question.VERIFY, "B": Question.CONFIRM, "C": Question.CHOOSE, "D": Question.RATE,
             "E": Question.SETTLED}
# What the dataset's README says each situation asked, where a row does not say.
FIXED = ("yes", "yes_and_new")
ASKED = {"B": "my calendar isn't syncing with Google", "C": "the dashboard being slow | search being slow"}


def label_of(reading: Reading, situation: str) -> str:
    """The dataset's label for a reading."""
    intent = reading.intent
    if intent is None:
        return "unclear"
    if situation == "A" and intent is ReplyIntent.YES and reading.also:
        return "yes_and_new"
    if situation == "B" and intent is ReplyIntent.NEW_PROBLEM:
        return "correction"
    if situation == "A" and intent is ReplyIntent.CORRECTION:
        return "new_problem"  # "no, it's the calendar sync": the fix was for another problem, taken up as new
    if situation == "D" and intent in (ReplyIntent.NO, ReplyIntent.NEW_PROBLEM):
        return "unclear"  # "no, still broken", a new problem: no rating and no refusal; the sets have no label for it
    if situation == "C" and intent is ReplyIntent.NO:
        return "unclear"  # "neither": the sets have no label for none of them; nothing is picked either way
    return intent.value


@dataclass
class Score:
    """One situation's figures on one set."""

    rows: int = 0
    right: int = 0
    left_open: int = 0
    false_fixed: int = 0
    errors: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # reply, label, option, read, cue

    @property
    def accuracy(self) -> float:
        return self.right / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"rows": self.rows, "accuracy": round(self.accuracy, 4),
                "left_open": round(self.left_open / self.rows, 4) if self.rows else 0.0,
                "false_fixed": self.false_fixed}


def score_set(path: Path, reader: ReplyReader, knowledge: KnowledgeBase) -> dict[str, Score]:
    """Read every reply of a set as the dialogue would and score it per situation."""
    playbooks = knowledge.playbooks

    def playbook_of(text: str) -> str:
        return knowledge.match(text).best.playbook

    scores: dict[str, Score] = defaultdict(Score)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        situation = row["situation"]
        asked = row.get("asked") or ASKED.get(situation, "")
        options: tuple[Option, ...] = ()
        in_hand: set[str] = set()
        if situation == "C":
            labels = [a.strip() for a in asked.split("|")]
            ids = [playbook_of(label) for label in labels]
            options = tuple(Option(label, playbooks[i].examples[:12]) for label, i in zip(labels, ids, strict=True))
            in_hand = set(ids)
        elif situation == "B":
            in_hand = {playbook_of(asked)}
        reading = reader.read(row["reply"], QUESTIONS[situation], options=options,
                              judge=index_judge(knowledge, in_hand))
        got, want = label_of(reading, situation), row["label"]
        expected = (row.get("option") or "").strip()
        right = got == want
        if right and expected and want == "choice":
            picked = ",".join(str(c + 1) for c in reading.choices)
            right = picked == expected or (expected == "both" and len(reading.choices) == len(options))
        if right and expected and want == "rating":
            right = str(reading.rating) == expected
        score = scores[situation]
        score.rows += 1
        score.right += right
        score.left_open += got == "unclear"
        score.false_fixed += situation == "A" and got in FIXED and want not in FIXED
        if not right:
            score.errors.append((row["reply"], want, expected, str(reading.understood), reading.cue))
    return dict(sorted(scores.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", type=Path, default=list(DEFAULT_SETS))
    parser.add_argument("--errors", action="store_true", help="print every misread reply")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replies.json")
    args = parser.parse_args()
    settings = Settings()
    _, playbooks = load_pack(settings)
    knowledge, _ = open_index(settings, playbooks)
    reader = ReplyReader(load_lexicon(settings.reply_words_file), knowledge.embedder)
    results: dict[str, dict] = {}
    for path in args.sets:
        scores = score_set(path, reader, knowledge)
        results[path.name] = {s: score.as_dict() for s, score in scores.items()}
        print(f"\n{path}")
        print(f"{'situation':<10}{'rows':>6}{'right':>8}{'open':>8}{'false fixed':>13}")
        for situation, score in scores.items():
            print(f"{situation:<10}{score.rows:>6}{score.accuracy:>8.1%}{score.left_open / score.rows:>8.1%}"
                  f"{score.false_fixed:>13}")
            if args.errors:
                for error in score.errors:
                    print("   ", situation, error)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
