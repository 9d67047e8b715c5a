"""``residuals batch run``: allocate one period's pool and post it to the ledger, once.

Rule: this module reads inputs, calls the policy engine and the ledger store,
and writes the payout file; it holds no money logic. The batch id is derived
from the period, the policy text, the pool and the hashes of the input files,
so a re-run is recognised (and reported) before anything is computed. The
whole batch is posted in one database transaction; the payout file
``payouts-<period>.csv`` is written atomically *after* the commit, from the
database, so a crash between the two is repaired by simply running again.

``--pool`` is in major units as a decimal string (``--pool 25000.00 --currency
USD``), converted exactly with :func:`ledger.money.to_minor`; without it the
policy's ``[pool]`` applies.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract.errors import ResidualsError
from residuals.commands._files import (check_on_empty_ledger, check_output_dir, data_inputs,
                                       existing_ledger, ledger_inputs, refuse_overwrite)

batch_app = typer.Typer(help="Post payout batches to the ledger of record.",
                        no_args_is_help=True)

DB_HELP = "Ledger database URL [default: $RESIDUALS_DB or sqlite:///data/demo.db]."


def code_version() -> str:
    """The installed ``residuals`` version (recorded in each batch manifest)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"residuals {version('residuals')}"
    except PackageNotFoundError:
        return "residuals (not installed)"


def check_period(period: str) -> str:
    """A period is a short label of letters, digits, ``.``, ``_``, ``-`` (e.g. ``2026-10``)."""
    from contract.schema import PERIOD_PATTERN

    if not re.fullmatch(PERIOD_PATTERN, period):
        raise ResidualsError(f"--period {period!r}: expected a label such as 2026-10 "
                             "(letters, digits, '.', '_', '-'; at most 64 characters)")
    return period


def clip_credits(attributions: Any) -> Any:
    """Summed attribution weight per (creator, clip): the clips that earned each share."""
    import polars as pl

    from contract import schema as S

    return (attributions.group_by(S.CREATOR_ID, S.CLIP_ID).agg(pl.col(S.WEIGHT).sum())
            .filter(pl.col(S.WEIGHT) > 0).sort(S.CREATOR_ID, S.CLIP_ID))


def make_allocator(policy: Any, ds: Any, attributions: Any, pool_minor: int, currency: str,
                   batch_id: str):  # type: ignore[no-untyped-def]
    """The store's allocator: carried-in balances -> the policy's allocation lines."""
    from ledger.allocate import allocate, from_dataset
    from ledger.store.posting import BatchLines

    def run(carried: Any) -> BatchLines:
        alloc = allocate(policy, from_dataset(ds, attributions, carried_in=carried),
                         pool_minor=pool_minor, currency=currency, batch_id=batch_id)
        return BatchLines(alloc.frame, alloc.withheld_minor)

    return run


def resolve_pool(policy: Any, ds: Any, pool: str | None, currency: str | None) -> tuple[int, str]:
    """(pool in minor units, currency) from ``--pool``/``--currency`` or the policy."""
    from ledger.allocate import pool_from
    from ledger.money import to_minor

    cur = (currency or policy.currency or "").strip().upper() or None
    pool_minor = None
    if pool is not None:
        if cur is None:
            raise ResidualsError("--pool needs a currency: pass --currency or set "
                                 "pool.currency in the policy")
        pool_minor = to_minor(pool, cur, what=f"--pool {pool!r}")
    pool_minor, cur = pool_from(policy, ds.accounts, pool_minor, cur)
    if pool_minor <= 0:
        raise ResidualsError(f"--pool: the pool is {pool_minor} minor units, expected > 0")
    return pool_minor, cur


def payouts_file(out: Path, period: str) -> Path:
    """Where the payout file of ``period`` goes."""
    return out / f"payouts-{period}.csv"


def write_payouts(session: Any, batch_id: str, path: Path) -> int:
    """Write a batch's payout lines (creator_id, amount, amount_minor, currency, reference)
    atomically, with spreadsheet formulas neutralised; the same batch always gives the
    same bytes. Returns the number of lines."""
    import polars as pl

    from contract import schema as S
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


