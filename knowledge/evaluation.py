"""Scoring matching on a labelled set: a throwaway base from `train`, bands calibrated on `val` (or by
leave-one-out without one), measured on `test`.

Accepted formats: CSV or TSV with a header naming `text` and `label` (or `category`); CLINC150's JSON
(`data_full.json`: splits `train`/`val`/`test` plus `oos_*`); the NLU-Evaluation-Corpora JSON of Braun et
al. 2017 (`sentences` with `text`, `intent`, `training`; intent `None` means out of scope).
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InputError
from core.taxonomy import CATEGORIES, OUT_OF_SCOPE, Kind, kind_of
from knowledge.background import Background
from knowledge.base import Band, KnowledgeBase, Match, Scoring
from knowledge.calibration import DEFAULT_ACT_PRECISION
from knowledge.embedder import Embedder
from knowledge.finetune import Recipe, tuned_model
from knowledge.playbooks import Playbook

FORMATS = (
    "CSV (.csv) or TSV (.tsv) with a header naming `text` (or `sentence`) and `label` (or `category`)",
    "CLINC150 JSON (keys train, val, test, oos_train, oos_val, oos_test)",
    "NLU-Evaluation-Corpora JSON (Braun et al. 2017: `sentences` with text, intent, training)",
)
SPLITS = ("train", "val", "test")
IN_SCOPE_CATEGORY = "feature_malfunction"  # any technical category: labels of a data set are not playbooks
LATENCY_SAMPLE = 200


@dataclass(frozen=True)
class Labelled:
    """Texts with their labels; the out-of-scope label has been normalised to the caller's."""

    source: str
    texts: tuple[str, ...]
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)


