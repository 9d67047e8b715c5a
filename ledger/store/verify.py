"""``ledger verify``: recompute everything the ledger claims and report each mismatch.

Rule: each check is a small function ``(session) -> list[Violation]`` in
:data:`CHECKS` (beancount's validation style); :func:`verify` runs them all
and never stops at the first problem. The checks do not trust the triggers:
they recompute from the raw rows.

- every transaction is sealed, has two or more entries, and its entries sum to
  zero per currency;
- stored balances equal the sums of entries per account and currency;
- the hash chain: ``seq`` runs 1..n, each ``prev_hash`` is the previous
  ``batch_hash``, each ``batch_hash`` is the hash of its manifest, each batch
  row equals its manifest, and each manifest's ``lines_sha256`` (and
  ``credits_sha256``, from format 2; with the credits' confidence from format
  3) is the digest of the stored statement lines (clip credits);
- per batch, the entries on creator payables equal the statement lines
  (allocation = allocated, payout = -paid), and the batch's totals match;
- every reversal negates its original exactly, and every superseded batch is
  fully reversed;
- every transaction is explained by a batch manifest: the batch's own
  transactions and nothing else, each leg (fund, platform, in transit, each
  payable) as its manifest and lines say, reversals only of the batch it
  supersedes; what a creator carries into a batch is what they carried out of
  the standing batch before;
- optionally, each batch's payouts recomputed from its manifest's inputs
  (where they are still present) equal the posted ones;
- optionally, a chain head published earlier is still in the chain (deleting
  or consistently rewriting the newest batch leaves a chain that is consistent
  on its own; only a published head reveals it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from contract import schema as S
from ledger.store import claims
from ledger.store import models as M
from ledger.money import int_sum
from ledger.store.posting import (
    FUND_CODE,
    PLATFORM_CODE,
    TRANSIT_CODE,
    credits_digest,
    lines_digest,
    manifest_hash,
    sha256_text,
)
from ledger.store.read import RUN_CACHE, cached, chain_head, frame
from ledger.store.verify_payouts import event_money, event_sequences, payouts_match_statements


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which check, and a one-line description."""

    check: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass
class VerifyReport:
    """All violations found, and what was checked (counts for the summary)."""

    violations: list[Violation] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


Recompute = Callable[[dict[str, Any], pl.DataFrame], "pl.DataFrame | str"]
"""(manifest, carried_in frame) -> lines (creator_id, allocated_minor, paid_minor), or a
reason string why the inputs are not available."""

_LIMIT = 20  # violations listed per check before summarising


def _cap(check: str, msgs: list[str], total: int | None = None) -> list[Violation]:
    """The first :data:`_LIMIT` messages, then one line counting the rest."""
    total = len(msgs) if total is None else total
    out = [Violation(check, m) for m in msgs[:_LIMIT]]
    if total > _LIMIT:
        out.append(Violation(check, f"... and {total - _LIMIT} more"))
    return out


def check_transactions(session: Session) -> list[Violation]:
    """Sealed, at least two entries, zero sum per currency."""
    t, e, s = M.Transaction, M.Entry, M.TransactionSeal
    unsealed = session.execute(
        select(t.id).outerjoin(s, s.transaction_id == t.id).where(s.transaction_id.is_(None))
    ).scalars().all()
    msgs = [f"transaction {i} has no seal" for i in unsealed]
    counts = frame(session, select(t.id, func.count(e.id)).outerjoin(e, e.transaction_id == t.id)
                   .group_by(t.id).having(func.count(e.id) < 2),
                   {"id": pl.Int64(), "n": pl.Int64()})
    msgs += [f"transaction {i} has {n} entries, expected at least 2"
             for i, n in counts.head(_LIMIT).iter_rows()]  # only violating rows
    sums = frame(session, select(e.transaction_id, e.currency, func.sum(e.amount_minor))
                 .group_by(e.transaction_id, e.currency)
                 .having(func.sum(e.amount_minor) != 0),
                 {"id": pl.Int64(), S.CURRENCY: pl.String(), "sum": pl.Int64()})
    msgs += [f"transaction {i} entries in {c} sum to {v}, expected 0"
             for i, c, v in sums.head(_LIMIT).iter_rows()]
    return _cap("transactions", msgs, len(unsealed) + counts.height + sums.height)


