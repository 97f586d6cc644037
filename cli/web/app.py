"""``billing serve``: the web app over the store, for the people who are not at a terminal.

Flask with jinja2 templates and htmx (vendored in ``static/``) for partial updates.
Every screen reads through the same library functions the commands use (the worklist,
explain, the close commands, the report builders): no rule or state change is
implemented twice.

Security: logins are the store's users (argon2id hashes, lockout after failures:
``billing_engine.store.users``); the session is a signed cookie (HttpOnly, SameSite
Strict, Secure; 127.0.0.1 counts as a secure origin for browsers); every form and every
htmx request carries a CSRF token (Flask-WTF's ``CSRFProtect``). Roles: a care manager
sees only her own patients; ``billing`` and ``admin`` run the close; ``finance`` reads
reports; ``admin`` and ``billing`` import. No PHI in query strings beyond ids, in logs
or in error pages: errors show a reference number, the log gets the number and the
exception's type only.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, g, render_template, session
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from billing_engine.store import Store
from billing_engine.store.users import find_user
from cli.web.common import ROLE_SCREENS
from cli.web.state import AppState

HERE = Path(__file__).resolve().parent
SESSION_HOURS = 8
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
log = logging.getLogger("billing.web")


def create_app(
    db_url: str | None = None,
    *,
    secret_key: bytes | None = None,
    secure_cookies: bool = True,
    today: Callable[[], dt.date] = dt.date.today,
) -> Flask:
    """The app over the store at `db_url` (refused when it does not exist)."""
    app = Flask(
        "billing_web",
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
    )
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="billing_session",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
    )
    CSRFProtect(app)
    store = Store.open(db_url, create=False)
    state = AppState(store)
    app.extensions["billing"] = state
    app.extensions["billing_today"] = today

    from cli.web import auth, close, imports, reports, screens

    for blueprint in (auth.bp, screens.bp, close.bp, reports.bp, imports.bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def _who() -> None:
        name = session.get("user")
        g.user = find_user(store.engine, name) if isinstance(name, str) else None
        if name and g.user is None:
            session.clear()

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"user": g.get("user"), "roles": ROLE_SCREENS}

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # Flask-WTF checks it on HTTPS
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> tuple[str, int]:
        message = "The form expired or was not sent from this app: reload the page, try again."
        return render_template("error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int]:
        code = error.code or 500
        return render_template("error.html", code=code, message=error.name), code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[str, int]:
        reference = secrets.token_hex(4)
        log.error("error %s: %s", reference, type(error).__name__)  # no message: may hold PHI
        return render_template("error.html", code=500, message="Something went wrong.",
                               reference=reference), 500  # fmt: skip

    return app
