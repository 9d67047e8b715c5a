"""``residuals claims open|list|show|resolve``: creators' claims, for staff.

Rule: each command parses flags, calls one flow of
:mod:`residuals.workflows.claims` and prints; a parameter named in an error
is spelled as its flag. Stored text (a creator's statement, a reason) is
printed as plain text on one line: control characters are shown escaped, so
nothing a creator typed can move the cursor or forge another line.
"""

from __future__ import annotations

import getpass
from typing import Annotated, Any, Optional

import typer

from contract import schema as S
from contract.errors import ResidualsError
from residuals.commands._files import DbOpt, flag_names

claims_app = typer.Typer(help="Creators' claims: open, list, show with evidence, resolve.",
                         no_args_is_help=True)
FLAGS = {"creator_id": "--creator", "kind": "--kind", "period": "--period",
         "generation_id": "--generation", "clip_id": "--clip", "text": "--text",
         "expiry_days": "--expiry-days", "amount": "--amount", "funding": "--funding",
         "reason": "--reason", "state": "--state", "claim_id": "ID", "actor": "--actor"}


def shown(value: object) -> str:
    """``value`` as one printable line (control characters escaped)."""
    if value is None:
        return "-"
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@claims_app.command("open")
def open_cmd(
    creator: Annotated[str, typer.Option("--creator", help="The claimant's creator_id.")],
    kind: Annotated[str, typer.Option("--kind", help="copied_clip or wrong_amount.")],
    period: Annotated[str, typer.Option("--period", help="The period the claim is about.")],
    generation: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--generation", help="copied_clip: the generation that copied the clip.")] = None,
    clip: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--clip", help="copied_clip: the claimant's clip.")] = None,
    text: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--text", help="What is wrong (required for wrong_amount).")] = None,
    expiry_days: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--expiry-days", help="Days the claim stays open [default: $RESIDUALS_CLAIM_DAYS "
        "or 30].")] = None,
    actor: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--actor", help="Who opens it [default: cli:<login name>].")] = None,
    db: DbOpt = None,
) -> None:
    """Open a claim on behalf of a creator."""
    from residuals.workflows.claims import NewClaim, open_claim

    with flag_names(FLAGS):
        cid = open_claim(db, NewClaim(creator, kind, period, _actor(actor), generation, clip,
                                      text, expiry_days))
    typer.echo(f"opened claim {cid}")


@claims_app.command("list")
def list_cmd(
    state: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--state", help="open, upheld, rejected or expired.")] = None,
    creator: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--creator", help="Only this creator's claims.")] = None,
    db: DbOpt = None,
) -> None:
    """List claims, newest first (id, state, creator, kind, period, opened, expires)."""
    from residuals.workflows.claims import list_claims

    with flag_names(FLAGS):
        rows = list_claims(db, state=state, creator_id=creator)
    for r in rows.iter_rows(named=True):  # one line per claim shown to a person
        typer.echo("\t".join(shown(v) for v in (
            r["claim_id"], r["state"], r[S.CREATOR_ID], r["kind"], r[S.PERIOD],
            r["opened_at"].isoformat(timespec="seconds"),
            r["expires_at"].isoformat(timespec="seconds"))))
    if rows.height == 0:
        typer.echo("no claims" + (f" in state {state}" if state else ""))


def _echo_claim(c: dict[str, Any]) -> None:
    from ledger.money import format_minor

    typer.echo(f"claim {c['claim_id']}: {c['kind']} by {shown(c[S.CREATOR_ID])}, period "
               f"{shown(c[S.PERIOD])}, state {c['state']}")
    if c[S.GENERATION_ID] is not None:
        typer.echo(f"generation {shown(c[S.GENERATION_ID])}, clip {shown(c[S.CLIP_ID])}")
    if c["text"] is not None:
        typer.echo(f"text: {shown(c['text'])}")
    typer.echo(f"opened {c['opened_at'].isoformat(timespec='seconds')} by "
               f"{shown(c['opened_by'])}; expires {c['expires_at'].isoformat(timespec='seconds')}")
    if c["state"] == "upheld":
        paid = (f"applied by batch {c['applied_batch'][:12]}" if c["applied_batch"]
                else "waiting for the next batch")
        typer.echo(f"upheld: {format_minor(c[S.AMOUNT_MINOR], c[S.CURRENCY])} funded by "
                   f"{c['funding']}, {paid}")
    elif c["state"] == "rejected":
        typer.echo(f"rejected: {shown(c[S.REASON])}")


