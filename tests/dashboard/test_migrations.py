"""Migrations 0005, 0006 and 0010: the dashboard's tables move out of the ledger's, keeping data;
users gain their language."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from contract.errors import ResidualsError
from dashboard import auth
from ledger.store.engine import _alembic_config, make_engine, upgrade, write_session


def test_users_and_attempts_move_with_their_data(db_url):
    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, username, password_hash, role, failed_logins) "
                          "VALUES (7, 'old-admin', :h, 'admin', 2)"),
                     {"h": auth.hash_password("old-pass")})
        conn.execute(text("INSERT INTO login_attempts (id, username, success) "
                          "VALUES (41, 'old-admin', false)"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, username, role FROM dashboard_users")).all() == [
            (7, "old-admin", "admin")]
        assert conn.execute(text("SELECT id, username, success FROM dashboard_login_attempts")
                            ).all() == [(41, "old-admin", False)]
    with write_session(engine) as s, s.begin():
        assert auth.authenticate(s, "old-admin", "old-pass") is not None
        auth.add_user(s, "new-admin", "pw", auth.ADMIN)  # ids continue after the copied rows
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM dashboard_users ORDER BY id")).scalars().all()
        assert ids[0] == 7 and ids[1] > 7
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, username FROM users ORDER BY id")).all()[0] == (
            7, "old-admin")
    engine.dispose()


def test_user_language_column_upgrades_and_downgrades_keeping_users(db_url):
    """0010 adds ``dashboard_users.language`` (existing users: never chosen); a chosen
    language reaches the login; downgrading to 0009 drops the column and keeps users."""
    from dashboard.models import USERS
    from ledger.store import models

    engine = make_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0009")
    with write_session(engine) as s, s.begin():  # a user made before 0010 (raw: no language)
        s.add(models.Creator(creator_id="cA", display_name="Ada"))
        s.flush()
        s.execute(text(f"INSERT INTO {USERS} (username, password_hash, role, creator_id) "
                       "VALUES ('ada', :h, 'creator', 'cA')"), {"h": auth.hash_password("pw")})
    upgrade(engine)
    with write_session(engine) as s, s.begin():
        token = auth.open_login_session(s, "ada")
        assert auth.session_user(s, token).language is None
        auth.set_language(s, "ada", "es")
    with write_session(engine) as s, s.begin():
        assert auth.session_user(s, token).language == "es"
        assert auth.authenticate(s, "ada", "pw").language == "es"
        with pytest.raises(ResidualsError, match=r"^language='fr': expected one of en, es$"):
            auth.set_language(s, "ada", "fr")
        with pytest.raises(ResidualsError, match=r"^username='nobody': no such user$"):
            auth.set_language(s, "nobody", "es")
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0009")
    with engine.connect() as conn:
        cols = [c["name"] for c in inspect(conn).get_columns(USERS)]
        assert "language" not in cols
        assert conn.execute(text(f"SELECT username FROM {USERS}")).scalars().all() == ["ada"]
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT language FROM {USERS}")).scalars().all() == [None]
    engine.dispose()
