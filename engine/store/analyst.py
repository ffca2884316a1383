"""The analysts' SQL console: one read-only query at a time on the store's own DuckDB instance, while the server
writes to it.

DuckDB admits one writing process, and inside it one configuration per file (a read-only second connection
cannot sit beside the writer), so the sandbox is built from checks on the one instance rather than from a
connection of its own:

- the instance runs without file or network access, with its configuration locked (`database.py`), so COPY,
  ATTACH, INSTALL, `read_csv('/etc/passwd')` and SET fail there whatever gets through here;
- the text must be exactly one statement, a SELECT (or EXPLAIN of one), by DuckDB's own parser;
- every table and table function the statement names, in subqueries and CTEs too, is read from DuckDB's parse
  tree (`json_serialize_sql`): the tables holding credentials and any table function off a short list
  (`query()`, `read_csv()`, `glob()` ...) are refused;
- the system views and functions that show the server's files or settings (`pragma_database_list`,
  `duckdb_settings()`, `current_setting()` ...) are refused; the schema stays open (`information_schema`,
  `duckdb_tables()`, `duckdb_columns()`, `duckdb_views()`);
- it runs on a cursor of its own inside a READ ONLY transaction, so even a statement the checks missed cannot
  write; a `threading.Timer` interrupts it past the time limit; at most `row_cap` rows, and at most
  `max_result_mb` of them (each value measured as text), are fetched, in chunks (the result streams, so a huge
  result is never built);
- at most `concurrency` queries run at once (the console shares the chat's one database): one that cannot start
  within `queue_wait_s` is refused with a RateLimitError.

Named parameters are written `:name`, as in Datasette, and passed to DuckDB as `$name`. Every refusal and every
DuckDB error is an `InputError` whose message says what to change (a query too deeply nested to check, text that
is not UTF-8 and any unexpected failure of the checks too); a query stopped at the time limit has the code
`query_timeout`; a query refused because the console is busy is a `RateLimitError` (code `rate_limited`).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from core.errors import InputError, RateLimitError
from engine.store.database import DuckDBStore

# Tables whose rows are credentials (token hashes and salts, password hashes, session secrets' hashes): no query
# from the console may name them, even to count them.
CREDENTIAL_TABLES = frozenset({"api_tokens", "staff_users", "staff_sessions"})
# Users' e-mail addresses, as their host app vouched for them: no metric needs one, so no analyst reads them.
CONTACT_TABLES = frozenset({"user_contacts"})
# Table functions that only make rows from their arguments. Everything else (query(), query_table(),
# read_csv(), read_text(), read_parquet(), glob(), duckdb_secrets(), pragma_*() ...) reads something else, or runs
# other SQL, and is refused.
# The schema's own table functions (names, columns, view definitions: no paths, no settings) are open too.
TABLE_FUNCTIONS = ("range", "generate_series", "unnest", "json_each", "json_tree", "duckdb_tables", "duckdb_columns",
                   "duckdb_views")
# System views, tables and functions that show the server's file paths, settings, extensions or secrets: refused
# wherever they are named (as a table, a table function or a scalar function).
SYSTEM_NAMES = frozenset({"pragma_database_list", "duckdb_databases", "duckdb_settings", "pg_settings",
                          "duckdb_extensions", "duckdb_secrets", "duckdb_temporary_files", "which_secret",
                          "duckdb_logs", "duckdb_log_contexts", "duckdb_memory", "current_setting", "getenv"})
MAX_SQL_CHARS = 100_000
TIMEOUT_CODE = "query_timeout"
SIZE_CAP = "size"  # QueryResult.truncated_reason: the result passed max_result_mb
ROW_CAP = "row cap"  # ... it had more than row_cap rows
FETCH_ROWS = 500  # the most rows fetched at once
FETCH_BYTES = 1024 * 1024  # a chunk aims at about this much, so the size cap is never passed by much in memory
NESTED_TOO_DEEPLY = "the query is nested too deeply to check; simplify it"
NOT_UTF8 = "the query is not valid UTF-8 text"

log = logging.getLogger("firstline.analyst")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_EXPLAIN = re.compile(r"explain\s+(?:analy[sz]e\s+)?", re.IGNORECASE)
_FILE_LIKE = re.compile(r"[/\\:]|\.[A-Za-z0-9]{1,8}(?:\.gz|\.zst)?$")  # a path, a URL, or a name with an extension


@dataclass(frozen=True)
class QueryResult:
    """One query's answer: column names and DuckDB types, the rows (at most `row_cap`, and at most
    `max_result_mb` of them; `truncated` when there were more, `truncated_reason` saying which limit cut them:
    "row cap" or "size") and how long it took, in milliseconds."""

    sql: str
    columns: list[str]
    types: list[str]
    rows: list[tuple]
    truncated: bool
    row_cap: int
    elapsed_ms: float
    truncated_reason: str | None = None  # ROW_CAP or SIZE_CAP when truncated, else None
    max_result_mb: float | None = None  # the size cap the rows were held to

    def to_json(self) -> dict[str, Any]:
        """{"columns", "types", "rows", "truncated", "row_cap", "elapsed_ms", "truncated_reason",
        "max_result_mb"}, every value JSON-safe: dates and times as ISO 8601 text, decimals as numbers, intervals
        as seconds, UUIDs as text, blobs as hex, NaN and infinities as null."""
        return {"columns": list(self.columns), "types": list(self.types),
                "rows": [[json_value(value) for value in row] for row in self.rows], "truncated": self.truncated,
                "row_cap": self.row_cap, "elapsed_ms": self.elapsed_ms, "truncated_reason": self.truncated_reason,
                "max_result_mb": self.max_result_mb}

    def to_csv(self) -> str:
        """The header and the rows as CSV text (the csv module's dialect, lines ending in \\r\\n); null is an
        empty field, lists and structs are JSON."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows([csv_value(value) for value in row] for row in self.rows)
        return out.getvalue()


def json_value(value: object) -> object:
    """`value` as DuckDB returned it, made JSON-safe (see `QueryResult.to_json`)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return str(value)


def csv_value(value: object) -> object:
    """One CSV field: null is empty, lists and structs are JSON, the rest as `json_value` gives it."""
    found = json_value(value)
    if found is None:
        return ""
    if isinstance(found, list | dict):
        return json.dumps(found, ensure_ascii=False)
    return found


class AnalystQueries:
    """Read-only SQL for analysts on the store's one DuckDB connection (see the module's docstring)."""

    def __init__(self, db: DuckDBStore, clock: Callable[[], float], time_limit_s: float, row_cap: int,
                 max_result_mb: float = 20.0, concurrency: int = 2, queue_wait_s: float = 1.0) -> None:
        """`clock`: epoch seconds, set as the DuckDB variable `firstline_now` before each query (the metric views
        measure from it); `time_limit_s`: seconds a query may run before it is stopped; `row_cap`: the most rows
        a result holds; `max_result_mb`: the most a result holds, in megabytes of its values as text;
        `concurrency`: the most queries running at once; `queue_wait_s`: how long a query waits for its turn
        before it is refused."""
        self.db = db
        self.clock = clock
        self.time_limit_s = time_limit_s
        self.row_cap = row_cap
        self.max_result_mb = max_result_mb
        self.concurrency = concurrency
        self.queue_wait_s = queue_wait_s
        self.slots = threading.BoundedSemaphore(concurrency)

    def parameters(self, sql: str) -> list[str]:
        """The `:name` parameters of `sql` in the order they first appear; a `:` inside a string, a quoted
        identifier, a comment or square brackets (a slice) is not one, nor is a `::` cast."""
        return _scan(sql)[1]

    def run(self, sql: str, params: Mapping[str, object] | None = None, *, row_cap: int | None = None) -> QueryResult:
        """Check `sql` and run it with `params` (name -> text, number, boolean or None; a name may be written
        with its colon). `row_cap` replaces the setting for this call: for Firstline's own metric queries, whose
        per-day series may be longer than an analyst's cap (every other check and limit still applies). Raises
        InputError, with a message saying what to change, for everything refused or failed; the code is
        `query_timeout` when the query ran past the time limit. RateLimitError when `concurrency` queries are
        running and none ends within `queue_wait_s`."""
        if not isinstance(sql, str):
            raise InputError("the query must be text")
        if not _utf8(sql):
            raise InputError(NOT_UTF8)
        if not sql.strip():
            raise InputError("the query is empty: write one SELECT statement, e.g. select count(*) from decisions")
        if len(sql) > MAX_SQL_CHARS:
            raise InputError(f"the query is {len(sql)} characters long; the most accepted is {MAX_SQL_CHARS}")
        converted, names = _scan(sql)
        if not self.slots.acquire(timeout=self.queue_wait_s):
            raise RateLimitError(f"the console is already running {self.concurrency} "
                                 f"{'query' if self.concurrency == 1 else 'queries'}; try again in a moment",
                                 retry_after_s=max(1, math.ceil(self.queue_wait_s)))
        try:
            with self.db.reader() as cursor:
                self._checked(cursor, converted, names)
                values = _values(names, params)
                return self._execute(cursor, sql, converted, values, names, row_cap or self.row_cap)
        finally:
            self.slots.release()

    def _checked(self, cursor: duckdb.DuckDBPyConnection, converted: str, names: list[str]) -> None:
        """`_check`, with every failure an InputError: DuckDB's errors cleaned, a parse tree too deep for Python
        (RecursionError) and anything unexpected (logged) said plainly. KeyboardInterrupt and the like pass."""
        try:
            self._check(cursor, converted)
        except InputError:
            raise
        except duckdb.Error as error:
            raise InputError(_cleaned(error, names)) from None
        except RecursionError:
            raise InputError(NESTED_TOO_DEEPLY) from None
        except MemoryError:
            raise InputError("the query is too large to check; simplify it") from None
        except Exception:  # a check that fails must refuse, never answer 500
            log.exception("the analyst console's checks failed unexpectedly")
            raise InputError("the query could not be checked; simplify it or write it another way") from None

    # -- checks ---------------------------------------------------------------------------------------

    def _check(self, cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Refuse anything but one SELECT (or EXPLAIN of one) that names no credentials table and no table
        function off the list. Parser errors propagate as duckdb.Error (their text says where)."""
        statements = cursor.extract_statements(sql)
        if not statements:
            raise InputError("the query is only comments: write one SELECT statement")
        if len(statements) > 1:
            raise InputError(f"one statement per query: found {len(statements)}")
        statement = statements[0]
        query = sql
        if statement.type == duckdb.StatementType.EXPLAIN:
            query = _explained(sql)
            inner = cursor.extract_statements(query)
            if len(inner) != 1:
                raise InputError(f"one statement per query: found {len(inner)} after EXPLAIN")
            if inner[0].type != duckdb.StatementType.SELECT:
                raise InputError(f"EXPLAIN runs here only for a SELECT; this explains "
                                 f"{_a(_kind(inner[0], query))} statement")
        elif statement.type != duckdb.StatementType.SELECT:
            raise InputError(f"only SELECT queries run here (and EXPLAIN of one); this is {_a(_kind(statement, sql))} "
                             "statement")
        tables, functions, scalars = _references(cursor, query)
        for name in [*tables, *(f"{function}()" for function in [*functions, *scalars])]:
            if name.removesuffix("()").lower() in SYSTEM_NAMES:
                raise InputError(f"{name} shows the server's files or settings and is not open to analysts; for the "
                                 "schema, read information_schema.tables, information_schema.columns, "
                                 "duckdb_tables(), duckdb_columns() or duckdb_views()")
        for table in tables:
            if table.lower() in CREDENTIAL_TABLES:
                raise InputError(f"{table} holds credentials and is not open to analysts (nor are "
                                 f"{', '.join(sorted(CREDENTIAL_TABLES - {table.lower()}))})")
            if table.lower() in CONTACT_TABLES:
                raise InputError(f"{table} holds users' e-mail addresses and is not open to analysts; the "
                                 "notifications table says what was sent, and when")
            if _FILE_LIKE.search(table):
                raise InputError(f"reading files or URLs ({table!r}) is not open to analysts: the console reads the "
                                 "store's tables and views")
        for function in functions:
            if function.lower() not in TABLE_FUNCTIONS:
                allowed = ", ".join(f"{name}()" for name in TABLE_FUNCTIONS)
                raise InputError(f"the table function {function}() is not open to analysts: the console reads the "
                                 f"store's tables and views, and of the table functions only {allowed}")

    # -- running --------------------------------------------------------------------------------------

    def _execute(self, cursor: duckdb.DuckDBPyConnection, sql: str, converted: str, values: dict[str, object],
                 names: list[str], row_cap: int) -> QueryResult:
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            cursor.interrupt()

        timer = threading.Timer(self.time_limit_s, stop)
        timer.daemon = True
        started = time.perf_counter()  # a duration, not a moment: the injected clock is for `firstline_now`
        reason: str | None = None
        try:
            cursor.execute("SET VARIABLE firstline_now = ?", [float(self.clock())])
            # A second wall behind the checks: a statement that writes fails in a read-only transaction.
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            timer.start()
            try:
                cursor.execute(converted, values)
                description = cursor.description or []
                rows, reason = self._fetch(cursor, row_cap)  # the result streams: never more is computed
            finally:
                timer.cancel()
                timer.join()
        except duckdb.InterruptException:
            if timed_out.is_set():
                raise InputError(f"the query ran past the {self.time_limit_s:g} s limit and was stopped; narrow it "
                                 "(a WHERE on a time column, fewer joins) or ask for a longer "
                                 "analyst_time_limit_s", code=TIMEOUT_CODE) from None
            raise InputError(INTERRUPTED) from None
        except duckdb.Error as error:
            raise InputError(_cleaned(error, names)) from None
        except RecursionError:  # a value nested too deeply to measure
            raise InputError("the result is nested too deeply to show; simplify the query") from None
        finally:
            with contextlib.suppress(duckdb.Error):  # an interrupted or failed query may have ended it already
                cursor.execute("ROLLBACK")
        elapsed_ms = round((time.perf_counter() - started) * 1000.0, 3)
        return QueryResult(sql, [str(d[0]) for d in description], [str(d[1]) for d in description], rows,
                           reason is not None, row_cap, elapsed_ms, reason, self.max_result_mb)

    def _fetch(self, cursor: duckdb.DuckDBPyConnection, row_cap: int) -> tuple[list[tuple], str | None]:
        """The rows, fetched in chunks until there are none left, `row_cap` of them are held (and one more is
        there) or the next would take the result past `max_result_mb`; and why it stopped early (ROW_CAP,
        SIZE_CAP) or None. A chunk is sized from the rows so far, so a few huge rows are fetched a few at a time."""
        limit = self.max_result_mb * 1024 * 1024
        rows: list[tuple] = []
        total = 0
        chunk = 64
        while True:
            fetched = cursor.fetchmany(chunk)
            if not fetched:
                return rows, None
            for row in fetched:
                if len(rows) >= row_cap:
                    return rows, ROW_CAP
                size = sum(_size(value) for value in row)
                if total + size > limit:
                    return rows, SIZE_CAP
                total += size
                rows.append(tuple(row))
            average = max(1, total // max(1, len(rows)))
            chunk = max(1, min(FETCH_ROWS, FETCH_BYTES // average, int(limit - total) // average + 1,
                               row_cap + 1 - len(rows)))


def _values(names: list[str], params: Mapping[str, object] | None) -> dict[str, object]:
    """The DuckDB parameters for `names` from `params`; InputError for a missing, unknown or unusable one."""
    if params is not None and not isinstance(params, Mapping):
        raise InputError("params must be an object of name -> value, e.g. {\"since\": \"2024-01-01\"}")
    given: dict[str, object] = {}
    for key, value in (params or {}).items():
        name = str(key).removeprefix(":")
        if not _utf8(name):
            raise InputError("a parameter's name is not valid UTF-8 text")
        if name not in names:
            takes = f"it takes {', '.join(':' + n for n in names)}" if names else "it takes none"
            raise InputError(f"the query has no parameter :{name} ({takes})")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InputError(f"the value of :{name} must be text, a number, true, false or null")
        if isinstance(value, float) and not math.isfinite(value):  # NaN, Infinity, 1e400 from JSON
            raise InputError(f"the value of :{name} must be a finite number")
        if isinstance(value, str) and not _utf8(value):
            raise InputError(f"the value of :{name} is not valid UTF-8 text")
        given[name] = value
    missing = [name for name in names if name not in given]
    if missing:
        raise InputError(f"the query needs a value for {', '.join(':' + name for name in missing)}")
    return given


def _utf8(text: str) -> bool:
    """Whether `text` is UTF-8 text (no lone surrogates, as undecodable bytes in argv or a file become)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _size(value: object) -> int:
    """A value's size in the result, roughly: bytes as they are, everything else as text."""
    if value is None:
        return 4
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    return len(str(value))


def _references(cursor: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[str], list[str]]:
    """(tables, table functions, scalar functions) `query` names anywhere in its parse tree: FROM, joins,
    subqueries, CTEs, SHOW/DESCRIBE/SUMMARIZE, expressions. RecursionError when the tree is too deep to read."""
    row = cursor.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True, "error_message": "no parse tree"}
    if not isinstance(tree, dict):
        raise InputError("the query could not be checked: no parse tree")
    if tree.get("error"):
        raise InputError(f"the query could not be checked: {tree.get('error_message', 'unknown error')}")
    tables: list[str] = []
    functions: list[str] = []
    scalars: list[str] = []
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind == "BASE_TABLE":
                tables.append(str(node.get("table_name", "")))
            elif kind == "SHOW_REF" and node.get("table_name"):
                tables.append(str(node["table_name"]).strip('"'))
            elif kind == "TABLE_FUNCTION":
                function = node.get("function") or {}
                functions.append(str(function.get("function_name", "?")))
            elif node.get("class") == "FUNCTION" and node.get("function_name"):
                scalars.append(str(node["function_name"]))
            stack.extend(node.values())
    return tables, functions, scalars


