"""The command line's administration: through the running server when there is one (its socket in the data
folder, web/admin.py), else straight on the database. Either way the same `Administration` does the work (and
for `firstline sql` the same `AnalystQueries`), so both print the same thing."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import click

from core.errors import FirstlineError, InputError, NotFoundError, StoreError
from core.settings import Settings
from engine.access.administration import Administration
from engine.access.tokens import TokenBook
from engine.access.users import UserBook
from engine.store import Decisions, DuckDBStore, StaffUsers, Tokens
from engine.store.analyst import AnalystQueries
from web.admin import admin_socket_path

T = TypeVar("T")

TIMEOUT_S = 30.0
# The server stops an analyst's query at its time limit (at most 600 s, core/settings.py): the client waits that
# long and a margin for the answer rather than giving up first.
SQL_TIMEOUT_S = 600.0 + TIMEOUT_S


class NoDatabase(InputError, click.ClickException):
    """No database where the settings point (a mistyped FIRSTLINE_DATA_DIR, a first run): an InputError, and for
    the command line a mistake in what it was given, exit status 2, whichever command (`sql`, `metrics`) asked."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message, code="no_database")  # InputError's, then click's: both keep the message


class Admin(Protocol):
    def create_token(self, user: str, role: str) -> dict[str, Any]: ...

    def revoke_token(self, token_id: str) -> dict[str, Any]: ...

    def list_tokens(self) -> list[dict[str, Any]]: ...

    def set_account(self, user: str, plan: str, seats: object, role: str, organisation: object = "",
                    since: object = None, monthly_price: object = None) -> dict[str, Any]: ...

    def account(self, user: str) -> dict[str, Any]: ...

    def create_user(self, name: str, role: str, password: object, categories: object = ()) -> dict[str, Any]: ...

    def list_users(self) -> list[dict[str, Any]]: ...

    def disable_user(self, name: str) -> dict[str, Any]: ...

    def set_user_categories(self, name: str, categories: object) -> dict[str, Any]: ...

    def set_user_password(self, name: str, password: object) -> dict[str, Any]: ...


class Analyst(Protocol):
    def sql(self, sql: str, params: Mapping[str, object]) -> dict[str, Any]: ...


class LocalAnalyst:
    """An analyst's queries straight on the database file, for when no server runs."""

    def __init__(self, queries: AnalystQueries) -> None:
        self.queries = queries

    def sql(self, sql: str, params: Mapping[str, object]) -> dict[str, Any]:
        return self.queries.run(sql, params).to_json()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self.path = path
        self.timeout_s = timeout_s

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout_s)
        self.sock.connect(str(self.path))