def check_balances(session: Session) -> list[Violation]:
    """Stored balances equal the sum of entries per (account, currency)."""
    e, b, a = M.Entry, M.Balance, M.Account
    computed = frame(session, select(e.account_id, e.currency, func.sum(e.amount_minor))
                     .group_by(e.account_id, e.currency),
                     {"account_id": pl.Int64(), S.CURRENCY: pl.String(), "computed": pl.Int64()})
    stored = frame(session, select(b.account_id, b.currency, b.balance_minor),
                   {"account_id": pl.Int64(), S.CURRENCY: pl.String(), "stored": pl.Int64()})
    cmp = computed.join(stored, on=["account_id", S.CURRENCY], how="full", coalesce=True)
    bad = cmp.with_columns(pl.col("computed", "stored").fill_null(0)).filter(
        pl.col("computed") != pl.col("stored")).sort("account_id", S.CURRENCY)
    if bad.height == 0:
        return []
    codes = frame(session, select(a.id, a.code).where(a.id.in_(bad["account_id"].to_list()[:_LIMIT])),
                  {"account_id": pl.Int64(), "code": pl.String()})
    bad = bad.join(codes, on="account_id", how="left")
    msgs = [f"account {code or acc} {cur}: stored balance {st}, entries sum to {co}"
            for acc, cur, co, st, code in bad.head(_LIMIT).select(
                "account_id", S.CURRENCY, "computed", "stored", "code").iter_rows()]
    return _cap("balances", msgs, bad.height)


def _statements(session: Session) -> pl.DataFrame:
    """Every statement line; read once per :func:`verify` run."""
    st = M.Statement
    return cached(session, "statements", lambda s: frame(
        s, select(st.batch_id, st.creator_id, st.share, st.exact_minor, st.allocated_minor,
                  st.carried_in_minor, st.paid_minor, st.carried_out_minor, st.eligible,
                  st.reason),
        {S.BATCH_ID: pl.String(), S.CREATOR_ID: pl.String(), S.SHARE: pl.Float64(),
         S.EXACT_MINOR: pl.Float64(), S.ALLOCATED_MINOR: pl.Int64(),
         S.CARRIED_IN_MINOR: pl.Int64(), S.PAID_MINOR: pl.Int64(),
         S.CARRIED_OUT_MINOR: pl.Int64(), S.ELIGIBLE: pl.Boolean(), S.REASON: pl.String()}))


def _credits(session: Session) -> pl.DataFrame:
    c = M.BatchClipCredit
    return frame(session, select(c.batch_id, c.clip_id, c.creator_id, c.weight, c.confidence),
                 {S.BATCH_ID: pl.String(), S.CLIP_ID: pl.String(), S.CREATOR_ID: pl.String(),
                  S.WEIGHT: pl.Float64(), S.CONFIDENCE: pl.Float64()})


_ROW_VS_MANIFEST = (("seq", "seq"), ("period", "period"), ("revision", "revision"),
                    ("supersedes_id", "supersedes"), ("currency", "currency"),
                    ("pool_minor", "pool_minor"), ("withheld_minor", "withheld_minor"),
                    ("paid_minor", "paid_minor"), ("creators_paid", "creators_paid"))
"""(batch row column, manifest key) pairs that must agree."""


def _manifest_mismatches(batch: M.Batch, lines: pl.DataFrame) -> list[str]:
    """What a batch row, its statement lines and its manifest disagree on."""
    m, short, out = batch.manifest, batch.batch_id[:12], []
    for col, key in _ROW_VS_MANIFEST:
        if getattr(batch, col) != m.get(key):
            out.append(f"batch {short}: {col} is {getattr(batch, col)!r}, its manifest says "
                       f"{m.get(key)!r}")
    policy = m.get("policy") if isinstance(m.get("policy"), dict) else {}
    if (policy.get("name") != batch.policy_name or policy.get("hash") != batch.policy_hash
            or sha256_text(str(policy.get("text"))) != batch.policy_hash):
        out.append(f"batch {short}: policy name, hash or text differs from its manifest")
    if m.get("creators") != lines.height:
        out.append(f"batch {short}: {lines.height} statement lines, its manifest says "
                   f"{m.get('creators')!r}")
    return out


