"""The claims part of My share: open a claim about the period shown, see every claim.

Rule: drawn from :mod:`dashboard.data.claims` only (the login's own claims);
what a creator typed is shown through tables or :func:`dashboard.text.plain`,
never as markup; a refused claim shows the one-line reason.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard.data import claims
from dashboard.data.store import money
from dashboard.text import plain

KINDS = {"This generation copied my clip": "copied_clip", "This amount is wrong": "wrong_amount"}


def _open_form(period: str, clips: list[str]) -> None:
    label = st.radio("What is wrong?", list(KINDS), key="claim_kind", horizontal=True)
    kind = KINDS[label]
    with st.form("claim_form", clear_on_submit=True):
        generation = clip = None
        if kind == "copied_clip":
            generation = st.text_input("Generation id", key="claim_generation")
            clip = (st.selectbox("Your clip", clips, key="claim_clip") if clips
                    else st.text_input("Your clip id", key="claim_clip_text"))
        text = st.text_area("Tell us more" + (" (required)" if kind == "wrong_amount" else ""),
                            key="claim_text", max_chars=S.MAX_CLAIM_TEXT_CHARS)
        if st.form_submit_button(f"Open a claim about {period}"):
            try:
                cid = claims.open_my_claim(kind, period, generation_id=generation,
                                           clip_id=clip, text=text)
            except ResidualsError as exc:
                st.error(f"The claim was not opened: {plain(exc)}")
            else:
                st.success(f"Claim {cid} is open; staff will answer before it expires.")


def _outcome(r: dict) -> str:
    if r["state"] == "upheld":
        paid = "paid with the batch of " + (r["applied_period"] or "") if r["applied_batch"] \
            else "to be paid with the next batch"
        return f"upheld: {money(r[S.AMOUNT_MINOR], r[S.CURRENCY])}, {paid}"
    if r["state"] == "rejected":
        return f"rejected: {r[S.REASON]}"
    if r["state"] == "expired":
        return "expired without a decision"
    return "open until " + r["expires_at"].strftime("%Y-%m-%d")


def my_claims_section(period: str, clips: list[str]) -> None:
    """Open a claim about ``period`` (``clips``: the creator's clips to pick from) and list
    the creator's claims with their outcomes."""
    st.subheader("Claims")
    _open_form(period, clips)
    mine = claims.my_claims()
    if mine.height == 0:
        st.caption("You have not opened a claim.")
        return
    rows = [{"claim_id": r["claim_id"], "period": r[S.PERIOD], "kind": r["kind"],
             "about": r[S.GENERATION_ID] and f"{r[S.GENERATION_ID]} / {r[S.CLIP_ID]}" or r["text"],
             "outcome": _outcome(r)}
            for r in mine.iter_rows(named=True)]  # a creator's own few claims
    st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "claim_id": "Claim", "period": "Period", "kind": "Kind", "about": "About",
        "outcome": "Outcome"})
