"""Password hashing, roles and throttled logins against the store's users table."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from contract.errors import ResidualsError
from dashboard import auth
from ledger.store import models

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
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


def test_roles_match_the_store():
    assert set(auth.ROLES) == set(models.ROLES)


def test_lock_seconds_grows_then_caps():
    waits = [auth.lock_seconds(n) for n in range(40)]
    assert waits[: auth.FREE_ATTEMPTS] == [0.0] * auth.FREE_ATTEMPTS
    assert waits[auth.FREE_ATTEMPTS] == auth.BASE_LOCK_S
    assert all(b >= a for a, b in zip(waits, waits[1:]))
    assert waits[auth.FREE_ATTEMPTS + 1] == 2 * auth.BASE_LOCK_S
    assert max(waits) == auth.MAX_LOCK_S


def test_add_user_and_authenticate(session):
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    stored = session.scalar(select(models.User).where(models.User.username == "ada"))
    assert stored.password_hash != "secret" and auth.verify_password(stored.password_hash, "secret")
    who = auth.authenticate(session, "ada", "secret", now=T0)
    assert who == auth.LoggedIn("ada", auth.CREATOR, "cA")
    assert auth.authenticate(session, "ada", "wrong", now=T0) is None
    assert auth.authenticate(session, "nobody", "secret", now=T0) is None
    attempts = session.scalars(select(models.LoginAttempt.success)).all()
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
    assert session.scalar(select(models.User)) is None


def test_duplicate_username(session):
    auth.add_user(session, "ada", "pw", auth.ADMIN)
    with pytest.raises(ResidualsError, match="already exists"):
        auth.add_user(session, "ada", "pw2", auth.ECONOMIST)


def test_repeated_failures_are_slowed_down(session):
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    now = T0
    for _ in range(auth.FREE_ATTEMPTS):
        assert auth.authenticate(session, "ada", "bad", now=now) is None
    # Locked now: even the right password fails until the window has passed.
    wait = auth.lock_seconds(auth.FREE_ATTEMPTS)
    assert auth.authenticate(session, "ada", "secret", now=now) is None
    assert auth.authenticate(session, "ada", "secret",
                             now=now + dt.timedelta(seconds=wait - 0.5)) is None
    # Another failure after the window doubles the wait.
    later = now + dt.timedelta(seconds=wait + 0.1)
    assert auth.authenticate(session, "ada", "bad", now=later) is None
    user = session.scalar(select(models.User))
    assert user.failed_logins == auth.FREE_ATTEMPTS + 1
    locked = user.locked_until.replace(tzinfo=dt.UTC) if user.locked_until.tzinfo is None \
        else user.locked_until
    assert locked - later == dt.timedelta(seconds=2 * wait)
    # After that window the right password works and resets the count.
    ok = auth.authenticate(session, "ada", "secret", now=later + dt.timedelta(seconds=2 * wait))
    assert ok is not None and user.failed_logins == 0 and user.locked_until is None


def test_lockout_survives_a_new_session(session):
    """The failure count lives in the database, not in the browser session."""
    auth.add_user(session, "ada", "secret", auth.CREATOR, "cA")
    for _ in range(auth.FREE_ATTEMPTS):
        auth.authenticate(session, "ada", "bad", now=T0)
    session.commit()
    with Session(session.get_bind()) as other:
        assert auth.authenticate(other, "ada", "secret", now=T0) is None


def test_create_demo_users_is_idempotent(session):
    first = auth.create_demo_users(session, ["cA", "cB"])
    again = auth.create_demo_users(session, ["cA", "cB"])
    assert first == again
    roles = dict(session.execute(select(models.User.username, models.User.role)).all())
    assert roles == {"admin": auth.ADMIN, "economist": auth.ECONOMIST,
                     "cA": auth.CREATOR, "cB": auth.CREATOR}
    for username, password, role in first:
        who = auth.authenticate(session, username, password, now=T0)
        assert who is not None and who.role == role