@claims_app.command("show")
def show_cmd(
    id: Annotated[int, typer.Argument(help="The claim id.", metavar="ID")],  # noqa: A002 - the usage says ID
    db: DbOpt = None,
) -> None:
    """A claim, its events and the evidence (statement line, the generation's candidates)."""
    from ledger.money import format_minor
    from residuals.workflows.claims import CLAIMED, show_claim

    with flag_names(FLAGS):
        ev = show_claim(db, id)
    _echo_claim(ev.claim)
    for e in ev.events.iter_rows(named=True):  # a claim's few events
        typer.echo(f"event {e['seq']}: {e['outcome']} by {shown(e['actor'])} at "
                   f"{e['at'].isoformat(timespec='seconds')}"
                   + (f" (batch {e[S.BATCH_ID][:12]})" if e[S.BATCH_ID] else ""))
    for line in ev.statement.iter_rows(named=True):
        cur = line[S.CURRENCY]
        typer.echo(f"statement {line[S.PERIOD]}: earned {format_minor(line[S.ALLOCATED_MINOR], cur)}"
                   f", carried in {format_minor(line[S.CARRIED_IN_MINOR], cur)}, paid "
                   f"{format_minor(line[S.PAID_MINOR], cur)}, carried out "
                   f"{format_minor(line[S.CARRIED_OUT_MINOR], cur)}")
    if ev.candidates is not None and ev.candidates.height:
        typer.echo("candidates (rank, clip, creator, similarity, weight):")
        for r in ev.candidates.iter_rows(named=True):  # at most CANDIDATES_SHOWN + 1
            mark = "  <- claimed" if r[CLAIMED] else ""
            typer.echo(f"  {r[S.RANK]}\t{shown(r[S.CLIP_ID])}\t{shown(r[S.CREATOR_ID])}\t"
                       f"{r[S.SIMILARITY]:.4f}\t{r[S.WEIGHT]:.4f}{mark}")
    for note in ev.notes:
        typer.echo(f"note: {shown(note)}")


@claims_app.command("resolve")
def resolve_cmd(
    id: Annotated[int, typer.Argument(help="The claim id.", metavar="ID")],  # noqa: A002 - the usage says ID
    uphold: Annotated[bool, typer.Option("--uphold", help="Uphold: pay --amount.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject, with --reason.")] = False,
    amount: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--amount", help="Adjustment in major units, e.g. 12.34 (fund currency).")] = None,
    funding: Annotated[str, typer.Option(
        "--funding", help="pool (the next batch's pool) or platform.")] = "pool",
    reason: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--reason", help="Why the claim is rejected.")] = None,
    actor: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--actor", help="Who decides [default: cli:<login name>].")] = None,
    db: DbOpt = None,
) -> None:
    """Uphold a claim with an amount (paid by the next batch) or reject it with a reason."""
    from residuals.workflows.claims import resolve_claim

    if uphold == reject:
        raise ResidualsError("claims resolve: give exactly one of --uphold and --reject")
    if uphold and amount is None:
        raise ResidualsError("--uphold needs --amount (e.g. --amount 12.34)")
    if reject and (reason is None or not reason.strip()):
        raise ResidualsError("--reject needs --reason TEXT")
    if reject and amount is not None:
        raise ResidualsError("--amount: only with --uphold")
    with flag_names(FLAGS):
        outcome = resolve_claim(db, id, uphold=uphold, amount=amount, funding=funding,
                                reason=reason, actor=_actor(actor))
    typer.echo(f"claim {id} {outcome}"
               + (" (paid by the next batch)" if outcome == "upheld" else ""))


def register(app: typer.Typer) -> None:
    """Add the ``claims`` command group to the CLI."""
    app.add_typer(claims_app, name="claims")
