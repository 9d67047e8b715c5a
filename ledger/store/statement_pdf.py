"""A creator's statement as PDF, in the creator's language.

Rule: rendering is pure (frames in, bytes out), like the CSV and HTML of
:mod:`ledger.store.statements`: the numbers come only from
:func:`ledger.store.read.creator_statement` and
:func:`ledger.store.read.creator_clip_earnings`; money is formatted from the
integer minor units of record (:meth:`ledger.i18n.Tr.money`). Every period
names its batch hash in full, and every clip that earned the share is listed
with its confidence in words. Text from the ledger (names, ids, reasons) is
escaped before it reaches reportlab's markup, and the font is a TrueType file
that ships inside an installed package (DejaVu Sans, inside matplotlib; nothing
is downloaded), so a name in any script never breaks the document.
Same inputs, same bytes (``invariant=1``: no creation date, fixed document id).
"""

from __future__ import annotations

import html
from functools import lru_cache
from io import BytesIO
from pathlib import Path

import polars as pl

from contract import schema as S
from contract.resemblance import STRONG, WEAK
from ledger.i18n import Tr
from ledger.store.statements import (
    ADJUSTMENTS_NOTE,
    RESEMBLANCE,
    RESEMBLANCE_WORDS,
    adjustment_rows,
    resemblance,
)

FONT = "ResidualsSans"


def font_file() -> Path:
    """The TrueType font the PDF embeds: DejaVu Sans, as it ships inside matplotlib (Latin,
    Greek, Cyrillic, Armenian, Georgian, Hebrew, Arabic and many symbols)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


@lru_cache(maxsize=1)
def _register_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(FONT, str(font_file())))
    return FONT


def _esc(value: object) -> str:
    """Ledger text as reportlab paragraph text: markup characters escaped."""
    return html.escape("" if value is None else str(value), quote=False)


def _styles():  # type: ignore[no-untyped-def]
    from reportlab.lib.styles import ParagraphStyle

    font = _register_font()
    base = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=16, leading=20, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=base, fontSize=12, leading=16, spaceBefore=10,
                             spaceAfter=4),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=7, leading=9),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10),
    }


def _table(rows: list[list[str]], styles, widths: list[float]):  # type: ignore[no-untyped-def]
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    cells = [[Paragraph(_esc(v), styles["cell"]) for v in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.lightgrey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def _period_rows(lines: pl.DataFrame, tr: Tr) -> list[list[str]]:
    _ = tr
    head = [_("Period"), _("Earned"), _("Carried in"), _("Paid"), _("Carried forward"),
            _("Note")]
    cur = lines[S.CURRENCY][0]
    body = [[p, tr.money(a, cur), tr.money(ci, cur), tr.money(pd, cur), tr.money(co, cur),
             reason or ""]
            for p, a, ci, pd, co, reason in lines.select(
                S.PERIOD, S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR,
                S.CARRIED_OUT_MINOR, S.REASON).iter_rows()]  # one row per period
    return [head, *body]


def _clip_rows(clips: pl.DataFrame, currency: str, tr: Tr) -> list[list[str]]:
    _ = tr
    head = [_("Period"), _("Clip"), _("Share of your attribution"),
            _("Earned (attribution estimate)"), _("Resemblance")]
    words = tuple(tr(w) for w in RESEMBLANCE_WORDS)
    shown = clips.with_columns(resemblance(labels=words).fill_null(_("not recorded")),
                               pl.col(S.EARNED_MINOR_EST).round(0).cast(pl.Int64))
    body = [[p, c, tr.percent(s), tr.money(e, currency), r]
            for p, c, s, e, r in shown.select(S.PERIOD, S.CLIP_ID, S.SHARE_OF_CREATOR,
                                               S.EARNED_MINOR_EST, RESEMBLANCE).iter_rows()]
    return [head, *body]


def statement_pdf(creator_id: str, display_name: str | None, lines: pl.DataFrame,
                  clips: pl.DataFrame, language: str = "en",
                  adjustments: pl.DataFrame | None = None) -> bytes:
    """The statement of one creator (every line of ``lines``, every clip of ``clips``) as
    PDF bytes in ``language``: totals, one row per period, each period's batch hash, the
    clips that earned the share with their resemblance, and each applied claim adjustment
    of ``adjustments`` (:func:`ledger.store.claims.creator_adjustments`) with its claim id,
    amount and funding."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

    tr = Tr(language)
    _ = tr
    styles = _styles()
    name = display_name or creator_id
    out = BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm, invariant=1,
                            title=_("Residuals statement"), author="Residuals")
    width = A4[0] - 30 * mm
    story = [Paragraph(_esc(_("Residuals statement for {name}").format(name=name)),
                       styles["title"]),
             Paragraph(_esc(_("Creator id {creator_id}").format(creator_id=creator_id)),
                       styles["body"])]
    if lines.height:
        cur = lines[S.CURRENCY][0]
        story.append(Paragraph(_esc(_(
            "Earned {earned} in total; paid {paid}; carried forward now {carried}.").format(
            earned=tr.money(int(lines[S.ALLOCATED_MINOR].sum()), cur),
            paid=tr.money(int(lines[S.PAID_MINOR].sum()), cur),
            carried=tr.money(int(lines[S.CARRIED_OUT_MINOR][-1]), cur))), styles["body"]))
        story += [Paragraph(_esc(_("Per period")), styles["h2"]),
                  _table(_period_rows(lines, tr), styles, [w * width for w in
                                                           (.14, .16, .16, .16, .16, .22)]),
                  Spacer(1, 4 * mm), Paragraph(_esc(_("Batch hashes")), styles["h2"]),
                  Paragraph(_esc(_("Each batch hash identifies the batch in the published "
                                   "hash chain; check it with residuals ledger verify.")),
                            styles["small"])]
        story += [Paragraph(_esc(f"{p}: {h}"), styles["small"])
                  for p, h in lines.select(S.PERIOD, S.BATCH_HASH).iter_rows()]
        story += [Paragraph(_esc(_("The clips that earned it")), styles["h2"]),
                  Paragraph(_esc(_(
                      "Estimates split your earnings in proportion to each clip's attribution "
                      "weight; the amount of record is the statement's. Resemblance says how "
                      "much of the generated videos the credited clips explain: strongly from "
                      "a confidence of {strong}, weakly from {weak}. It measures resemblance, "
                      "not proof of copying.").format(strong=tr.number(STRONG, 1),
                                                       weak=tr.number(WEAK, 1))),
                      styles["small"]),
                  _table(_clip_rows(clips, cur, tr), styles,
                         [w * width for w in (.14, .30, .18, .18, .20)])]
        rows = adjustment_rows(adjustments, tr)
        if len(rows) > 1:  # a header and at least one applied claim
            story += [Paragraph(_esc(_("Claim adjustments")), styles["h2"]),
                      Paragraph(_esc(_(ADJUSTMENTS_NOTE)), styles["small"]),
                      _table(rows, styles, [w * width for w in (.2, .2, .25, .35)])]
    doc.build(story)
    return out.getvalue()