def _kind(statement: Any, sql: str) -> str:
    """The statement's type as a person would name it: DROP, COPY, ATTACH, INSTALL, SET ..."""
    name = str(statement.type.name).replace("_", " ")
    if name == "MULTI":  # a PIVOT with no IN list is several statements in one
        return "PIVOT"
    if name in ("LOAD", "CALL"):  # INSTALL parses as LOAD, CHECKPOINT as CALL: say what was written
        words = [word.upper() for word in re.findall(r"[A-Za-z]+", sql[_start(sql):])[:2]]
        if words:
            name = " ".join(words) if words[0] == "FORCE" else words[0]
    return name


def _a(word: str) -> str:
    """`word` with its article: a DROP, an ATTACH."""
    return f"an {word}" if word[:1] in "AEIOU" else f"a {word}"


def _explained(sql: str) -> str:
    """What an EXPLAIN [ANALYZE] statement explains (the rest of the text after those words)."""
    start = _start(sql)
    found = _EXPLAIN.match(sql, start)
    if found is None:
        raise InputError("write EXPLAIN or EXPLAIN ANALYZE followed by a SELECT; options are not supported here")
    return sql[found.end():]


def _start(sql: str) -> int:
    """Where the first word of `sql` begins, past spaces and comments."""
    i = 0
    while i < len(sql):
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i)
        else:
            break
    return i


