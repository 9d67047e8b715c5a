"""``residuals demo``: the whole pipeline on one data directory, as ``make demo`` runs it.

Rule: the demo holds no logic of its own; it calls the same functions as the
commands it stands for, in order: ``residuals attribute`` (into a work
directory beside copies of the contract tables, so the batch manifest names
inputs that stay put), ``residuals batch run``, ``residuals ledger verify``,
a summary read back from the ledger, demo logins, and ``residuals dashboard``
(skipped with ``--headless``). Running it twice is safe: the batch is
recognised and not posted again.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer

from attribution.candidates import DEFAULT_K
from contract.errors import ResidualsError
from residuals.commands._files import data_inputs, ledger_inputs, refuse_overwrite

DEFAULT_PERIOD = "2026-10"


def _stage(console, n: int, text: str) -> None:  # type: ignore[no-untyped-def]
    console.rule(f"[bold]{n}/6[/bold] {text}", align="left")


def prepare_workdir(data: Path, work: Path) -> Path:
    """Copy the contract tables of ``data`` into ``work`` (attributions are computed there).

    When any table differs from the copy already there, the work directory's
    attributions are removed so they are computed again from the new inputs.
    """
    from contract import schema as S

    work.mkdir(parents=True, exist_ok=True)
    changed = False
    for table in (S.CREATORS, S.CLIPS, S.GENERATIONS, S.ACCOUNTS):
        src = data / table.filename
        if not src.is_file():
            raise ResidualsError(f"{src}: file not found (expected the {table.name} table)")
        dst = work / table.filename
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            shutil.copyfile(src, dst)
            changed = True
    if changed:  # attributions computed from other inputs are stale
        (work / S.ATTRIBUTIONS.filename).unlink(missing_ok=True)
    return work


def batch_summary(db: str, period: str, top: int = 10) -> dict:
    """The standing batch of ``period`` read back from the ledger: totals, top payouts, Gini."""
    import polars as pl

    from contract import schema as S
    from ledger.fairness import gini
    from ledger.store.engine import open_store, read_session
    from ledger.store.read import batch_lines, batches, display_names

    engine = open_store(db)
    try:
        with read_session(engine) as s:
            all_batches = batches(s)
            standing = all_batches.filter((pl.col(S.PERIOD) == period) & ~pl.col(S.SUPERSEDED))
            if standing.height == 0:
                raise ResidualsError(f"no batch for period {period} in {db}")
            batch = standing.row(0, named=True)
            lines = batch_lines(s, batch[S.BATCH_ID]).join(
                display_names(s), on=S.CREATOR_ID, how="left")
    finally:
        engine.dispose()
    earned = lines.filter(pl.col(S.ALLOCATED_MINOR) > 0)
    return {
        "batch": batch,
        "allocated": int(lines[S.ALLOCATED_MINOR].sum()),
        "creators_earning": earned.height,
        "creators_paid": int((lines[S.PAID_MINOR] > 0).sum()),
        "carried": int(lines[S.CARRIED_OUT_MINOR].sum()),
        "gini": gini(lines[S.ALLOCATED_MINOR].cast(pl.Float64)),
        "top": lines.sort([S.ALLOCATED_MINOR, S.CREATOR_ID], descending=[True, False]).head(top),
    }


def print_summary(console, summary: dict) -> None:  # type: ignore[no-untyped-def]
    """Pool, creators paid, the largest payouts, Gini, and that payouts sum to the pool."""
    from rich.table import Table

    from contract import schema as S
    from ledger.money import format_minor

    b = summary["batch"]
    cur = b[S.CURRENCY]
    pool, withheld, allocated = b[S.POOL_MINOR], b[S.WITHHELD_MINOR], summary["allocated"]
    head = Table(show_header=False, box=None)
    head.add_row("period", b[S.PERIOD])
    head.add_row("policy", b[S.POLICY_NAME])
    head.add_row("pool", format_minor(pool, cur))
    head.add_row("creators earning", f"{summary['creators_earning']:,}")
    head.add_row("creators paid now", f"{summary['creators_paid']:,} "
                 f"({format_minor(b[S.PAID_MINOR], cur)})")
    head.add_row("carried forward", format_minor(summary["carried"], cur))
    head.add_row("Gini of earnings", f"{summary['gini']:.3f}")
    ok = allocated + withheld == pool
    head.add_row("conservation", f"[{'green' if ok else 'red'}]allocated "
                 f"{format_minor(allocated, cur)} + withheld {format_minor(withheld, cur)} "
                 f"{'=' if ok else '!='} pool {format_minor(pool, cur)}[/]")
    console.print(head)
    top = Table(title="Ten largest earnings this period", title_justify="left")
    for col in ("creator", "name", "earned", "paid now"):
        top.add_column(col, justify="right" if col in ("earned", "paid now") else "left")
    for row in summary["top"].iter_rows(named=True):  # ten rows, for display
        top.add_row(row[S.CREATOR_ID], row[S.DISPLAY_NAME],
                    format_minor(row[S.ALLOCATED_MINOR], cur), format_minor(row[S.PAID_MINOR], cur))
    console.print(top)
    if not ok:
        raise ResidualsError(f"batch {b[S.BATCH_ID][:12]}: allocated + withheld != pool")


def demo_logins(db: str, creators: list[str]) -> list[tuple[str, str, str]]:
    """Create (or keep) the demo users and return their logins."""
    from dashboard.auth import create_demo_users
    from ledger.store.engine import open_store, write_session

    engine = open_store(db)
    try:
        with write_session(engine) as s, s.begin():
            return create_demo_users(s, creators)
    finally:
        engine.dispose()


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
    from rich.console import Console

    from contract import schema as S
    from residuals.commands.attribute import attribute
    from residuals.commands.batch import check_period, payouts_file, run as batch_run
    from residuals.commands.dashboard import dashboard
    from residuals.commands.ledger import verify_cmd

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
    workdir = prepare_workdir(data, work / period)

    _stage(console, 1, f"attribution: generations of {data} against its clips")
    attributions = workdir / "attributions.parquet"
    if attributions.exists():
        console.print(f"{attributions} exists; using it")
    else:
        attribute(clips=workdir / "clips.parquet", generations=workdir / "generations.parquet",
                  out=attributions, method=method, k=DEFAULT_K, scheduler=None, workers=None,
                  block_size=2048, quiet=False)

    _stage(console, 2, f"payout batch for {period} under {policy}")
    batch_run(period=period, policy_path=policy, data=workdir, pool=None, currency=None, db=db,
              supersede=False, out=workdir, k=DEFAULT_K, method=method)

    _stage(console, 3, "ledger verify")
    verify_cmd(db=db, recompute=True)

    _stage(console, 4, "summary")
    summary = batch_summary(db, period)
    print_summary(console, summary)

    _stage(console, 5, "dashboard logins")
    top_creators = summary["top"][S.CREATOR_ID].head(2).to_list()
    for user, password, role in demo_logins(db, top_creators):
        console.print(f"  {role:<10} user [bold]{user}[/bold]  password {password}")

    if headless:
        console.print("HEADLESS set: not starting the dashboard "
                      f"(start it with: residuals dashboard --db {db})")
        return
    _stage(console, 6, "dashboard (Ctrl-C to stop)")
    dashboard(db=db, port=port, host="127.0.0.1", data=workdir, headless=True)


def register(app: typer.Typer) -> None:
    """Add ``residuals demo`` to the CLI."""
    app.command("demo")(demo)
