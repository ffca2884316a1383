"""The labelled phrasings simulated users open conversations with: a `text<TAB>label` file, each label a category
of the taxonomy or a playbook id, checked line by line before anything slow is loaded."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from core.errors import InputError
from core.taxonomy import CATEGORIES

MAX_PROBLEMS = 5  # problems named in the one-line error; the count says how many more there were
MB = 1_000_000
MAX_FILE_BYTES = 50 * MB  # the largest messages file read (the shipped one is a few kB)
LINE_ROOM = 4_096  # bytes a line may have besides its text: the label and any other columns


def max_line_bytes(max_chars: int) -> int:
    """The longest line read, in bytes: a text of `max_chars` characters at up to 4 UTF-8 bytes each, plus room
    for the label and other columns. A longer line is refused without being read whole."""
    return 4 * max_chars + LINE_ROOM


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
    Only a regular file of at most MAX_FILE_BYTES is read (a device, a FIFO or a folder is refused before it is
    opened), a line at most `max_line_bytes(max_chars)` bytes at a time: a longer line is refused unread.
    """
    labels = frozenset(CATEGORIES) | frozenset(playbooks)
    phrasings: list[Phrasing] = []
    problems = _Problems()
    columns: tuple[int, int] | None = None  # (text, label) column indexes, once the header (or first row) is read
    limit = max_line_bytes(max_chars)
    with _open(path) as handle:
        for number, line in _lines(path, handle, limit):
            if line is None:
                problems.add(f"{path}:{number}: the line is longer than {limit:,} bytes; the chat accepts "
                             f"{max_chars:,} characters")
                continue
            try:
                text = line.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError as error:
                problems.add(f"{path}:{number}: not UTF-8 text (byte {error.start}); save the file as UTF-8")
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
                    problems.add(f"{path}:{number}: {len(cells)} columns; expected text<TAB>label (or a header row "
                                 "naming the text and label columns)")
                    continue
            found = _phrasing(cells, columns, number, labels, max_chars)
            if isinstance(found, str):
                problems.add(f"{path}:{number}: {found}")
            else:
                phrasings.append(found)
    if not problems.count and not phrasings:
        problems.add(f"{path}: no messages in it (one text<TAB>label per line)")
    if problems.count:
        more = f" (and {problems.count - MAX_PROBLEMS} more)" if problems.count > MAX_PROBLEMS else ""
        raise InputError("; ".join(problems.first) + more)
    return tuple(phrasings)


class _Problems:
    """The first MAX_PROBLEMS problems found, and how many there were (a large file may have a great many)."""

    def __init__(self) -> None:
        self.first: list[str] = []
        self.count = 0

    def add(self, problem: str) -> None:
        self.count += 1
        if len(self.first) < MAX_PROBLEMS:
            self.first.append(problem)


def _open(path: Path) -> BinaryIO:
    """`path` open for reading, once it is known to be a regular file of at most MAX_FILE_BYTES: a device, a FIFO
    or a folder is refused from its status alone, before it is opened (reading /dev/zero never ends, opening a
    FIFO waits for a writer). Non-blocking, and checked again once open, in case the path changed in between."""
    try:
        _check(path, path.stat())
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        _check(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _check(path: Path, status: os.stat_result) -> None:
    """InputError unless `status` is a regular file's of at most MAX_FILE_BYTES."""
    if not stat.S_ISREG(status.st_mode):
        raise InputError(f"{path} is not a regular file ({_kind(status.st_mode)}); expected a text<TAB>label file")
    if status.st_size > MAX_FILE_BYTES:
        raise InputError(f"{path} is {status.st_size / MB:,.1f} MB; the most read is {MAX_FILE_BYTES // MB} MB")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a file"


def _lines(path: Path, handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(number, bytes without the newline) per line of `handle`, or (number, None) for a line longer than `limit`
    bytes, whose rest is skipped `limit` bytes at a time, never held whole. InputError if the file grows past
    MAX_FILE_BYTES while being read."""
    total = 0
    number = 0
    while chunk := handle.readline(limit + 1):
        number += 1
        total += len(chunk)
        ended = chunk.endswith(b"\n")
        line = chunk[:-1] if ended else chunk
        if len(line) <= limit:
            yield number, line
        else:
            while not ended and (more := handle.readline(limit)):
                total += len(more)
                ended = more.endswith(b"\n")
                if total > MAX_FILE_BYTES:
                    break
            yield number, None
        if total > MAX_FILE_BYTES:
            raise InputError(f"{path} grew past {MAX_FILE_BYTES // MB} MB while being read; the most read is "
                             f"{MAX_FILE_BYTES // MB} MB")


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
