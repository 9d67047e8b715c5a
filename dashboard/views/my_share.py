"""My share (creator): what I earned, why, and the statement to keep."""

from __future__ import annotations

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import charts
from dashboard.auth import CREATOR
from dashboard.data import creator, session, store
from dashboard.data.store import money
from dashboard.text import plain

session.require(CREATOR)
store.stop_on_store_problem()

me = creator.my_profile()
st.title(f"My share · {plain(me.display_name)}")
st.caption(f"Creator id {plain(me.creator_id)}")

lines = creator.my_statement()
if lines.height == 0:
    st.info("No payout batch has included you yet. Your share appears here after the first "
            "batch that attributes a generation to your clips.")
    st.stop()

periods = lines[S.PERIOD].to_list()
period = st.selectbox("Period", periods[::-1], index=0, key="my_share_period")
at = periods.index(period)  # lines are in chain order: the previous batch is the row before
line = lines.row(at, named=True)
cur = line[S.CURRENCY]
prev = lines.slice(at - 1, 1) if at > 0 else lines.clear()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Paid this period", money(line[S.PAID_MINOR], cur),
          delta=(money(line[S.PAID_MINOR] - prev[S.PAID_MINOR][0], cur)
                 if prev.height else None))
c2.metric("Earned this period", money(line[S.ALLOCATED_MINOR], cur))
c3.metric("Attributed share of the pool", f"{line[S.SHARE]:.3%}")
c4.metric("Carried forward", money(line[S.CARRIED_OUT_MINOR], cur),
          help="Earned but below the minimum payout: paid with a later batch.")
if not line[S.ELIGIBLE] and line[S.REASON]:
    st.warning(f"Not paid this period: {plain(line[S.REASON])}.")
st.caption(
    f"Batch hash `{line[S.BATCH_HASH]}` — check it against the published chain "
    "(`residuals ledger verify`). Owed to you now: "
    + money(me.balance_minor, me.currency or cur) + "."
)

st.subheader("Over time")
trend = lines.select(
    S.PERIOD,
    (pl.col(S.ALLOCATED_MINOR) / 10 ** store.exponent(cur)).alias("Earned"),
    (pl.col(S.PAID_MINOR) / 10 ** store.exponent(cur)).alias("Paid"),
).unpivot(index=S.PERIOD, variable_name=charts.WHAT, value_name=charts.AMOUNT)
st.altair_chart(charts.trend(trend, x=S.PERIOD, y=charts.AMOUNT, color=charts.WHAT,
                             title="Earned and paid per period", y_title=cur),
                width="stretch")

st.subheader("The clips that earned it")
try:
    details = creator.my_clip_details(period, line[S.BATCH_ID])
except ResidualsError as exc:
    st.error(f"The clip details cannot be read: {plain(exc)}")
    details = creator.my_clip_earnings(period)
if details.height == 0:
    st.info("No clip of yours was attributed in this period.")
else:
    shown = details.head(50).with_columns(
        (pl.col(S.EARNED_MINOR_EST).round(0).cast(pl.Int64)).alias(S.EARNED_MINOR_EST)
    ).with_columns(store.money_expr(S.EARNED_MINOR_EST, cur))
    cols = [c for c in (S.CLIP_ID, S.CAPTION, creator.SEGMENT, S.SHARE_OF_CREATOR,
                        S.EARNED_MINOR_EST, creator.MATCHES, creator.TOP_MATCHES, S.LICENSE)
            if c in shown.columns]
    st.dataframe(
        shown.select(cols), hide_index=True, width="stretch",
        column_config={
            S.CLIP_ID: "Clip", S.CAPTION: "Caption", creator.SEGMENT: "Best-matching segment",
            S.SHARE_OF_CREATOR: st.column_config.ProgressColumn(
                "Share of your attribution", format="percent", min_value=0.0, max_value=1.0),
            S.EARNED_MINOR_EST: "Earned (attribution estimate)",
            creator.MATCHES: st.column_config.NumberColumn("Generations matched", format="%d"),
            creator.TOP_MATCHES: "Strongest matches (generation: prompt)",
            S.LICENSE: "Licence",
        },
    )
    st.caption("Estimates split your earnings in proportion to each clip's attribution weight; "
               "the amount of record is the statement's. Similarity in embedding space measures "
               "resemblance, not proof that a clip caused a generation.")

st.subheader("Statement")
d1, d2 = st.columns(2)
d1.download_button("Download statement (CSV)", creator.my_statement_csv(),
                   file_name=f"statement-{me.creator_id}.csv", mime="text/csv")
d2.download_button("Download readable statement (HTML)", creator.my_statement_html(),
                   file_name=f"statement-{me.creator_id}.html", mime="text/html")
table = lines.select(S.PERIOD, S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR,
                     S.CARRIED_OUT_MINOR, S.BATCH_HASH).with_columns(
    store.money_expr(S.ALLOCATED_MINOR, cur), store.money_expr(S.CARRIED_IN_MINOR, cur),
    store.money_expr(S.PAID_MINOR, cur), store.money_expr(S.CARRIED_OUT_MINOR, cur))
st.dataframe(table.reverse(), hide_index=True, width="stretch", column_config={
    S.PERIOD: "Period", S.ALLOCATED_MINOR: "Earned", S.CARRIED_IN_MINOR: "Carried in",
    S.PAID_MINOR: "Paid", S.CARRIED_OUT_MINOR: "Carried forward", S.BATCH_HASH: "Batch hash"})

from dashboard import claim_forms  # noqa: E402 - the claims section closes the page

claim_forms.my_claims_section(period, details[S.CLIP_ID].to_list() if details.height else [])
