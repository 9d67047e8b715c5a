"""Payouts (admin): each batch's payouts per state, exports to a provider (and any past
export's file again), status reports.

Exports and imports go through the same workflows as ``residuals payouts
export|import``; a bad report shows one line naming the file, line and column.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import charts
from dashboard.auth import ADMIN
from dashboard.data import payouts, session, store
from dashboard.data.store import first_line, money
from dashboard.text import plain
from ledger.store.models import PAYOUT_STATES
from ledger.store.reports import CATEGORIES
from residuals.workflows.disbursement import FORMATS

CATEGORY_WORDS = {"matched": "Matched (applied)", "unknown": "Unknown payout id",
                  "mismatch": "Amount or currency mismatch", "duplicate": "Duplicate",
                  "out_of_order": "Out of order"}
EXPORT_KEY, REPORT_KEY = "payouts_export_file", "payouts_report_result"
SERVER_ERROR = "an error on the server (logged); nothing was applied"
LOG = logging.getLogger("residuals.dashboard")
EXPORT_ERROR, REPORT_ERROR = "payouts_export_error", "payouts_report_error"
AGAIN_KEY, AGAIN_ERROR = "payouts_again_files", "payouts_again_error"

session.require(ADMIN)
st.title("Payouts")
store.stop_on_store_problem(need_batch=True)


def overview(summary: pl.DataFrame) -> None:
    """Counts and amounts per state for every batch, and the amounts as a chart."""
    standing = summary.filter(~pl.col(S.SUPERSEDED))
    cur = standing[S.CURRENCY][0] if standing.height else summary[S.CURRENCY][0]
    label = pl.concat_str(pl.col(S.PERIOD), pl.lit(" #"), pl.col(S.SEQ).cast(pl.String))
    shown = standing.select(label.alias(S.PERIOD), "state",
                            (pl.col(S.AMOUNT_MINOR) / 10 ** store.exponent(cur))
                            .alias(charts.AMOUNT))
    st.altair_chart(charts.stacked(shown, x=S.PERIOD, y=charts.AMOUNT, color="state",
                                   title="Payout amounts per state (standing batches)",
                                   y_title=cur, order=list(PAYOUT_STATES)), width="stretch")
    counts = summary.pivot(on="state", index=[S.SEQ, S.PERIOD, S.SUPERSEDED], values=payouts.COUNT,
                           sort_columns=False).fill_null(0)
    amounts = summary.with_columns(
        pl.concat_str(pl.lit("amount "), pl.col("state")).alias("state")).pivot(
        on="state", index=S.SEQ, values=S.AMOUNT_MINOR).fill_null(0)
    table = counts.join(amounts, on=S.SEQ).sort(S.SEQ, descending=True)
    states = [s for s in PAYOUT_STATES if s in counts.columns]
    st.dataframe(table.with_columns(
        *(store.money_expr(f"amount {s}", cur) for s in states)).select(
        S.SEQ, S.PERIOD, S.SUPERSEDED, *states, *(f"amount {s}" for s in states)),
        hide_index=True, width="stretch", column_config={
            S.SEQ: "#", S.PERIOD: "Period", S.SUPERSEDED: "Superseded"})


def _guarded(error_key: str, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, or None with its error's one line under ``error_key`` (an unexpected
    error: one sentence on the page, the detail in the log)."""
    try:
        return call()
    except ResidualsError as exc:
        st.session_state[error_key] = first_line(exc)
    except Exception:  # noqa: BLE001 - one sentence on the page, the detail in the log
        LOG.exception("%s failed", what)
        st.session_state[error_key] = SERVER_ERROR
    return None


def _export() -> None:
    """The export form's callback: runs before the page draws, so it shows the new states."""
    st.session_state.pop(EXPORT_ERROR, None)
    st.session_state.pop(EXPORT_KEY, None)
    made = _guarded(EXPORT_ERROR, "a payout export", lambda: payouts.export(
        st.session_state["payouts_export_batch"], st.session_state["payouts_export_format"]))
    if made is not None:
        st.session_state[EXPORT_KEY] = made


def export_section(summary: pl.DataFrame) -> None:
    """Export a batch's pending payouts: the file to download, the payouts now submitted."""
    st.subheader("Export to a payment provider")
    pending = summary.filter(pl.col("state") == "pending").sort(S.SEQ, descending=True)
    if pending.height == 0:
        st.info("No batch has pending payouts: nothing to export (held payouts are never "
                "exported).")
    else:
        labels = {r[S.BATCH_ID]: f"{r[S.PERIOD]} #{r[S.SEQ]} · {r[payouts.COUNT]:,} pending · "
                  f"{money(r[S.AMOUNT_MINOR], r[S.CURRENCY])}"
                  for r in pending.iter_rows(named=True)}
        with st.form("payouts_export"):
            st.selectbox("Batch", list(labels), key="payouts_export_batch",
                         format_func=labels.__getitem__)
            st.radio("Format", FORMATS, key="payouts_export_format", horizontal=True)
            st.form_submit_button("Export pending payouts (marks them submitted)",
                                  on_click=_export)
    if EXPORT_ERROR in st.session_state:
        st.error(f"Not exported: {plain(st.session_state[EXPORT_ERROR])}")
    made = st.session_state.get(EXPORT_KEY)
    if made is not None:
        e = made.exported
        st.success(f"Exported {e.payouts:,} payouts of {plain(e.period)} "
                   f"({money(e.total_minor, e.currency)}); they are now submitted. "
                   f"{e.held:,} held payouts were not exported.")
        st.download_button(f"Download {made.file_name}", made.data, file_name=made.file_name,
                           mime=_mime(made.file_name), key="payouts_export_download")


