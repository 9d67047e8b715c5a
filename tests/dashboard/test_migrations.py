"""Migrations 0005 and 0006: the dashboard's tables move out of the ledger's, keeping data."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

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
