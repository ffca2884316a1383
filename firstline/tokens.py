"""`firstline token`: API tokens, created, listed and revoked through the running server."""

from __future__ import annotations

import click

from engine.access.tokens import Role
from firstline.admin import administration
from firstline.context import Context, echo_json_or_lines


@click.group()
def token() -> None:
    """API tokens for integrations and staff (works while the server runs: it goes through the server)."""


@token.command("create")
@click.option("--user", "user", required=True, help="The user the token acts as.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value, show_default=True,
              help="decider: may also list business escalations and record their decisions; curator: may also "
              "sign in to the curator pages; engineer: may also list and close hand-offs (/api/v1/handoffs); "
              "operator: may only read /metrics and post Alertmanager alerts.")
@click.pass_obj
def token_create(obj: Context, user: str, role: str) -> None:
    """Create a token; it is printed once, and only a salted hash of it is stored. It works at once."""
    with administration(obj.settings()) as admin:
        issued = admin.create_token(user, role)
    click.echo(issued["token"])
    click.echo(f"token {issued['id']} for {issued['user_id']} ({issued['role']}); send it as "
               "`Authorization: Bearer TOKEN`. It is not shown again.", err=True)


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def token_revoke(obj: Context, token_id: str) -> None:
    """Revoke a token by its id (the part after `fl_`); staff signed in with it are signed out at once."""
    with administration(obj.settings()) as admin:
        admin.revoke_token(token_id)
    click.echo(f"revoked {token_id}")


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def token_list(obj: Context, as_json: bool) -> None:
    """Every token issued: id, user, role, and whether it is revoked (never the secret)."""
    with administration(obj.settings()) as admin:
        tokens = admin.list_tokens()
    lines = (f"{found['id']}  {found['user_id']}  {found['role']}{'  revoked' if found['revoked'] else ''}"
             for found in tokens)
    echo_json_or_lines(as_json, tokens, lines, ensure_ascii=True)
