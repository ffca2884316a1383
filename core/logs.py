"""The log lines of the long-running commands (`firstline serve`, `firstline heal`): one per event on standard
error, with the time, the level and the logger, so an operator can tell when something happened and how much it
matters (without this, Python prints only warnings, as bare messages, and every remediation logged at INFO is lost).

Only Firstline's own loggers (`firstline.*`, and `web.*`, the Flask app's) follow `FIRSTLINE_LOG_LEVEL`; other
libraries stay at warnings, so the model's loading chatter does not fill the log. A process whose logging is
already set up (a test run, an embedding application) keeps its own handlers and levels.
"""

from __future__ import annotations

import logging

from core.text import printable

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("firstline", "web")


class OneLineFormatter(logging.Formatter):
    """`LOG_FORMAT`, with every control character of the message escaped (`core.text.printable`): a message that
    carries an alert's name or an exporter's line cannot forge a log line nor drive the terminal. A traceback
    (exc_info) still follows on lines of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def configure_logging(level: str) -> None:
    """Send log lines of `level` ("debug", "info", "warning" or "error") and above from Firstline's loggers, and
    warnings from the rest, to standard error in `LOG_FORMAT`, one line per message (`OneLineFormatter`)."""
    if logging.getLogger().handlers:
        return  # set up already (pytest, an application embedding Firstline): its levels and handlers are kept
    handler = logging.StreamHandler()  # standard error
    handler.setFormatter(OneLineFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level.upper())
