"""My share (creator): what I earned, why, when it is paid, and the statement to keep.

The page is a list of sections (:data:`SECTIONS`), each a function of one
:class:`View` (the chosen period's line, the policy of record, the language):
a new section (payouts, claims) is one more function in the list. Every word
goes through the creator's language (:mod:`dashboard.language`), every amount
through :meth:`ledger.i18n.Tr.money` from integer minor units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from contract.resemblance import STRONG, WEAK
from dashboard import charts, claim_forms, explain, language
from dashboard.auth import CREATOR
from dashboard.data import creator, session, store
from dashboard.text import file_stem, plain
from ledger.i18n import Tr
from ledger.policy import Policy
from ledger.store.statements import RESEMBLANCE, RESEMBLANCE_WORDS, resemblance


@dataclass(frozen=True)
class View:
    """What every section of the page draws from."""

    tr: Tr
    me: creator.Profile
    lines: pl.DataFrame
    line: dict[str, Any]
    previous: pl.DataFrame
    period: str
    currency: str
    policy: Policy | None
    latest_policy: Policy | None


def _money(view: View, minor: int) -> str:
    return view.tr.money(int(minor), view.currency)


def summary(view: View) -> None:
    """This period's numbers: paid, earned, share, carried forward."""
    _, line, prev = view.tr, view.line, view.previous
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(_("Paid this period"), _money(view, line[S.PAID_MINOR]),
              delta=(_money(view, line[S.PAID_MINOR] - prev[S.PAID_MINOR][0])
                     if prev.height else None))
    c2.metric(_("Earned this period"), _money(view, line[S.ALLOCATED_MINOR]))
    c3.metric(_("Attributed share of the pool"), view.tr.percent(line[S.SHARE], 3))
    c4.metric(_("Carried forward"), _money(view, line[S.CARRIED_OUT_MINOR]),
              help=_("Earned but below the minimum payout: paid with a later batch."))
    if not line[S.ELIGIBLE] and line[S.REASON]:
        st.warning(_("Not paid this period: {reason}.").format(reason=plain(line[S.REASON])))
    st.caption(_("Batch hash `{hash}`: check it against the published chain "
                 "(`residuals ledger verify`).").format(hash=line[S.BATCH_HASH]))


def when_paid(view: View) -> None:
    """The next payout date and the way to the minimum payout (the policy in force now)."""
    _, policy = view.tr, view.latest_policy
    st.subheader(_("When you are paid"))
    if policy is None:
        st.info(_("The policy of the latest batch cannot be read, so no payout date is "
                  "known."))
        return
    day = explain.next_payout(policy, dt.datetime.now(dt.UTC).date())
    st.markdown(_("Next payout date: **{date}**.").format(date=view.tr.date(day)) if day
                else _("The policy does not set a payout date."))
    minimum = policy.min_payout_in(view.currency)
    progress = explain.Progress(view.me.balance_minor, minimum)
    if minimum > 0:
        text = _("Owed to you now: {progress} (minimum payout).").format(
            progress=progress.sentence(view.tr, view.currency))
        st.progress(progress.fraction, text=text)
    else:
        st.markdown(_("Owed to you now: {amount}. There is no minimum payout.").format(
            amount=_money(view, view.me.balance_minor)))


def payouts(view: View) -> None:
    """Each payout of the creator: its amount, its state in words (why it is held, the
    provider's failure code), and when it last changed."""
    _, tr = view.tr, view.tr
    st.subheader(_("Your payouts"))
    mine = creator.my_payouts()
    if mine.height == 0:
        st.caption(_("No payout has been made to you yet: your balance is below the minimum "
                     "payout, or no batch has paid you."))
        return
    rows = [{"period": r[S.PERIOD], "amount": tr.money(r[S.AMOUNT_MINOR], r[S.CURRENCY]),
             "status": explain.payout_status(r["state"], r["reason"], r["failure_code"], tr),
             "when": tr.date(r["occurred_at"] or r["recorded_at"]) if (
                 r["occurred_at"] or r["recorded_at"]) else "",
             "reference": r["provider_reference"] or ""}
            for r in mine.iter_rows(named=True)]  # one row per batch that paid the creator
    for r, shown in zip(mine.iter_rows(named=True), rows, strict=True):
        if r["state"] == "held":
            st.warning(_("Your payout of {amount} for {period} is held: {reasons}.").format(
                amount=shown["amount"], period=plain(r[S.PERIOD]),
                reasons=plain(explain.reasons_in_words(r["reason"], tr))))
        elif r["state"] in ("failed", "returned"):
            st.warning(_("Your payout of {amount} for {period} did not reach you: {status}. "
                         "It is paid with the next batch.").format(
                amount=shown["amount"], period=plain(r[S.PERIOD]), status=plain(shown["status"])))
    st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "period": _("Period"), "amount": _("Amount"), "status": _("Status"),
        "when": _("Last change"), "reference": _("Provider reference")})