def load_labelled(path: Path, split: str, oos_label: str) -> Labelled | None:
    """One split of a labelled file; None when the file has no such split (a flat CSV has only one)."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return _delimited(path, "\t" if suffix == ".tsv" else ",")
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(f"{path}: not valid JSON ({error})") from None
        if isinstance(data, dict) and {"train", "test"} <= data.keys():
            return _clinc(path, data, split, oos_label)
        if isinstance(data, dict) and isinstance(data.get("sentences"), list):
            return _braun(path, data, split, oos_label)
    raise InputError(f"{path}: unknown format; accepted: " + "; ".join(FORMATS))


def _delimited(path: Path, delimiter: str) -> Labelled:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            fields = {name.strip().lower(): name for name in reader.fieldnames or []}
            label_field = fields.get("label") or fields.get("category")
            text_field = fields.get("text") or fields.get("sentence")  # HINT3 names it `sentence`
            if text_field is None or label_field is None:
                raise InputError(f"{path}:1: the header must name `text` (or `sentence`) and `label` (or "
                                 f"`category`); found: {', '.join(reader.fieldnames or []) or 'nothing'}")
            texts, labels = [], []
            for row in reader:
                text, label = (row.get(text_field) or "").strip(), (row.get(label_field) or "").strip()
                if not text or not label:
                    raise InputError(f"{path}:{reader.line_num}: a row needs both a text and a label")
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise InputError(f"{path}: malformed {'TSV' if delimiter == chr(9) else 'CSV'}: {error}") from None
    if not texts:
        raise InputError(f"{path}: no rows")
    return Labelled(str(path), tuple(texts), tuple(labels))


def _clinc(path: Path, data: dict[str, Any], split: str, oos_label: str) -> Labelled | None:
    items = list(data.get(split) or []) + list(data.get(f"oos_{split}") or [])
    if not items:
        return None
    try:
        texts = tuple(str(text) for text, _ in items)
        labels = tuple(oos_label if intent == "oos" else str(intent) for _, intent in items)
    except (TypeError, ValueError):
        raise InputError(f"{path}: CLINC150 items must be [text, intent] pairs") from None
    return Labelled(f"{path}#{split}", texts, labels)


def _braun(path: Path, data: dict[str, Any], split: str, oos_label: str) -> Labelled | None:
    if split == "val":
        return None  # the corpora have a train/test flag only
    wanted = split == "train"
    rows = [s for s in data["sentences"] if bool(s.get("training")) == wanted]
    texts = tuple(str(s["text"]) for s in rows)
    labels = tuple(oos_label if s.get("intent") in (None, "None") else str(s["intent"]) for s in rows)
    return Labelled(f"{path}#{split}", texts, labels)


@dataclass
class EvalResult:
    """Every figure `firstline eval` reports."""

    train: str
    val: str | None
    test: str
    classes: int
    train_examples: int
    test_queries: int
    oos_label: str
    calibrated_on: str
    calibration: dict[str, Any]
    accuracy: float
    macro_f1: float
    in_scope_accuracy: float
    oos_recall: float | None
    oos_precision: float | None
    bands: dict[str, dict[str, float]]
    encode_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float
    index_kind: str
    build_s: float
    scoring: str = Scoring.SIMILARITY.value
    model: str = ""
    fine_tune_s: float | None = None
    notes: list[str] = field(default_factory=list)
    mcc: float = 0.0  # multi-class Matthews correlation, out of scope as a class (HINT3's measure)
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # true group -> decided group -> queries
    decisions: dict[str, dict[str, float]] = field(default_factory=dict)  # true group -> first-turn decision -> share
    background_lines: int = 0  # background lines kept beside this training set

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def evaluate(
    train: Labelled,
    test: Labelled,
    embedder: Embedder,
    val: Labelled | None = None,
    oos_label: str = "oos",
    target_precision: float = 0.95,
    progress: bool = False,
    scoring: Scoring = Scoring.SIMILARITY,
    refusal_recall: float | None = None,
    fine_tune: Recipe | None = None,
    background: Background | None = None,
    act_precision: float = DEFAULT_ACT_PRECISION,
) -> EvalResult:
    """Build a base from `train` (fine-tuning the model on it first if asked), calibrate on `val` (or on
    held-out train examples), and score `test`."""
    notes: list[str] = []
    playbooks = _playbooks(train, oos_label)
    fine_tune_s = None
    if fine_tune is not None:
        if embedder.cache_dir is None:
            raise InputError("fine-tuning needs a cache folder to keep the trained model in")
        model_path, report = tuned_model(playbooks, embedder.model_path, embedder.cache_dir / "models", fine_tune,
                                         purpose="eval", progress=progress)
        embedder = embedder.with_model(model_path)
        fine_tune_s = report.seconds if report else None
        notes.append(f"model fine-tuned for {fine_tune.epochs} epochs " +
                     (f"in {report.seconds:.0f} s" if report else "earlier (reused from the cache)"))
    started = time.perf_counter()
    validation = None
    calibrated_on = "held-out train examples" + (" (3 folds)" if scoring == Scoring.HEAD else " (leave-one-out)")
    if val is not None:
        known = [i for i, label in enumerate(val.labels) if label in playbooks]
        if len(known) < len(val):
            notes.append(f"{len(val) - len(known)} validation rows have labels absent from train; ignored")
        validation = (embedder.encode([val.texts[i] for i in known], progress=progress),
                      [val.labels[i] for i in known])
        calibrated_on = f"validation split ({len(known)} queries)"
    base = KnowledgeBase.build(playbooks, embedder, target_precision, progress=progress, scoring=scoring,
                               refusal_recall=refusal_recall, validation=validation, background=background,
                               act_precision=act_precision)
    build_s = time.perf_counter() - started

    t0 = time.perf_counter()
    vectors = embedder.encode(list(test.texts), progress=progress)
    encode_per_s = len(test) / max(time.perf_counter() - t0, 1e-9)
    scores = base.scores(vectors)
    matches = [base.match_scores(row) for row in scores]
    latencies = _latencies(base, test.texts[:LATENCY_SAMPLE])
    def group_of(label: str) -> str:
        return Kind.OUT_OF_SCOPE.value if label == oos_label else Kind.TECHNICAL.value

    result = _measure(train.source, val.source if val else None, test, base, matches, lambda m: m.best.playbook,
                      oos_label, calibrated_on, encode_per_s, latencies, build_s, notes, group_of)
    result.fine_tune_s = fine_tune_s
    return result



def evaluate_base(base: KnowledgeBase, test: Labelled, oos_label: str = "oos") -> EvalResult:
    """Score an existing base (the live playbooks) on a labelled set whose labels are playbook ids or
    categories; out-of-scope playbooks and refusals both count as the out-of-scope label."""
    categories = {p.category for p in base.playbooks.values()}
    by_category = all(label in categories or label == oos_label for label in test.labels)

    def label_of(match: Match) -> str:
        if match.best.category == OUT_OF_SCOPE:
            return oos_label
        return match.best.category if by_category else match.best.playbook

    t0 = time.perf_counter()
    vectors = base.embedder.encode(list(test.texts))
    encode_per_s = len(test) / max(time.perf_counter() - t0, 1e-9)
    matches = [base.match_scores(row) for row in base.scores(vectors)]
    notes = ["labels compared with playbook categories" if by_category else "labels compared with playbook ids"]

    def group_of(label: str) -> str:
        if label == oos_label:
            return Kind.OUT_OF_SCOPE.value
        category = label if label in CATEGORIES else getattr(base.playbooks.get(label), "category", None)
        return kind_of(category).value if category else Kind.TECHNICAL.value

    return _measure("the playbook base", None, test, base, matches, label_of, oos_label,
                    "leave-one-out at build", encode_per_s, _latencies(base, test.texts[:LATENCY_SAMPLE]), 0.0, notes,
                    group_of)


def _playbooks(train: Labelled, oos_label: str) -> dict[str, Playbook]:
    grouped: dict[str, list[str]] = {}
    for text, label in zip(train.texts, train.labels, strict=True):
        grouped.setdefault(label, []).append(text)
    return {
        label: Playbook(label, label, OUT_OF_SCOPE if label == oos_label else IN_SCOPE_CATEGORY, label,
                        tuple(dict.fromkeys(texts)))
        for label, texts in grouped.items()
    }


def _latencies(base: KnowledgeBase, texts: Sequence[str]) -> list[float]:
    """Milliseconds per query, one at a time, as a user's message is handled: encode + search + band."""
    timings = []
    for text in texts:
        t0 = time.perf_counter()
        base.match(text)
        timings.append((time.perf_counter() - t0) * 1000)
    return timings


