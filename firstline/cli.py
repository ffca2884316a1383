"""The command line: the `firstline` group, the table of its commands, and `main`, which turns failures into one line.

Each command lives in its own module and is imported only when it runs: `COMMANDS` names its module and the line
`firstline --help` shows for it, so `firstline --help` lists every command without importing any, and
`firstline check` never loads the model, faiss, the web server or the database drivers (tests/test_cli_startup.py
keeps it so). A new command goes into `COMMANDS`; a test checks each entry against the command it names.

Errors print as one line on stderr, `firstline: error: ...`, with exit status 2 for a wrong command line and 1
for everything else; tracebacks go to the log file in the data folder, never to the terminal.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from core.errors import DataFileError, FirstlineError
from firstline.context import Context

# name -> ("module:attribute", the one line `firstline --help` shows). Sorted by name, as --help lists them.
COMMANDS: Mapping[str, tuple[str, str]] = {
    "account": ("firstline.accounts:account",
                "Users' accounts as the rules see them: plan, seats and role (works while the server runs)."),
    "alerts": ("firstline.alerts:alerts_group",
               "The Alertmanager receiver: the notifications it refused (dead letters) and the alert storms it made "
               "into incidents (works while the server runs)."),
    "ask": ("firstline.ask:ask", "Answer each message on its own, as a fresh conversation."),
    "check": ("firstline.check:check", "Validate playbooks, rules and other data files."),
    "escalations": ("firstline.escalations:escalations_group",
                    "Business escalations: list the queue, show one with its analysis, decide or ask (works while "
                    "the server runs)."),
    "eval": ("firstline.evaluate:eval_command", "Measure matching on a labelled data set."),
    "handoff": ("firstline.learned:handoff_group",
                "Engineering hand-offs: list the open ones; close one with the fix that worked (it teaches the "
                "rules)."),
    "handoffs": ("firstline.handoffs:handoffs_group",
                 "Problems handed to engineering: list them, show one with its diagnostics, close one with a note "
                 "for the user (works while the server runs)."),
    "heal": ("firstline.heal:heal",
             "Detect and fix problems on the infrastructure, live or in a simulated scenario."),
    "index": ("firstline.index:index", "Build or inspect the playbook index."),
    "learned": ("firstline.learned:learned_group",
                "Review the rules learned from resolutions: list, show, approve, reject, retire, revert, diff."),
    "metrics": ("firstline.metrics:metrics_command",
                "The seed's success metrics over a period: AI resolution rate, time to resolution, CSAT, proactive "
                "prevention, escalations and the rest, each line naming the view it comes from."),
    "notify": ("firstline.notify:notify_group",
               "E-mails telling users a person answered while they were away: the outbox's state, a pass now, "
               "failed ones again (works while the server runs)."),
    "rules": ("firstline.curate:rules_group", "Read, check, test, graph and trace the rules."),
    "serve": ("firstline.serve:serve", "Serve the chat page and the JSON API."),
    "settings": ("firstline.settings:settings_command", "Show every setting, its value and default."),
    "simulate": ("firstline.simulate:simulate_command",
                 "Drive simulated traffic through the real product, then print the metrics."),
    "sql": ("firstline.analytics:sql_command",
            "Run one read-only QUERY on the event store (works while the server runs; QUERY - reads it from "
            "standard input)."),
    "token": ("firstline.tokens:token",
              "API tokens for integrations and staff (works while the server runs: it goes through the server)."),
    "user": ("firstline.users:user_group", "Staff users: deciders, curators, analysts, engineers."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when one runs; its --help lists them from the table, importing none."""

    def __init__(self, *args: Any, lazy: Mapping[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, attribute = self.lazy[cmd_name][0].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1] if name in self.lazy else self.commands[name].get_short_help_str(10**6))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML settings file (default: ./firstline.toml if present, or $FIRSTLINE_CONFIG).")
@click.version_option(package_name="firstline")
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """Firstline: technical support that diagnoses, fixes, escalates and learns."""
    ctx.obj = Context(config)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn every failure into one line on stderr and an exit status."""
    try:
        status = cli.main(args=argv, prog_name="firstline", standalone_mode=False)
        if isinstance(status, int) and status:  # a command's ctx.exit(N) comes back as a return value
            return status
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.exceptions.Abort:
        _fail("aborted")
        return 130
    except click.UsageError as error:
        hint = f" (see 'firstline {error.ctx.command_path.split(' ', 1)[1]} --help')" \
            if error.ctx and " " in error.ctx.command_path else " (see 'firstline --help')"
        _fail(f"{error.format_message()}{hint}")
        return 2
    except click.ClickException as error:
        _fail(error.format_message())
        return error.exit_code
    except DataFileError as error:
        _fail(str(error))  # one line per problem: the file, line and field of each
        return 1
    except FirstlineError as error:
        _fail(str(error))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - last line of defence: no traceback on the terminal
        log = _log_exception()
        _fail(f"internal error: {type(error).__name__}: {error} (details in {log})")
        return 1
    return 0


def _fail(message: str) -> None:
    click.echo(f"firstline: error: {message}", err=True)


def _log_exception() -> Path:
    """Write the traceback being handled to `DATA_DIR/logs/firstline.log`, or, when that cannot be written (a file
    where the folder should be, a read-only disk), to a file of its own in the system's temporary folder; the path
    written. Never raises: it is the last line of defence."""
    import tempfile

    from core.settings import load_settings  # pydantic: only on this rare path, not at every start

    text = traceback.format_exc()
    try:
        folder = load_settings().data_dir / "logs"
    except FirstlineError:
        folder = Path("var") / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return _append_crash(folder / "firstline.log", text)
    except OSError:
        handle, name = tempfile.mkstemp(prefix="firstline-crash-", suffix=".log")
        os.close(handle)
        return _append_crash(Path(name), text)


def _append_crash(path: Path, text: str) -> Path:
    from core.logs import LOG_FORMAT

    # A handler of its own, not basicConfig: `serve` has set up logging to the terminal by now, and the
    # traceback belongs in the file the message names, not on the terminal.
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    crash = logging.getLogger("firstline.crash")
    crash.propagate = False
    crash.addHandler(handler)
    try:
        crash.error("unhandled error\n%s", text)
    finally:
        crash.removeHandler(handler)
        handler.close()
    return path


if __name__ == "__main__":
    sys.exit(main())
