"""What every screen of the web app shares: roles, the logged-in user, the app's state,
the month asked for."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, g, redirect, request, url_for

from billing_engine.calendar import Month
from billing_engine.errors import ConfigError
from billing_engine.store.users import Login
from cli.web.state import AppState

CARE_MANAGER, BILLING, FINANCE, ADMIN = "care_manager", "billing", "finance", "admin"
HOME_BY_ROLE = {CARE_MANAGER: "screens.worklist", BILLING: "close.screen",
                FINANCE: "reports.index", ADMIN: "close.screen"}  # fmt: skip
F = TypeVar("F", bound=Callable[..., Any])


ROLE_SCREENS = {
    CARE_MANAGER: ("worklist",),
    BILLING: ("worklist", "close", "reports", "import"),
    FINANCE: ("reports",),
    ADMIN: ("worklist", "close", "reports", "import"),
}


def state() -> AppState:
    found: AppState = current_app.extensions["billing"]
    return found


def today() -> dt.date:
    clock: Callable[[], dt.date] = current_app.extensions["billing_today"]
    return clock()


def current() -> Login:
    user: Login | None = g.get("user")
    if user is None:
        abort(401)
    return user


def roles(*allowed: str) -> Callable[[F], F]:
    """Only logged-in users of `allowed` roles (others: 403; nobody logged in: to login)."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                return redirect(url_for("auth.login"))
            if user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return wrap


def month_arg(default: Month | None = None) -> Month:
    """The ``month`` query value (YYYY-MM), else `default`, else the last month with work."""
    text = request.values.get("month")
    if text:
        try:
            return Month.parse(text)
        except ConfigError:
            abort(400)
    if default is not None:
        return default
    return latest_month()


def latest_month() -> Month:
    import sqlalchemy as sa

    with state().store.engine.connect() as connection:
        last = connection.execute(sa.text("SELECT MAX(date) FROM encounters")).scalar()
    if last is None:
        day = today()
        return Month(day.year, day.month)
    text = str(last)[:7]
    return Month.parse(text)
