"""``residuals policy check`` and ``residuals policy compare``.

Rule: these commands only read. ``check`` validates a policy file and prints
what it will do; ``compare`` allocates one period under two policies (with the
same pool and, with ``--db``, the same balances carried in from the ledger) and
prints pool, creators paid, median and largest payout, Gini, top-1% and
top-10% share, and the money carried in, paid out, carried forward and
withheld under each, then the creators who gain or lose most.
Bad input is one ``error:`` line and exit 1.
"""

from __future__ import annotations

from pathlib import Path

import typer

from contract import schema as S
from contract.errors import ResidualsError
from residuals.commands._files import flag_names

policy_app = typer.Typer(help="Check allocation policies and compare them on a period's data.",
                         no_args_is_help=True)


def _load(path: Path):  # noqa: ANN202 - returns ledger.policy.Policy
    from ledger.policy import load_policy

    return load_policy(path)


def _describe(policy) -> list[str]:  # noqa: ANN001
    r = policy.rules
    pool = (f"amount {policy.pool_amount}" if policy.pool_amount is not None
            else f"revenue share {policy.revenue_share:g}" if policy.revenue_share is not None
            else "set by --pool")
    lines = [
        f"policy {policy.name!r} ({policy.source}), sha256 {policy.hash[:16]}",
        f"  pool: {pool} {policy.currency or '(currency from --currency)'}",
        "  components: " + ", ".join(f"{k} {w:g}" for k, w in policy.components.items())
        + (f" (corpus by {policy.corpus_by})" if "corpus" in policy.components else ""),
        f"  rules: exclude_opted_out={str(r.exclude_opted_out).lower()}, "
        f"unattributed={r.unattributed}, eligibility_min_clips={r.eligibility_min_clips}, "
        f"eligibility_min_share={r.eligibility_min_share:g}, "
        f"cap_share={r.cap_share if r.cap_share is not None else 'none'}, "
        f"floor={r.floor or r.floor_share or 'none'}, min_payout={r.min_payout}",
    ]
    if r.license_multipliers:
        lines.append("  license multipliers: " + ", ".join(
            f"{k} {v:g}" for k, v in r.license_multipliers.items())
            + f" (others {r.license_default:g})")
    return lines


@policy_app.command("check")
def check(path: Path = typer.Argument(..., help="Policy TOML file.")) -> None:
    """Validate a policy file and print what it does."""
    policy = _load(path)
    for line in _describe(policy):
        typer.echo(line)
    typer.echo("ok")


def _ledger_carried(db: str, currency: str):  # noqa: ANN202 - a polars DataFrame
    """``creator_id``, ``carried_minor``: the balances the ledger at ``db`` would carry into
    its next batch in ``currency`` (creator payables not yet paid out)."""
    from sqlalchemy.orm import Session

    from ledger.store.posting import payable_balances
    from residuals.workflows.store import require_ledger

    engine = require_ledger(db)
    try:
        with Session(engine) as session:
            return payable_balances(session, currency).sort(S.CREATOR_ID)
    finally:
        engine.dispose()


def _allocate_all(policies: list, data: Path, pool: str | None,  # noqa: ANN001
                  currency: str | None, db: str | None):
    """Every policy's allocation of one period: same inputs, same pool, same carried-in."""
    from contract.io import load_dataset
    from ledger.allocate import allocate, from_dataset
    from residuals.commands.batch import POOL_FLAGS
    from residuals.workflows.attribution import attribution_for
    from residuals.workflows.payout import resolve_pool

    ds = load_dataset(data)
    # Every policy allocates the same pool: the first policy's (or --pool).
    with flag_names(POOL_FLAGS):
        pool_minor, cur = resolve_pool(policies[0], ds.accounts, pool, currency, positive=False)
    carried = _ledger_carried(db, cur) if db is not None else None
    inputs = from_dataset(ds, attribution_for(ds), carried)
    return [allocate(p, inputs, pool_minor=pool_minor, currency=cur,
                     batch_id=f"compare:{p.hash}") for p in policies]


