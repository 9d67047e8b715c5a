"""``ledger verify``: recompute everything the ledger claims and report each mismatch.

Rule: each check is a small function ``(session) -> list[Violation]`` in
:data:`CHECKS` (beancount's validation style); :func:`verify` runs them all
and never stops at the first problem. The checks do not trust the triggers:
they recompute from the raw rows.

- every transaction is sealed, has two or more entries, and its entries sum to
  zero per currency;
- stored balances equal the sums of entries per account and currency;
- the hash chain: ``seq`` runs 1..n, each ``prev_hash`` is the previous
  ``batch_hash``, each ``batch_hash`` is the hash of its manifest, and each
  manifest's ``lines_sha256`` is the digest of the stored statement lines;
- per batch, the entries on creator payables equal the statement lines
  (allocation = allocated, payout = -paid), and the batch's totals match;
- every reversal negates its original exactly, and every superseded batch is
  fully reversed;
- optionally, each batch's payouts recomputed from its manifest's inputs
  (where they are still present) equal the posted ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from contract import schema as S
from ledger.store import models as M
from ledger.store.posting import lines_digest, manifest_hash
from ledger.store.read import frame


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

AttributionsFor = Callable[[Any, Mapping[str, Any]], pl.DataFrame]
"""(dataset, the manifest's params) -> the attributions table, for batches that
computed their attributions when they were posted."""


def recompute_from_inputs(manifest: Mapping[str, Any], carried: pl.DataFrame,
                          attributions_for: AttributionsFor | None = None) -> pl.DataFrame | str:
    """Re-run a batch's allocation from the inputs its manifest names (a :data:`Recompute`).

    Returns the allocation lines, or why that is not possible here: the data
    directory is gone, an input file's hash differs from the recorded one, the
    policy or inputs no longer validate, or the batch computed its attributions
    when posted and no ``attributions_for`` was given to compute them again.
    Embeddings are read only when attributions must be computed.
    """
    from contract.errors import ResidualsError
    from contract.io import input_hashes, load_dataset
    from ledger.allocate import allocate, from_dataset
    from ledger.policy import parse_policy
    from ledger.store.posting import manifest_data_dir, manifest_policy_text

    root = manifest_data_dir(manifest)
    if root is None or not root.is_dir():
        return f"data directory {root} is not present"
    recorded = manifest.get("inputs") or {}
    has_file = S.ATTRIBUTIONS.filename in recorded
    if not has_file and attributions_for is None:
        return ("its attributions were computed when it was posted; `residuals ledger verify` "
                "recomputes them")
    if input_hashes(root) != recorded:
        return f"inputs in {root} differ from the ones the batch was posted from"
    try:
        policy = parse_policy(manifest_policy_text(manifest),
                              source=f"policy of batch {str(manifest.get('batch_id'))[:12]}")
        ds = load_dataset(root, embeddings=not has_file)
        attributions = (ds.attributions if has_file or attributions_for is None
                        else attributions_for(ds, manifest.get("params") or {}))
        alloc = allocate(policy, from_dataset(ds, attributions, carried_in=carried),
                         pool_minor=int(manifest[S.POOL_MINOR]), currency=manifest[S.CURRENCY],
                         batch_id=manifest[S.BATCH_ID])
    except ResidualsError as exc:
        return str(exc)
    return alloc.frame

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
    st = M.Statement
    return frame(session, select(st.batch_id, st.creator_id, st.allocated_minor,
                                 st.carried_in_minor, st.paid_minor, st.carried_out_minor),
                 {S.BATCH_ID: pl.String(), S.CREATOR_ID: pl.String(),
                  S.ALLOCATED_MINOR: pl.Int64(), S.CARRIED_IN_MINOR: pl.Int64(),
                  S.PAID_MINOR: pl.Int64(), S.CARRIED_OUT_MINOR: pl.Int64()})


def check_chain(session: Session) -> list[Violation]:
    """seq contiguous, prev_hash links, batch_hash = hash(manifest), lines digest."""
    b = M.Batch
    rows = session.execute(select(b.seq, b.batch_id, b.prev_hash, b.batch_hash, b.manifest,
                                  b.pool_minor, b.withheld_minor, b.paid_minor)
                           .order_by(b.seq)).all()
    statements = _statements(session)
    by_batch = statements.partition_by(S.BATCH_ID, as_dict=True)
    msgs: list[str] = []
    prev: str | None = None
    for i, (seq, bid, prev_hash, bhash, manifest, pool, withheld, paid) in enumerate(rows):
        # one iteration per batch (a handful per period), not per row of data
        short = bid[:12]
        if seq != i + 1:
            msgs.append(f"batch {short}: seq {seq}, expected {i + 1}")
        if prev_hash != prev:
            msgs.append(f"batch {short}: prev_hash {str(prev_hash)[:12]} does not match the "
                        f"previous batch's hash {str(prev)[:12]}")
        if manifest.get("prev_hash") != prev_hash or manifest.get("batch_id") != bid:
            msgs.append(f"batch {short}: manifest names a different batch id or prev hash")
        if manifest_hash(manifest) != bhash:
            msgs.append(f"batch {short}: batch_hash {bhash[:12]} is not the hash of its "
                        f"manifest ({manifest_hash(manifest)[:12]})")
        lines = by_batch.get((bid,), statements.clear())
        if lines_digest(lines) != manifest.get("lines_sha256"):
            msgs.append(f"batch {short}: statement lines do not match the manifest's "
                        "lines_sha256")
        if (int(lines[S.ALLOCATED_MINOR].sum()) + withheld != pool
                or int(lines[S.PAID_MINOR].sum()) != paid):
            msgs.append(f"batch {short}: statement totals do not match pool/withheld/paid")
        prev = bhash
    return _cap("hash chain", msgs)


def check_entries_match_statements(session: Session) -> list[Violation]:
    """Payable entries of each batch's allocation/payout equal its statement lines."""
    e, t, a = M.Entry, M.Transaction, M.Account
    posted = frame(session, select(t.batch_id, a.creator_id, t.kind, func.sum(e.amount_minor))
                   .join(t, t.id == e.transaction_id).join(a, a.id == e.account_id)
                   .where(a.kind == M.CREATOR_PAYABLE, t.kind != M.REVERSAL)
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
            t.batch_id.in_([s for s, _ in superseded]), t.kind != M.REVERSAL),
            {"orig": pl.Int64(), "orig_batch": pl.String()})
        unrev = txs.join(pairs.select("orig"), on="orig", how="anti")
        msgs += [f"batch {ob[:12]} is superseded but its transaction {tx} is not reversed"
                 for tx, ob in unrev.sort("orig").head(_LIMIT).iter_rows()]
    return _cap("reversals", msgs)


CHECKS: list[Callable[[Session], list[Violation]]] = [
    check_transactions, check_balances, check_chain, check_entries_match_statements,
    check_reversals,
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


def verify(session: Session, *, recompute: Recompute | None = None) -> VerifyReport:
    """Run every check in :data:`CHECKS` (and the recomputation, if given)."""
    report = VerifyReport()
    for check in CHECKS:
        report.violations += check(session)
    report.counts["transactions"] = int(session.execute(
        select(func.count()).select_from(M.Transaction)).scalar_one())
    report.counts["entries"] = int(session.execute(
        select(func.count()).select_from(M.Entry)).scalar_one())
    report.counts["batches"] = int(session.execute(
        select(func.count()).select_from(M.Batch)).scalar_one())
    if recompute is not None:
        recompute_payouts(session, recompute, report)
    return report