def _credit_mismatches(short: str, fmt: int, credits: pl.DataFrame | None,
                       manifest: dict[str, Any]) -> list[str]:
    """A batch's clip credits against its manifest: the digest of its format (2: without
    confidence, 3: with it); before format 3 no credit may carry a confidence (none was
    written then, and the digest would not cover one)."""
    out = []
    if fmt >= 2 and credits_digest(credits, fmt) != manifest.get("credits_sha256"):
        out.append(f"batch {short}: clip credits do not match the manifest's credits_sha256")
    if fmt < 3 and credits is not None and credits[S.CONFIDENCE].is_not_null().any():
        out.append(f"batch {short}: clip credits carry a confidence, which its manifest "
                   f"format {fmt} never recorded")
    return out


def check_chain(session: Session) -> list[Violation]:
    """seq contiguous, prev_hash links, batch_hash = hash(manifest), batch row = manifest,
    lines (and, from format 2, clip credits) digests."""
    rows = session.execute(select(M.Batch).order_by(M.Batch.seq)).scalars().all()
    statements = _statements(session)
    by_batch = statements.partition_by(S.BATCH_ID, as_dict=True)
    credits = _credits(session).partition_by(S.BATCH_ID, as_dict=True)
    empty = statements.clear()
    msgs: list[str] = []
    prev: str | None = None
    newest_format = 0
    for i, batch in enumerate(rows):
        # one iteration per batch (a handful per period), not per row of data
        bid, manifest, short = batch.batch_id, batch.manifest, batch.batch_id[:12]
        fmt = manifest.get("format") if isinstance(manifest.get("format"), int) else 0
        if batch.seq != i + 1:
            msgs.append(f"batch {short}: seq {batch.seq}, expected {i + 1}")
        if batch.prev_hash != prev:
            msgs.append(f"batch {short}: prev_hash {str(batch.prev_hash)[:12]} does not match "
                        f"the previous batch's hash {str(prev)[:12]}")
        if manifest.get("prev_hash") != batch.prev_hash or manifest.get("batch_id") != bid:
            msgs.append(f"batch {short}: manifest names a different batch id or prev hash")
        if manifest_hash(manifest) != batch.batch_hash:
            msgs.append(f"batch {short}: batch_hash {batch.batch_hash[:12]} is not the hash of "
                        f"its manifest ({manifest_hash(manifest)[:12]})")
        if fmt < newest_format:
            msgs.append(f"batch {short}: manifest format {fmt} after format {newest_format}")
        newest_format = max(newest_format, fmt)
        lines = by_batch.get((bid,), empty)
        msgs += _manifest_mismatches(batch, lines)
        if lines_digest(lines, fmt) != manifest.get("lines_sha256"):
            msgs.append(f"batch {short}: statement lines do not match the manifest's "
                        "lines_sha256")
        msgs += _credit_mismatches(short, fmt, credits.get((bid,)), manifest)
        if (int_sum(lines[S.ALLOCATED_MINOR]) + batch.withheld_minor != batch.pool_minor
                or int_sum(lines[S.PAID_MINOR]) != batch.paid_minor):
            msgs.append(f"batch {short}: statement totals do not match pool/withheld/paid")
        prev = batch.batch_hash
    return _cap("hash chain", msgs)


