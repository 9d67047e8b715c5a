"""Dashboard users: argon2 password hashes, roles, throttled logins and lasting sessions.

Rule: a password is stored only as an argon2id hash; a login either returns
the user or ``None``, every kind of failure (unknown name, wrong password,
waiting) looks the same and costs the same work: one argon2 verification.
Failures are counted per (user, source address) in the database, so a wait
holds across browser sessions and server processes, and guesses from one
address never make the account wait for another. A login that succeeds gets
a session: a random token whose sha256 is stored with an expiry, revoked on
log-out. Functions take a SQLAlchemy ``Session`` and never commit: the
caller owns the transaction (:func:`login_session` opens the right one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from contract.errors import ResidualsError
from ledger.i18n import N_
from dashboard.models import (
    ADMIN,
    CREATOR,
    ECONOMIST,
    ROLES,
    LoginAttempt,
    LoginSession,
    LoginThrottle,
    User,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

__all__ = ["ADMIN", "CREATOR", "ECONOMIST", "ROLES"]

#: Failed attempts from one source allowed before the waiting time starts.
FREE_ATTEMPTS = 3
#: First waiting time after the free attempts, in seconds; it doubles per failure.
BASE_LOCK_S = 2.0
#: Longest waiting time, in seconds.
MAX_LOCK_S = 15 * 60.0
#: One failure is forgotten per this many seconds without a failure.
FORGET_S = 15 * 60.0
#: How long a session lasts after logging in, in seconds.
SESSION_S = 12 * 3600.0
#: The source recorded when the address of the visitor is not known.
UNKNOWN_SOURCE = "unknown"
#: The one message every failed login shows.
FAILED_MESSAGE = N_(
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
    language: str | None = None


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
    """Seconds a source must wait after its ``failed``-th recent failure.

    Zero for the first :data:`FREE_ATTEMPTS` failures, then ``BASE_LOCK_S``
    doubling with each further failure, capped at ``MAX_LOCK_S``.
    """
    if failed < FREE_ATTEMPTS:
        return 0.0
    return min(MAX_LOCK_S, BASE_LOCK_S * 2.0 ** min(failed - FREE_ATTEMPTS, 30))


def recent_failures(failed: int, last_failed_at: dt.datetime, now: dt.datetime) -> int:
    """``failed`` less one failure per :data:`FORGET_S` elapsed since ``last_failed_at``."""
    elapsed = max(0.0, (now - _utc(last_failed_at)).total_seconds())
    return max(0, failed - int(elapsed // FORGET_S))


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

    from ledger.store import models

    username = username.strip()
    if not username:
        raise ResidualsError("USERNAME: must not be empty")
    check_role(role, creator_id)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ResidualsError(f"USERNAME: user {username!r} already exists")
    if creator_id is not None and session.get(models.Creator, creator_id) is None:
        raise ResidualsError(f"--creator: creator {creator_id!r} is not in the ledger")
    session.add(User(username=username, password_hash=hash_password(password), role=role,
                     creator_id=creator_id))
    session.flush()


def login_session(engine: Engine) -> Session:
    """A session for :func:`authenticate` whose transaction serialises concurrent logins.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock at the start (a read
    upgraded to a write later cannot wait for the busy timeout and fails at
    once). PostgreSQL: :func:`authenticate` locks the user's row instead, so
    logins of different users run in parallel and never wait for a batch.
    """
    from sqlalchemy.orm import Session

    from ledger.store.engine import write_session

    if engine.dialect.name == "sqlite":
        return write_session(engine)
    return Session(engine, expire_on_commit=False)


def _throttle(session: Session, user: User, source: str) -> LoginThrottle:
    row = session.get(LoginThrottle, (user.id, source), with_for_update=True)
    if row is None:
        row = LoginThrottle(user_id=user.id, source=source, failed=0,
                            last_failed_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
        session.add(row)
    return row


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    now: dt.datetime | None = None,
    source: str | None = None,
) -> LoggedIn | None:
    """The user if ``password`` is right and ``source`` is not waiting, else ``None``.

    Every attempt verifies one argon2 hash (the user's, or a dummy one for an
    unknown name), waiting or not. A wrong password counts one failure for
    (user, ``source``) and sets the wait (:func:`lock_seconds` of the recent
    failures, :func:`recent_failures`); an attempt inside the wait fails and
    counts nothing; a success clears that source's failures. The user's row
    is locked for the transaction (PostgreSQL), so parallel guesses all count.
    """
    from sqlalchemy import select

    now = _utc(now or _now())
    source = (source or UNKNOWN_SOURCE)[:64]
    username = username.strip()
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    matches = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    ok = False
    if user is not None:
        throttle = _throttle(session, user, source)
        waiting = throttle.locked_until is not None and now < _utc(throttle.locked_until)
        if waiting:
            pass  # the password was checked (same work) but does not count
        elif matches:
            ok = True
            throttle.failed, throttle.locked_until = 0, None
        else:
            throttle.failed = recent_failures(throttle.failed, throttle.last_failed_at, now) + 1
            throttle.last_failed_at = now
            wait = lock_seconds(throttle.failed)
            throttle.locked_until = now + dt.timedelta(seconds=wait) if wait else None
    session.add(LoginAttempt(username=username[:200], success=ok, at=now, source=source))
    session.flush()
    return (LoggedIn(user.username, user.role, user.creator_id, user.language)
            if ok and user else None)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_login_session(session: Session, username: str, *, now: dt.datetime | None = None,
                       lifetime_s: float = SESSION_S) -> str:
    """A new random token for ``username``'s login; only its sha256 is stored."""
    from sqlalchemy import select

    now = _utc(now or _now())
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ResidualsError(f"USERNAME: no user {username!r}")
    token = secrets.token_urlsafe(32)
    session.add(LoginSession(token_sha256=_digest(token), user_id=user.id, created_at=now,
                             expires_at=now + dt.timedelta(seconds=lifetime_s)))
    session.flush()
    return token


