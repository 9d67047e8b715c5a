"""The claims part of My share: open a claim about the period shown, see every claim.

Rule: drawn from :mod:`dashboard.data.claims` only (the login's own claims);
every word goes through the creator's language (a :class:`ledger.i18n.Tr`);
what a creator typed is shown through tables or :func:`dashboard.text.plain`,
never as markup; a refused claim shows the one-line reason.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard.data import claims
from dashboard.text import plain
from ledger.i18n import N_, Tr

KINDS = {"copied_clip": N_("This generation copied my clip"),
         "wrong_amount": N_("This amount is wrong")}
"""The kinds of claim a creator opens, in words (the first is the default choice)."""


def _open_form(tr: Tr, period: str, clips: list[str]) -> None:
    _ = tr
    kind = st.radio(_("What is wrong?"), list(KINDS), key="claim_kind", horizontal=True,
                    format_func=lambda k: tr(KINDS[k]))
    with st.form("claim_form", clear_on_submit=True):
        generation = clip = None
        if kind == "copied_clip":
            generation = st.text_input(_("Generation id"), key="claim_generation")
            clip = (st.selectbox(_("Your clip"), clips, key="claim_clip") if clips
                    else st.text_input(_("Your clip id"), key="claim_clip_text"))
        label = _("Tell us more (required)") if kind == "wrong_amount" else _("Tell us more")
        text = st.text_area(label, key="claim_text", max_chars=S.MAX_CLAIM_TEXT_CHARS)
        if st.form_submit_button(_("Open a claim about {period}").format(period=plain(period))):
            try:
                cid = claims.open_my_claim(kind, period, generation_id=generation,
                                           clip_id=clip, text=text)
            except ResidualsError as exc:
                st.error(_("The claim was not opened: {error}").format(error=plain(exc)))
            else:
                st.success(_("Claim {claim_id} is open; staff will answer before it "
                             "expires.").format(claim_id=cid))


def _outcome(tr: Tr, r: dict) -> str:
    _ = tr
    if r["state"] == "upheld":
        amount = tr.money(r[S.AMOUNT_MINOR], r[S.CURRENCY])
        if r["applied_batch"]:
            return _("upheld: {amount}, paid with the batch of {period}").format(
                amount=amount, period=r["applied_period"] or "")
        return _("upheld: {amount}, to be paid with the next batch").format(amount=amount)
    if r["state"] == "rejected":
        return _("rejected: {reason}").format(reason=r[S.REASON])
    if r["state"] == "expired":
        return _("expired without a decision")
    return _("open until {date}").format(date=tr.date(r["expires_at"]))


def my_claims_section(tr: Tr, period: str, clips: list[str]) -> None:
    """Open a claim about ``period`` (``clips``: the creator's clips to pick from) and list
    the creator's claims with their outcomes, in ``tr``'s language."""
    _ = tr
    st.subheader(_("Claims"))
    _open_form(tr, period, clips)
    mine = claims.my_claims()
    if mine.height == 0:
        st.caption(_("You have not opened a claim."))
        return
    rows = [{"claim_id": r["claim_id"], "period": r[S.PERIOD], "kind": tr(KINDS[r["kind"]])
             if r["kind"] in KINDS else r["kind"],
             "about": r[S.GENERATION_ID] and f"{r[S.GENERATION_ID]} / {r[S.CLIP_ID]}" or r["text"],
             "outcome": _outcome(tr, r)}
            for r in mine.iter_rows(named=True)]  # a creator's own few claims
    st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "claim_id": _("Claim"), "period": _("Period"), "kind": _("Kind"), "about": _("About"),
        "outcome": _("Outcome")})
