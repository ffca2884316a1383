"""`firstline account`: users' accounts (plan, seats, role) as the rules see them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from firstline.admin import administration
from firstline.context import Context


@click.group()
def account() -> None:
    """Users' accounts as the rules see them: plan, seats and role (works while the server runs)."""


@account.command("set")
@click.argument("user")
@click.option("--plan", required=True, help="The user's plan, e.g. pro or enterprise.")
@click.option("--seats", required=True, type=click.IntRange(min=1), help="Seats on the user's account.")
@click.option("--role", default="member", show_default=True, help="The user's role in their account, e.g. admin.")
@click.option("--organisation", default="", help="The organisation the account belongs to (shown to deciders).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The day the account began, YYYY-MM-DD (its tenure, shown to deciders).")
@click.option("--price", "monthly_price", type=click.FloatRange(min=0), default=None,
              help="What the account pays a month, in your currency (deciders compare similar accounts).")
@click.pass_obj
def account_set(obj: Context, user: str, plan: str, seats: int, role: str, organisation: str,
                since: datetime | None, monthly_price: float | None) -> None:
    """Record USER's account; every later decision gets plan, seats and role as the `account` fact."""
    began = since.replace(tzinfo=UTC).timestamp() if since else None
    with administration(obj.settings()) as admin:
        found = admin.set_account(user, plan, seats, role, organisation, began, monthly_price)
    click.echo(_account_line(found))


@account.command("show")
@click.argument("user")
@click.pass_obj
def account_show(obj: Context, user: str) -> None:
    """Print USER's account as the rules see it."""
    with administration(obj.settings()) as admin:
        found = admin.account(user)
    click.echo(_account_line(found))


def _account_line(found: dict[str, Any]) -> str:
    line = f"{found['user']}: {found['plan']}, {found['seats']} seats, {found['role']}"
    if found.get("organisation"):
        line += f", {found['organisation']}"
    if found.get("since") is not None:
        line += f", since {datetime.fromtimestamp(found['since'], UTC):%Y-%m-%d}"
    if found.get("monthly_price") is not None:
        line += f", pays {found['monthly_price']:g} a month"
    return line
