"""Policy lab (economist, admin): edit a policy and see it next to the one that was posted."""

from __future__ import annotations

import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import charts, lab
from dashboard.auth import ADMIN, ECONOMIST
from dashboard.data import policy_lab as data_lab
from dashboard.data import public, session, store
from dashboard.data.store import money
from dashboard.text import plain
from ledger.fairness import AMOUNT_SHARE, POPULATION_SHARE
from ledger.policy import COMPONENTS, UNATTRIBUTED, parse_policy



def _export(edited_text: str, default_name: str, k: str) -> str:
    """The name field and download of the edited policy; returns the name it is saved under."""
    name = st.text_input("Name of the edited policy", default_name, key=f"lab_name_{k}",
                         max_chars=200).strip() or default_name
    try:
        parse_policy(edited_text, source="edited policy")
    except Exception:  # noqa: BLE001 - the comparison shows this error, once
        return name
    try:
        named = lab.with_name(edited_text, name)
        parse_policy(named, source="edited policy")
    except Exception as exc:  # noqa: BLE001 - shown to the user, one line
        st.error(f"The edited policy cannot be saved under this name: {plain(exc)}")
        return name
    st.download_button("Download edited policy (TOML)", named.encode("utf-8"),
                       file_name=lab.export_file_name(name), mime="application/toml",
                       key=f"lab_download_{k}")
    return name


def _several(batch_id: str, entries: list[tuple[str, str]], currency: str, k: str) -> None:
    """The period under the posted, the edited, the chosen shipped and an uploaded policy."""
    st.subheader("Compare several policies")
    shipped = data_lab.shipped_policies()
    chosen = st.multiselect("Shipped policies", list(shipped), default=list(shipped),
                            key=f"lab_shipped_{k}")
    entries = entries + [(f"shipped: {n}", shipped[n]) for n in chosen]
    upload = st.file_uploader("Add a policy file (TOML)", type=["toml"], key=f"lab_upload_{k}")
    if upload is not None:
        try:
            name, text = data_lab.uploaded_policy(upload.name, upload.getvalue())
        except ResidualsError as exc:
            st.error(f"The uploaded policy cannot be used: {plain(exc)}")
        else:
            entries.append((f"uploaded: {name}", text))
    labels = lab.unique_labels([label for label, _ in entries])
    try:
        table = data_lab.lab_many(batch_id, dict(zip(labels, [t for _, t in entries])))
    except ResidualsError as exc:
        st.error(f"A policy cannot be used: {plain(exc)}")
        return
    st.dataframe(lab.many_table(table, currency), hide_index=True, width="stretch",
                 key="lab_many")
    st.caption("Every policy allocates the posted period's pool, starting from the balances "
               "carried into it; withheld money stays with the platform.")


session.require(ECONOMIST, ADMIN)
st.title("Policy lab")
st.write("Pick a posted period, change the policy, and see who would be paid what: the same "
         "inputs, pool and rounding as the posted batch, so every difference comes from the edit.")
store.stop_on_store_problem(need_batch=True)

standing = public.standing_batches()
labels = {f"{r[S.PERIOD]} · {r[S.POLICY_NAME]}": r[S.BATCH_ID]
          for r in standing.reverse().iter_rows(named=True)}
batch_id = labels[st.selectbox("Period", list(labels), key="lab_period")]
try:
    period = data_lab.lab_period(batch_id)
except ResidualsError as exc:
    st.warning(plain(exc))
    st.stop()
current_text = period.policy_text
posted = parse_policy(current_text, source="posted policy")
posted_name = posted.name
base = lab.knobs_of(posted)
k = batch_id[:12]  # widget keys per period: switching periods starts from its own policy

left, right = st.columns([1, 2], gap="large")
with left:
    st.subheader("Edit")
    st.caption("Component weights (scaled to sum to 1)")
    weights = {c: st.slider(c.replace("_", "-"), 0.0, 1.0, float(base.weights[c]), 0.05,
                            key=f"lab_w_{c}_{k}") for c in COMPONENTS}
    cap_pct = st.slider("Cap per creator, % of the pool (0 = no cap)", 0.0, 20.0,
                        float((base.cap_share or 0.0) * 100), 0.5, key=f"lab_cap_{k}",
                        format="%.1f%%")
    min_payout = st.text_input(f"Minimum payout ({period.currency})", base.min_payout,
                               key=f"lab_min_{k}")
    exclude = st.checkbox("Exclude creators who opted out", base.exclude_opted_out,
                          key=f"lab_excl_{k}")
    unattributed = st.selectbox("Share of unattributed generations", UNATTRIBUTED,
                                index=UNATTRIBUTED.index(base.unattributed), key=f"lab_un_{k}")
    knobs = lab.Knobs(weights=weights, cap_share=cap_pct / 100 if cap_pct > 0 else None,
                      min_payout=min_payout.strip() or "0", exclude_opted_out=exclude,
                      unattributed=unattributed)
    try:
        knob_text = lab.apply_knobs(current_text, knobs)
    except Exception as exc:  # noqa: BLE001 - shown to the user, one line
        st.error(f"These settings cannot be written as a policy: {plain(exc)}")
        st.stop()
    # The raw TOML follows the knobs until it is edited by hand; then it wins.
    raw_key, seed_key = f"lab_raw_{k}", f"lab_seed_{k}"
    if st.session_state.get(raw_key) in (None, st.session_state.get(seed_key)):
        st.session_state[raw_key] = knob_text
    st.session_state[seed_key] = knob_text
    with st.expander("Policy TOML", expanded=False):
        raw = st.text_area("TOML", key=raw_key, height=320, label_visibility="collapsed")
        hand_edited = raw != knob_text
        if hand_edited:
            st.info("Edited by hand: the TOML above is what is compared; the knobs are ignored.")
            if st.button("Discard hand edits", key=f"lab_discard_{k}"):
                st.session_state.pop(raw_key, None)
                st.rerun()
    edited_text = raw if hand_edited else knob_text
    edited_name = _export(edited_text, f"{posted_name}-edited", k)

