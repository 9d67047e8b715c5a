"""The dashboard's own tables in the ledger database: users, login attempts, throttles, sessions.

Rule: these tables belong to the dashboard, not to the ledger of record; they
live in the same database and the same Alembic chain (migrations 0005, 0006
and 0010 in ``ledger/store/migrations``) but on their own ``MetaData``, so the
ledger's models never mention a login. Only :mod:`dashboard.auth` writes them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from contract import schema as S
from ledger.store.models import NAMING, BigId, Creator

# User roles (``dashboard_users.role``).
ADMIN = "admin"
ECONOMIST = "economist"
CREATOR = "creator"
ROLES: tuple[str, ...] = (ADMIN, ECONOMIST, CREATOR)

USERS = "dashboard_users"
LOGIN_ATTEMPTS = "dashboard_login_attempts"
SESSIONS = "dashboard_sessions"
THROTTLE = "dashboard_login_throttle"


class DashboardBase(DeclarativeBase):
    """Declarative base of the dashboard's tables (the ledger's naming convention)."""

    metadata = MetaData(naming_convention=NAMING)


class User(DashboardBase):
    """A dashboard login. ``password_hash`` is written by ``dashboard.auth`` (argon2);
    ``creator_id`` ties a creator login to the only rows it may see; ``language`` is the
    last language the user chose (null: never chose), used at their next login."""

    __tablename__ = USERS
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),
        CheckConstraint(f"role <> '{CREATOR}' OR creator_id IS NOT NULL", name="creator_has_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(400))
    role: Mapped[str] = mapped_column(String(32))
    creator_id: Mapped[str | None] = mapped_column(
        String(S.MAX_ID_CHARS), ForeignKey(Creator.__table__.c.creator_id), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    language: Mapped[str | None] = mapped_column(String(8))


class LoginAttempt(DashboardBase):
    """An audit row per login attempt (successful or not)."""

    __tablename__ = LOGIN_ATTEMPTS

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(200), index=True)
    success: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoginThrottle(DashboardBase):
    """Recent failed logins of one user from one source address, and the wait they impose.

    ``failed`` forgets one failure per ``dashboard.auth.FORGET_S`` since
    ``last_failed_at``; ``locked_until`` ends the current wait. Keyed by
    source so that guesses from one address never make the account wait for
    another.
    """

    __tablename__ = THROTTLE

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(User.id), primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LoginSession(DashboardBase):
    """A login that outlives a browser tab: the sha256 of a random token held in a cookie.

    Valid while ``now < expires_at`` and ``revoked_at`` is unset; logging out
    (or ``residuals users revoke``) sets ``revoked_at``.
    """

    __tablename__ = SESSIONS

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(User.id), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