def _mime(file_name: str) -> str:
    return "application/jsonl" if file_name.endswith("jsonl") else "text/csv"


def _again(sha256: str) -> None:
    """A past export's button callback: render its file again for download."""
    st.session_state.pop(AGAIN_ERROR, None)
    again = _guarded(AGAIN_ERROR, "rendering a past export again",
                     lambda: payouts.export_again(sha256))
    if again is not None:
        st.session_state.setdefault(AGAIN_KEY, {})[sha256] = again


def past_exports_section() -> None:
    """Every past export, newest first, each with a button for its file again."""
    st.subheader("Past exports")
    done = payouts.past_exports()
    if done.height == 0:
        st.info("Nothing has been exported yet.")
        return
    st.caption("A lost export file, again: rendered from the ledger and checked against the "
               "sha256 recorded when it was exported (nothing is recorded now).")
    ready = st.session_state.get(AGAIN_KEY, {})
    for r in done.iter_rows(named=True):  # display: one line per export
        sha = r["sha256"]
        line, action = st.columns([3, 1], vertical_alignment="center")
        line.text(f"{r[S.PERIOD]} · {r['payouts']:,} payouts · "
                  f"{money(r[S.AMOUNT_MINOR], r[S.CURRENCY])} · "
                  f"{r['exported_at']:%Y-%m-%d %H:%M:%S} · sha256 {sha[:16]}…")
        again = ready.get(sha)
        if again is None:
            action.button("Get the file again", key=f"payouts_again_{sha}", on_click=_again,
                          args=(sha,))
        else:
            action.download_button(f"Download {again.file_name}", again.data,
                                   file_name=again.file_name, mime=_mime(again.file_name),
                                   key=f"payouts_again_download_{sha}")
    if AGAIN_ERROR in st.session_state:
        st.error(f"Not rendered again: {plain(st.session_state[AGAIN_ERROR])}")


def _import() -> None:
    """The import form's callback: runs before the page draws, so it shows the new states."""
    st.session_state.pop(REPORT_ERROR, None)
    st.session_state.pop(REPORT_KEY, None)
    upload = st.session_state.get("payouts_report")
    if upload is None:
        st.session_state[REPORT_ERROR] = "choose a report file first"
        return
    result = _guarded(REPORT_ERROR, "a status report import",
                      lambda: payouts.import_report(upload.name, upload.getvalue()))
    if result is not None:
        st.session_state[REPORT_KEY] = (upload.name, result)


def import_section() -> None:
    """Upload a provider status report; show what reconciled and what did not."""
    st.subheader("Import a status report")
    st.caption("CSV with the header payout_id, status, provider_reference, failure_code, "
               "amount_minor, currency, occurred_at (docs/payouts.md). Only matched lines "
               "are applied, all in one transaction; importing a report twice changes nothing.")
    with st.form("payouts_import"):
        st.file_uploader("Status report", type=["csv"], key="payouts_report")
        st.form_submit_button("Import report", on_click=_import)
    if REPORT_ERROR in st.session_state:
        st.error(f"Not imported: {plain(st.session_state[REPORT_ERROR])}")
    done = st.session_state.get(REPORT_KEY)
    if done is None:
        return
    name, result = done
    st.markdown(f"**Reconciliation of {plain(name)}** (sha256 `{result.sha256[:16]}…`)")
    cols = st.columns(len(CATEGORIES))
    for col, cat in zip(cols, CATEGORIES, strict=True):
        col.metric(CATEGORY_WORDS[cat], f"{result.counts.get(cat, 0):,}")
    if result.problems:
        st.dataframe(pl.DataFrame({"line not applied": result.problems}), hide_index=True,
                     width="stretch")


def batch_section(summary: pl.DataFrame) -> None:
    """One batch's payouts with their states and reasons."""
    st.subheader("One batch's payouts")
    batches = summary.unique(S.BATCH_ID).sort(S.SEQ, descending=True)
    labels = {f"{r[S.PERIOD]} #{r[S.SEQ]}" + (" (superseded)" if r[S.SUPERSEDED] else ""):
              r[S.BATCH_ID] for r in batches.iter_rows(named=True)}
    choice = st.selectbox("Batch", list(labels), key="payouts_batch")
    rows = payouts.batch_payouts(labels[choice])
    cur = rows[S.CURRENCY][0] if rows.height else "USD"
    st.dataframe(rows.select("payout_id", S.CREATOR_ID, S.AMOUNT_MINOR, "state", "reason")
                 .with_columns(store.money_expr(S.AMOUNT_MINOR, cur)),
                 hide_index=True, width="stretch", column_config={
                     "payout_id": "Payout", S.CREATOR_ID: "Creator", S.AMOUNT_MINOR: "Amount",
                     "state": "State", "reason": "Reason"})


summary = payouts.summary()
if summary.height == 0:
    st.info("No batch has paid anybody yet: there are no payouts.")
    st.stop()
overview(summary)
export_section(summary)
import_section()
past_exports_section()
batch_section(summary)