def check_entries_match_statements(session: Session) -> list[Violation]:
    """Payable entries of each batch's allocation/payout equal its statement lines."""
    e, t, a = M.Entry, M.Transaction, M.Account
    posted = frame(session, select(t.batch_id, a.creator_id, t.kind, func.sum(e.amount_minor))
                   .join(t, t.id == e.transaction_id).join(a, a.id == e.account_id)
                   .where(a.kind == M.CREATOR_PAYABLE, t.kind.in_(M.BATCH_KINDS))
                   .group_by(t.batch_id, a.creator_id, t.kind),
                   {S.BATCH_ID: pl.String(), S.CREATOR_ID: pl.String(), "kind": pl.String(),
                    "sum": pl.Int64()})
    wide = posted.pivot(on="kind", index=[S.BATCH_ID, S.CREATOR_ID], values="sum")
    for kind in (M.ALLOCATION, M.PAYOUT):
        if kind not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Int64).alias(kind))
    st = _statements(session).filter((pl.col(S.ALLOCATED_MINOR) != 0) | (pl.col(S.PAID_MINOR) != 0))
    cmp = st.join(wide, on=[S.BATCH_ID, S.CREATOR_ID], how="full", coalesce=True).with_columns(
        pl.col(S.ALLOCATED_MINOR, S.PAID_MINOR, M.ALLOCATION, M.PAYOUT).fill_null(0))
    bad = cmp.filter((pl.col(S.ALLOCATED_MINOR) != pl.col(M.ALLOCATION))
                     | (pl.col(S.PAID_MINOR) != -pl.col(M.PAYOUT))).sort(S.BATCH_ID, S.CREATOR_ID)
    msgs = [f"batch {bid[:12]} creator {cid!r}: statement allocated {al}, paid {pd}; entries "
            f"allocate {ea}, pay {-ep}"
            for bid, cid, al, pd, ea, ep in bad.head(_LIMIT).select(
                S.BATCH_ID, S.CREATOR_ID, S.ALLOCATED_MINOR, S.PAID_MINOR, M.ALLOCATION,
                M.PAYOUT).iter_rows()]
    return _cap("entries vs statements", msgs, bad.height)


def check_reversals(session: Session) -> list[Violation]:
    """Reversals negate their originals; superseded batches are fully reversed."""
    e, t = M.Entry, M.Transaction
    orig = aliased(M.Transaction)
    pairs = frame(session, select(t.id, t.reverses_id, t.batch_id, orig.batch_id)
                  .join(orig, orig.id == t.reverses_id).where(t.kind == M.REVERSAL),
                  {"rev": pl.Int64(), "orig": pl.Int64(), "rev_batch": pl.String(),
                   "orig_batch": pl.String()})
    msgs: list[str] = []
    if pairs.height:
        ids = pairs["rev"].to_list() + pairs["orig"].to_list()
        sums = frame(session, select(e.transaction_id, e.account_id, e.currency,
                                     func.sum(e.amount_minor))
                     .where(e.transaction_id.in_(ids))
                     .group_by(e.transaction_id, e.account_id, e.currency),
                     {"tx": pl.Int64(), "account_id": pl.Int64(), S.CURRENCY: pl.String(),
                      "sum": pl.Int64()})
        r = pairs.join(sums.rename({"tx": "rev", "sum": "rsum"}), on="rev")
        o = pairs.join(sums.rename({"tx": "orig", "sum": "osum"}), on="orig")
        cmp = r.join(o, on=["rev", "orig", "account_id", S.CURRENCY], how="full",
                     coalesce=True).with_columns(pl.col("rsum", "osum").fill_null(0))
        bad = cmp.filter(pl.col("rsum") != -pl.col("osum"))
        msgs += [f"transaction {rv} does not exactly reverse transaction {og}"
                 for rv, og in bad.select("rev", "orig").unique().sort("rev").head(_LIMIT)
                 .iter_rows()]
    b = M.Batch
    superseded = session.execute(select(b.supersedes_id, b.batch_id)
                                 .where(b.supersedes_id.is_not(None))).all()
    if superseded:
        txs = frame(session, select(t.id, t.batch_id).where(
            t.batch_id.in_([s for s, _ in superseded]), t.kind.in_(M.BATCH_KINDS)),
            {"orig": pl.Int64(), "orig_batch": pl.String()})
        unrev = txs.join(pairs.select("orig"), on="orig", how="anti")
        msgs += [f"batch {ob[:12]} is superseded but its transaction {tx} is not reversed"
                 for tx, ob in unrev.sort("orig").head(_LIMIT).iter_rows()]
    return _cap("reversals", msgs)


_LEG = {S.BATCH_ID: pl.String(), "kind": pl.String(), "account_id": pl.Int64(),
        S.CURRENCY: pl.String(), S.AMOUNT_MINOR: pl.Int64()}


