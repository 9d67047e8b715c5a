"""Dashboard users: argon2 password hashes, roles, and throttled logins.

Rule: a password is stored only as an argon2id hash; a login either returns
the user or ``None``, and every kind of failure (unknown name, wrong
password, too many recent failures) looks the same to the person logging in.
Each failure for a username doubles the time before that username may try
again (after :data:`FREE_ATTEMPTS` free tries, capped at :data:`MAX_LOCK_S`),
recorded in the database so that it holds across browser sessions and server
processes. Functions take a SQLAlchemy ``Session`` and never commit: the
caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from contract.errors import ResidualsError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ADMIN = "admin"
ECONOMIST = "economist"
CREATOR = "creator"
#: The roles of the store's ``users.role`` column (kept equal by a test).
ROLES: tuple[str, ...] = (ADMIN, ECONOMIST, CREATOR)

#: Failed attempts allowed before the waiting time starts.
FREE_ATTEMPTS = 3
#: First waiting time after the free attempts, in seconds; it doubles per failure.
BASE_LOCK_S = 2.0
#: Longest waiting time, in seconds.
MAX_LOCK_S = 15 * 60.0
#: The one message every failed login shows.
FAILED_MESSAGE = (
    "Login failed: that username and password do not match an account, "
    "or there were too many recent attempts. Wait a little and try again."
)

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so that the reply takes as long.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class LoggedIn:
    """Who is logged in: what the pages and the data layer may rely on."""

    username: str
    role: str
    creator_id: str | None


def user_model() -> type:
    """The store's ``User`` model (imported lazily: the store pulls in SQLAlchemy)."""
    from ledger.store import models

    return models.User


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime (SQLite hands back naive values, PostgreSQL aware ones)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; two calls give different strings)."""
    if not password:
        raise ResidualsError("password: must not be empty")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash never matches."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def lock_seconds(failed: int) -> float:
    """Seconds a username must wait after its ``failed``-th consecutive failure.

    Zero for the first :data:`FREE_ATTEMPTS` failures, then ``BASE_LOCK_S``
    doubling with each further failure, capped at ``MAX_LOCK_S``.
    """
    if failed < FREE_ATTEMPTS:
        return 0.0
    return min(MAX_LOCK_S, BASE_LOCK_S * 2.0 ** min(failed - FREE_ATTEMPTS, 30))


def check_role(role: str, creator_id: str | None) -> None:
    """Reject an unknown role, a creator without creator_id, or a creator_id on another role."""
    if role not in ROLES:
        raise ResidualsError(f"--role: {role!r} is not a role, expected one of {', '.join(ROLES)}")
    if role == CREATOR and not creator_id:
        raise ResidualsError("--creator: a creator user must be tied to a creator_id")
    if role != CREATOR and creator_id:
        raise ResidualsError(f"--creator: only creator users have a creator_id, not {role}")


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    creator_id: str | None = None,
) -> None:
    """Create a user with a hashed password; errors name the field that is wrong.

    Raises
    ------
    ResidualsError
        Empty username or password, unknown role, a creator user without a
        known creator_id, or a username that already exists.
    """
    from sqlalchemy import select

    username = username.strip()
    if not username:
        raise ResidualsError("USERNAME: must not be empty")
    check_role(role, creator_id)
    user_cls = user_model()
    if session.scalar(select(user_cls).where(user_cls.username == username)) is not None:
        raise ResidualsError(f"USERNAME: user {username!r} already exists")
    if creator_id is not None:
        from ledger.store import models

        if session.get(models.Creator, creator_id) is None:
            raise ResidualsError(f"--creator: creator {creator_id!r} is not in the ledger")
    session.add(
        user_cls(
            username=username,
            password_hash=hash_password(password),
            role=role,
            creator_id=creator_id,
        )
    )
    session.flush()


def authenticate(
    session: Session, username: str, password: str, *, now: dt.datetime | None = None
) -> LoggedIn | None:
    """The user if ``password`` is right and the username is not waiting, else ``None``.

    A wrong password increments the username's failure count and sets the time
    before which it may not try again (:func:`lock_seconds`); an attempt inside
    that window fails without checking the password; a success resets both.
    The caller commits, so the count survives a failed attempt.
    """
    from sqlalchemy import select

    from ledger.store import models

    now = _utc(now or _now())
    username = username.strip()
    user_cls = user_model()
    user = session.scalar(select(user_cls).where(user_cls.username == username))
    ok = False
    if user is None:
        verify_password(_DUMMY_HASH, password)  # same work as for a real account
    elif user.locked_until is not None and now < _utc(user.locked_until):
        pass  # waiting: the password is not even checked
    elif not verify_password(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        wait = lock_seconds(user.failed_logins)
        user.locked_until = now + dt.timedelta(seconds=wait) if wait else None
    else:
        ok = True
        if user.failed_logins or user.locked_until is not None:
            user.failed_logins = 0
            user.locked_until = None
    session.add(models.LoginAttempt(username=username[:200], success=ok, at=now))
    session.flush()
    return LoggedIn(user.username, user.role, user.creator_id) if ok and user else None


#: Fixed logins of the demo users (printed by ``make demo``; never use them for real).
DEMO_ADMIN = ("admin", "admin-demo-pass")
DEMO_ECONOMIST = ("economist", "economist-demo-pass")
DEMO_CREATOR_PASSWORD = "creator-demo-pass"


def create_demo_users(session: Session, creators: list[str]) -> list[tuple[str, str, str]]:
    """Create an admin, an economist and one creator user per id in ``creators``.

    Creator users are named after their creator_id. Existing users are left as
    they are (so running the demo twice is fine). Returns (username, password,
    role) for every demo login, existing or new, in that order.
    """
    from sqlalchemy import select

    wanted = [(DEMO_ADMIN[0], DEMO_ADMIN[1], ADMIN, None),
              (DEMO_ECONOMIST[0], DEMO_ECONOMIST[1], ECONOMIST, None)]
    wanted += [(cid, DEMO_CREATOR_PASSWORD, CREATOR, cid) for cid in creators]
    user_cls = user_model()
    names = [w[0] for w in wanted]
    existing = set(session.scalars(select(user_cls.username).where(user_cls.username.in_(names))))
    for username, password, role, creator_id in wanted:
        if username not in existing:
            add_user(session, username, password, role, creator_id)
    return [(u, p, r) for u, p, r, _ in wanted]
