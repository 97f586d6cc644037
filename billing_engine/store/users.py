"""The web app's logins: add a user, check a password, lock out after failures.

Passwords are hashed with argon2id (``argon2-cffi``'s ``PasswordHasher``, its default
parameters); the hash alone is stored. After ``MAX_FAILED_LOGINS`` wrong passwords in a
row a login is locked for ``LOCKOUT``; a right password while locked is refused too, and
one after the lockout resets the count. Checking an unknown name costs a hash as well,
so a wrong name and a wrong password take the same time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Engine

from billing_engine.errors import ConfigError
from billing_engine.store.close import utc_now
from billing_engine.store.user_models import User

ROLES = ("care_manager", "billing", "finance", "admin")
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("not a password of anyone")
_TABLE: sa.Table = User.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Login:
    """Who is logged in (what a session holds)."""

    username: str
    role: str
    care_manager_id: str | None


@dataclass(frozen=True)
class Attempt:
    """The result of a login attempt: the login, or why not (never which part was wrong)."""

    login: Login | None
    locked_until: dt.datetime | None = None


def add_user(
    engine: Engine,
    username: str,
    *,
    role: str,
    password: str,
    care_manager_id: str | None = None,
) -> Login:
    """Create a login; refused for an existing name, an unknown role, a short password,
    or a care manager without the staff id whose patients she sees."""
    name = username.strip()
    if not name or any(c.isspace() for c in name):
        raise ConfigError(f"user name {username!r}: give one word without spaces")
    if role not in ROLES:
        raise ConfigError(f"role {role!r}: one of {', '.join(ROLES)}")
    if role == "care_manager" and not care_manager_id:
        raise ConfigError("a care_manager login needs --care-manager ID (her staff id)")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    with engine.begin() as connection:
        exists = connection.execute(
            sa.select(_TABLE.c.username).where(_TABLE.c.username == name)
        ).first()
        if exists is not None:
            raise ConfigError(f"user {name!r} exists already")
        connection.execute(
            _TABLE.insert().values(
                username=name,
                role=role,
                care_manager_id=care_manager_id,
                password_hash=_HASHER.hash(password),
                failed_logins=0,
                locked_until=None,
                created_at=utc_now(),
            )
        )
    return Login(name, role, care_manager_id)


def list_users(engine: Engine) -> list[Login]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(_TABLE.c.username, _TABLE.c.role, _TABLE.c.care_manager_id).order_by(
                _TABLE.c.username
            )
        ).all()
    return [Login(r.username, r.role, r.care_manager_id) for r in rows]


def find_user(engine: Engine, username: str) -> Login | None:
    """The login of `username` (None: no such user)."""
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(_TABLE.c.username, _TABLE.c.role, _TABLE.c.care_manager_id).where(
                _TABLE.c.username == username
            )
        ).first()
    return None if row is None else Login(row.username, row.role, row.care_manager_id)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC


def check_login(
    engine: Engine, username: str, password: str, at: dt.datetime | None = None
) -> Attempt:
    """Check `password` for `username`, counting failures and locking after too many."""
    now = at or utc_now()
    with engine.begin() as connection:
        row = connection.execute(sa.select(_TABLE).where(_TABLE.c.username == username)).first()
        if row is None:
            _verify(_DUMMY_HASH, password)
            return Attempt(None)
        locked = _aware(row.locked_until)
        if locked is not None and locked > now:
            _verify(_DUMMY_HASH, password)
            return Attempt(None, locked)
        where = _TABLE.c.username == username
        if not _verify(row.password_hash, password):
            failures = (row.failed_logins if locked is None else 0) + 1
            until = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
            connection.execute(
                _TABLE.update().where(where).values(failed_logins=failures, locked_until=until)
            )
            return Attempt(None, until)
        connection.execute(_TABLE.update().where(where).values(failed_logins=0, locked_until=None))
        return Attempt(Login(row.username, row.role, row.care_manager_id))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