def _expected_legs(session: Session) -> pl.DataFrame:
    """Per (batch, kind, account, currency) the amount that the batch's manifest and
    statement lines call for (see :mod:`ledger.store.posting` for the movements)."""
    b, a = M.Batch, M.Account
    batches = frame(session, select(b.batch_id, b.currency, b.pool_minor, b.withheld_minor,
                                    b.paid_minor),
                    {S.BATCH_ID: pl.String(), S.CURRENCY: pl.String(), "pool": pl.Int64(),
                     "withheld": pl.Int64(), "paid": pl.Int64()})
    codes = frame(session, select(a.code, a.id).where(a.code.in_([FUND_CODE, PLATFORM_CODE,
                                                                   TRANSIT_CODE])),
                  {"code": pl.String(), "account_id": pl.Int64()})
    ids = dict(codes.iter_rows())  # three fixed accounts
    fixed = [(M.ALLOCATION, FUND_CODE, -pl.col("pool")),
             (M.ALLOCATION, PLATFORM_CODE, pl.col("withheld")),
             (M.PAYOUT, TRANSIT_CODE, pl.col("paid"))]
    parts = [batches.select(S.BATCH_ID, pl.lit(kind).alias("kind"),
                            pl.lit(ids.get(code), pl.Int64).alias("account_id"), S.CURRENCY,
                            amount.alias(S.AMOUNT_MINOR))
             for kind, code, amount in fixed]
    payables = frame(session, select(a.creator_id, a.id).where(a.kind == M.CREATOR_PAYABLE),
                     {S.CREATOR_ID: pl.String(), "account_id": pl.Int64()})
    lines = _statements(session).join(batches.select(S.BATCH_ID, S.CURRENCY), on=S.BATCH_ID)
    lines = lines.join(payables, on=S.CREATOR_ID, how="left")
    for kind, amount in ((M.ALLOCATION, pl.col(S.ALLOCATED_MINOR)),
                         (M.PAYOUT, -pl.col(S.PAID_MINOR))):
        parts.append(lines.select(S.BATCH_ID, pl.lit(kind).alias("kind"), "account_id",
                                  S.CURRENCY, amount.alias(S.AMOUNT_MINOR)))
    accounts = {"fund": ids.get(FUND_CODE), "platform": ids.get(PLATFORM_CODE),
                **dict(payables.iter_rows())}
    parts.append(claims.expected_adjustment_legs(session, accounts))
    return pl.concat(parts).filter(pl.col(S.AMOUNT_MINOR) != 0)


def _posted_legs(session: Session) -> pl.DataFrame:
    """Per (batch, kind, account, currency) the sum of the entries of its non-reversal
    transactions."""
    e, t = M.Entry, M.Transaction
    return frame(session, select(t.batch_id, t.kind, e.account_id, e.currency,
                                 func.sum(e.amount_minor))
                 .join(t, t.id == e.transaction_id).where(t.kind.in_(M.BATCH_KINDS))
                 .group_by(t.batch_id, t.kind, e.account_id, e.currency), _LEG)


def _transaction_counts(session: Session) -> list[str]:
    """Each batch has one allocation, one payout iff it paid anything, and one reversal
    per transaction of the batch it supersedes; nothing else."""
    b, t = M.Batch, M.Transaction
    batches = frame(session, select(b.batch_id, b.supersedes_id, b.paid_minor),
                    {S.BATCH_ID: pl.String(), "supersedes": pl.String(), "paid": pl.Int64()})
    counts = frame(session, select(t.batch_id, t.kind, func.count())
                   .where(t.kind.in_((*M.BATCH_KINDS, M.REVERSAL))).group_by(t.batch_id, t.kind),
                   {S.BATCH_ID: pl.String(), "kind": pl.String(), "n": pl.Int64()})
    own = counts.filter(pl.col("kind").is_in(M.BATCH_KINDS)).group_by(S.BATCH_ID).agg(
        pl.col("n").sum().alias("undo"))
    expected = pl.concat([
        batches.select(S.BATCH_ID, pl.lit(M.ALLOCATION).alias("kind"), pl.lit(1, pl.Int64)
                       .alias("want")),
        batches.select(S.BATCH_ID, pl.lit(M.PAYOUT).alias("kind"),
                       (pl.col("paid") > 0).cast(pl.Int64).alias("want")),
        batches.join(own.rename({S.BATCH_ID: "supersedes"}), on="supersedes", how="left")
        .select(S.BATCH_ID, pl.lit(M.REVERSAL).alias("kind"),
                pl.col("undo").fill_null(0).alias("want")),
        pl.DataFrame({S.BATCH_ID: claims.adjustment_batches(session)}, schema={
            S.BATCH_ID: pl.String}).select(S.BATCH_ID, pl.lit(M.ADJUSTMENT).alias("kind"),
                                            pl.lit(1, pl.Int64).alias("want")),
    ])
    cmp = expected.join(counts, on=[S.BATCH_ID, "kind"], how="full", coalesce=True).with_columns(
        pl.col("want", "n").fill_null(0)).filter(pl.col("want") != pl.col("n"))
    return [f"batch {str(bid)[:12]}: {n} {kind} transaction(s), its manifest explains {w}"
            for bid, kind, w, n in cmp.sort(S.BATCH_ID, "kind").head(_LIMIT).select(
                S.BATCH_ID, "kind", "want", "n").iter_rows()]