#: How ``compare`` labels and formats each metric of :data:`ledger.fairness.METRICS`.
_LABELS = {"pool": "pool", "creators_paid": "creators paid", "median_payout": "median payout",
           "largest_payout": "largest payout", "gini": "Gini", "top1": "top 1% share",
           "top10": "top 10% share"}


def _money_rows(allocs: list) -> list[tuple[str, list[int]]]:  # noqa: ANN001
    """Where each policy's money goes: carried in, paid out, carried forward, withheld."""
    return [("carried in", [int(a.frame[S.CARRIED_IN_MINOR].sum()) for a in allocs]),
            ("paid out", [a.paid_minor for a in allocs]),
            ("carried forward", [a.carried_out_minor for a in allocs]),
            ("withheld", [a.withheld_minor for a in allocs])]


@policy_app.command("compare")
def compare(
    policy: list[Path] = typer.Option(..., "--policy", help="A policy file; give exactly two."),
    data: Path = typer.Option(..., "--data", help="Data directory in the contract."),
    pool: str = typer.Option(None, "--pool", help="Pool as a decimal amount, e.g. 25000.00 "
                             "(default: the first policy's [pool])."),
    currency: str = typer.Option(None, "--currency", help="ISO 4217 code (default: the first "
                                 "policy's pool.currency)."),
    db: str = typer.Option(None, "--db", help="Ledger database URL: start from the balances "
                           "it carries into its next batch (default: nothing carried in)."),
    top: int = typer.Option(10, "--top", min=0, help="How many gainers and losers to list."),
) -> None:
    """Allocate one period under policies A and B and compare them."""
    from rich.console import Console
    from rich.table import Table

    from ledger.fairness import DELTA_MINOR, compare as compare_allocations
    from ledger.money import format_minor

    if len(policy) != 2:
        raise ResidualsError(f"--policy: given {len(policy)} times, expected exactly 2")
    policies = [_load(p) for p in policy]
    a, b = _allocate_all(policies, data, pool, currency, db)
    metrics, movers = compare_allocations(a, b, top)
    cur = a.currency

    def money(x: float) -> str:
        return format_minor(int(round(x)), cur)

    fmt = {"pool": money, "creators_paid": lambda x: f"{int(x):,}", "median_payout": money,
           "largest_payout": money, "gini": lambda x: f"{x:.4f}",
           "top1": lambda x: f"{100 * x:.2f}%", "top10": lambda x: f"{100 * x:.2f}%"}
    console = Console(width=110)
    table = Table(title=f"A = {a.policy_name}   B = {b.policy_name}")
    table.add_column("metric")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    for key, va, vb in metrics.iter_rows():  # seven metrics, not data rows
        table.add_row(_LABELS[key], fmt[key](va), fmt[key](vb))
    for label, values in _money_rows([a, b]):  # four rows
        table.add_row(label, *(format_minor(v, cur) for v in values))
    console.print(table)
    if db is None:
        console.print("carried in: nothing (give --db to start from a ledger's balances)")
    if top:
        moves = Table(title=f"creators who gain or lose most (top {top} each way)")
        for col in ("creator", "A", "B", "change"):
            moves.add_column(col, justify="left" if col == "creator" else "right")
        rows = movers.select(S.CREATOR_ID, S.COMPARE_A, S.COMPARE_B, DELTA_MINOR)
        for cid, va, vb, delta in rows.iter_rows():  # at most 2 * top rows
            moves.add_row(cid, format_minor(va, cur), format_minor(vb, cur),
                          ("+" if delta > 0 else "") + format_minor(delta, cur))
        console.print(moves)


def register(app: typer.Typer) -> None:
    """Add the ``policy`` command group to the main app."""
    app.add_typer(policy_app, name="policy")
