"""Claims as the pages see them: a creator's own, and the staff queue.

Rule: a creator's functions take **no** creator argument (they use the
login's creator_id, :func:`dashboard.data.session.creator_id`), so a creator
can neither see nor open a claim for anybody else; the queue and the evidence
need a staff login, and resolving needs an admin. Every write records the
login's username as its actor. Nothing here is cached: a claim opened or
resolved shows at once.
"""

from __future__ import annotations

import polars as pl

from dashboard.auth import ADMIN
from dashboard.data.session import NotAllowed, creator_id, current_user, staff
from dashboard.data.store import engine


def my_claims() -> pl.DataFrame:
    """The logged-in creator's claims with their outcomes, newest first."""
    from residuals.workflows.claims import list_claims

    return list_claims(engine(), creator_id=creator_id())


def open_my_claim(kind: str, period: str, *, generation_id: str | None = None,
                  clip_id: str | None = None, text: str | None = None) -> int:
    """Open a claim of the logged-in creator; returns its id."""
    from residuals.workflows.claims import NewClaim, open_claim

    cid = creator_id()
    user = current_user()
    assert user is not None  # creator_id() refused anybody else
    return open_claim(engine(), NewClaim(cid, kind, period, user.username, generation_id,
                                         clip_id, text))


def queue(state: str | None) -> pl.DataFrame:
    """Every claim (in ``state``), newest first; staff only."""
    from residuals.workflows.claims import list_claims

    staff()
    return list_claims(engine(), state=state)


def evidence(claim_id: int):  # type: ignore[no-untyped-def]
    """A claim with its events and evidence (:func:`residuals.workflows.claims.show_claim`);
    staff only."""
    from residuals.workflows.claims import show_claim

    staff()
    return show_claim(engine(), claim_id)


def resolve(claim_id: int, *, uphold: bool, amount: str | None = None, funding: str = "pool",
            reason: str | None = None) -> str:
    """Uphold or reject an open claim as the logged-in admin; returns the outcome."""
    from residuals.workflows.claims import resolve_claim

    user = staff()
    if user.role != ADMIN:
        raise NotAllowed("resolving a claim needs an admin login")
    return resolve_claim(engine(), claim_id, uphold=uphold, amount=amount, funding=funding,
                         reason=reason, actor=user.username)
