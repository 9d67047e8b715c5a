"""One payout batch: its pool, its allocation and posting, its payout file, its recomputation.

Rule: ``batch run``, ``policy compare``, ``ledger verify``, the demo and
the dashboard reach the allocation engine and the ledger store through
these functions only. Errors name parameters (``pool='x': ...``, or the
name in backquotes); the commands name flags
(:func:`residuals.commands._files.flag_names`). The batch id is derived
from the period, the policy text, the pool and the hashes of the input
files, so a re-run is recognised before anything is computed; the whole
batch is posted in one transaction and the payout file is written
atomically *after* the commit, from the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract import schema as S
from contract.errors import ResidualsError, first_line
from residuals.workflows.attribution import (attribution_for, attribution_settings,
                                             recorded_settings)


@dataclass(frozen=True)
class BatchRun:
    """What :func:`run_batch` posts: the period, its policy and data, where the file goes."""

    period: str
    policy_path: Path
    data: Path
    out: Path
    db: str | None = None
    pool: str | None = None
    currency: str | None = None
    supersede: bool = False
    k: int = DEFAULT_K
    depth: int = DEFAULT_DEPTH
    method: str | None = None


@dataclass(frozen=True)
class Verified:
    """``ledger verify``: the store's report and the chain head (None: no batches)."""

    report: Any  # ledger.store.verify.VerifyReport
    head: Any  # ledger.store.read.ChainHead | None


@dataclass(frozen=True)
class BatchResult:
    """The store's outcome, and the payout file written (None when superseded)."""

    outcome: Any  # ledger.store.posting.PostOutcome
    payout_file: Path | None
    lines: int | None


def code_version() -> str:
    """The installed ``residuals`` version (recorded in each batch manifest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"residuals {version('residuals')}"
    except PackageNotFoundError:
        return "residuals (not installed)"


def resolve_pool(policy: Any, accounts: pl.DataFrame | None, pool: str | None,
                 currency: str | None, *, positive: bool = True) -> tuple[int, str]:
    """(pool in minor units, currency): ``pool`` in major units (a decimal string) in
    ``currency``, or the policy's ``[pool]`` (:func:`ledger.allocate.pool_from`)."""
    from ledger.allocate import pool_from
    from ledger.money import to_minor

    cur = (currency or policy.currency or "").strip().upper() or None
    pool_minor = None
    if pool is not None:
        if cur is None:
            raise ResidualsError(f"pool={pool!r}: needs a currency: pass `currency` or set "
                                 "pool.currency in the policy")
        pool_minor = to_minor(pool, cur, what=f"pool={pool!r}")
    pool_minor, cur = pool_from(policy, accounts, pool_minor, cur)
    if positive and pool_minor <= 0:
        raise ResidualsError(f"`pool`: the pool is {pool_minor} minor units, expected > 0")
    return pool_minor, cur


def clip_credits(attributions: pl.DataFrame) -> pl.DataFrame:
    """Summed attribution weight per (creator, clip): the clips that earned each share.

    With a ``confidence`` column, each clip also gets the weight-weighted mean
    confidence of the generations it earned from (rows without a confidence left
    out of that mean; null when none has one); without it, no confidence column.
    """
    aggs = [pl.col(S.WEIGHT).sum()]
    if S.CONFIDENCE in attributions.columns:
        known = pl.col(S.CONFIDENCE).is_not_null()
        w = pl.col(S.WEIGHT).cast(pl.Float64)
        seen = w.filter(known).sum()
        aggs.append(pl.when(seen > 0).then((w * pl.col(S.CONFIDENCE)).filter(known).sum()
                                           / seen).alias(S.CONFIDENCE))
    return (attributions.group_by(S.CREATOR_ID, S.CLIP_ID).agg(aggs)
            .filter(pl.col(S.WEIGHT) > 0).sort(S.CREATOR_ID, S.CLIP_ID))


