"""Log in, log out, and the home page that sends each role to its first screen."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from billing_engine.store.users import check_login
from cli.web.common import HOME_BY_ROLE, state

bp = Blueprint("auth", __name__)


@bp.get("/")
def home() -> Response:
    user = g.get("user")
    if user is None:
        return redirect(url_for("auth.login"))
    return redirect(url_for(HOME_BY_ROLE[user.role]))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        return render_template("login.html", message=None)
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    attempt = check_login(state().store.engine, name, password)
    if attempt.login is None:
        message = "Wrong name or password."
        if attempt.locked_until is not None:
            message = (
                "Too many failed logins: this login is locked for a while. Try again later "
                "or ask an admin."
            )
        return render_template("login.html", message=message), 401
    session.clear()
    session.permanent = True
    session["user"] = attempt.login.username
    return redirect(url_for("auth.home"))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))
