"""Password hashing, roles, throttled logins and sessions against the dashboard's tables."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from contract.errors import ResidualsError
from dashboard import auth
from dashboard import models as dm
from ledger.store import models

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    dm.DashboardBase.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([models.Creator(creator_id="cA", display_name="Ada"),
                   models.Creator(creator_id="cB", display_name="Bo")])
        s.flush()
        yield s


def test_hash_is_salted_argon2_and_verifies():
    h1, h2 = auth.hash_password("pw"), auth.hash_password("pw")
    assert h1 != h2 and h1.startswith("$argon2id$")
    assert auth.verify_password(h1, "pw") and not auth.verify_password(h1, "pW")
    assert not auth.verify_password("not a hash", "pw")
    with pytest.raises(ResidualsError, match="password"):
        auth.hash_password("")


def test_roles_are_the_models_roles():
    assert auth.ROLES == dm.ROLES


def test_lock_seconds_grows_then_caps():
    waits = [auth.lock_seconds(n) for n in range(40)]
    assert waits[: auth.FREE_ATTEMPTS] == [0.0] * auth.FREE_ATTEMPTS
    assert waits[auth.FREE_ATTEMPTS] == auth.BASE_LOCK_S
    assert all(b >= a for a, b in zip(waits, waits[1:]))
    assert waits[auth.FREE_ATTEMPTS + 1] == 2 * auth.BASE_LOCK_S
    assert max(waits) == auth.MAX_LOCK_S


def test_add_user_and_authenticate(session):
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    stored = session.scalar(select(dm.User).where(dm.User.username == "ada"))
    assert stored.password_hash != "secret" and auth.verify_password(stored.password_hash, "secret")
    who = auth.authenticate(session, "ada", "secret", now=T0)
    assert who == auth.LoggedIn("ada", auth.CREATOR, "cA")
    assert auth.authenticate(session, "ada", "wrong", now=T0) is None
    assert auth.authenticate(session, "nobody", "secret", now=T0) is None
    attempts = session.scalars(select(dm.LoginAttempt.success)).all()
    assert attempts == [True, False, False]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "pw", auth.ADMIN), "USERNAME"),
        (("x", "pw", "owner"), "--role"),
        (("x", "pw", auth.CREATOR), "--creator"),
        (("x", "pw", auth.ADMIN, "cA"), "--creator"),
        (("x", "pw", auth.CREATOR, "nope"), "not in the ledger"),
        (("x", "", auth.ADMIN), "password"),
    ],
)
def test_add_user_rejects(session, args, match):
    with pytest.raises(ResidualsError, match=match):
        auth.add_user(session, *args)
    assert session.scalar(select(dm.User)) is None


def test_duplicate_username(session):
    auth.add_user(session, "ada", "pw", auth.ADMIN)
    with pytest.raises(ResidualsError, match="already exists"):
        auth.add_user(session, "ada", "pw2", auth.ECONOMIST)


def _throttle(session, username="ada", source=auth.UNKNOWN_SOURCE):
    user = session.scalar(select(dm.User).where(dm.User.username == username))
    return session.get(dm.LoginThrottle, (user.id, source))


def test_repeated_failures_are_slowed_down(session):
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    now = T0
    for _ in range(auth.FREE_ATTEMPTS):
        assert auth.authenticate(session, "ada", "bad", now=now) is None
    # Waiting now: even the right password fails until the wait has passed.
    wait = auth.lock_seconds(auth.FREE_ATTEMPTS)
    assert auth.authenticate(session, "ada", "secret", now=now) is None
    assert auth.authenticate(session, "ada", "secret",
                             now=now + dt.timedelta(seconds=wait - 0.5)) is None
    # Another failure after the wait doubles it.
    later = now + dt.timedelta(seconds=wait + 0.1)
    assert auth.authenticate(session, "ada", "bad", now=later) is None
    row = _throttle(session)
    assert row.failed == auth.FREE_ATTEMPTS + 1
    assert auth._utc(row.locked_until) - later == dt.timedelta(seconds=2 * wait)
    # After that wait the right password works and clears the count.
    ok = auth.authenticate(session, "ada", "secret", now=later + dt.timedelta(seconds=2 * wait))
    assert ok is not None and row.failed == 0 and row.locked_until is None


def test_lockout_survives_a_new_session(session):
    """The failure count lives in the database, not in the browser session."""
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    for _ in range(auth.FREE_ATTEMPTS):
        auth.authenticate(session, "ada", "bad", now=T0)
    session.commit()
    with Session(session.get_bind()) as other:
        assert auth.authenticate(other, "ada", "secret", now=T0) is None


def test_every_attempt_verifies_one_hash(session, monkeypatch):
    """Unknown user, waiting user, wrong and right password: the same work, one argon2
    verification each (the code path, not the clock)."""
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    calls = []
    real = auth.verify_password
    monkeypatch.setattr(auth, "verify_password", lambda h, p: calls.append(h) or real(h, p))
    cases = [("nobody", "x"), ("ada", "bad"), ("ada", "bad"), ("ada", "bad"),
             ("ada", "secret"),  # waiting: checked, refused
             ("nobody", "secret")]
    for username, password in cases:
        before = len(calls)
        assert auth.authenticate(session, username, password, now=T0) is None
        assert len(calls) == before + 1, (username, password)
    assert calls[0] == calls[-1] == auth._DUMMY_HASH
    assert all(h != auth._DUMMY_HASH for h in calls[1:5])
    assert _throttle(session).locked_until is not None  # the fifth attempt was waiting


def test_slow_guessing_never_locks_the_account_out(session):
    """One wrong guess every 15 minutes for hours, from the owner's own address: the right
    password still passes between guesses (failures are forgotten as fast as they come)."""
    auth.add_user(session, "admin", "right", auth.ADMIN)
    at = T0
    for _ in range(12):
        assert auth.authenticate(session, "admin", "guess", now=at, source="10.0.0.9") is None
        ok = auth.authenticate(session, "admin", "right", source="10.0.0.9",
                               now=at + dt.timedelta(minutes=7))
        assert ok is not None, at
        at += dt.timedelta(minutes=15)


def test_fast_guessing_elsewhere_never_makes_the_owner_wait(session):
    """Guesses at the fastest rate the wait allows, from one address, for hours: the owner
    from another address always gets in; the guesser waits the full maximum."""
    auth.add_user(session, "admin", "right", auth.ADMIN)
    at = T0
    for _ in range(16):
        auth.authenticate(session, "admin", "guess", now=at, source="203.0.113.7")
        row = _throttle(session, "admin", "203.0.113.7")
        at = auth._utc(row.locked_until) if row.locked_until else at + dt.timedelta(seconds=1)
        assert auth.authenticate(session, "admin", "right", now=at - dt.timedelta(seconds=1),
                                 source="198.51.100.2") is not None
    assert auth.lock_seconds(row.failed) == auth.MAX_LOCK_S


def test_the_right_password_after_the_wait_always_passes(session):
    """However many failures, once the announced wait is over the right password passes."""
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    at = T0
    for _ in range(16):  # to the longest wait and beyond
        auth.authenticate(session, "ada", "bad", now=at)
        row = _throttle(session)
        at = auth._utc(row.locked_until) if row.locked_until else at
    assert auth._utc(row.locked_until) - auth._utc(row.last_failed_at) == dt.timedelta(
        seconds=auth.MAX_LOCK_S)
    assert auth.authenticate(session, "ada", "secret", now=at) is not None


def test_sessions_expire_and_are_revoked(session):
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    token = auth.open_login_session(session, "ada", now=T0, lifetime_s=60)
    assert auth.session_user(session, token, now=T0) == auth.LoggedIn("ada", auth.CREATOR, "cA")
    assert auth.session_user(session, token, now=T0 + dt.timedelta(seconds=60)) is None
    other = auth.open_login_session(session, "ada", now=T0)
    assert auth.session_user(session, other + "x", now=T0) is None
    auth.revoke_session(session, other, now=T0)
    assert auth.session_user(session, other, now=T0) is None
    third = auth.open_login_session(session, "ada", now=T0)
    assert auth.revoke_user_sessions(session, "ada", now=T0) == 2  # the expired one too
    assert auth.session_user(session, third, now=T0) is None
    stored = session.scalars(select(dm.LoginSession.token_sha256)).all()
    assert token not in stored and len(stored) == 3  # only digests are kept


def test_create_demo_users_is_idempotent(session):
    first = auth.create_demo_users(session, ["cA", "cB"])
    again = auth.create_demo_users(session, ["cA", "cB"])
    assert first == again
    roles = dict(session.execute(select(dm.User.username, dm.User.role)).all())
    assert roles == {"admin": auth.ADMIN, "economist": auth.ECONOMIST,
                     "cA": auth.CREATOR, "cB": auth.CREATOR}
    for username, password, role in first:
        who = auth.authenticate(session, username, password, now=T0)
        assert who is not None and who.role == role