def payout_profile(view: View) -> None:
    """What the platform knows about where to pay the creator, and what is still missing."""
    _, tr = view.tr, view.tr
    st.subheader(_("Payout profile"))
    me = creator.my_payout_profile()
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Payout method"), _("on file") if me.payout_method else _("missing"))
    c2.metric(_("Country"), me.country or _("not set"))
    c3.metric(_("Tax form"), tr(explain.TAX_FORM_WORDS.get(me.tax_form, me.tax_form)))
    todo = explain.profile_todo(me.missing, me.tax_form, me.country, tr)
    if todo:
        st.markdown(_("Still missing before you can be paid:") + "\n"
                    + "\n".join(f"- {plain(t)}" for t in todo))
        st.caption(_("Your platform records these details; contact it to complete them."))
    else:
        st.success(_("Your payout profile is complete: payouts are sent when due."))


def superseded_note(view: View) -> None:
    """When this period's batch replaced an earlier one: what changed."""
    _ = view.tr
    if view.line[S.REVISION] <= 1:
        return
    try:
        new, old = creator.batch_and_superseded_manifests(view.line[S.BATCH_ID])
    except ResidualsError as exc:
        st.warning(_("This period was recomputed; what changed cannot be read: {error}")
                   .format(error=plain(exc)))
        return
    changes = explain.supersede_changes(old, new, view.tr)
    st.info(_("This period's batch replaced an earlier one (revision {revision}).").format(
        revision=view.line[S.REVISION]) + "\n\n" + "\n".join(f"- {plain(c)}" for c in changes))


def policy_words(view: View, licences: list[str] | None) -> None:
    """The policy of this period's batch in plain words."""
    _ = view.tr
    st.subheader(_("How your share was computed"))
    if view.policy is None:
        st.info(_("The policy of this batch cannot be read."))
        return
    pool = int(creator.batch_pool_minor(view.line[S.BATCH_ID]))
    for sentence in explain.policy_in_words(view.policy, view.tr, currency=view.currency,
                                            pool_minor=pool, licences=licences):
        st.markdown(f"- {plain(sentence)}")


def over_time(view: View) -> None:
    """Earned and paid per period."""
    _ = view.tr
    st.subheader(_("Over time"))
    earned, paid = _("Earned"), _("Paid")
    exp = store.exponent(view.currency)
    trend = view.lines.select(
        S.PERIOD, (pl.col(S.ALLOCATED_MINOR) / 10 ** exp).alias(earned),
        (pl.col(S.PAID_MINOR) / 10 ** exp).alias(paid),
    ).unpivot(index=S.PERIOD, variable_name=charts.WHAT, value_name=charts.AMOUNT)
    st.altair_chart(charts.trend(trend, x=S.PERIOD, y=charts.AMOUNT, color=charts.WHAT,
                                 title=_("Earned and paid per period"),
                                 y_title=view.currency, x_title=_("Period")), width="stretch")


def clip_rows(view: View) -> pl.DataFrame:
    """The clips that earned this period's share, with the catalogue's details if found."""
    _ = view.tr
    try:
        return creator.my_clip_details(view.period, view.line[S.BATCH_ID])
    except ResidualsError as exc:
        st.error(_("The clip details cannot be read: {error}").format(error=plain(exc)))
        return creator.my_clip_earnings(view.period)