def first_decision(match: Match) -> str:
    """The decision the default policy takes on a match at the first turn: resolve, escalate, clarify, decline."""
    if match.band is Band.OUT_OF_SCOPE:
        return "decline"
    if match.band is Band.ANSWER:
        return "escalate" if kind_of(match.best.category) is Kind.BUSINESS else "resolve"
    return "clarify"


def decided_group(match: Match) -> str:
    """The group a match puts the message in: out of scope when refused (or nothing was asked)."""
    if match.band in (Band.OUT_OF_SCOPE, Band.NO_PROBLEM):
        return Kind.OUT_OF_SCOPE.value
    return kind_of(match.best.category).value


def _measure(train: str, val: str | None, test: Labelled, base: KnowledgeBase, matches: list[Match],
             label_of: Callable[[Match], str], oos_label: str, calibrated_on: str, encode_per_s: float,
             latencies: list[float], build_s: float, notes: list[str],
             group_of: Callable[[str], str]) -> EvalResult:
    from sklearn.metrics import matthews_corrcoef

    truth = list(test.labels)
    predicted = [oos_label if m.band in (Band.OUT_OF_SCOPE, Band.NO_PROBLEM) else label_of(m) for m in matches]
    groups: dict[str, Counter] = {}
    decisions: dict[str, Counter] = {}
    for label, match in zip(truth, matches, strict=True):
        groups.setdefault(group_of(label), Counter())[decided_group(match)] += 1
        decisions.setdefault(group_of(label), Counter())[first_decision(match)] += 1
    in_scope = [i for i, label in enumerate(truth) if label != oos_label]
    oos = [i for i, label in enumerate(truth) if label == oos_label]
    refused = [i for i, p in enumerate(predicted) if p == oos_label]
    bands: dict[str, dict[str, float]] = {}
    for band in Band:
        members = [i for i, m in enumerate(matches) if m.band is band]
        if band is Band.OUT_OF_SCOPE:
            right = sum(truth[i] == oos_label for i in members)
        else:
            right = sum(truth[i] == label_of(matches[i]) and truth[i] != oos_label for i in members)
        bands[band.value] = {"share": len(members) / len(truth), "precision": right / len(members) if members else 0.0}
    return EvalResult(
        train=train, val=val, test=test.source,
        classes=len(base.playbooks), train_examples=len(base.index), test_queries=len(truth), oos_label=oos_label,
        calibrated_on=calibrated_on, calibration=base.calibration.as_dict(),
        accuracy=_share(predicted[i] == truth[i] for i in range(len(truth))),
        macro_f1=macro_f1(truth, predicted),
        in_scope_accuracy=_share(predicted[i] == truth[i] for i in in_scope),
        oos_recall=_share(predicted[i] == oos_label for i in oos) if oos else None,
        oos_precision=_share(truth[i] == oos_label for i in refused) if refused else None,
        bands=bands,
        encode_per_s=encode_per_s,
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
        latency_p95_ms=float(np.percentile(latencies, 95)) if latencies else 0.0,
        index_kind=base.index.kind, build_s=build_s, scoring=base.scoring.value, model=base.embedder.model_id,
        notes=notes,
        mcc=float(matthews_corrcoef(truth, predicted)) if len(set(truth) | set(predicted)) > 1 else 0.0,
        groups={g: dict(sorted(c.items())) for g, c in sorted(groups.items())},
        decisions={g: {d: n / sum(c.values()) for d, n in sorted(c.items())} for g, c in sorted(decisions.items())},
        background_lines=sum(1 for e in base.examples.values() if e.playbook not in base.playbooks),
    )


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over every class that occurs in the truth or the predictions."""
    true_count, predicted_count = Counter(truth), Counter(predicted)
    hits = Counter(t for t, p in zip(truth, predicted, strict=True) if t == p)
    scores = []
    for label in set(true_count) | set(predicted_count):
        precision = hits[label] / predicted_count[label] if predicted_count[label] else 0.0
        recall = hits[label] / true_count[label] if true_count[label] else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def report_lines(result: EvalResult) -> list[str]:
    """The readable table."""
    r = result
    pct = lambda v: "n/a" if v is None else f"{v:.1%}"  # noqa: E731
    c = r.calibration
    lines = [
        f"train  {r.train}: {r.train_examples} examples, {r.classes} classes "
        f"({r.index_kind}, built in {r.build_s:.1f} s)",
        f"test   {r.test}: {r.test_queries} queries; bands calibrated on {r.calibrated_on}",
        f"bands  out of scope < {c['t_low']:.3f} <= clarify < {c['t_high']:.3f} <= answer ({c.get('rule')})",
        f"model  {r.model}, scoring {r.scoring}",
        "",
        f"{'measure':<28}{'value':>10}",
        f"{'accuracy':<28}{pct(r.accuracy):>10}",
        f"{'macro-F1':<28}{r.macro_f1:>10.3f}",
        f"{'in-scope accuracy':<28}{pct(r.in_scope_accuracy):>10}",
        f"{'out-of-scope recall':<28}{pct(r.oos_recall):>10}",
        f"{'out-of-scope precision':<28}{pct(r.oos_precision):>10}",
        f"{'MCC (out of scope a class)':<28}{r.mcc:>10.3f}",
    ]
    for band, figures in r.bands.items():
        lines.append(f"{band + ' band share':<28}{pct(figures['share']):>10}")
        lines.append(f"{band + ' band precision':<28}{pct(figures['precision']):>10}")
    lines += [
        f"{'encode throughput':<28}{r.encode_per_s:>8.0f}/s",
        f"{'latency p50 per query':<28}{r.latency_p50_ms:>8.1f}ms",
        f"{'latency p95 per query':<28}{r.latency_p95_ms:>8.1f}ms",
    ]
    lines += ["", "groups (rows: true group; columns: decided group)"]
    names = [k.value for k in Kind]
    lines.append(f"{'':<16}" + "".join(f"{n:>14}" for n in names))
    for truth, row in r.groups.items():
        lines.append(f"{truth:<16}" + "".join(f"{row.get(n, 0):>14}" for n in names))
    lines += ["", "first-turn decisions (share of each true group)"]
    verbs = ("resolve", "clarify", "escalate", "decline")
    lines.append(f"{'':<16}" + "".join(f"{v:>10}" for v in verbs))
    for truth, shares in r.decisions.items():
        lines.append(f"{truth:<16}" + "".join(f"{pct(shares.get(v, 0.0)):>10}" for v in verbs))
    lines.append(f"background lines kept: {r.background_lines}")
    lines += [f"note: {note}" for note in r.notes]
    return lines
