"""The web app's users (``billing users add``, ``billing serve``): who may log in, with
which role, and the state of the lockout after failed logins.

Passwords are kept only as argon2id hashes (``billing_engine.store.users``).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from billing_engine.store.close_models import UTC_TIME
from billing_engine.store.models import Base


class User(Base):
    """One login of the web app."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(sa.String(), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String())  # care_manager, billing, finance, admin
    # the staff member whose patients a care manager sees (practitioners.practitioner_id)
    care_manager_id: Mapped[str | None] = mapped_column(sa.String(), nullable=True)
    password_hash: Mapped[str] = mapped_column(sa.String())
    failed_logins: Mapped[int] = mapped_column(sa.Integer(), default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTC_TIME, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTC_TIME)