def clips(view: View, details: pl.DataFrame) -> None:
    """The clips that earned it, with how strongly the generations resemble them."""
    _, tr = view.tr, view.tr
    st.subheader(_("The clips that earned it"))
    if details.height == 0:
        st.info(_("No clip of yours was attributed in this period."))
        return
    head = details.head(50)
    earned = [tr.money(int(round(v)), view.currency)  # at most 50 rows shown
              for v in head[S.EARNED_MINOR_EST].to_list()]
    words = tuple(tr(w) for w in RESEMBLANCE_WORDS)
    shown = head.with_columns(pl.Series(S.EARNED_MINOR_EST, earned, dtype=pl.String),
                              resemblance(labels=words).fill_null(_("not recorded")))
    cols = [c for c in (S.CLIP_ID, S.CAPTION, creator.SEGMENT, S.SHARE_OF_CREATOR,
                        S.EARNED_MINOR_EST, RESEMBLANCE, creator.MATCHES,
                        creator.TOP_MATCHES, S.LICENSE) if c in shown.columns]
    st.dataframe(shown.select(cols), hide_index=True, width="stretch", column_config={
        S.CLIP_ID: _("Clip"), S.CAPTION: _("Caption"),
        creator.SEGMENT: _("Best-matching segment"),
        S.SHARE_OF_CREATOR: st.column_config.ProgressColumn(
            _("Share of your attribution"), format="percent", min_value=0.0, max_value=1.0),
        S.EARNED_MINOR_EST: _("Earned (attribution estimate)"),
        RESEMBLANCE: _("Resemblance"),
        creator.MATCHES: st.column_config.NumberColumn(_("Generations matched"), format="%d"),
        creator.TOP_MATCHES: _("Strongest matches (generation: prompt)"),
        S.LICENSE: _("Licence"),
    })
    st.caption(_("Estimates split your earnings in proportion to each clip's attribution "
                 "weight; the amount of record is the statement's. Resemblance says how much "
                 "of the generated videos the credited clips explain: strongly from a "
                 "confidence of {strong}, weakly from {weak}. Similarity in embedding space "
                 "measures resemblance, not proof that a clip caused a generation.").format(
        strong=tr.number(STRONG, 1), weak=tr.number(WEAK, 1)))


def statement(view: View) -> None:
    """The statement to keep: PDF, CSV and HTML, and one row per period."""
    _, tr = view.tr, view.tr
    st.subheader(_("Statement"))
    cid = file_stem(view.me.creator_id, "creator")
    d1, d2, d3 = st.columns(3)
    d1.download_button(_("Download statement (PDF)"), creator.my_statement_pdf(tr.language),
                       file_name=f"statement-{cid}-{tr.language}.pdf", mime="application/pdf",
                       key="statement_pdf")
    d2.download_button(_("Download statement (CSV)"), creator.my_statement_csv(),
                       file_name=f"statement-{cid}.csv", mime="text/csv")
    d3.download_button(_("Download readable statement (HTML)"), creator.my_statement_html(tr.language),
                       file_name=f"statement-{cid}.html", mime="text/html")
    money_cols = (S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR)
    table = view.lines.select(S.PERIOD, *money_cols, S.BATCH_HASH).with_columns(
        pl.Series(c, [tr.money(v, view.currency) for v in view.lines[c].to_list()],
                  dtype=pl.String)  # one row per period
        for c in money_cols)
    st.dataframe(table.reverse(), hide_index=True, width="stretch", column_config={
        S.PERIOD: _("Period"), S.ALLOCATED_MINOR: _("Earned"),
        S.CARRIED_IN_MINOR: _("Carried in"), S.PAID_MINOR: _("Paid"),
        S.CARRIED_OUT_MINOR: _("Carried forward"), S.BATCH_HASH: _("Batch hash")})


def _view(tr: Tr) -> View | None:
    """The page's inputs, or None (after saying so) when no batch includes the creator."""
    _ = tr
    me = creator.my_profile()
    st.title(_("My share · {name}").format(name=plain(me.display_name)))
    st.caption(_("Creator id {creator_id}").format(creator_id=plain(me.creator_id)))
    lines = creator.my_statement()
    if lines.height == 0:
        st.info(_("No payout batch has included you yet. Your share appears here after the "
                  "first batch that attributes a generation to your clips."))
        return None
    periods = lines[S.PERIOD].to_list()
    period = st.selectbox(_("Period"), periods[::-1], index=0, key="my_share_period")
    at = periods.index(period)  # lines are in chain order: the previous batch is the row before
    line = lines.row(at, named=True)
    return View(tr, me, lines, line, lines.slice(at - 1, 1) if at > 0 else lines.clear(),
                period, line[S.CURRENCY], creator.batch_policy(line[S.BATCH_ID]),
                creator.batch_policy(lines[S.BATCH_ID][-1]))


def _sections(details: pl.DataFrame) -> list[Callable[[View], None]]:
    licences = (sorted(details[S.LICENSE].drop_nulls().unique().to_list())
                if S.LICENSE in details.columns else None)
    return [summary, when_paid, payouts, payout_profile, superseded_note,
            lambda v: policy_words(v, licences), over_time,
            lambda v: clips(v, details), statement,
            lambda v: claim_forms.my_claims_section(v.tr, v.period,
                                                    details[S.CLIP_ID].to_list()
                                                    if details.height else [])]


# The page's sections in order, given the period's clip details: a new section is one
# more function of the View in this list.
SECTIONS = _sections

session.require(CREATOR)
store.stop_on_store_problem()
view = _view(language.tr())
if view is None:
    st.stop()
for section in SECTIONS(clip_rows(view)):
    section(view)
