"""The ledger schema: tables, and the triggers that make it append-only and balanced.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Rule (see ``ledger.store.models``): a committed ledger transaction has a seal
(deferred foreign key ``transactions.id -> transaction_seals``), a seal is
refused unless the transaction's entries (at least two) sum to zero per
currency, entries cannot be added to a sealed transaction, and entries,
transactions, seals, batches, statements and clip credits refuse UPDATE and
DELETE (and TRUNCATE on PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY = ("entries", "transactions", "transaction_seals", "batches", "statements",
               "batch_clip_credits")

UNBALANCED = "ledger: transaction entries do not sum to zero per currency (or fewer than two)"
SEALED = "ledger: transaction is sealed, no entries can be added to it"


def _sealed_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ['id'], ['transaction_seals.transaction_id'], name='fk_transactions_sealed',
        initially='DEFERRED', deferrable=True)


SQLITE_TRIGGERS = [
    *(f"""CREATE TRIGGER {t}_no_{op_.lower()} BEFORE {op_} ON {t}
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {op_} on {t} refused'); END"""
      for t in APPEND_ONLY for op_ in ("UPDATE", "DELETE")),
    f"""CREATE TRIGGER entries_open_only BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM transaction_seals WHERE transaction_id = NEW.transaction_id)
BEGIN SELECT RAISE(ABORT, '{SEALED}'); END""",
    f"""CREATE TRIGGER seals_balance BEFORE INSERT ON transaction_seals
WHEN (SELECT count(*) FROM entries WHERE transaction_id = NEW.transaction_id) < 2
  OR EXISTS (SELECT 1 FROM entries WHERE transaction_id = NEW.transaction_id
             GROUP BY currency HAVING sum(amount_minor) <> 0)
BEGIN SELECT RAISE(ABORT, '{UNBALANCED}'); END""",
]

