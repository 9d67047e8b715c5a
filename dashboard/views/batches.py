"""Batches (admin): every payout batch, its checks, its payout file and its fairness."""

from __future__ import annotations

import polars as pl
import streamlit as st

from contract import schema as S
from dashboard import charts
from dashboard.auth import ADMIN
from dashboard.data import session, staff, store
from dashboard.data.store import money
from dashboard.text import plain
from ledger.fairness import AMOUNT_SHARE, POPULATION_SHARE

session.require(ADMIN)
st.title("Payout batches")
store.stop_on_store_problem(need_batch=True)

recompute = st.toggle("Recompute every batch's payouts from its inputs", value=True,
                      key="batches_recompute",
                      help="Re-runs each batch's allocation from the files its manifest names.")
report = staff.verify_report(recompute=recompute)
if report.ok:
    st.success(f"`residuals ledger verify`: OK — {report.summary}")
else:
    st.error(f"`residuals ledger verify` found {len(report.problems)} problem(s): "
             + "; ".join(plain(p) for p in report.problems[:5]))
for note in report.notes:
    st.caption(f"Note: {plain(note)}")

overview = staff.batch_overview()
standing = overview.filter(~pl.col(S.SUPERSEDED))
last = standing.tail(1).row(0, named=True)
cur = last[S.CURRENCY]
c1, c2, c3, c4 = st.columns(4)
c1.metric("Batches", f"{overview.height}", help="Including superseded ones.")
c2.metric(f"Pool ({last[S.PERIOD]})", money(last[S.POOL_MINOR], cur))
c3.metric("Creators paid", f"{last[S.CREATORS_PAID]:,}")
c4.metric("Carried forward", money(last[staff.CARRIED_OUT_TOTAL], cur))

if standing.height > 1:
    exp = store.exponent(cur)
    trend = standing.select(
        S.PERIOD,
        (pl.col(S.POOL_MINOR) / 10**exp).alias("Pool"),
        (pl.col(S.PAID_MINOR) / 10**exp).alias("Paid"),
        (pl.col(staff.CARRIED_OUT_TOTAL) / 10**exp).alias("Carried forward"),
    ).unpivot(index=S.PERIOD, variable_name=charts.WHAT, value_name=charts.AMOUNT)
    st.altair_chart(charts.trend(trend, x=S.PERIOD, y=charts.AMOUNT, color=charts.WHAT,
                                 title="Pool, paid and carried forward per period", y_title=cur),
                    width="stretch")

table = overview.with_columns(
    pl.when(pl.col(S.SUPERSEDED)).then(pl.lit("superseded")).otherwise(pl.lit("standing"))
    .alias(S.SUPERSEDED),
    store.money_expr(S.POOL_MINOR, cur), store.money_expr(S.PAID_MINOR, cur),
    store.money_expr(staff.CARRIED_OUT_TOTAL, cur), store.money_expr(S.WITHHELD_MINOR, cur),
).select(S.SEQ, S.PERIOD, S.REVISION, S.SUPERSEDED, S.POLICY_NAME, S.POOL_MINOR,
         S.CREATORS_PAID, S.PAID_MINOR, staff.CARRIED_OUT_TOTAL, S.WITHHELD_MINOR, S.BATCH_HASH,
         S.POSTED_AT).reverse()
st.dataframe(table, hide_index=True, width="stretch", column_config={
    S.SEQ: "#", S.PERIOD: "Period", S.REVISION: "Rev.", S.SUPERSEDED: "Status",
    S.POLICY_NAME: "Policy", S.POOL_MINOR: "Pool", S.CREATORS_PAID: "Creators paid",
    S.PAID_MINOR: "Paid", staff.CARRIED_OUT_TOTAL: "Carried forward",
    S.WITHHELD_MINOR: "Withheld", S.BATCH_HASH: "Batch hash", S.POSTED_AT: "Posted"})

st.subheader("One batch")
labels = {f"{r[S.PERIOD]} · rev {r[S.REVISION]} · {r[S.BATCH_ID][:12]}": r[S.BATCH_ID]
          for r in overview.reverse().iter_rows(named=True)}
choice = st.selectbox("Batch", list(labels), key="batches_choice")
batch_id = labels[choice]
row = overview.filter(pl.col(S.BATCH_ID) == batch_id).row(0, named=True)
fair = staff.batch_fairness(batch_id)
f1, f2, f3, f4, f5 = st.columns(5)
f1.metric("Gini of allocations", f"{fair.gini:.3f}")
f2.metric("Top 1% share", f"{fair.top1:.1%}")
f3.metric("Top 10% share", f"{fair.top10:.1%}")
f4.metric("Median payout", money(fair.median_paid_minor, row[S.CURRENCY]),
          help="Among creators paid in this batch.")
f5.metric("Largest payout", money(fair.largest_paid_minor, row[S.CURRENCY]))
st.altair_chart(charts.lorenz(fair.lorenz, x=POPULATION_SHARE, y=AMOUNT_SHARE,
                              series=staff.SERIES, title="Lorenz curve of allocations"),
                width="stretch")
payouts = staff.payout_file(batch_id)
st.download_button(f"Download payout file ({payouts.height:,} payouts, CSV)",
                   staff.payout_csv(batch_id), file_name=f"payouts-{row[S.PERIOD]}.csv",
                   mime="text/csv")
st.dataframe(payouts.head(200).with_columns(store.money_expr(S.AMOUNT_MINOR, row[S.CURRENCY])),
             hide_index=True, width="stretch",
             column_config={S.CREATOR_ID: "Creator", S.AMOUNT_MINOR: "Amount",
                            S.CURRENCY: "Currency", S.REFERENCE: "Reference"})
if payouts.height > 200:
    st.caption(f"First 200 of {payouts.height:,} payouts; the CSV has them all.")
