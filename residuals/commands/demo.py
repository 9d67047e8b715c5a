"""``residuals demo``: two payout periods and the cycle between them, as ``make demo`` runs it.

Rule: this command checks its flags, runs :func:`residuals.workflows.demo.demo`
and prints each step as the command it stands for prints it, then starts
``residuals dashboard`` (skipped with ``--headless``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from contract.errors import ResidualsError
from residuals.commands._files import data_inputs, flag_names, ledger_inputs, refuse_overwrite
from residuals.commands.attribute import print_attributed
from residuals.commands.batch import print_posted
from residuals.commands.ledger import print_verified
from residuals.workflows.demo import DEFAULT_PERIOD, DEFAULT_SEED, next_label


class _Printer:
    """Prints each step of :func:`residuals.workflows.demo.demo` as the commands would."""

    def __init__(self, console: Any, stages: int) -> None:
        self.console, self.stages = console, stages

    def stage(self, n: int, text: str) -> None:
        self.console.rule(f"[bold]{n}/{self.stages}[/bold] {text}", align="left")

    def attributed(self, path: Path, done: Any) -> None:
        if done is None:
            self.console.print(f"{path} exists; using it")
        else:
            print_attributed(Console(stderr=True), done)

    def posted(self, result: Any) -> None:
        print_posted(Console(highlight=False), result)

    def verified(self, result: Any) -> None:
        print_verified(result)

    def cycled(self, cycle: Any) -> None:
        print_cycle(self.console, cycle)

    def summarised(self, summary: Any) -> None:
        print_summary(self.console, summary)

    def logins(self, logins: list[tuple[str, str, str]]) -> None:
        for user, password, role in logins:
            self.console.print(f"  {role:<10} user [bold]{user}[/bold]  password {password}")


def print_cycle(console: Any, cycle: Any) -> None:
    """One line per step of the payout cycle between the two periods."""
    from rich.table import Table

    from ledger.money import format_minor

    cur, done = cycle.currency, "(done by an earlier run)"
    table = Table(show_header=False, box=None)
    table.add_row("held", f"{cycle.held_creator}: tax form missing (not exported, not carried)")
    ex = cycle.exported
    table.add_row("exported", f"{ex.payouts:,} payouts, {format_minor(ex.total_minor, cur)} to "
                  f"{ex.path}" if ex is not None else f"{cycle.export_file} {done}")
    rec = cycle.reconciliation
    table.add_row("provider report", f"{cycle.report_file}: {rec.applied:,} applied, "
                  + ", ".join(f"{n:,} {c}" for c, n in rec.counts.items()
                              if n and c != "matched")
                  if rec.applied < sum(rec.counts.values()) else
                  f"{cycle.report_file}: {rec.applied:,} applied")
    table.add_row("failed", f"{cycle.failed_creator}: account closed, re-credited into "
                  f"{cycle.next_period}")
    table.add_row("claim", f"#{cycle.claim_id} of {cycle.claim_creator} (copied clip) upheld: "
                  f"{format_minor(cycle.claim_amount_minor, cur)} from the "
                  f"{cycle.next_period} pool")
    console.print(table)


def print_summary(console: Any, summary: Any) -> None:
    """Pool, creators paid, the largest payouts, Gini, and that payouts sum to the pool."""
    from rich.table import Table

    from contract import schema as S
    from ledger.money import format_minor

    b = summary.batch
    cur = b[S.CURRENCY]
    pool, withheld, allocated = b[S.POOL_MINOR], b[S.WITHHELD_MINOR], summary.allocated
    head = Table(show_header=False, box=None)
    head.add_row("period", b[S.PERIOD])
    head.add_row("policy", b[S.POLICY_NAME])
    head.add_row("pool", format_minor(pool, cur))
    head.add_row("creators earning", f"{summary.creators_earning:,}")
    head.add_row("creators paid now", f"{summary.creators_paid:,} "
                 f"({format_minor(b[S.PAID_MINOR], cur)})")
    head.add_row("carried forward", format_minor(summary.carried, cur))
    head.add_row("Gini of earnings", f"{summary.gini:.3f}")
    ok = allocated + withheld == pool
    head.add_row("conservation", f"[{'green' if ok else 'red'}]allocated "
                 f"{format_minor(allocated, cur)} + withheld {format_minor(withheld, cur)} "
                 f"{'=' if ok else '!='} pool {format_minor(pool, cur)}[/]")
    console.print(head)
    top = Table(title="Ten largest earnings this period", title_justify="left")
    for col in ("creator", "name", "earned", "paid now"):
        top.add_column(col, justify="right" if col in ("earned", "paid now") else "left")
    for row in summary.top.iter_rows(named=True):  # ten rows, for display
        top.add_row(row[S.CREATOR_ID], row[S.DISPLAY_NAME],
                    format_minor(row[S.ALLOCATED_MINOR], cur), format_minor(row[S.PAID_MINOR], cur))
    console.print(top)


def demo(
    data: Annotated[Path, typer.Option("--data", help="Data directory in the contract.")] = Path(
        "data/samples"),
    db: Annotated[str, typer.Option("--db", help="Ledger database URL.")] = (
        "sqlite:///data/demo.db"),
    policy: Annotated[Path, typer.Option("--policy", help="Policy TOML file.")] = Path(
        "policies/default.toml"),
    period: Annotated[str, typer.Option("--period", help="Payout period label.")] = DEFAULT_PERIOD,
    work: Annotated[Path, typer.Option(
        "--work", help="Work directory for the period's inputs, attributions and payout file.")]
    = Path("data/demo"),
    headless: Annotated[bool, typer.Option(
        "--headless", help="Stop after the summary; do not start the dashboard.")] = False,
    port: Annotated[int, typer.Option("--port", help="Dashboard port.")] = 8501,
    method: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--method", help="Weighting method [default: the project default].")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", help="The seed --data was made with; the next period is drawn from it.")]
    = DEFAULT_SEED,
    periods: Annotated[int, typer.Option(
        "--periods", help="2: two periods and the payout cycle between them; 1: the first "
                          "period only (for data not made by `residuals samples make`).")] = 2,
) -> None:
    """Post two periods with the payout cycle between them, verify, summarise, serve it."""
    from contract import schema as S
    from residuals.commands.batch import check_period
    from residuals.commands.dashboard import dashboard
    from residuals.workflows.demo import DemoRun, demo as run_demo
    from residuals.workflows.payout import payouts_file

    console = Console(highlight=False)
    if not data.is_dir():
        raise ResidualsError(f"--data {data}: data directory not found")
    if not policy.is_file():
        raise ResidualsError(f"--policy {policy}: file not found")
    check_period(period)
    if periods not in (1, 2):
        raise ResidualsError(f"--periods {periods}: expected 1 or 2")
    labels = [period, next_label(period)][:periods]
    written = [work / p / t.filename for p in labels
               for t in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS, S.ATTRIBUTIONS)]
    refuse_overwrite([("--work", p) for p in (*written, *(payouts_file(work / p, p)
                                                          for p in labels))],
                     [*data_inputs(data), ("--policy", policy), *ledger_inputs(db)])
    run = DemoRun(data=data, db=db, policy=policy, period=period, work=work, method=method,
                  scheduler=os.environ.get("DASK_SCHEDULER_ADDRESS") or None, seed=seed,
                  periods=periods)
    with flag_names({"seed": "--seed", "prev": "--data"}):
        run_demo(run, _Printer(console, run.stages))
    if headless:
        console.print("HEADLESS set: not starting the dashboard "
                      f"(start it with: residuals dashboard --db {db})")
        return
    console.rule(f"[bold]{run.stages}/{run.stages}[/bold] dashboard (Ctrl-C to stop)",
                 align="left")
    dashboard(db=db, port=port, host="127.0.0.1", data=work / labels[-1], headless=True)


def register(app: typer.Typer) -> None:
    """Add ``residuals demo`` to the CLI."""
    app.command("demo")(demo)