class ServerAdmin:
    """Administration asked of the running server over its Unix socket."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None,
              timeout_s: float = TIMEOUT_S) -> Any:
        connection = _UnixConnection(self.path, timeout_s)
        try:
            connection.request(method, url, json.dumps(body) if body is not None else None,
                               {"Content-Type": "application/json"})
            response = connection.getresponse()
            found = json.loads(response.read() or b"null")
        except (OSError, ValueError) as error:
            raise FirstlineError(f"the running server did not answer on {self.path}: {error}") from None
        finally:
            connection.close()
        if response.status >= 400:
            shape = found.get("error", {}) if isinstance(found, dict) else {}
            message = shape.get("message", "refused")
            if response.status == 404:
                raise NotFoundError(message)
            raise InputError(message, code=str(shape.get("code") or "invalid_input"))  # e.g. query_timeout
        return found

    def create_token(self, user: str, role: str) -> dict[str, Any]:
        return self._call("POST", "/tokens", {"user": user, "role": role})

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return self._call("POST", f"/tokens/{_segment(token_id)}/revoke")

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tokens")

    def set_account(self, user: str, plan: str, seats: object, role: str, organisation: object = "",
                    since: object = None, monthly_price: object = None) -> dict[str, Any]:
        return self._call("PUT", f"/accounts/{_segment(user)}",
                          {"plan": plan, "seats": seats, "role": role, "organisation": organisation,
                           "since": since, "monthly_price": monthly_price})

    def account(self, user: str) -> dict[str, Any]:
        return self._call("GET", f"/accounts/{_segment(user)}")

    def create_user(self, name: str, role: str, password: object, categories: object = ()) -> dict[str, Any]:
        return self._call("POST", "/users", {"name": name, "role": role, "password": password,
                                             "categories": categories})

    def list_users(self) -> list[dict[str, Any]]:
        return self._call("GET", "/users")

    def disable_user(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/users/{_segment(name)}/disable")

    def set_user_categories(self, name: str, categories: object) -> dict[str, Any]:
        return self._call("PUT", f"/users/{_segment(name)}/categories", {"categories": categories})

    def set_user_password(self, name: str, password: object) -> dict[str, Any]:
        return self._call("PUT", f"/users/{_segment(name)}/password", {"password": password})

    def sql(self, sql: str, params: Mapping[str, object]) -> dict[str, Any]:
        """An analyst's query on the server's own database: `QueryResult.to_json()`."""
        return self._call("POST", "/sql", {"sql": sql, "params": dict(params)}, timeout_s=SQL_TIMEOUT_S)


def _segment(value: str) -> str:
    return quote(value, safe="")


def server_listening(path: Path) -> bool:
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:  # a socket left by a server that was killed: nobody answers
        return False
    finally:
        probe.close()


@contextlib.contextmanager
def administration(settings: Settings) -> Iterator[Admin]:
    """The running server's administration when it listens, else one on the database file (closed after)."""
    path = admin_socket_path(settings)
    if server_listening(path):
        yield ServerAdmin(path)
        return
    try:
        store = DuckDBStore(settings.database_path)
    except StoreError as error:
        raise StoreError(f"{error} No running server answered on {path} either.") from None
    try:
        yield Administration(TokenBook(Tokens(store)), Decisions(store), UserBook(StaffUsers(store)))
    finally:
        store.close()


def require_database(settings: Settings) -> None:
    """NoDatabase when the data folder holds no database: a mistyped folder is never created, nor an empty file."""
    if not settings.database_path.is_file():
        raise NoDatabase(f"no database at {settings.database_path}: check FIRSTLINE_DATA_DIR (or --config), or start "
                         "Firstline once (make run / firstline serve) to create it")


@contextlib.contextmanager
def outreach_access(settings: Settings, remote: Callable[[ServerAdmin], T], local: Callable[[Any, Any], T]
                    ) -> Iterator[T]:
    """`remote(admin)` when the server listens, else `local(outreach, store)` on the data folder (closed after);
    shared by `firstline handoffs` and `firstline notify`."""
    path = admin_socket_path(settings)
    if server_listening(path):
        yield remote(ServerAdmin(path))
        return
    require_database(settings)
    from engine.wiring import open_outreach  # the data folder's parts, only when no server answers
    outreach, store = open_outreach(settings)
    try:
        yield local(outreach, store)
    finally:
        store.close()


@contextlib.contextmanager
def analyst(settings: Settings) -> Iterator[Analyst]:
    """The running server's SQL console when it listens (its own connection, while it writes), else one on the
    database file (closed after). Either way the same checks and limits (`engine.store.analyst`). InputError
    when neither is there: a mistyped data folder is never created, nor an empty database in it."""
    path = admin_socket_path(settings)
    if server_listening(path):
        yield ServerAdmin(path)
        return
    require_database(settings)
    try:
        store = DuckDBStore(settings.database_path)
    except StoreError as error:
        raise StoreError(f"{error} No running server answered on {path} either.") from None
    try:
        yield LocalAnalyst(AnalystQueries(store, time.time, settings.analyst_time_limit_s, settings.analyst_row_cap,
                                          settings.analyst_max_result_mb, settings.analyst_concurrency))
    finally:
        store.close()
