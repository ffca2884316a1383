"""Every setting in one frozen, typed object, from defaults < firstline.toml < FIRSTLINE_* variables < arguments.

Run `firstline settings` to see each key with its value, default and help.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from core.errors import ConfigurationError
from core.redaction import redacted_setting, redacted_url
from core.taxonomy import BUSINESS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "FIRSTLINE_"
CONFIG_ENV = "FIRSTLINE_CONFIG"
DEFAULT_CONFIG_FILE = Path("firstline.toml")
HTTP_URL = re.compile(r"(?i:https?)://[^/\s?#]+(/\S*)?")  # a URL urllib opens over HTTP, and nothing else
HTTP_URL_USES = {  # what each URL setting is for, with an example, for its refusal
    "scrape_url": "of a /metrics page, e.g. http://127.0.0.1:9100/metrics",
    "webhook_url": "the actions are POSTed to, e.g. https://deploy.example.com/firstline",
}
ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


MAX_DURATION_S = 366 * 86400.0  # the longest any `_s` setting may be


class Settings(BaseModel):
    """Firstline's configuration. Defaults give the embedded setup: everything under one data folder."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    data_dir: Path = Field(Path("var"), description="Folder for the DuckDB file, the faiss index and learned rules.")
    playbooks_dir: Path = Field(PROJECT_ROOT / "data" / "playbooks", description="Folder of playbook YAML files.")
    rules_dir: Path = Field(PROJECT_ROOT / "rules" / "builtin", description="Folder of rule YAML files.")
    replies_file: Path = Field(PROJECT_ROOT / "data" / "replies.yaml", description="The voice: reply templates.")
    decision_policy_file: Path = Field(
        PROJECT_ROOT / "data" / "decision_policy.yaml",
        description="The escalation desk's decision policy: guidelines per business category that recommend an "
        "outcome, and how many distinct approvers a request needs (docs/decision-policy.md)."
    )
    infrastructure_file: Path = Field(
        PROJECT_ROOT / "data" / "infrastructure.yaml", description="Services, dependencies and metric limits."
    )
    model_path: str = Field("", description="Sentence-transformers model folder; empty means the bundled MiniLM.")
    background_dir: Path = Field(
        PROJECT_ROOT / "knowledge" / "background", description="Folder of tenant-independent out-of-scope text "
        "(one topic per .txt file, greeting.txt for messages that state no problem), used in scoring and calibration."
    )
    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8000, ge=0, le=65535, description="Port the web server listens on (0 picks a free one).")
    threads: int = Field(8, ge=1, le=256, description="Worker threads of the web server.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log line `serve` writes to standard error (time, level, logger, "
        "message): `info` shows every remediation, hand-off, rules reload and problem that ended; `warning` only "
        "what needs a look. `heal` logs warnings and worse (its timeline shows the rest)."
    )
    dry_run: bool = Field(False, description="Plan remediations and record them, but run none.")
    answer_precision: float = Field(
        0.95, gt=0.5, lt=1.0, description="Precision the answer band is calibrated to reach on held-out examples."
    )
    act_precision: float = Field(
        0.85, gt=0.5, lt=1.0, description="Precision on held-out examples at which a technical problem close to "
        "several playbooks is acted on at once rather than asked about (a wrong first fix costs the user one 'no')."
    )
    scoring: Literal["similarity", "head", "nearest", "centroid", "knn"] = Field(
        "similarity", description="How playbooks are scored: similarity (nearest example + centroid), head "
        "(logistic regression on the embeddings), nearest, centroid or knn."
    )
    refusal_recall: float | None = Field(
        None, gt=0, lt=1, description="When set, the out-of-scope threshold is the lowest that refuses this share "
        "of held-out out-of-scope examples at 95% confidence; unset, it balances kept and refused."
    )
    fine_tune_epochs: int = Field(
        0, ge=0, le=50, description="Epochs of fine-tuning the embedding model on the playbook examples at index "
        "build; 0 uses the model as shipped."
    )
    max_message_chars: int = Field(4000, ge=10, le=100_000, description="Longest message accepted, in characters.")
    embed_batch_size: int = Field(64, ge=1, le=4096, description="Texts encoded per batch when building the index.")
    secret_key: str = Field(
        "", description="Key that signs session cookies and the links in notification e-mails; empty means one kept "
        "in the data dir."
    )
    simulation_seed: int = Field(7, description="Seed of the simulated infrastructure.")
    simulation_faults: tuple[str, ...] = Field(
        (), description="Faults the simulated infrastructure starts with, e.g. [\"slow_queries\"]."
    )
    rules_reload_s: float = Field(
        2.0, ge=0, description="Seconds between checks for edited rule files while serving; 0 turns reloading off."
    )
    remediation_cooldown_s: float = Field(
        120.0, ge=0, description="Seconds before the same action may run again on the same target."
    )
    reply_examples_file: Path = Field(
        PROJECT_ROOT / "data" / "reply_examples.yaml",
        description="Example replies (yes, no, partly, correction, new problem) the reply reader is checked on.",
    )
    reply_words_file: Path = Field(
        PROJECT_ROOT / "data" / "reply_words.yaml",
        description="The vocabulary replies are read by: yes and no, working and broken, hedges, deferrals, "
        "ratings, ordinals (engine/chat/understanding.py).",
    )
    clarify_gap: float = Field(
        0.05, ge=0, le=1, description="In the clarify band, candidates within this score of the best are offered "
        "as choices; a best candidate alone is confirmed with a yes-or-no question."
    )
    rate_limit_messages: int = Field(
        30, ge=1, description="Writes (messages on either path, new conversations, ratings, staff actions) one user "
        "may make per rate_limit_window_s; more get HTTP 429 with Retry-After."
    )
    rate_limit_window_s: float = Field(60.0, gt=0, description="The window of the request limits, in seconds.")
    learn_from_confirmations: bool = Field(
        True, description="When a user confirms a fix worked, add their description of the problem to the index "
        "(removed again when they delete their history)."
    )
    # Learned rules (issue 7): the lifecycle's thresholds and the poisoning guards.
    learn_min_users: int = Field(
        2, ge=2, description="Distinct users who must confirm the same fix before a rule is proposed (one alone "
        "never can)."
    )
    learn_votes_per_user_per_day: int = Field(
        20, ge=1, description="Confirmations of one user that count towards learned rules per day."
    )
    learn_auto_shadow: bool = Field(
        True, description="A valid new proposal starts shadowing at once (a curator may still reject it)."
    )
    learn_shadow_cases: int = Field(
        5, ge=2, description="Users' shadow cases (each user's first) needed before a rule goes live by itself."
    )
    learn_shadow_precision: float = Field(
        0.8, gt=0, le=1, description="Share of those cases whose fix must have worked for the rule to go live."
    )
    learn_retire_below: float = Field(
        0.5, ge=0, le=1, description="A live learned rule whose fix succeeds less often than this is retired..."
    )
    learn_retire_after: int = Field(5, ge=1, description="...once it has been judged this many times.")
    # Self-healing (issue 6): telemetry, detection, adapters and the safety of unattended remediation.
    cookie_secure: Literal["auto", "on", "off"] = Field(
        "auto", description="Mark session cookies Secure: `auto` when the request came over HTTPS (behind a proxy, "
        "set proxy_hops), `on` always, `off` never."
    )
    proxy_hops: int = Field(
        0, ge=0, le=5, description="Reverse proxies in front of Firstline whose X-Forwarded-For/-Proto/-Host are "
        "believed (0: none; the client address and HTTPS are taken from the connection)."
    )
    operator_auth: bool = Field(
        True, description="Require an operator's API token (Authorization: Bearer; `firstline token create --role "
        "operator`) on /metrics and the Alertmanager receiver; turn off only behind a network that admits no one else."
    )
    ops_listen: str = Field(
        "", description="Serve /metrics and the Alertmanager receiver on this HOST:PORT instead of the chat's "
        "address (empty: on the chat's address), so a firewall can keep them to the monitoring network."
    )
    # The escalation desk (issue 15): how long a person has to answer each business category; a request nobody
    # decides in time closes as expired, never approved, and the user is told (deny by default).
    deadline_hosting_capacity_h: float = Field(
        72.0, gt=0, description="Hours deciders have to answer a hosting-capacity request before it expires."
    )
    deadline_pricing_h: float = Field(
        48.0, gt=0, description="Hours deciders have to answer a pricing request before it expires."
    )
    deadline_policy_h: float = Field(
        120.0, gt=0, description="Hours deciders have to answer a policy request before it expires."
    )
    deadline_subscription_benefits_h: float = Field(
        48.0, gt=0, description="Hours deciders have to answer a subscription-benefits request before it expires."
    )
    staff_idle_s: float = Field(
        1800.0, gt=0, description="A staff sign-in (curator, decider, analyst) unused for this long ends, in seconds."
    )
    staff_session_max_s: float = Field(
        43200.0, gt=0, description="A staff sign-in ends this long after it began, however busy, in seconds."
    )
    # The analysts' SQL console (issue 16: `firstline sql`, the admin socket's POST /sql): read-only queries on the
    # running server's own database, so each is held to a time and a size.
    analyst_time_limit_s: float = Field(
        10.0, gt=0, le=600, description="Seconds an analyst's query may run before it is stopped (at most 600)."
    )
    analyst_row_cap: int = Field(
        10_000, ge=1, le=1_000_000, description="Most rows an analyst's query returns; past it the result says it "
        "was truncated."
    )
    analyst_max_result_mb: float = Field(
        20.0, gt=0, le=1024, description="Most megabytes (its values measured as text) an analyst's query returns; "
        "past it the result is cut and says it was truncated at this size (at most 1024)."
    )
    analyst_concurrency: int = Field(
        2, ge=1, le=16, description="Most analysts' queries running at once (they share the chat's database); one "
        "more waits a second, then is refused with HTTP 429 (1 to 16)."
    )
    identity_secret: str = Field(
        "", description="The secret the host app signs its users' ids with (HMAC-SHA256, hex), so actions on an "
        "account (unlock, resend e-mail, sign out everywhere) run only for the account's owner; empty: no chat "
        "user is verified and such actions are explained instead of run."
    )
    widget_origins: tuple[str, ...] = Field(
        (), description="Origins (scheme://host[:port]) of the host apps whose pages may show the chat widget "
        "(/widget.js): only the widget's chat frame (/embed) may be framed, and only by these; empty: by nobody "
        "(docs/widget.md)."
    )
    limit_storage_uri: str = Field(
        "memory://", description="Where the request limiter counts (Flask-Limiter storage URI): memory:// for one "
        "process, redis://HOST:PORT to share the counts between processes and keep them over restarts."
    )
    limit_key_prefix: str = Field(
        "firstline", min_length=1, description="Prefix of the limiter's counters, so deployments sharing one Redis "
        "keep their own counts."
    )
    rate_limit_per_address: int = Field(
        120, ge=1, description="Writes (messages, conversations, ratings, staff actions) one client address may "
        "make per rate_limit_window_s, all users behind it together; more get HTTP 429."
    )
    alert_wait_s: float = Field(
        300.0, ge=0, description="How long a firing alert the telemetry does not bear out (in bounds and not "
        "heading out) waits for it before it is closed without action, in seconds."
    )
    monitor_enabled: bool = Field(True, description="Run the monitor loop (detect and heal) inside `firstline serve`.")
    monitor_interval_s: float = Field(15.0, gt=0, description="Seconds between two reads of the telemetry.")
    telemetry_source: Literal["simulation", "scrape"] = Field(
        "simulation", description="Where telemetry comes from: the simulated infrastructure, or a Prometheus "
        "text-format scrape of `scrape_url`."
    )
    scrape_url: str = Field("", description="A `/metrics` URL in Prometheus text format, for telemetry_source=scrape.")
    scrape_timeout_s: float = Field(5.0, gt=0, description="Seconds a scrape may take in all (connecting and the "
                                    "whole body) before it counts as failed.")
    confirm_checks: int = Field(
        3, ge=1, le=100, description="Consecutive checks a threshold breach, anomaly or prediction must hold before "
        "it is acted on (soft, then hard)."
    )
    prediction_horizon_s: float = Field(
        1800.0, gt=0, description="Act early when a least-squares trend reaches a limit within this many seconds."
    )
    trend_window_s: float = Field(600.0, gt=0, description="Seconds of samples the trend is fitted to.")
    anomaly_z: float = Field(6.0, gt=0, description="Robust z-score beyond which a value is an anomaly.")
    flap_high: float = Field(
        0.5, gt=0, le=1, description="Share of state changes over the last 21 checks that marks a metric as flapping."
    )
    flap_low: float = Field(0.25, ge=0, le=1, description="Share of state changes under which flapping has ended.")
    deploy_window_s: float = Field(
        1800.0, ge=0, description="Seconds after a new version appears during which a rollback is a candidate."
    )
    remediation_adapter: Literal["simulated", "webhook", "shell", "process", "postgres", "redis"] = Field(
        "simulated", description="Adapter that runs remediation actions unless a route names another."
    )
    remediation_routes: tuple[str, ...] = Field(
        (), description="Per-action adapters as `action=adapter`, e.g. [\"kill_slow_queries=postgres\"]."
    )
    webhook_url: str = Field(
        "", description="URL the webhook adapter POSTs each action to (a deploy system or an orchestrator)."
    )
    shell_commands: tuple[str, ...] = Field(
        (), description="Allow-list for the shell adapter: `action=program arg ...`; `{target}` is the only "
        "placeholder, and it is always a service name from the infrastructure file."
    )
    process_commands: tuple[str, ...] = Field(
        (), description="For the process adapter: `service=program arg ...`, the local process restart_service "
        "stops and starts again."
    )
    postgres_dsn: str = Field("", description="PostgreSQL connection string for the postgres adapter.")
    postgres_slow_query_s: float = Field(
        30.0, gt=0, description="kill_slow_queries terminates queries running longer than this many seconds."
    )
    redis_url: str = Field("", description="Redis URL for the redis adapter, e.g. redis://127.0.0.1:6379/0.")
    redis_key_prefix: str = Field("cache:", description="rebuild_cache deletes the keys under this prefix.")
    remediation_timeout_s: float = Field(
        60.0, gt=0, description="An action still running after this many seconds is recorded as timed out."
    )
    verify_timeout_s: float = Field(
        300.0, gt=0, description="Seconds an action has to bring its metric back in bounds, else it is rolled back."
    )
    rate_limit: int = Field(10, ge=1, description="Most actions run (all targets together) per rate window.")
    rate_window_s: float = Field(3600.0, gt=0, description="The window of `rate_limit`, in seconds.")
    max_concurrent_actions: int = Field(2, ge=1, description="Most actions running at the same time.")
    breaker_failures: int = Field(
        3, ge=1, description="Consecutive failed actions that open the circuit breaker (no automatic action)."
    )
    breaker_cooloff_s: float = Field(
        900.0, ge=0, description="Seconds the breaker stays open before one trial action is let through."
    )
    recurrence_window_s: float = Field(
        3600.0, gt=0, description="A problem that comes back on the same service and metric within this many "
        "seconds of a remedy verified as having fixed it counts as a failure of that remedy (breaker, next remedy)."
    )
    recurrence_limit: int = Field(
        2, ge=1, description="Times in a row a problem may come back after remediation before its remedies stop "
        "and one hand-off to engineering gives the history (earlier when no untried remedy is left)."
    )
    # Reaching users later (issue 17): when a person answers (a decider, engineering) and the user has left the
    # chat, an e-mail tells them, if the host app gave their address (docs/notifications.md).
    smtp_host: str = Field(
        "", description="Mail server that sends users their notifications (a person answered while they were "
        "away); empty: no e-mail is sent, users see answers on their next visit."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the mail server (587 submission, 465 for tls, "
                           "25 for a local relay).")
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="How the connection to the mail server is protected: starttls (upgrade after "
        "connecting), tls (encrypted from the start, port 465), none (a relay on this machine or network only)."
    )
    smtp_username: str = Field("", description="User name to log in to the mail server with; empty: no login.")
    smtp_password: str = Field("", description="Password for smtp_username; `firstline settings` never prints it.")
    smtp_from: str = Field(
        "", description="The From of notification e-mails, e.g. \"Job Tracker Pro support <support@example.com>\"; "
        "required with smtp_host."
    )
    smtp_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Seconds the mail server may take to answer each step before the attempt "
        "counts as failed (it is tried again later)."
    )
    public_url: str = Field(
        "", description="The address users open the chat at (e.g. https://support.example.com); e-mails link back to "
        "their conversation under it. Required with smtp_host."
    )
    notify_away_s: float = Field(
        300.0, ge=0, description="A user counts as away, and is e-mailed a person's answer they have not read, once "
        "the chat has heard nothing from them (no message, no page reading a conversation) for this many seconds."
    )
    notify_interval_s: float = Field(
        15.0, gt=0, description="Seconds between two looks at the notification outbox while serving."
    )
    notify_max_attempts: int = Field(
        8, ge=1, le=50, description="Attempts at sending one e-mail before it is recorded as failed "
        "(`firstline notify retry` queues it again)."
    )
    notify_retry_s: float = Field(
        60.0, gt=0, description="Wait after a failed attempt before the next, doubling each time (60 s, 2 min, "
        "4 min...)."
    )
    notify_link_ttl_s: float = Field(
        14 * 86400.0, gt=0, description="How long the link in a notification e-mail opens the conversation as its "
        "user in any browser (a widget user's too), in seconds; after that it says it has expired."
    )

    @field_validator("*")
    @classmethod
    def _a_duration_fits_a_clock(cls, value: object, info: ValidationInfo) -> object:
        # Timers and sockets take at most a few billion seconds (`threading.TIMEOUT_MAX`; a larger timeout is an
        # OverflowError inside the monitor's thread); nothing here is meant to be longer than a year.
        if (info.field_name or "").endswith("_s") and isinstance(value, float | int) and value > MAX_DURATION_S:
            raise ValueError(f"at most a year ({MAX_DURATION_S:,.0f} seconds)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().lower()  # INFO, as Python's logging spells it
        # `warn` as Python's logging also takes it; an empty variable as unset (the default).
        return {"warn": "warning", "": "info"}.get(level, level)

    @field_validator("scrape_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        # Only HTTP: urllib would also open file:// (a local file's lines would end up in logs and 503 bodies) or
        # "post" to ftp://. No "got ...": load_settings adds the value itself (echoing it here showed it twice).
        if value and not HTTP_URL.fullmatch(value):
            raise ValueError(f"must be an http:// or https:// URL {HTTP_URL_USES[info.field_name or '']}")
        return value

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Each goes into a Content-Security-Policy as it is: an origin and nothing else, so a typo cannot widen it.
        for origin in value:
            if not ORIGIN.fullmatch(origin):
                raise ValueError(f"each widget origin must be scheme://host[:port] with no path, e.g. "
                                 f"https://app.example.com; got {redacted_url(origin)!r}")
        # As browsers write an origin: lower case, without the scheme's own port.
        return tuple(re.sub(r"^(https://.*):443$|^(http://.*):80$", r"\1\2", origin.lower()) for origin in value)

    @property
    def deadlines_s(self) -> dict[str, float]:
        """Each business category's time to answer, in seconds."""
        return {category: getattr(self, f"deadline_{category}_h") * 3600.0 for category in BUSINESS}

    @property
    def database_path(self) -> Path:
        return self.data_dir / "firstline.duckdb"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def learned_rules_dir(self) -> Path:
        """Active learned rules, written by the system as a rule file and loaded like the built-in ones."""
        return self.data_dir / "learned_rules"


SECRETS = frozenset({"secret_key", "identity_secret", "smtp_password"})  # shown as set or not, never printed


def describe() -> list[dict[str, Any]]:
    """Each setting with its environment variable, default and help, for docs and `firstline settings`."""
    rows = []
    for name, field in Settings.model_fields.items():
        rows.append(
            {
                "key": name,
                "env": ENV_PREFIX + name.upper(),
                "default": field.default,
                "help": field.description or "",
            }
        )
    return rows


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    default_file: Path | None = DEFAULT_CONFIG_FILE,
    **overrides: Any,
) -> Settings:
    """Build the settings; unknown keys and wrong types stop here with the key, the value and a hint.

    `default_file` is read when present and no file is named; tests pass None to ignore a developer's own.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, tuple[Any, str]] = {}
    for key, value in _from_toml(config_file, environ, default_file).items():
        values[key] = (value, "config file")
    for key, value in _from_env(environ).items():
        values[key] = (value, f"environment variable {ENV_PREFIX}{key.upper()}")
    for key, value in overrides.items():
        if value is not None:
            values[key] = (value, "command line")
    for key, (_, source) in values.items():
        if key not in Settings.model_fields:
            raise ConfigurationError(f"unknown setting {key!r} (from {source}){_suggest(key)}", key=key)
    try:
        return Settings.model_validate({key: value for key, (value, _) in values.items()})
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "?"
        source = values.get(key, (None, "default"))[1]
        given = redacted_setting(key, first.get("input"))  # a refused URL may still carry a password or a token
        raise ConfigurationError(
            f"setting {key!r} (from {source}): {first['msg']}; got {given!r}. "
            "Run `firstline settings` to see every key with its type and default.",
            key=key,
        ) from None


def _from_toml(config_file: Path | None, environ: Mapping[str, str], default_file: Path | None) -> dict[str, Any]:
    explicit = config_file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    path = explicit or default_file
    if path is None:
        return {}
    if not path.exists():
        if explicit:
            raise ConfigurationError(f"config file {path} does not exist", key=CONFIG_ENV)
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"config file {path} is not valid TOML: {error}") from None
    section = data.get("firstline", data)
    if not isinstance(section, dict):
        raise ConfigurationError(f"config file {path}: [firstline] must be a table of settings")
    return section


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        field = Settings.model_fields.get(key)
        if field is not None and field.annotation == tuple[str, ...]:
            values[key] = _json_list(name, raw)
        else:
            values[key] = raw
    return values


def _json_list(name: str, raw: str) -> list[Any]:
    if not raw.strip():
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(value, list):
        raise ConfigurationError(f"{name} must be a JSON list or a comma-separated list; got {raw!r}")
    return value


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, Settings.model_fields, n=1)
    return f"; did you mean {close[0]!r}?" if close else "; run `firstline settings` to list the keys"