def _reversal_targets(session: Session) -> list[str]:
    """A reversal undoes a non-reversal transaction of the batch its own batch supersedes."""
    t, b = M.Transaction, M.Batch
    orig = aliased(M.Transaction)
    rows = frame(session, select(t.id, t.reverses_id, orig.kind, orig.batch_id, b.supersedes_id)
                 .join(b, b.batch_id == t.batch_id)
                 .outerjoin(orig, orig.id == t.reverses_id).where(t.kind == M.REVERSAL),
                 {"rev": pl.Int64(), "orig": pl.Int64(), "orig_kind": pl.String(),
                  "orig_batch": pl.String(), "supersedes": pl.String()})
    bad = rows.filter(pl.col("orig_batch").is_null() | pl.col("supersedes").is_null()
                      | (pl.col("orig_batch") != pl.col("supersedes"))
                      | ~pl.col("orig_kind").is_in(M.BATCH_KINDS)).sort("rev")
    return [f"reversal {rv} undoes transaction {og}, which is not a transaction of the batch "
            "its batch supersedes" for rv, og in bad.select("rev", "orig").head(_LIMIT).iter_rows()]


def check_transactions_explained(session: Session) -> list[Violation]:
    """Every transaction is explained by a batch manifest: the legs of each batch's
    allocation and payout equal its manifest and statement lines, its transactions are
    the ones it calls for, and reversals only undo the batch it supersedes."""
    want = _expected_legs(session).group_by(S.BATCH_ID, "kind", "account_id", S.CURRENCY).agg(
        pl.col(S.AMOUNT_MINOR).sum().alias("want"))
    cmp = want.join(_posted_legs(session), on=[S.BATCH_ID, "kind", "account_id", S.CURRENCY],
                    how="full", coalesce=True).with_columns(
        pl.col("want", S.AMOUNT_MINOR).fill_null(0)).filter(
        pl.col("want") != pl.col(S.AMOUNT_MINOR)).sort(S.BATCH_ID, "kind", "account_id")
    codes = frame(session, select(M.Account.id, M.Account.code).where(
        M.Account.id.in_(cmp["account_id"].drop_nulls().head(_LIMIT).to_list())),
        {"account_id": pl.Int64(), "code": pl.String()})
    shown = cmp.head(_LIMIT).join(codes, on="account_id", how="left")
    msgs = [f"batch {str(bid)[:12]} {kind}: account {code or acc} {cur}: entries sum to {got}, "
            f"the manifest and statement lines call for {w}"
            for bid, kind, acc, cur, w, got, code in shown.select(
                S.BATCH_ID, "kind", "account_id", S.CURRENCY, "want", S.AMOUNT_MINOR, "code")
            .iter_rows()]
    msgs += _transaction_counts(session) + _reversal_targets(session)
    return _cap("transactions vs manifests", msgs, cmp.height + len(msgs) - len(shown))


