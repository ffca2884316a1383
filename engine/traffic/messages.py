"""The labelled phrasings simulated users open conversations with: a `text<TAB>label` file, each label a category
of the taxonomy or a playbook id, checked line by line before anything slow is loaded."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError
from core.taxonomy import CATEGORIES

MAX_PROBLEMS = 5  # problems named in the one-line error; the count says how many more there were


@dataclass(frozen=True)
class Phrasing:
    """One labelled opening message: its words, its label (a category or a playbook id) and its line in the file."""

    text: str
    label: str
    line: int


def load_phrasings(path: Path, playbooks: Mapping[str, str], max_chars: int) -> tuple[Phrasing, ...]:
    """The phrasings of `path`, in file order. `playbooks` maps each playbook id to its category (labels may name
    either); `max_chars` is the longest message the chat accepts.

    Format: UTF-8, one `text<TAB>label` per line; blank lines and lines starting with `#` are skipped; a first row
    naming its columns (`text`, and `label` or `category`) picks those columns out of wider files. Raises
    InputError naming the file, the line and what is wrong, for every problem found (the first few in the message).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    labels = frozenset(CATEGORIES) | frozenset(playbooks)
    phrasings: list[Phrasing] = []
    problems: list[str] = []
    columns: tuple[int, int] | None = None  # (text, label) column indexes, once the header (or first row) is read
    for number, line in enumerate(raw.split(b"\n"), 1):
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            problems.append(f"{path}:{number}: not UTF-8 text (byte {error.start}); save the file as UTF-8")
            continue
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        cells = text.split("\t")
        if columns is None:
            columns = _header(cells)
            if columns is not None:
                continue
            columns = (0, 1)
            if len(cells) > 2:
                problems.append(f"{path}:{number}: {len(cells)} columns; expected text<TAB>label (or a header row "
                                "naming the text and label columns)")
                continue
        found = _phrasing(cells, columns, number, labels, max_chars)
        if isinstance(found, str):
            problems.append(f"{path}:{number}: {found}")
        else:
            phrasings.append(found)
    if not problems and not phrasings:
        problems.append(f"{path}: no messages in it (one text<TAB>label per line)")
    if problems:
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        raise InputError("; ".join(problems[:MAX_PROBLEMS]) + more)
    return tuple(phrasings)


def _header(cells: list[str]) -> tuple[int, int] | None:
    names = [c.strip().casefold() for c in cells]
    label = next((n for n in ("label", "category") if n in names), None)
    if "text" in names and label is not None:
        return names.index("text"), names.index(label)
    return None


def _phrasing(cells: list[str], columns: tuple[int, int], number: int, labels: Collection[str],
              max_chars: int) -> Phrasing | str:
    """The line's phrasing, or what is wrong with it."""
    text_at, label_at = columns
    if len(cells) < 2:
        return "no tab: expected text<TAB>label"
    if len(cells) <= max(text_at, label_at):
        return f"{len(cells)} columns; the header names column {max(text_at, label_at) + 1}"
    text, label = cells[text_at].strip(), cells[label_at].strip()
    if not text:
        return "the text is empty"
    if len(text) > max_chars:
        return f"the text is {len(text):,} characters long; the chat accepts {max_chars:,}"
    if label not in labels:
        return (f"unknown label {label!r}; a label is a category ({', '.join(CATEGORIES)}) or a playbook id "
                "(`firstline rules list` and data/playbooks/ show them)")
    return Phrasing(text, label, number)


def category_of(label: str, playbooks: Mapping[str, str]) -> str:
    """The category a label stands for: itself, or its playbook's."""
    return playbooks.get(label, label)


def matches(label: str, playbook: str | None, playbooks: Mapping[str, str]) -> bool:
    """Whether the assistant's `playbook` is what a message labelled `label` is about: the same playbook when the
    label names one, else a playbook of the label's category."""
    if playbook is None:
        return False
    if label in playbooks:
        return playbook == label
    return playbooks.get(playbook) == label
