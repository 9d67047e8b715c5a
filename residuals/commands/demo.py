"""``residuals demo``: the whole pipeline on one data directory, as ``make demo`` runs it.

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
from residuals.commands._files import data_inputs, ledger_inputs, refuse_overwrite
from residuals.commands.attribute import print_attributed
from residuals.commands.batch import print_posted
from residuals.commands.ledger import print_verified
from residuals.workflows.demo import DEFAULT_PERIOD


class _Printer:
    """Prints each step of :func:`residuals.workflows.demo.demo` as the commands would."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def stage(self, n: int, text: str) -> None:
        self.console.rule(f"[bold]{n}/6[/bold] {text}", align="left")

    def attributed(self, path: Path, done: Any) -> None:
        if done is None:
            self.console.print(f"{path} exists; using it")
        else:
            print_attributed(Console(stderr=True), done)

    def posted(self, result: Any) -> None:
        print_posted(Console(highlight=False), result)

    def verified(self, result: Any) -> None:
        print_verified(result)

    def summarised(self, summary: Any) -> None:
        print_summary(self.console, summary)

    def logins(self, logins: list[tuple[str, str, str]]) -> None:
        for user, password, role in logins:
            self.console.print(f"  {role:<10} user [bold]{user}[/bold]  password {password}")


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
) -> None:
    """Attribute the sample, post a payout batch, verify the ledger, print a summary, serve it."""
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
    written = [work / period / t.filename for t in (S.CREATORS, S.CLIPS, S.GENERATIONS,
                                                    S.ACCOUNTS, S.ATTRIBUTIONS)]
    refuse_overwrite([("--work", p) for p in (*written, payouts_file(work / period, period))],
                     [*data_inputs(data), ("--policy", policy), *ledger_inputs(db)])
    run_demo(DemoRun(data=data, db=db, policy=policy, period=period, work=work, method=method,
                     scheduler=os.environ.get("DASK_SCHEDULER_ADDRESS") or None),
             _Printer(console))
    if headless:
        console.print("HEADLESS set: not starting the dashboard "
                      f"(start it with: residuals dashboard --db {db})")
        return
    console.rule("[bold]6/6[/bold] dashboard (Ctrl-C to stop)", align="left")
    dashboard(db=db, port=port, host="127.0.0.1", data=work / period, headless=True)


def register(app: typer.Typer) -> None:
    """Add ``residuals demo`` to the CLI."""
    app.command("demo")(demo)
