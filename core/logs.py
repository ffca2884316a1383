"""The log lines of the long-running commands (`firstline serve`, `firstline heal`): one per event on standard
error, with the time, the level and the logger, so an operator can tell when something happened and how much it
matters (without this, Python prints only warnings, as bare messages, and every remediation logged at INFO is lost).

Only Firstline's own loggers (`firstline.*`, and `web.*`, the Flask app's) follow `FIRSTLINE_LOG_LEVEL`; other
libraries stay at warnings, so the model's loading chatter does not fill the log. A process whose logging is
already set up (a test run, an embedding application) keeps its own handlers and levels.
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OWN_LOGGERS = ("firstline", "web")


def configure_logging(level: str) -> None:
    """Send log lines of `level` ("debug", "info", "warning" or "error") and above from Firstline's loggers, and
    warnings from the rest, to standard error in `LOG_FORMAT`."""
    if logging.getLogger().handlers:
        return  # set up already (pytest, an application embedding Firstline): its levels and handlers are kept
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level.upper())
