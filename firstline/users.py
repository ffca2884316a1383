"""`firstline user create|list|disable|password|categories`: staff users who sign in with a password (deciders on
the escalation desk, curators, analysts), through the running server when there is one, else on the data folder.

A password is asked twice on the terminal, never echoed; when standard input is not a terminal (a script, a
pipe) its first line is the password, so it never appears in the command line or the shell's history."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from core.errors import InputError
from core.taxonomy import BUSINESS
from engine.access.tokens import Role
from engine.access.users import STAFF_ROLES, check_categories, check_name, check_role
from firstline.admin import administration
from firstline.context import Context, echo_json_or_lines

CATEGORY = click.option("--category", "category", multiple=True, metavar="CATEGORY",
                        help=f"A business category the decider may decide (repeatable): {', '.join(BUSINESS)}.")
CATEGORIES = click.option("--categories", "categories", default=None, metavar="A,B",
                          help="The same, as one comma-separated list.")


def _chosen(category: tuple[str, ...], categories: str | None) -> list[str]:
    """The categories of `--category` and `--categories` together, in the order given, without repeats."""
    given = [part.strip() for part in (categories or "").split(",")]
    if categories is not None and not any(given):
        # An empty list must not read as "every category": a decider limited by mistake to nothing would get all.
        raise click.BadParameter("the list is empty: name the categories (e.g. pricing,policy), or leave the option "
                                 "out for a decider of every category", param_hint="--categories")
    listed = [*category, *(part for part in given if part)]
    return list(dict.fromkeys(listed))


def read_password(name: str) -> str:
    """A password: asked twice on a terminal (hidden), else the first line of standard input without its line
    ending. InputError when standard input is empty."""
    if sys.stdin.isatty():
        return click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise InputError("no password on standard input: type it at a terminal, or send it as the first line, "
                         "e.g. `read -rs PW; printf '%s\\n' \"$PW\" | firstline user ...`")
    return line.removesuffix("\n").removesuffix("\r")


def _categories_shown(found: dict[str, Any]) -> str:
    if found["role"] != Role.DECIDER.value:
        return "-"
    return ",".join(found["categories"]) or "all"


def user_line(found: dict[str, Any]) -> str:
    """One user as `firstline user list` prints it: name, role, categories, and when disabled."""
    line = f"{found['name']}  {found['role']}  {_categories_shown(found)}"
    if found["disabled"]:
        line += f"  disabled {datetime.fromtimestamp(found['disabled_at'], UTC):%Y-%m-%d %H:%M} UTC"
    return line


@click.group("user", short_help="Staff users: deciders, curators, analysts, engineers.")
def user_group() -> None:
    """Staff users who sign in with a password: deciders (the escalation desk), curators, analysts (the
    analysts' page, /analytics/) and engineers (firstline handoffs close); works while the server runs."""


@user_group.command("create", short_help="Create a staff user with a password.")
@click.argument("name")
@click.option("--role", required=True, metavar="|".join(r.value for r in STAFF_ROLES),
              help="decider: decides business escalations on the desk (/desk/); curator: reviews the knowledge; "
                   "analyst: reads the metrics and queries the store read-only (/analytics/); engineer: closes "
                   "hand-offs with a note for the user (firstline handoffs close).")
@CATEGORY
@CATEGORIES
@click.pass_obj
def create(obj: Context, name: str, role: str, category: tuple[str, ...], categories: str | None) -> None:
    """Create NAME with a password (asked twice, or the first line of standard input); a decider with no
    categories may decide all of them. Only an argon2id hash of the password is stored."""
    chosen = _chosen(category, categories)
    check_name(name)  # before the password is typed, not after
    check_categories(chosen, check_role(role))
    password = read_password(name)
    with administration(obj.settings()) as admin:
        made = admin.create_user(name, role, password, chosen)
    click.echo(f"created {user_line(made)}")


@user_group.command("list", short_help="List staff users (never a password or hash).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def listing(obj: Context, as_json: bool) -> None:
    """Every staff user: name, role, the categories a decider may decide (or all), and whether disabled."""
    with administration(obj.settings()) as admin:
        users = admin.list_users()
    echo_json_or_lines(as_json, users, (user_line(found) for found in users), ensure_ascii=True)
    if not users and not as_json:
        click.echo("no staff users; `firstline user create NAME --role decider` makes one", err=True)


@user_group.command("disable", short_help="Disable a staff user and end their sessions.")
@click.argument("name")
@click.pass_obj
def disable(obj: Context, name: str) -> None:
    """Disable NAME: they cannot sign in, and every staff session of theirs ends at once (their API tokens, if
    any, are revoked apart: `firstline token revoke`)."""
    with administration(obj.settings()) as admin:
        admin.disable_user(name)
    click.echo(f"disabled {name}; their staff sessions have ended")


@user_group.command("password", short_help="Give a staff user a new password.")
@click.argument("name")
@click.pass_obj
def password(obj: Context, name: str) -> None:
    """Give NAME a new password (asked twice, or the first line of standard input); the sessions opened with the
    old one end at once."""
    new = read_password(name)
    with administration(obj.settings()) as admin:
        admin.set_user_password(name, new)
    click.echo(f"new password set for {name}; the sessions opened with the old one have ended")


@user_group.command("categories", short_help="Set the categories a decider may decide.")
@click.argument("name")
@CATEGORY
@CATEGORIES
@click.option("--all", "every", is_flag=True, help="The decider may decide every business category.")
@click.pass_obj
def categories_command(obj: Context, name: str, category: tuple[str, ...], categories: str | None,
                       every: bool) -> None:
    """Set the business categories decider NAME may decide; effective at their next request."""
    chosen = _chosen(category, categories)
    if bool(chosen) == every:
        raise click.UsageError("give the categories (--category pricing --category policy, or --categories "
                               "pricing,policy), or --all for every one, not both")
    with administration(obj.settings()) as admin:
        found = admin.set_user_categories(name, chosen)
    click.echo(user_line(found))
