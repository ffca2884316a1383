"""Every error Firstline raises on purpose, in one tree.

    FirstlineError                 base: a message a person can act on
    ├── ConfigurationError         a setting is unknown, of the wrong type, or points nowhere
    ├── InputError                 a message or request that cannot be answered as given
    │   ├── RateLimitError         ... because the user sent too many messages too quickly
    │   ├── UnauthorizedError      ... because it carries no credentials, or credentials nobody issued
    │   ├── NotFoundError          ... because what it names does not exist (or is not the asker's to see)
    │   ├── ForbiddenError         ... because the asker's role may not do it
    │   └── ConflictError          ... because something else changed the same thing at the same moment
    ├── DataFileError              a YAML data file is malformed; carries every problem found
    │   ├── PlaybookError          ... a playbook file
    │   └── RuleError              ... a rule file
    ├── KnowledgeError             the model or the vector index cannot be used
    ├── RemediationError           an action could not be run on its target
    ├── StoreError                 the event store cannot be opened or written
    ├── TelemetryError             a telemetry source could not be read or parsed
    └── DeliveryError              an e-mail to a user could not be handed to the mail server

Only the outer layers (CLI, web) turn these into output; nothing below them prints. Only `web/errors.py` knows
HTTP: it maps each kind's `code` to a status.
"""

from __future__ import annotations

from dataclasses import dataclass


class FirstlineError(Exception):
    """A failure with a message meant for the person running Firstline."""


class ConfigurationError(FirstlineError):
    """A setting is unknown, has the wrong type, or points at something missing."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class InputError(FirstlineError):
    """A user's input cannot be answered as given (empty, too long, not text)."""

    def __init__(self, message: str, *, code: str = "invalid_input") -> None:
        super().__init__(message)
        self.code = code


class ConflictError(InputError):
    """The request collides with the current state: two requests changed the same thing at once and this one
    lost (nothing of it was stored beyond what the caller was told was kept), or the thing is already in the
    state asked for (an escalation already decided, a name already taken)."""

    def __init__(self, message: str, *, code: str = "conflict") -> None:
        super().__init__(message, code=code)


class UnauthorizedError(InputError):
    """The request needs credentials and carries none, or ones that are malformed, unknown or revoked."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unauthorized")


class NotFoundError(InputError):
    """What the request names does not exist, or is not the asker's: the two look the same from outside, so
    nobody learns which ids exist."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="not_found")


class ForbiddenError(InputError):
    """The asker is known but their role may not do this; the message says which role may."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="forbidden")


class RateLimitError(InputError):
    """Too many messages from one user in the window; `retry_after_s` says when the next is accepted."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Problem:
    """One problem in a data file, located as precisely as the file allows."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DataFileError(FirstlineError):
    """One or more data files are invalid; every problem is reported, not just the first."""

    kind = "data file"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {self.kind} {noun}:\n{lines}")


class PlaybookError(DataFileError):
    """A playbook file is invalid."""

    kind = "playbook"


class RuleError(DataFileError):
    """A rule file is invalid."""

    kind = "rule"


class KnowledgeError(FirstlineError):
    """The embedding model or the vector index cannot be used."""


class RemediationError(FirstlineError):
    """An action could not be run on its target."""

    def __init__(self, message: str, *, action: str, target: str) -> None:
        super().__init__(message)
        self.action = action
        self.target = target


class StoreError(FirstlineError):
    """The event store cannot be opened or written."""


class TelemetryError(FirstlineError):
    """A telemetry source could not be read, or what it sent is not what it should be."""

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


class DeliveryError(FirstlineError):
    """An e-mail could not be handed to the mail server (engine/notify/smtp.py). `permanent`: the server refused
    it for good (the address was rejected), so trying again would not help; otherwise it is tried again later."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