def make_allocator(policy: Any, ds: Any, attributions: pl.DataFrame, pool_minor: int,
                   currency: str, batch_id: str):  # type: ignore[no-untyped-def]
    """The store's allocator: carried-in balances -> the policy's allocation lines."""
    from ledger.allocate import allocate, from_dataset
    from ledger.store.posting import BatchLines

    def run(carried: pl.DataFrame, pool_minor: int = pool_minor) -> BatchLines:
        alloc = allocate(policy, from_dataset(ds, attributions, carried_in=carried),
                         pool_minor=pool_minor, currency=currency, batch_id=batch_id)
        return BatchLines(alloc.frame, alloc.withheld_minor)

    return run


def payouts_file(out: Path, period: str) -> Path:
    """Where the payout file of ``period`` goes."""
    return out / f"payouts-{period}.csv"


def write_payouts(session: Any, batch_id: str, path: Path) -> int:
    """Write a batch's payout lines (creator_id, amount, amount_minor, currency, reference)
    atomically, with spreadsheet formulas neutralised; the same batch always gives the
    same bytes. Returns the number of lines."""
    from contract.io import write_csv_for_people
    from ledger.money import exponent
    from ledger.store.read import payouts

    pay = payouts(session, batch_id)
    exp = exponent(pay[S.CURRENCY][0]) if pay.height else 0
    whole = (pl.col(S.AMOUNT_MINOR) // 10**exp).cast(pl.String)
    frac = (pl.col(S.AMOUNT_MINOR) % 10**exp).cast(pl.String).str.zfill(exp)
    amount = pl.concat_str(whole, pl.lit("."), frac) if exp else whole
    pay = pay.with_columns(amount.alias("amount")).select(
        S.CREATOR_ID, "amount", S.AMOUNT_MINOR, S.CURRENCY, S.REFERENCE)
    write_csv_for_people(pay, path)
    return pay.height


def check_on_empty_ledger(request: Any, allocator: Any) -> Any:
    """Run a batch's allocation and line checks as on a new, empty ledger (nothing carried
    in), so that a batch that would fail is refused before its ledger is created.

    Returns the allocator to post with: it gives the result already computed when
    called again with nothing carried in, so the allocation runs once.
    """
    from ledger.store.posting import check_lines

    carried = pl.DataFrame(schema={S.CREATOR_ID: pl.String, S.CARRIED_MINOR: pl.Int64})
    result = allocator(carried, pool_minor=request.pool_minor)
    check_lines(result.lines, pool_minor=request.pool_minor,
                withheld_minor=result.withheld_minor, carried_in=carried,
                creators=request.creators)

    def run(carried_in: Any, pool_minor: int = request.pool_minor) -> Any:
        if carried_in.height == 0 and pool_minor == request.pool_minor:
            return result
        return allocator(carried_in, pool_minor=pool_minor)

    return run


def _request(run: BatchRun, policy: Any, ds: Any, pool_minor: int, cur: str) -> Any:
    from contract.io import input_hashes
    from ledger.store.posting import BatchRequest

    has_file = ds.attributions is not None
    params: dict[str, Any] = {"attributions": "file" if has_file else "computed"}
    if not has_file:
        params.update(attribution_settings(k=run.k, depth=run.depth, method=run.method))
    return BatchRequest(
        period=run.period, currency=cur, pool_minor=pool_minor, policy_name=policy.name,
        policy_text=policy.text, input_hashes=input_hashes(run.data),
        creators=ds.creators.select(S.CREATOR_ID, S.DISPLAY_NAME), params=params,
        context={"data_dir": str(run.data.resolve()), "policy_file": str(run.policy_path)},
    )


def _never(carried: Any) -> Any:  # the batch exists: never called
    raise AssertionError("allocation requested for a posted batch")


def run_batch(run: BatchRun) -> BatchResult:
    """Allocate a period's pool under a policy, post it as one batch exactly once, and
    write its payout file (unless the batch stands superseded)."""
    from sqlalchemy.exc import IntegrityError

    from contract.io import load_dataset
    from ledger.policy import load_policy
    from ledger.store.engine import open_store, read_session, write_session
    from ledger.store.posting import find_batch, post_batch
    from residuals.workflows.store import existing_ledger

    for name, value in (("k", run.k), ("depth", run.depth)):
        if value < 1:
            raise ResidualsError(f"{name}={value}: expected an integer >= 1")
    policy = load_policy(run.policy_path)
    ds = load_dataset(run.data)
    pool_minor, cur = resolve_pool(policy, ds.accounts, run.pool, run.currency)
    engine = existing_ledger(run.db)  # None: a new ledger, created once the batch is valid
    request = _request(run, policy, ds, pool_minor, cur)
    known = None
    if engine is not None:
        with read_session(engine) as s:
            known = find_batch(s, request.batch_id)
    allocator = _never
    if known is None:
        attributions = attribution_for(ds, recorded_settings(request.params))
        request = dataclasses.replace(request, clip_credits=clip_credits(attributions))
        allocator = make_allocator(policy, ds, attributions, pool_minor, cur, request.batch_id)
        if engine is None:
            allocator = check_on_empty_ledger(request, allocator)
            engine = open_store(run.db)
    try:
        with write_session(engine) as s, s.begin():
            outcome = post_batch(s, request, allocator, supersede=run.supersede,
                                 code_version=code_version())
    except IntegrityError as exc:  # the write lock makes this unreachable in practice
        raise ResidualsError(f"batch for period {run.period} not posted: another run changed "
                             f"the ledger at the same time ({first_line(exc.orig)}); "
                             "run again") from None
    path, lines = None, None
    if outcome.superseded_by is None:
        path = payouts_file(run.out, run.period)
        with read_session(engine) as s:
            lines = write_payouts(s, outcome.batch_id, path)
    engine.dispose()
    return BatchResult(outcome, path, lines)


def recompute_batch(manifest: Mapping[str, Any], carried: pl.DataFrame, *,
                    compute_attributions: bool = True) -> pl.DataFrame | str:
    """Re-run a batch's allocation from the inputs its manifest names (the same path as
    :func:`run_batch`): the allocation lines, or why that is not possible here.

    Not possible: the data directory is gone, an input file's hash differs from the
    recorded one, the policy or inputs no longer validate, or the batch computed its
    attributions when posted and ``compute_attributions`` is false. Embeddings are
    read only when attributions must be computed.
    """
    from contract.io import input_hashes, load_dataset
    from ledger.allocate import allocate, from_dataset
    from ledger.policy import parse_policy
    from ledger.store.posting import manifest_data_dir, manifest_policy_text

    root = manifest_data_dir(manifest)
    if root is None or not root.is_dir():
        return f"data directory {root} is not present"
    recorded = manifest.get("inputs") or {}
    has_file = S.ATTRIBUTIONS.filename in recorded
    if not has_file and not compute_attributions:
        return ("its attributions were computed when it was posted; `residuals ledger verify` "
                "recomputes them")
    if input_hashes(root) != recorded:
        return f"inputs in {root} differ from the ones the batch was posted from"
    try:
        policy = parse_policy(manifest_policy_text(manifest),
                              source=f"policy of batch {str(manifest.get('batch_id'))[:12]}")
        ds = load_dataset(root, embeddings=not has_file)
        attributions = (ds.attributions if has_file
                        else attribution_for(ds, recorded_settings(manifest.get("params") or {})))
        alloc = allocate(policy, from_dataset(ds, attributions, carried_in=carried),
                         pool_minor=int(manifest[S.POOL_MINOR]), currency=manifest[S.CURRENCY],
                         batch_id=manifest[S.BATCH_ID])
    except ResidualsError as exc:
        return str(exc)
    return alloc.frame


def verify_ledger(db: str | None, *, recompute: bool = True,
                  expect_head: str | None = None) -> Verified:
    """Check every invariant of the ledger at ``db``, recomputing each batch's payouts
    from its manifest's inputs (:func:`recompute_batch`) when ``recompute``."""
    from ledger.store.engine import read_session
    from ledger.store.read import chain_head
    from ledger.store.verify import verify
    from residuals.workflows.store import require_ledger

    engine = require_ledger(db)
    with read_session(engine) as s:
        report = verify(s, recompute=recompute_batch if recompute else None,
                        expect_head=expect_head)
        head = chain_head(s)
    engine.dispose()
    return Verified(report, head)
