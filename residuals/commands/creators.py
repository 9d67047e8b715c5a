"""``residuals creators set``: a creator's payout method, country and tax form.

Rule: this module checks flags, calls
:func:`residuals.workflows.disbursement.set_creator_profile` and prints what
changed; the profile is history (a new row each time) and the creator's payouts
are released from or put on hold in the same database transaction.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from residuals.commands._files import DbOpt, flag_names

creators_app = typer.Typer(help="Creator payout profiles.", no_args_is_help=True)

FLAGS = {"creator_id": "CREATOR", "payout_method": "--payout-method", "country": "--country",
         "tax_form": "--tax-form"}


@creators_app.command("set")
def set_(
    creator: Annotated[str, typer.Argument(help="The creator_id.")],
    payout_method: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--payout-method", help="Provider token: a PayPal e-mail or payer id, a Stripe "
        "connected account.")] = None,
    country: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--country", help="ISO 3166-1 alpha-2 country code.")] = None,
    tax_form: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--tax-form", help="missing, submitted or accepted.")] = None,
    db: DbOpt = None,
) -> None:
    """Set a creator's payout profile (unset fields keep their value)."""
    from residuals.workflows.disbursement import set_creator_profile

    with flag_names(FLAGS):
        done = set_creator_profile(db, creator, payout_method=payout_method, country=country,
                                   tax_form=tax_form)
    p = done.profile
    missing = ", ".join(p.missing) or "nothing"
    typer.echo(f"creator {p.creator_id!r}: payout method {'set' if p.payout_method else 'none'}"
               f", country {p.country or 'none'}, tax form {p.tax_form}; missing: {missing}; "
               f"payouts released {done.released}, held {done.held}")


def register(app: typer.Typer) -> None:
    """Add the ``creators`` command group to the main app."""
    app.add_typer(creators_app, name="creators")