def _payable_moves(session: Session, allocations: pl.DataFrame) -> pl.DataFrame:
    """``creator_id``, ``bucket``, ``cum``: each creator's payable balance from every
    transaction before the allocation of standing batch ``r = bucket`` (0-based, in chain
    order); only the buckets in which the creator's payable moved."""
    e, t, a = M.Entry, M.Transaction, M.Account
    moves = frame(session, select(e.transaction_id, a.creator_id, e.amount_minor)
                  .join(a, a.id == e.account_id).where(a.kind == M.CREATOR_PAYABLE),
                  {"tx": pl.Int64(), S.CREATOR_ID: pl.String(), "delta": pl.Int64()})
    starts = allocations["alloc_tx"].sort()
    moves = moves.with_columns(pl.Series("bucket", starts.search_sorted(moves["tx"],
                                                                        side="right"),
                                         dtype=pl.Int64))
    per = moves.group_by(S.CREATOR_ID, "bucket").agg(pl.col("delta").sum()).sort(
        S.CREATOR_ID, "bucket")
    return per.with_columns(pl.col("delta").cum_sum().over(S.CREATOR_ID).alias("cum"))


def check_carry(session: Session) -> list[Violation]:
    """What a creator carries into a standing batch is their payable balance from every
    transaction before that batch's allocation (the previous batches' carry-forward plus
    any re-credited payout, the batch's own reversals of a superseded batch and its claim
    adjustments included),
    and a creator with a balance there has a line in the batch."""
    b, t = M.Batch, M.Transaction
    standing = frame(session, select(b.batch_id, b.seq, func.min(t.id))
                     .join(t, (t.batch_id == b.batch_id) & (t.kind == M.ALLOCATION))
                     .where(b.batch_id.not_in(select(b.supersedes_id)
                                              .where(b.supersedes_id.is_not(None))))
                     .group_by(b.batch_id, b.seq),
                     {S.BATCH_ID: pl.String(), S.SEQ: pl.Int64(), "alloc_tx": pl.Int64()}
                     ).sort("alloc_tx").with_row_index("r").with_columns(pl.col("r")
                                                                         .cast(pl.Int64))
    if standing.height == 0:
        return []
    cum = _payable_moves(session, standing)
    lines = _statements(session).join(standing, on=S.BATCH_ID).select(
        "r", S.CREATOR_ID, S.CARRIED_IN_MINOR, S.CARRIED_OUT_MINOR)
    # who might carry into batch r: its lines, the previous batch's, and whoever moved
    candidates = pl.concat([
        lines.select("r", S.CREATOR_ID),
        lines.select((pl.col("r") + 1).alias("r"), S.CREATOR_ID),
        cum.select(pl.col("bucket").alias("r"), S.CREATOR_ID),
    ]).filter(pl.col("r") < standing.height).unique()
    query = candidates.join(lines.select("r", S.CREATOR_ID, S.CARRIED_IN_MINOR),
                            on=["r", S.CREATOR_ID], how="left").with_columns(
        pl.col("r").alias("before")).sort("before")
    found = query.join_asof(cum.select(S.CREATOR_ID, pl.col("bucket").alias("before"), "cum")
                            .sort("before"), on="before", by=S.CREATOR_ID, strategy="backward",
                            check_sortedness=False)
    bad = found.with_columns(pl.col(S.CARRIED_IN_MINOR, "cum").fill_null(0)).filter(
        pl.col(S.CARRIED_IN_MINOR) != pl.col("cum")).sort("r", S.CREATOR_ID)
    bad = bad.join(standing.select("r", pl.col(S.BATCH_ID).alias("at")), on="r", how="left")
    msgs = [f"batch {at[:12]} creator {cid!r}: carried in {got}, but the payable balance "
            f"before the batch is {want}" for at, cid, got, want in bad.head(_LIMIT).select(
                "at", S.CREATOR_ID, S.CARRIED_IN_MINOR, "cum").iter_rows()]
    return _cap("carry", msgs, bad.height)


def check_payouts(session: Session) -> list[Violation]:
    """Payouts against statement lines, their event sequences, and the money each event
    moved (:mod:`ledger.store.verify_payouts`)."""
    out: list[Violation] = []
    for name, found in (
            ("payouts", payouts_match_statements(session, _statements(session))),
            ("payout events", event_sequences(session)),
            ("payout money", event_money(session))):
        out += _cap(name, *found)
    return out


def check_claims(session: Session) -> list[Violation]:
    """Every claim a batch applies was upheld as applied, once (:mod:`ledger.store.claims`)."""
    return _cap("claims", claims.claim_violations(session))


