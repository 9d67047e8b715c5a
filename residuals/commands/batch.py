"""``residuals batch run``: allocate one period's pool and post it to the ledger, once.

Rule: this module checks flags, calls :func:`residuals.workflows.payout.run_batch`
and prints its outcome; it holds no money logic. A re-run is recognised (and
reported) before anything is computed; the payout file ``payouts-<period>.csv``
is written atomically *after* the commit, from the database, so a crash
between the two is repaired by simply running again.

``--pool`` is in major units as a decimal string (``--pool 25000.00 --currency
USD``), converted exactly with :func:`ledger.money.to_minor`; without it the
policy's ``[pool]`` applies.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from contract.errors import ResidualsError
from residuals.commands._files import (DbOpt, check_output_dir, data_inputs, flag_names,
                                       ledger_inputs, refuse_overwrite)

batch_app = typer.Typer(help="Post payout batches to the ledger of record.",
                        no_args_is_help=True)

#: Parameters of :mod:`residuals.workflows.payout` and the flags that set them.
POOL_FLAGS = {"pool": "--pool", "pool_minor": "--pool", "currency": "--currency", "k": "--k",
              "depth": "--depth", "supersede": "--supersede"}

def check_period(period: str) -> str:
    """A period is a short label of letters, digits, ``.``, ``_``, ``-`` (e.g. ``2026-10``)."""
    from contract.schema import PERIOD_PATTERN

    if not re.fullmatch(PERIOD_PATTERN, period):
        raise ResidualsError(f"--period {period!r}: expected a label such as 2026-10 "
                             "(letters, digits, '.', '_', '-'; at most 64 characters)")
    return period


@batch_app.command("run")
def run(
    period: Annotated[str, typer.Option("--period", help="Payout period label, e.g. 2026-10.")],
    policy_path: Annotated[Path, typer.Option("--policy", help="Policy TOML file.")],
    data: Annotated[Path, typer.Option("--data", help="Data directory in the contract.")],
    pool: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--pool", help="Pool in major units, e.g. 25000.00 [default: the policy's pool].")] = None,
    currency: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--currency", help="ISO 4217 code of --pool [default: the policy's].")] = None,
    db: DbOpt = None,
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

    from residuals.workflows.payout import BatchRun, payouts_file, run_batch

    check_period(period)
    check_output_dir("--out", out)
    refuse_overwrite([("--out", payouts_file(out, period))],
                     [("--policy", policy_path), *data_inputs(data), *ledger_inputs(db)])
    with flag_names(POOL_FLAGS):
        result = run_batch(BatchRun(period=period, policy_path=policy_path, data=data, out=out,
                                    db=db, pool=pool, currency=currency, supersede=supersede,
                                    k=k, depth=depth, method=method))
    print_posted(Console(highlight=False), result)


def print_posted(console: Any, result: Any) -> None:
    """The summary ``batch run`` prints of a :class:`~residuals.workflows.payout.BatchResult`."""
    _summary(console, result.outcome, result.payout_file, result.lines)


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


@batch_app.command("list")
def list_(
    db: DbOpt = None,
) -> None:
    """List the batches in chain order with their payouts per state."""
    from ledger.money import format_minor
    from ledger.store import models as M
    from residuals.workflows.disbursement import batch_overview

    rows = batch_overview(db)
    for row in rows.iter_rows(named=True):  # one line per batch
        states = ", ".join(f"{row[s]} {s}" for s in M.PAYOUT_STATES if row.get(s))
        typer.echo(f"{row['seq']:>4}  {row['period']}  {row['batch_id'][:12]}  "
                   f"{'superseded' if row['superseded'] else 'standing'}  pool "
                   f"{format_minor(row['pool_minor'], row['currency'])}  paid "
                   f"{format_minor(row['paid_minor'], row['currency'])}  "
                   f"payouts: {states or 'none'}")
    typer.echo(f"{rows.height} batches")


@batch_app.command("show")
def show(
    batch: Annotated[str, typer.Argument(help="Batch id (or 12+ of its first hex digits) "
                                         "or period.")],
    db: DbOpt = None,
) -> None:
    """Show one batch: its chain position, money and each payout's state."""
    from ledger.money import format_minor
    from residuals.workflows.disbursement import batch_detail

    with flag_names({"batch": "BATCH"}):
        row, payouts = batch_detail(db, batch)
    cur = row["currency"]
    for key in ("batch_id", "batch_hash", "period", "seq", "revision", "policy_name",
                "supersedes_id", "superseded"):
        typer.echo(f"{key:<15} {row[key]}")
    for key in ("pool_minor", "withheld_minor", "paid_minor"):
        typer.echo(f"{key[:-6]:<15} {format_minor(row[key], cur)}")
    for pid, cid, amount, st, why in payouts.select(
            "payout_id", "creator_id", "amount_minor", "state", "reason").iter_rows():
        typer.echo(f"  {pid}  {cid!r}  {format_minor(amount, cur)}  {st}"
                   + (f" ({why})" if why else ""))
    typer.echo(f"{payouts.height} payouts")


def register(app: typer.Typer) -> None:
    """Add the ``batch`` command group to the main app."""
    app.add_typer(batch_app, name="batch")