def session_user(session: Session, token: str, *, now: dt.datetime | None = None
                 ) -> LoggedIn | None:
    """The user of a live session token (not expired, not revoked), else ``None``."""
    from sqlalchemy import select

    if not token or len(token) > 200:
        return None
    now = _utc(now or _now())
    row = session.execute(
        select(User.username, User.role, User.creator_id, User.language,
               LoginSession.expires_at, LoginSession.revoked_at)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_sha256 == _digest(token))).first()
    if row is None or row.revoked_at is not None or now >= _utc(row.expires_at):
        return None
    return LoggedIn(row.username, row.role, row.creator_id, row.language)


def set_language(session: Session, username: str, language: str) -> None:
    """Remember ``language`` (one of :data:`ledger.i18n.LANGUAGES`) as ``username``'s
    choice; their next login reads the pages in it.

    Raises
    ------
    ResidualsError
        An unknown language or user.
    """
    from sqlalchemy import update

    from ledger.i18n import check_language

    check_language(language)
    done = session.execute(update(User).where(User.username == username)
                           .values(language=language))
    if not done.rowcount:
        raise ResidualsError(f"username={username!r}: no such user")


def revoke_session(session: Session, token: str, *, now: dt.datetime | None = None) -> None:
    """End a session token (log-out): it never logs anybody in again."""
    from sqlalchemy import update

    session.execute(update(LoginSession).where(LoginSession.token_sha256 == _digest(token),
                                               LoginSession.revoked_at.is_(None))
                    .values(revoked_at=_utc(now or _now())))


def revoke_user_sessions(session: Session, username: str, *,
                         now: dt.datetime | None = None) -> int:
    """End every live session of ``username``; returns how many were ended.

    Raises
    ------
    ResidualsError
        When there is no such user (ending "0 sessions" of a mistyped name would
        look like success).
    """
    from sqlalchemy import update

    user = _locked_user(session, username)
    result = session.execute(update(LoginSession).where(LoginSession.user_id == user.id,
                                                        LoginSession.revoked_at.is_(None))
                             .values(revoked_at=_utc(now or _now())))
    return int(result.rowcount or 0)



def _locked_user(session: Session, username: str) -> User:
    """``username``'s row, locked for the transaction (PostgreSQL) so that a login of the
    same user waits for the change and then sees it.

    Raises
    ------
    ResidualsError
        When there is no such user.
    """
    from sqlalchemy import select

    user = session.scalar(select(User).where(User.username == username.strip())
                          .with_for_update())
    if user is None:
        raise ResidualsError(f"USERNAME: no user {username.strip()!r}")
    return user


def reset_password(session: Session, username: str, password: str, *,
                   now: dt.datetime | None = None) -> int:
    """Give ``username`` a new password and end every live session; returns how many ended.

    A login that raced the reset either finished before it (its session is
    ended here) or waits for the user's lock and checks the new hash.
    """
    from sqlalchemy import update

    user = _locked_user(session, username)
    user.password_hash = hash_password(password)
    result = session.execute(update(LoginSession).where(LoginSession.user_id == user.id,
                                                        LoginSession.revoked_at.is_(None))
                             .values(revoked_at=_utc(now or _now())))
    session.flush()
    return int(result.rowcount or 0)


def unlock_user(session: Session, username: str, source: str | None = None) -> int:
    """Forget ``username``'s recent failed logins (from ``source`` only, if given), ending
    any wait; returns how many (user, source) counters were cleared. The attempts
    themselves stay in the audit table."""
    from sqlalchemy import delete

    user = _locked_user(session, username)
    stmt = delete(LoginThrottle).where(LoginThrottle.user_id == user.id)
    if source is not None:
        stmt = stmt.where(LoginThrottle.source == source[:64])
    return int(session.execute(stmt).rowcount or 0)


def remove_user(session: Session, username: str) -> int:
    """Delete ``username`` with its sessions and failure counters; returns how many sessions
    were deleted (live or not).

    Every session token of the user stops working when the transaction
    commits (:func:`session_user` finds no row). The login attempts stay:
    they are the audit trail, kept by username.
    """
    from sqlalchemy import delete

    user = _locked_user(session, username)
    ended = session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.execute(delete(LoginThrottle).where(LoginThrottle.user_id == user.id))
    session.delete(user)
    session.flush()
    return int(ended.rowcount or 0)

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
    names = [w[0] for w in wanted]
    existing = set(session.scalars(select(User.username).where(User.username.in_(names))))
    for username, password, role, creator_id in wanted:
        if username not in existing:
            add_user(session, username, password, role, creator_id)
    return [(u, p, r) for u, p, r, _ in wanted]


def login_reader(engine: Engine) -> Session:
    """A plain read session for :func:`session_user`."""
    from sqlalchemy.orm import Session

    return Session(engine, expire_on_commit=False)