POSTGRES_TRIGGERS = [
    """CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END $$""",
    *(f"""CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {t}
FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""" for t in APPEND_ONLY),
    f"""CREATE FUNCTION ledger_entries_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM new_rows n JOIN transaction_seals s
             ON s.transaction_id = n.transaction_id) THEN
    RAISE EXCEPTION '{SEALED}' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER entries_open_only AFTER INSERT ON entries
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_open()""",
    f"""CREATE FUNCTION ledger_seal_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT count(*) FROM entries WHERE transaction_id = NEW.transaction_id) < 2
     OR EXISTS (SELECT 1 FROM entries WHERE transaction_id = NEW.transaction_id
                GROUP BY currency HAVING sum(amount_minor) <> 0) THEN
    RAISE EXCEPTION '{UNBALANCED}' USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$""",
    """CREATE TRIGGER seals_balance BEFORE INSERT ON transaction_seals
FOR EACH ROW EXECUTE FUNCTION ledger_seal_balanced()""",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table('batches',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('supersedes_id', sa.String(length=64), nullable=True),
    sa.Column('policy_name', sa.String(length=200), nullable=False),
    sa.Column('policy_hash', sa.String(length=64), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('pool_minor', sa.BigInteger(), nullable=False),
    sa.Column('withheld_minor', sa.BigInteger(), nullable=False),
    sa.Column('creators_paid', sa.Integer(), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('batch_hash', sa.String(length=64), nullable=False),
    sa.Column('manifest', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('pool_minor > 0', name=op.f('ck_batches_pool_positive')),
    sa.CheckConstraint('revision >= 1', name=op.f('ck_batches_revision_positive')),
    sa.CheckConstraint('seq >= 1', name=op.f('ck_batches_seq_positive')),
    sa.CheckConstraint('withheld_minor >= 0', name=op.f('ck_batches_withheld_nonneg')),
    sa.ForeignKeyConstraint(['supersedes_id'], ['batches.batch_id'], name=op.f('fk_batches_supersedes_id_batches')),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_batches')),
    sa.UniqueConstraint('batch_hash', name=op.f('uq_batches_batch_hash')),
    sa.UniqueConstraint('period', 'revision', name='uq_batches_period_revision'),
    sa.UniqueConstraint('prev_hash', name=op.f('uq_batches_prev_hash')),
    sa.UniqueConstraint('seq', name=op.f('uq_batches_seq')),
    sa.UniqueConstraint('supersedes_id', name=op.f('uq_batches_supersedes_id'))
    )
    op.create_index(op.f('ix_batches_period'), 'batches', ['period'], unique=False)

    op.create_table('creators',
    sa.Column('creator_id', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('creator_id', name=op.f('pk_creators'))
    )
    op.create_table('login_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    op.create_index(op.f('ix_login_attempts_username'), 'login_attempts', ['username'], unique=False)

    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=240), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('creator_id', sa.String(length=200), nullable=True),
    sa.CheckConstraint("(kind = 'creator_payable') = (creator_id IS NOT NULL)", name=op.f('ck_accounts_payable_creator')),
    sa.CheckConstraint("kind IN ('creator_payable', 'creator_fund', 'payouts_in_transit', 'platform')", name=op.f('ck_accounts_kind')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.creator_id'], name=op.f('fk_accounts_creator_id_creators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_accounts_code'))
    )
    op.create_index(op.f('ix_accounts_creator_id'), 'accounts', ['creator_id'], unique=False)

    op.create_table('batch_clip_credits',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('clip_id', sa.String(length=200), nullable=False),
    sa.Column('creator_id', sa.String(length=200), nullable=False),
    sa.Column('weight', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], name=op.f('fk_batch_clip_credits_batch_id_batches')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.creator_id'], name=op.f('fk_batch_clip_credits_creator_id_creators')),
    sa.PrimaryKeyConstraint('batch_id', 'clip_id', name=op.f('pk_batch_clip_credits'))
    )
    op.create_index('ix_batch_clip_credits_creator', 'batch_clip_credits', ['creator_id', 'batch_id'], unique=False)

    op.create_table('statements',
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('creator_id', sa.String(length=200), nullable=False),
    sa.Column('share', sa.Float(), nullable=False),
    sa.Column('exact_minor', sa.Float(), nullable=False),
    sa.Column('allocated_minor', sa.BigInteger(), nullable=False),
    sa.Column('carried_in_minor', sa.BigInteger(), nullable=False),
    sa.Column('paid_minor', sa.BigInteger(), nullable=False),
    sa.Column('carried_out_minor', sa.BigInteger(), nullable=False),
    sa.Column('eligible', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.CheckConstraint('allocated_minor >= 0 AND carried_in_minor >= 0 AND paid_minor >= 0 AND carried_out_minor >= 0', name=op.f('ck_statements_nonneg')),
    sa.CheckConstraint('paid_minor + carried_out_minor = allocated_minor + carried_in_minor', name=op.f('ck_statements_conserves')),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], name=op.f('fk_statements_batch_id_batches')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.creator_id'], name=op.f('fk_statements_creator_id_creators')),
    sa.PrimaryKeyConstraint('batch_id', 'creator_id', name=op.f('pk_statements'))
    )
    op.create_index(op.f('ix_statements_creator_id'), 'statements', ['creator_id'], unique=False)

    # SQLite cannot ALTER TABLE ADD CONSTRAINT: it gets the deferred key inline
    # (SQLite resolves the referenced table lazily); PostgreSQL gets it below.
    sealed_fk = [_sealed_fk()] if sqlite else []
    op.create_table('transactions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('batch_id', sa.String(length=64), nullable=False),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('memo', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name=op.f('ck_transactions_reversal_ref')),
    sa.CheckConstraint("kind IN ('allocation', 'payout', 'reversal')", name=op.f('ck_transactions_kind')),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.batch_id'], name=op.f('fk_transactions_batch_id_batches')),
    *sealed_fk,
    sa.ForeignKeyConstraint(['reverses_id'], ['transactions.id'], name=op.f('fk_transactions_reverses_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_transactions_reverses_id'))
    )
    op.create_index(op.f('ix_transactions_batch_id'), 'transactions', ['batch_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=400), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('creator_id', sa.String(length=200), nullable=True),
    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("role <> 'creator' OR creator_id IS NOT NULL", name=op.f('ck_users_creator_has_id')),
    sa.CheckConstraint("role IN ('admin', 'economist', 'creator')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['creator_id'], ['creators.creator_id'], name=op.f('fk_users_creator_id_creators')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_index(op.f('ix_users_creator_id'), 'users', ['creator_id'], unique=False)

    op.create_table('balances',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_balances_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'currency', name=op.f('pk_balances'))
    )
    op.create_table('entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.CheckConstraint('amount_minor <> 0', name=op.f('ck_entries_nonzero')),
    sa.CheckConstraint('length(currency) = 3', name=op.f('ck_entries_currency_code')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_entries_account_id_accounts')),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_entries_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entries'))
    )
    op.create_index('ix_entries_account_currency', 'entries', ['account_id', 'currency'], unique=False)
    op.create_index(op.f('ix_entries_transaction_id'), 'entries', ['transaction_id'], unique=False)

    op.create_table('transaction_seals',
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sealed_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_transaction_seals_transaction_id_transactions')),
    sa.PrimaryKeyConstraint('transaction_id', name=op.f('pk_transaction_seals'))
    )
    if not sqlite:
        op.create_foreign_key('fk_transactions_sealed', 'transactions', 'transaction_seals',
                              ['id'], ['transaction_id'], deferrable=True, initially='DEFERRED')
    for ddl in SQLITE_TRIGGERS if sqlite else POSTGRES_TRIGGERS:
        op.execute(ddl)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_constraint('fk_transactions_sealed', 'transactions', type_='foreignkey')
    for table in ("transaction_seals", "entries", "balances", "users", "transactions",
                  "statements", "batch_clip_credits", "accounts", "login_attempts", "creators",
                  "batches"):
        op.drop_table(table)
    if not sqlite:
        for fn in ("ledger_refuse_change", "ledger_entries_open", "ledger_seal_balanced"):
            op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
