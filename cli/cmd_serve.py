"""``billing serve``: the web app over the store; ``billing users``: its logins."""

from __future__ import annotations

import sys

import click

from cli.options import db_option


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")  # fmt: skip
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests served at once.")  # fmt: skip
@db_option
def serve_command(host: str, port: int, threads: int, db_url: str | None) -> None:
    """Serve the web app (worklists, the close, reports, import) over the store.

    Log in with a user made by `billing users add`. Sessions end when the server
    restarts (a new session key each start) or after 8 hours.
    """
    import waitress

    from billing_engine.store import display_url
    from billing_engine.store.users import list_users
    from cli.web.app import create_app

    app = create_app(db_url)
    store = app.extensions["billing"].store
    if not list_users(store.engine):
        click.echo(
            "note: the store has no users yet: add the first with "
            "billing users add NAME --role admin",
            err=True,
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"note: listening on {host}: other machines can reach it", err=True)
    click.echo(f"serving {display_url(store.url)} on http://{host}:{port}/ (Ctrl-C stops)")
    waitress.serve(app, host=host, port=port, threads=threads, ident="billing")


@click.group("users")
def users_group() -> None:
    """The web app's logins."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", required=True,
              type=click.Choice(["care_manager", "billing", "finance", "admin"]))  # fmt: skip
@click.option("--care-manager", "care_manager_id",
              help="For a care_manager login: her staff id (practitioner_id).")  # fmt: skip
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (else: asked twice).")  # fmt: skip
@db_option
def users_add(
    name: str,
    role: str,
    care_manager_id: str | None,
    password_stdin: bool,
    db_url: str | None,
) -> None:
    """Add a login NAME with a role (its password is stored as an argon2id hash)."""
    from billing_engine.store import Store
    from billing_engine.store.users import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with Store.open(db_url, create=False) as store:
        login = add_user(
            store.engine, name, role=role, password=password, care_manager_id=care_manager_id
        )
    who = f" for {login.care_manager_id}'s patients" if login.care_manager_id else ""
    click.echo(f"added {login.username} ({login.role}{who})")


@users_group.command("list")
@db_option
def users_list(db_url: str | None) -> None:
    """The logins: name, role and, for a care manager, whose patients she sees."""
    from billing_engine.store import Store
    from billing_engine.store.users import list_users

    with Store.open(db_url, create=False) as store:
        for login in list_users(store.engine):
            click.echo(f"{login.username}  {login.role}  {login.care_manager_id or ''}".rstrip())


COMMANDS: list[click.Command] = [serve_command, users_group]
