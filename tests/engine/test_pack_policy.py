"""On held-out phrasings of the default pack: business requests are never handled as technical problems, and
technical problems are never escalated to a person."""

import csv

from core.settings import PROJECT_ROOT
from core.taxonomy import BUSINESS, TECHNICAL

HOLDOUT = PROJECT_ROOT / "data" / "eval" / "pack_holdout.csv"


def test_business_is_never_resolved_as_technical_and_technical_never_escalated(assistant):
    with HOLDOUT.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 100
    wrong = []
    for row in rows:
        answer = assistant.answer(row["text"], "policy-check", dry_run=True)
        if row["category"] in BUSINESS and answer.decision == "resolve":
            wrong.append(f"business handled as {answer.category}: {row['text']}")
        if row["category"] in TECHNICAL and answer.decision == "escalate":
            wrong.append(f"technical escalated as {answer.category}: {row['text']}")
        if answer.decision == "escalate":
            assert answer.category in BUSINESS
        if answer.decision == "resolve":
            assert answer.category in TECHNICAL
    assert not wrong, "\n".join(wrong)
