"""Training data (public): what the model was trained on, by creator and licence."""

from __future__ import annotations

import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import charts, manifest
from dashboard.data import public
from dashboard.text import plain

st.title("What this model was trained on")
st.write(
    "Every clip in the training catalogue, counted by creator and by licence. Creators who "
    "opted out are not named. Generative video companies rarely publish this; we do."
)

where = public.catalogue_dir()
if where.path is None:
    st.warning(plain(where.public))
    st.stop()
try:
    m = public.training_manifest(where.path)
except ResidualsError as exc:
    public.LOG.warning("the training catalogue cannot be read: %s", exc)
    st.error("The training catalogue cannot be read; the operator can find why in the "
             "server log.")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
c1.metric("Clips", f"{m.clips:,}")
c2.metric("Hours of video", "not recorded" if m.hours is None else f"{m.hours:,.1f}")
c3.metric("Creators", f"{m.creators:,}")
paid = public.latest_paid()
c4.metric("Paid to creators" + (f" ({plain(paid.period)})" if paid else ""),
          paid.text if paid else "no batch yet")
st.caption(f"Catalogue: {plain(where.public)}")
head = public.published_chain_head()
if head is not None:
    st.caption(f"Ledger chain head (newest batch, period {plain(head.period)}): "
               f"{plain(head.batch_hash)}. Note it: every later ledger must still hold this batch "
               "in its hash chain (`residuals ledger verify` prints the current head), so a "
               "rewritten history shows.")

st.subheader("Compliance: opted-out content in the catalogue")
row = m.opted_out.row(0, named=True)
if row[manifest.CLIPS]:
    hours = row[manifest.HOURS]
    st.warning(
        f"{row[manifest.CLIPS]:,} clips from {row[manifest.CREATORS]:,} creators who opted out are "
        "still in the catalogue" + (f" ({hours:,.1f} hours)" if hours is not None else "")
        + ". They are not named here and the payout policy decides whether they are paid; "
        "they should be removed from the next training run."
    )
else:
    st.success("No clip from a creator who opted out is in the catalogue.")

left, right = st.columns(2)
value = manifest.HOURS if m.hours is not None else manifest.CLIPS
with left:
    st.subheader("By creator")
    st.altair_chart(
        charts.bars(m.by_creator, label=S.DISPLAY_NAME, value=value,
                    title="Largest contributors", value_title=value.capitalize()),
        width="stretch",
    )
with right:
    st.subheader("By licence")
    if m.by_license is None:
        st.info("The catalogue does not record licences.")
    else:
        st.altair_chart(
            charts.bars(m.by_license, label=S.LICENSE, value=value, title="Licences",
                        value_title=value.capitalize()),
            width="stretch",
        )
        st.dataframe(m.by_license, hide_index=True, width="stretch")

st.subheader(f"All {m.named_creators:,} named creators")
st.dataframe(
    m.by_creator.drop(S.CREATOR_ID),
    hide_index=True,
    width="stretch",
    column_config={
        S.DISPLAY_NAME: "Creator",
        manifest.CLIPS: st.column_config.NumberColumn("Clips", format="%d"),
        manifest.HOURS: st.column_config.NumberColumn("Hours", format="%.2f"),
        manifest.SHARE_OF_HOURS: st.column_config.ProgressColumn(
            "Share of hours", format="percent", min_value=0.0, max_value=1.0),
    },
)