def _comment_end(sql: str, i: int) -> int:
    """The index after the block comment starting at `i` (they nest, as in PostgreSQL); the end of the text
    when it is not closed."""
    depth = 0
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return i


def _quoted_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """The index after the quoted text starting at `i` (a doubled quote is a quote; `backslash` escapes in
    E'...' strings); the end of the text when it is not closed."""
    i += 1
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if sql.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)


def _scan(sql: str) -> tuple[str, list[str]]:
    """(`sql` with each `:name` parameter written `$name`, the names in order of first appearance). Strings,
    quoted identifiers, comments, dollar-quoted text, `::` casts and slices (`list[a:b]`) are left alone.
    Every replacement keeps the length, so positions in DuckDB's messages stay right."""
    out: list[str] = []
    names: list[str] = []
    brackets = 0
    i = 0
    while i < len(sql):
        char = sql[i]
        end = i + 1
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = len(sql) if newline < 0 else newline
        elif sql.startswith("/*", i):
            end = _comment_end(sql, i)
        elif char == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            end = _quoted_end(sql, i, "'", escaped)
        elif char == '"':
            end = _quoted_end(sql, i, '"', False)
        elif char == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(tag.group(), tag.end())
            end = len(sql) if close < 0 else close + len(tag.group())
        elif char == "[":
            brackets += 1
        elif char == "]":
            brackets = max(0, brackets - 1)
        elif sql.startswith("::", i):
            end = i + 2
        elif char == ":" and brackets == 0 and (name := _NAME.match(sql, i + 1)):
            out.append("$" + name.group())
            if name.group() not in names:
                names.append(name.group())
            i = name.end()
            continue
        out.append(sql[i:end])
        i = end
    return "".join(out), names


INTERRUPTED = "the query was interrupted before it finished"
STORE_CLOSED = "the store was closed (the server is stopping); the query did not run"


def _cleaned(error: duckdb.Error, names: list[str]) -> str:
    """DuckDB's message without blank lines or a traceback: the kind, what, and where ("LINE 1: ... ^"), with
    the parameters shown as the analyst wrote them; an interruption (the store closing under the query) and a
    closed store said plainly."""
    if isinstance(error, duckdb.InterruptException):
        return INTERRUPTED
    if isinstance(error, duckdb.ConnectionException):
        return STORE_CLOSED
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()][:6]
    if names:
        written = re.compile(r"\$(" + "|".join(re.escape(n) for n in names) + r")\b")
        lines = [written.sub(r":\1", line) if line.startswith("LINE ") else line for line in lines]
    return "\n".join(lines) or type(error).__name__

