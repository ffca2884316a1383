"""Text from outside (alert labels, exporter lines, request fields) made safe to show: on a terminal, in a log line,
in a listing. A control character is written as its escape (`\\x1b`, `\\n`), so a value can neither forge a log
line nor move a terminal's cursor, retitle its window or clear its screen; and a value is cut to a length a
person can read. The escapes are Python's (`repr` without the quotes)."""

from __future__ import annotations

import re

# C0 controls (newline and carriage return included, tab kept), DEL and C1 controls (0x9b is a terminal's CSI),
# and the Unicode line and paragraph separators some terminals and log viewers break lines on.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # the same but line feed


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
