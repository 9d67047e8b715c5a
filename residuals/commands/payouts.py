"""``residuals payouts export|exports|export-again|import|list``: send payouts to a
provider, get an export's file again, and learn what became of them.

Rule: this module checks flags, calls one function of
:mod:`residuals.workflows.disbursement` and prints its result; it holds no money
logic. Output that came from a provider (payout ids in a report) is printed with
``repr`` so no control character or markup reaches the terminal as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from residuals.commands._files import DbOpt, flag_names, ledger_inputs, refuse_overwrite

payouts_app = typer.Typer(help="Export payouts to a provider (and an export's file again), "
                          "import its status reports.",
                          no_args_is_help=True)

OutOpt = Annotated[Path, typer.Option("--out", help="File to write (never replaced).")]
FLAGS = {"batch": "--batch", "fmt": "--format", "out": "--out", "report": "--report",
         "state": "--state", "sha256": "SHA256"}


@payouts_app.command("export")
def export(
    batch: Annotated[str, typer.Option("--batch", help="Batch id (or 12+ of its first hex "
                                       "digits) or period.")],
    fmt: Annotated[str, typer.Option("--format", help="csv, paypal or stripe.")],
    out: OutOpt,
    db: DbOpt = None,
) -> None:
    """Write a batch's pending payouts for a provider and mark them submitted."""
    from ledger.money import format_minor
    from residuals.workflows.disbursement import export_payouts

    refuse_overwrite([("--out", out)], ledger_inputs(db))
    with flag_names(FLAGS):
        done = export_payouts(db, batch, fmt, out)
    typer.echo(f"exported {done.payouts} payouts of batch {done.batch_id[:12]} (period "
               f"{done.period}), {format_minor(done.total_minor, done.currency)}, to {done.path}; "
               f"now submitted ({done.held} held, not exported)")


@payouts_app.command("exports")
def exports(db: DbOpt = None) -> None:
    """List past exports, newest first, with the sha256 of each file."""
    from ledger.money import format_minor
    from residuals.workflows.disbursement import past_exports

    with flag_names(FLAGS):
        rows = past_exports(db)
    for sha, bid, period, n, amount, cur, at in rows.iter_rows():  # printing: one per export
        typer.echo(f"{sha}  {period}  batch {bid[:12]}  {n} payouts  {format_minor(amount, cur)}"
                   f"  {at:%Y-%m-%d %H:%M:%S}")
    typer.echo(f"{rows.height} exports")


@payouts_app.command("export-again")
def export_again(
    sha256: Annotated[str, typer.Argument(
        metavar="SHA256", help="The export file's sha256 (or 12+ of its first hex digits), "
        "as `payouts exports` lists it.")],
    out: OutOpt,
    db: DbOpt = None,
) -> None:
    """Write an earlier export's file again, byte for byte (nothing is recorded)."""
    from contract.errors import ResidualsError
    from contract.io import atomic_output
    from residuals.workflows.disbursement import export_again as render_again

    refuse_overwrite([("--out", out)], ledger_inputs(db))
    if out.exists():
        raise ResidualsError(f"--out {out}: exists; choose a new file")
    with flag_names(FLAGS):
        again = render_again(db, sha256)
    with atomic_output(out) as tmp:
        tmp.write_bytes(again.data)
    typer.echo(f"wrote the {again.fmt} export {again.sha256[:16]} of period {again.period} "
               f"({again.payouts} payouts) again to {out}")


@payouts_app.command("import")
def import_(
    report: Annotated[Path, typer.Option("--report", help="Provider status report (CSV: "
                                         "payout_id, status, provider_reference, failure_code, "
                                         "amount_minor, currency, occurred_at).")],
    db: DbOpt = None,
) -> None:
    """Reconcile a provider status report with the ledger and apply what matches."""
    from residuals.workflows.disbursement import import_report

    with flag_names(FLAGS):
        result = import_report(db, report)
    c = result.counts
    typer.echo(f"{report}: matched {c['matched']} (applied), unknown payout id "
               f"{c['unknown']}, amount or currency mismatch {c['mismatch']}, duplicate "
               f"{c['duplicate']}, out of order {c['out_of_order']}")
    for line in result.problems:
        typer.echo(f"  {line}")


@payouts_app.command("list")
def list_(
    batch: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--batch", help="Only this batch (id or period).")] = None,
    state: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--state", help="Only payouts in this state.")] = None,
    db: DbOpt = None,
) -> None:
    """List payouts with their current state."""
    from ledger.money import format_minor
    from residuals.workflows.disbursement import list_payouts

    with flag_names(FLAGS):
        rows = list_payouts(db, batch, state)
    for pid, period, cid, amount, cur, st, why in rows.select(
            "payout_id", "period", "creator_id", "amount_minor", "currency", "state",
            "reason").iter_rows():  # printing: one line per payout listed
        typer.echo(f"{pid}  {period}  {cid!r}  {format_minor(amount, cur)}  {st}"
                   + (f" ({why})" if why else ""))
    typer.echo(f"{rows.height} payouts")


def register(app: typer.Typer) -> None:
    """Add the ``payouts`` command group to the main app."""
    app.add_typer(payouts_app, name="payouts")