def check_head(session: Session, expected: str) -> list[Violation]:
    """The head someone published earlier (a full hash or a prefix of >= 12 characters)
    is still a batch hash of the chain; if not, batches were deleted or rewritten."""
    b = M.Batch
    found = session.execute(select(b.seq).where(b.batch_hash.startswith(expected.lower(),
                                                                        autoescape=True))
                            ).scalars().all()
    if found:
        return []
    head = chain_head(session)
    now = f"{head.batch_hash[:12]} (period {head.period})" if head else "none (empty ledger)"
    return [Violation("chain head", f"expected head {expected[:12]} is not in the chain (its "
                      f"head is now {now}): batches were deleted or history was rewritten")]


CHECKS: list[Callable[[Session], list[Violation]]] = [
    check_transactions, check_balances, check_chain, check_entries_match_statements,
    check_reversals, check_transactions_explained, check_carry, check_payouts,
    check_claims,
]


def recompute_payouts(session: Session, recompute: Recompute, report: VerifyReport) -> None:
    """Recompute each standing batch from its manifest's inputs and compare lines."""
    b, st = M.Batch, M.Statement
    superseded = select(b.supersedes_id).where(b.supersedes_id.is_not(None))
    rows = session.execute(select(b.batch_id, b.manifest).where(b.batch_id.not_in(superseded))
                           .order_by(b.seq)).all()
    done = 0
    for bid, manifest in rows:  # one per batch
        stored = frame(session, select(st.creator_id, st.carried_in_minor, st.allocated_minor,
                                       st.paid_minor).where(st.batch_id == bid),
                       {S.CREATOR_ID: pl.String(), S.CARRIED_MINOR: pl.Int64(),
                        S.ALLOCATED_MINOR: pl.Int64(), S.PAID_MINOR: pl.Int64()})
        carried = stored.select(S.CREATOR_ID, S.CARRIED_MINOR).filter(
            pl.col(S.CARRIED_MINOR) != 0).sort(S.CREATOR_ID)
        got = recompute(manifest, carried)
        if isinstance(got, str):
            report.notes.append(f"batch {bid[:12]} not recomputed: {got}")
            continue
        done += 1
        cmp = stored.join(got.select(S.CREATOR_ID, pl.col(S.ALLOCATED_MINOR).alias("a2"),
                                     pl.col(S.PAID_MINOR).alias("p2")),
                          on=S.CREATOR_ID, how="full", coalesce=True).with_columns(
            pl.col(S.ALLOCATED_MINOR, S.PAID_MINOR, "a2", "p2").fill_null(0))
        bad = cmp.filter((pl.col(S.ALLOCATED_MINOR) != pl.col("a2"))
                         | (pl.col(S.PAID_MINOR) != pl.col("p2"))).sort(S.CREATOR_ID)
        report.violations += _cap("recomputed payouts", [
            f"batch {bid[:12]} creator {c!r}: posted allocated {a} paid {p}, recomputed "
            f"allocated {a2} paid {p2}"
            for c, a, p, a2, p2 in bad.head(_LIMIT).select(
                S.CREATOR_ID, S.ALLOCATED_MINOR, S.PAID_MINOR, "a2", "p2").iter_rows()],
            bad.height)
    report.counts["batches recomputed"] = done


def verify(session: Session, *, recompute: Recompute | None = None,
           expect_head: str | None = None) -> VerifyReport:
    """Run every check in :data:`CHECKS` (and the recomputation, if given); with
    ``expect_head``, also that this earlier published head is still in the chain."""
    report = VerifyReport()
    session.info[RUN_CACHE] = {}  # what several checks read is read once
    try:
        for check in CHECKS:
            report.violations += check(session)
    finally:
        session.info.pop(RUN_CACHE, None)
    if expect_head is not None:
        report.violations += check_head(session, expect_head)
    report.counts["transactions"] = int(session.execute(
        select(func.count()).select_from(M.Transaction)).scalar_one())
    report.counts["entries"] = int(session.execute(
        select(func.count()).select_from(M.Entry)).scalar_one())
    report.counts["batches"] = int(session.execute(
        select(func.count()).select_from(M.Batch)).scalar_one())
    if recompute is not None:
        recompute_payouts(session, recompute, report)
    return report
