"""Text from outside (alert labels, exporter lines, request fields) made safe to show: on a terminal, in a log line,
in a listing. A control character is written as its escape (`\\x1b`, `\\n`), so a value can neither forge a log
line nor move a terminal's cursor, retitle its window or clear its screen; and a value is cut to a length a
person can read. The escapes are Python's (`repr` without the quotes)."""

from __future__ import annotations

import re

# C0 controls (newline and carriage return included, tab kept), DEL and C1 controls (0x9b is a terminal's CSI),
# and the Unicode line and paragraph separators some terminals and log viewers break lines on.
# Also the invisible and direction-changing format characters (zero-width spaces and joiners, bidi marks,
# embeddings, overrides and isolates), with which a value can look like another or reorder the text around it.
_FORMAT = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_CONTROL = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029{_FORMAT}]")
_TERMINAL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMAT}]")  # the same but line feed and line separators


def printable(text: object, limit: int | None = None) -> str:
    """`text` with every control character escaped and, with `limit`, cut to that many characters (ending "…")."""
    shown = str(text)
    if limit is not None and len(shown) > limit:
        shown = shown[:limit - 1] + "…"
    return _CONTROL.sub(_escape, shown)


def terminal_safe(text: str) -> str:
    """`text` for a terminal, its own line breaks kept (a listing's entry may span lines): every other control
    character escaped, so a value in it cannot drive the terminal (ESC sequences, BEL, carriage return)."""
    return _TERMINAL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]
