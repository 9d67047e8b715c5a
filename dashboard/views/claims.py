"""Claims (admin): the queue, the evidence of one claim, and its decision."""

from __future__ import annotations

import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard.auth import ADMIN
from dashboard.data import claims, session, store
from dashboard.data.store import money
from dashboard.text import plain
from residuals.workflows.claims import CLAIMED

session.require(ADMIN)
st.title("Claims")
store.stop_on_store_problem(need_batch=True)

state = st.selectbox("Show", ["open", "upheld", "rejected", "expired", "all"], key="claims_state")
rows = claims.queue(None if state == "all" else state)
if rows.height == 0:
    st.info(f"No {'' if state == 'all' else state + ' '}claims.")
    st.stop()
st.dataframe(rows.select("claim_id", "state", S.CREATOR_ID, "kind", S.PERIOD, S.GENERATION_ID,
                         S.CLIP_ID, "text", "opened_by", "opened_at", "expires_at"),
             hide_index=True, width="stretch")

claim_id = st.selectbox("Claim", rows["claim_id"].to_list(), key="claims_choice")
ev = claims.evidence(int(claim_id))
c = ev.claim
st.subheader(f"Claim {c['claim_id']} · {c['kind']} · {c['state']}")
st.caption(f"By {plain(c[S.CREATOR_ID])} about period {plain(c[S.PERIOD])}; opened by "
           f"{plain(c['opened_by'])}, expires {c['expires_at']:%Y-%m-%d %H:%M} UTC")
if c["text"]:
    st.text(c["text"])  # plain text, never markup
st.markdown("**The creator's statement line**")
if ev.statement.height:
    cur = ev.statement[S.CURRENCY][0]
    st.dataframe(ev.statement.select(S.PERIOD, S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR,
                                     S.PAID_MINOR, S.CARRIED_OUT_MINOR).with_columns(
        *(store.money_expr(x, cur) for x in (S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR,
                                             S.PAID_MINOR, S.CARRIED_OUT_MINOR))),
        hide_index=True, width="stretch")
if ev.candidates is not None and ev.candidates.height:
    st.markdown(f"**Top candidates of generation {plain(c[S.GENERATION_ID])}**")
    st.dataframe(ev.candidates, hide_index=True, width="stretch", column_config={
        CLAIMED: st.column_config.CheckboxColumn("Claimed clip")})
for note in ev.notes:
    st.caption(f"Note: {plain(note)}")
st.dataframe(ev.events.drop("claim_id"), hide_index=True, width="stretch")

if c["state"] == "open":
    how = st.radio("Decision", ["Uphold", "Reject"], key="claims_decision", horizontal=True)
    with st.form("claims_resolve"):
        if how == "Uphold":
            amount = st.text_input("Adjustment amount (e.g. 12.34)", key="claims_amount")
            funding = st.radio("Funded by", ["pool", "platform"], key="claims_funding",
                               help="pool: taken from the next batch's pool before allocation; "
                               "platform: paid by the platform's account.")
            reason = None
        else:
            reason = st.text_area("Reason", key="claims_reason")
            amount, funding = None, "pool"
        if st.form_submit_button(f"{how} claim {c['claim_id']}"):
            try:
                outcome = claims.resolve(int(claim_id), uphold=how == "Uphold", amount=amount,
                                         funding=funding, reason=reason)
            except ResidualsError as exc:
                st.error(f"Not recorded: {plain(exc)}")
            else:
                st.success(f"Claim {c['claim_id']} {outcome}.")
elif c["state"] == "upheld":
    st.info(f"Upheld: {money(c[S.AMOUNT_MINOR], c[S.CURRENCY])} funded by {c['funding']}"
            + (f", applied with the batch of {c['applied_period']}." if c["applied_batch"]
               else ", to be paid with the next batch."))
