"""`firstline settings`: every setting with its value, variable, default and meaning."""

from __future__ import annotations

import json

import click

from core.redaction import redacted_setting
from core.settings import SECRETS, describe
from firstline.context import Context


@click.command("settings", short_help="Show every setting, its value and default.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def settings_command(obj: Context, as_json: bool) -> None:
    """Show every setting with its value, variable, default and meaning."""
    current = obj.settings()
    rows = [{**row, "value": _shown(row["key"], getattr(current, row["key"]))} for row in describe()]
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for row in rows:
        click.echo(f"{row['key']} = {row['value']!s}\n    {row['env']}; default {row['default']!s}\n    {row['help']}")


def _shown(key: str, value: object) -> object:
    if key in SECRETS:
        return "(set)" if value else "(not set)"
    return redacted_setting(key, value)  # a password or token in a URL or connection string is a secret too
