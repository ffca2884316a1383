"""Text from outside shown safely: control characters escaped (no forged log line, no terminal escape), cut to
a length, and a listing's own line breaks kept."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.text import printable, terminal_safe


@pytest.mark.parametrize(("text", "shown"), [
    ("web", "web"),
    ("a\nb", "a\\nb"),
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    ("nul\x00byte", "nul\\x00byte"),
    ("csi\x9b2J", "csi\\x9b2J"),
    ("tab\tkept", "tab\tkept"),
    ("line\u2028sep", "line\\u2028sep"),
    ("ünïcode ✓", "ünïcode ✓"),
    ("admin\u202egpj.exe", "admin\\u202egpj.exe"),  # a right-to-left override
    ("we\u200bb", "we\\u200bb"),  # a zero-width space: "web" that is not web
])
def test_control_characters_are_escaped_and_the_rest_kept(text, shown):
    assert printable(text) == shown


def test_a_long_value_is_cut_before_escaping_and_says_so():
    assert printable("x" * 500, 10) == "x" * 9 + "…"
    assert printable("\n" * 500, 4).startswith("\\n\\n\\n…")


def test_a_listing_keeps_its_own_line_breaks_but_no_terminal_control():
    assert terminal_safe("id  web\n    \x1b[2Jcleared\r") == "id  web\n    \\x1b[2Jcleared\\r"


@given(st.text())
def test_nothing_printable_returns_breaks_a_line_or_drives_a_terminal(text):
    for shown in (printable(text), printable(text, 50)):
        assert not any((ord(c) < 0x20 and c != "\t") or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029" for c in shown)
    assert "\x1b" not in terminal_safe(text) and "\r" not in terminal_safe(text)


def test_a_cli_listing_prints_no_terminal_control_of_a_value_from_outside(capsys):
    from firstline.context import echo_json_or_lines

    echo_json_or_lines(False, {}, iter(["incident 1  \x1b]0;pwned\x07web\n    next line"]))
    assert capsys.readouterr().out == "incident 1  \\x1b]0;pwned\\x07web\n    next line\n"