with right:
    try:
        current = data_lab.lab_allocation(batch_id, current_text)
        edited = data_lab.lab_allocation(batch_id, edited_text)
    except ResidualsError as exc:
        st.error(f"The edited policy cannot be used: {plain(exc)}")
        st.stop()
    cmp = lab.compare(current, edited)
    m = dict(zip(cmp.metrics[lab.METRIC], cmp.metrics.iter_rows(named=True)))
    cur = period.currency
    st.subheader(f"{plain(period.period)}: current vs edited")
    a1, a2, a3 = st.columns(3)
    a1.metric("Gini (edited)", f"{m['gini'][lab.EDITED]:.3f}",
              delta=f"{m['gini'][lab.EDITED] - m['gini'][lab.CURRENT]:+.3f}", delta_color="inverse")
    a2.metric("Top 1% share (edited)", f"{m['top1'][lab.EDITED]:.1%}",
              delta=f"{(m['top1'][lab.EDITED] - m['top1'][lab.CURRENT]) * 100:+.1f} pts",
              delta_color="inverse")
    a3.metric("Top 10% share (edited)", f"{m['top10'][lab.EDITED]:.1%}",
              delta=f"{(m['top10'][lab.EDITED] - m['top10'][lab.CURRENT]) * 100:+.1f} pts",
              delta_color="inverse")
    b1, b2, b3 = st.columns(3)
    b1.metric("Creators paid (edited)", f"{int(m['creators_paid'][lab.EDITED]):,}",
              delta=f"{int(m['creators_paid'][lab.EDITED] - m['creators_paid'][lab.CURRENT]):+,}")
    b2.metric("Median payout (edited)", money(round(m['median_payout'][lab.EDITED]), cur),
              delta=money(round(m['median_payout'][lab.EDITED]
                                     - m['median_payout'][lab.CURRENT]), cur))
    b3.metric("Largest payout (edited)", money(int(m['largest_payout'][lab.EDITED]), cur),
              delta=money(int(m['largest_payout'][lab.EDITED]
                                   - m['largest_payout'][lab.CURRENT]), cur),
              delta_color="inverse")
    st.dataframe(lab.metrics_table(cmp.metrics, cur), hide_index=True, width="stretch",
                 key="lab_metrics")
    st.altair_chart(charts.lorenz(cmp.lorenz, x=POPULATION_SHARE, y=AMOUNT_SHARE,
                                  series=lab.SERIES, title="Lorenz curves of allocations"),
                    width="stretch")
    st.subheader("Biggest winners and losers")
    names = period.inputs.creators.select(S.CREATOR_ID, S.DISPLAY_NAME)
    movers = cmp.movers.join(names, on=S.CREATOR_ID, how="left").with_columns(
        store.money_expr(lab.CURRENT, cur), store.money_expr(lab.EDITED, cur),
        store.money_expr(lab.DELTA_MINOR, cur),
    ).select(S.DISPLAY_NAME, S.CREATOR_ID, lab.CURRENT, lab.EDITED, lab.DELTA_MINOR)
    if movers.height == 0:
        st.info("Nobody's allocation changes under the edited policy.")
    else:
        st.dataframe(movers, hide_index=True, width="stretch", key="lab_movers", column_config={
            S.DISPLAY_NAME: "Creator", S.CREATOR_ID: "Creator id", lab.CURRENT: "Current",
            lab.EDITED: "Edited", lab.DELTA_MINOR: "Change"})
    st.caption(f"{period.creators:,} creators · pool {money(period.pool_minor, cur)} · "
               f"batch `{batch_id[:12]}`")

_several(batch_id, [(f"posted: {posted_name}", current_text),
                    (f"edited: {edited_name}", edited_text)], period.currency, k)