@batch_app.command("run")
def run(
    period: Annotated[str, typer.Option("--period", help="Payout period label, e.g. 2026-10.")],
    policy_path: Annotated[Path, typer.Option("--policy", help="Policy TOML file.")],
    data: Annotated[Path, typer.Option("--data", help="Data directory in the contract.")],
    pool: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--pool", help="Pool in major units, e.g. 25000.00 [default: the policy's pool].")] = None,
    currency: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--currency", help="ISO 4217 code of --pool [default: the policy's].")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help=DB_HELP)] = None,  # noqa: UP045
    supersede: Annotated[bool, typer.Option(
        "--supersede", help="Replace the period's batch: reverse it and post this one.")] = False,
    out: Annotated[Path, typer.Option(
        "--out", help="Directory for payouts-PERIOD.csv.")] = Path("."),
    k: Annotated[int, typer.Option("--k", help="Clips per generation when attribution is "
                                   "computed (no attributions.parquet).")] = DEFAULT_K,
    depth: Annotated[int, typer.Option("--depth", help="Candidates weighed per generation when "
                                       "attribution is computed.")] = DEFAULT_DEPTH,
    method: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--method", help="Weighting method when attribution is computed.")] = None,
) -> None:
    """Allocate a period's pool under a policy and post it as one batch, exactly once."""
    from rich.console import Console

    from contract.io import input_hashes, load_dataset
    from ledger.policy import load_policy
    from ledger.store.engine import open_store, read_session, write_session
    from ledger.store.posting import BatchRequest, find_batch, post_batch
    from residuals.pipeline import attribution_for, attribution_settings, recorded_settings

    check_period(period)
    check_output_dir("--out", out)
    path = payouts_file(out, period)
    refuse_overwrite([("--out", path)],
                     [("--policy", policy_path), *data_inputs(data), *ledger_inputs(db)])
    if k < 1:
        raise ResidualsError(f"--k {k}: expected an integer >= 1")
    if depth < 1:
        raise ResidualsError(f"--depth {depth}: expected an integer >= 1")
    policy = load_policy(policy_path)
    ds = load_dataset(data)
    pool_minor, cur = resolve_pool(policy, ds, pool, currency)
    engine = existing_ledger(db)  # None: a new ledger, created once the batch is valid
    console = Console(highlight=False)
    hashes = input_hashes(data)
    has_file = ds.attributions is not None
    params: dict[str, Any] = {"attributions": "file" if has_file else "computed"}
    if not has_file:
        params.update(attribution_settings(k=k, depth=depth, method=method))
    from contract import schema as S

    request_ = BatchRequest(
        period=period, currency=cur, pool_minor=pool_minor, policy_name=policy.name,
        policy_text=policy.text, input_hashes=hashes, creators=ds.creators.select(
            S.CREATOR_ID, S.DISPLAY_NAME), params=params,
        context={"data_dir": str(data.resolve()), "policy_file": str(policy_path)},
    )
    batch_id = request_.batch_id
    known = None
    if engine is not None:
        with read_session(engine) as s:
            known = find_batch(s, batch_id)
    if known is None:
        attributions = attribution_for(ds, recorded_settings(params))
        request_ = dataclasses.replace(request_, clip_credits=clip_credits(attributions))
        allocator = make_allocator(policy, ds, attributions, pool_minor, cur, batch_id)
        if engine is None:
            allocator = check_on_empty_ledger(request_, allocator)
            engine = open_store(db)
    else:
        def allocator(carried: Any) -> Any:  # never called: the batch exists
            raise AssertionError("allocation requested for a posted batch")

    from sqlalchemy.exc import IntegrityError

    try:
        with write_session(engine) as s, s.begin():
            outcome = post_batch(s, request_, allocator, supersede=supersede,
                                 code_version=code_version())
    except IntegrityError as exc:  # the write lock makes this unreachable in practice
        raise ResidualsError(f"batch for period {period} not posted: another run changed the "
                             f"ledger at the same time ({str(exc.orig).splitlines()[0]}); "
                             "run again") from None
    with read_session(engine) as s:
        lines = None
        if outcome.superseded_by is None:
            lines = write_payouts(s, outcome.batch_id, path)
    engine.dispose()
    _summary(console, outcome, path if lines is not None else None, lines)


def _summary(console: Any, outcome: Any, path: Path | None, lines: int | None) -> None:
    from rich.table import Table

    from ledger.money import format_minor

    cur = outcome.currency
    if outcome.status == "exists":
        head = (f"batch {outcome.batch_id[:12]} for period {outcome.period} is already posted "
                "(same period, policy, pool and inputs): nothing to do")
        if outcome.superseded_by:
            head += f"; it was superseded by batch {outcome.superseded_by[:12]}"
        console.print(head)
    else:
        console.print(f"posted batch {outcome.batch_id[:12]} for period {outcome.period}"
                      + (f", superseding {outcome.superseded[:12]}" if outcome.superseded
                         else ""))
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("batch id", outcome.batch_id)
    table.add_row("batch hash", outcome.batch_hash)
    table.add_row("chain position", str(outcome.seq))
    table.add_row("pool", format_minor(outcome.pool_minor, cur))
    table.add_row("withheld", format_minor(outcome.withheld_minor, cur))
    table.add_row("paid out", f"{format_minor(outcome.paid_minor, cur)} to "
                  f"{outcome.creators_paid} creators")
    if outcome.status == "posted":
        table.add_row("entries posted", f"{outcome.entries:,}")
    if path is not None:
        table.add_row("payout file", f"{path} ({lines} lines)")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command group to the main app."""
    app.add_typer(batch_app, name="batch")
