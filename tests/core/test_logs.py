"""The long-running commands' log lines: time, level, logger and message on standard error, Firstline's own
loggers at FIRSTLINE_LOG_LEVEL and other libraries at warnings; a process that set up its logging keeps it."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.logs import configure_logging

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) [\w.]+: .+$")
EMIT = """
import logging
from core.logs import configure_logging
configure_logging({level!r})
logging.getLogger("firstline.actuator").info("remediation: kill_slow_queries on database succeeded")
logging.getLogger("firstline.monitor").warning("telemetry problem from scrape: web latency_p95_ms")
logging.getLogger("web.app").warning("refused GET /metrics from 127.0.0.1: unauthorized")
logging.getLogger("firstline.monitor").debug("tick")
logging.getLogger("sentence_transformers.SentenceTransformer").info("Load pretrained SentenceTransformer")
logging.getLogger("firstline.monitor").error("alert %s", "Disk\\n2026-12-07 00:00:00,000 CRITICAL forged\\x1b[2J")
"""


def emitted(level: str) -> list[str]:
    """The standard error of a fresh interpreter that configured logging at `level` and logged a few lines."""
    done = subprocess.run([sys.executable, "-c", EMIT.format(level=level)], capture_output=True, text=True,
                          timeout=60, check=True, cwd=ROOT)
    return done.stderr.splitlines()


@pytest.mark.parametrize(("level", "shown"), [
    ("debug", ["INFO firstline.actuator", "WARNING firstline.monitor", "WARNING web.app", "DEBUG firstline.monitor",
               "ERROR firstline.monitor"]),
    ("info", ["INFO firstline.actuator", "WARNING firstline.monitor", "WARNING web.app", "ERROR firstline.monitor"]),
    ("warning", ["WARNING firstline.monitor", "WARNING web.app", "ERROR firstline.monitor"]),
    ("error", ["ERROR firstline.monitor"]),
])
def test_each_line_says_when_how_bad_and_where_and_only_ours_below_warnings(level, shown):
    lines = emitted(level)
    assert all(LINE.match(line) for line in lines), lines
    assert [" ".join(line.split(" ")[2:4]).rstrip(":") for line in lines] == shown  # the model's chatter: not shown


def test_logging_set_up_already_is_left_as_it_is():
    root, own = logging.getLogger(), logging.getLogger("firstline")
    handlers, level = list(root.handlers), own.level
    handler = logging.NullHandler()
    root.addHandler(handler)
    try:
        configure_logging("debug")
        assert root.handlers == [*handlers, handler] and own.level == level
    finally:
        root.removeHandler(handler)


def test_a_message_carrying_a_line_break_or_a_terminal_escape_stays_one_line():
    (line,) = [line for line in emitted("error")]
    assert line.endswith("alert Disk\\n2026-12-07 00:00:00,000 CRITICAL forged\\x1b[2J") and "\x1b" not in line
