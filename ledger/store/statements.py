"""A creator's statement as CSV and as a self-contained HTML page.

Rule: rendering is pure (frames in, text out); the numbers come only from
:func:`ledger.store.read.creator_statement` and
:func:`ledger.store.read.creator_clip_earnings`. Money is shown in major units
of the batch currency, from the integer minor units of record; each line names
its batch hash so a creator can check it against the published chain
(``residuals ledger verify`` recomputes that chain).
"""

from __future__ import annotations

import hashlib
import html
import json
import string

import polars as pl

from contract import schema as S
from contract.resemblance import LABEL_NONE, LABEL_STRONG, LABEL_WEAK, STRONG, WEAK
from ledger.i18n import N_
from ledger.money import exponent

MONEY_COLUMNS = (S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR, S.PAID_MINOR, S.CARRIED_OUT_MINOR)
EARNED = "earned"
CARRIED_IN = "carried_in"
PAID = "paid"
CARRIED_OUT = "carried_out"
_MAJOR = {S.ALLOCATED_MINOR: EARNED, S.CARRIED_IN_MINOR: CARRIED_IN, S.PAID_MINOR: PAID,
          S.CARRIED_OUT_MINOR: CARRIED_OUT}


def major(col: str, exp: int) -> pl.Expr:
    """Integer minor units as an exact decimal string in major units (``1445`` -> ``14.45``)."""
    whole = (pl.col(col) // 10**exp).cast(pl.String)
    if exp == 0:
        return whole
    return pl.concat_str(whole, pl.lit("."), (pl.col(col) % 10**exp).cast(pl.String)
                         .str.zfill(exp))


def statement_table(lines: pl.DataFrame) -> pl.DataFrame:
    """The statement lines with major-unit amount columns next to the minor ones.

    All batches of a ledger share one currency (the store refuses a second).
    """
    if lines.height == 0:
        return lines
    exp = exponent(lines[S.CURRENCY][0])
    return lines.select(
        S.PERIOD, S.CURRENCY,
        *(major(c, exp).alias(_MAJOR[c]) for c in MONEY_COLUMNS),
        *MONEY_COLUMNS, S.SHARE, S.ELIGIBLE, S.REASON, S.BATCH_ID, S.BATCH_HASH, S.REVISION,
        S.POSTED_AT,
    )


#: Column of a statement's clip table: the confidence in words (empty when unknown).
RESEMBLANCE = "resemblance"
RESEMBLANCE_WORDS = (N_("resembles strongly"), N_("resembles weakly"),
                     N_("no clear resemblance"))
"""The labels of :mod:`contract.resemblance`, marked for translation."""


def resemblance(col: str = S.CONFIDENCE, labels: tuple[str, str, str] = (
        LABEL_STRONG, LABEL_WEAK, LABEL_NONE)) -> pl.Expr:
    """A confidence column in words, by the thresholds of :mod:`contract.resemblance`
    (:data:`~contract.resemblance.STRONG`, :data:`~contract.resemblance.WEAK`);
    null where the confidence is null (attributions without a confidence column).
    ``labels`` are the (strong, weak, none) words, translated by the caller."""
    strong, weak, none = labels
    c = pl.col(col)
    return (pl.when(c.is_null()).then(pl.lit(None, pl.String))
            .when(c >= STRONG).then(pl.lit(strong)).when(c >= WEAK).then(pl.lit(weak))
            .otherwise(pl.lit(none)).alias(RESEMBLANCE))


def clip_table(clips: pl.DataFrame) -> pl.DataFrame:
    """A statement's clip rows (:func:`ledger.store.read.creator_clip_earnings`) with the
    confidence in words (:func:`resemblance`) beside the number."""
    return clips.with_columns(resemblance())


#: Columns of a statement CSV: what the claim adjustments applied by the line's batch added
#: to the creator's carried-in amount (major units, minor units) and which claims they are.
ADJUSTED = "adjusted"
ADJUSTED_MINOR = "adjusted_minor"
ADJUSTMENT_CLAIMS = "adjustment_claims"
CLAIM_ID = "claim_id"
FUNDING = "funding"
FUNDING_WORDS = {"pool": N_("from that period's pool"), "platform": N_("paid by the platform")}
"""How an upheld claim was funded, in words (:data:`ledger.store.models.FUNDINGS`)."""


def _no_adjustments() -> pl.DataFrame:
    return pl.DataFrame(schema={S.PERIOD: pl.String, CLAIM_ID: pl.Int64,
                                S.AMOUNT_MINOR: pl.Int64, S.CURRENCY: pl.String,
                                FUNDING: pl.String, S.BATCH_ID: pl.String})


def adjustments_per_batch(adjustments: pl.DataFrame | None, exp: int) -> pl.DataFrame:
    """Per ``batch_id`` the claims it applied (:func:`ledger.store.claims.creator_adjustments`):
    ``adjusted_minor`` (their sum) and ``adjustment_claims`` (``#12 pool 5.00; #15 platform
    3.00``: claim id, funding, amount in major units, in claim order)."""
    adj = _no_adjustments() if adjustments is None else adjustments
    return adj.sort(CLAIM_ID).with_columns(major(S.AMOUNT_MINOR, exp).alias("major")).group_by(
        S.BATCH_ID, maintain_order=True).agg(
        pl.col(S.AMOUNT_MINOR).sum().alias(ADJUSTED_MINOR),
        pl.concat_str(pl.lit("#"), pl.col(CLAIM_ID).cast(pl.String), pl.lit(" "),
                      pl.col(FUNDING), pl.lit(" "), pl.col("major")).str.join("; ")
        .alias(ADJUSTMENT_CLAIMS))


def adjustment_rows(adjustments: pl.DataFrame | None,
                    tr) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """The claim adjustments of a statement as table rows in ``tr``'s language (a header,
    then one row per claim: period, claim id, amount, funding in words); only the header
    when there are none."""
    _ = tr
    head = [_("Period"), _("Claim"), _("Amount"), _("Funding")]
    adj = _no_adjustments() if adjustments is None else adjustments
    body = [[period, f"#{cid}", tr.money(amount, cur), tr(FUNDING_WORDS.get(fund, fund))]
            for period, cid, amount, cur, fund in adj.sort(CLAIM_ID).select(
                S.PERIOD, CLAIM_ID, S.AMOUNT_MINOR, S.CURRENCY, FUNDING).iter_rows()]
    return [head, *body]  # one row per claim a creator had upheld


ADJUSTMENTS_NOTE = N_("An upheld claim is paid by the next batch, before its allocation: its "
                      "amount is part of that period's carried-in amount. Pool-funded "
                      "adjustments come out of that period's pool; platform-funded ones are "
                      "paid by the platform on top of it.")


#: Decimals of the share of the pool in a statement CSV.
SHARE_DECIMALS = 6
#: Column of a statement CSV: the day the batch was posted (ISO 8601 date, UTC).
POSTED_ON = "posted_on"


def statement_csv_table(creator_id: str, display_name: str | None,
                        lines: pl.DataFrame, adjustments: pl.DataFrame | None = None
                        ) -> pl.DataFrame:
    """The statement as its CSV is written: :func:`statement_table` with the creator's id
    and name on every line, the share rounded to :data:`SHARE_DECIMALS` decimals, the
    posting time as ISO 8601 (``posted_on`` ``2026-12-03``, ``posted_at``
    ``2026-12-03T10:41:00Z``, UTC), and the claim adjustments the line's batch applied
    (``adjusted``, ``adjusted_minor``, ``adjustment_claims``: see
    :func:`adjustments_per_batch`; 0 and empty when none)."""
    table = statement_table(lines)
    if table.height == 0:
        return table
    exp = exponent(lines[S.CURRENCY][0])
    table = table.join(adjustments_per_batch(adjustments, exp), on=S.BATCH_ID, how="left",
                       maintain_order="left").with_columns(
        pl.col(ADJUSTED_MINOR).fill_null(0), pl.col(ADJUSTMENT_CLAIMS).fill_null(""))
    table = table.with_columns(major(ADJUSTED_MINOR, exp).alias(ADJUSTED))
    stamp = pl.col(S.POSTED_AT)
    return table.with_columns(
        pl.col(S.SHARE).round(SHARE_DECIMALS),
        stamp.dt.strftime("%Y-%m-%d").alias(POSTED_ON),
        stamp.dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias(S.POSTED_AT),
    ).select(pl.lit(creator_id, pl.String).alias(S.CREATOR_ID),
             pl.lit(display_name, pl.String).alias(S.DISPLAY_NAME), pl.all())


def _table_html(df: pl.DataFrame, numeric: set[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    cells = df.select(
        pl.concat_str([
            pl.concat_str(
                pl.lit('<td class="num">' if c in numeric else "<td>"),
                pl.col(c).cast(pl.String).fill_null("").str.replace_all("&", "&amp;")
                .str.replace_all("<", "&lt;").str.replace_all(">", "&gt;"),
                pl.lit("</td>"))
            for c in df.columns
        ]).alias("row"))["row"]
    body = "\n".join("<tr>" + r + "</tr>" for r in cells.to_list())
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .hash { font-family: ui-monospace, monospace; font-size: 0.8rem; word-break: break-all; }
.note { color: #555; font-size: 0.85rem; }
"""


def statement_html(creator_id: str, display_name: str | None, lines: pl.DataFrame,
                   clips: pl.DataFrame, language: str = "en",
                   adjustments: pl.DataFrame | None = None) -> str:
    """A readable, self-contained HTML statement (no scripts, no external assets) in
    ``language``; amounts in the tables are the exact major-unit strings of record. With
    ``adjustments`` (:func:`ledger.store.claims.creator_adjustments`), a section lists each
    applied claim with its id, amount and funding."""
    from ledger.i18n import Tr

    tr = Tr(language)
    _ = tr
    table = statement_table(lines)
    cur = lines[S.CURRENCY][0] if lines.height else ""
    exp = exponent(cur) if cur else 0
    heads = {S.PERIOD: _("Period"), EARNED: _("Earned"), CARRIED_IN: _("Carried in"),
             PAID: _("Paid"), CARRIED_OUT: _("Carried forward"), S.REASON: _("Note"),
             S.BATCH_HASH: _("Batch hash")}
    shown = table.select(list(heads)) if table.height else pl.DataFrame(
        schema=dict.fromkeys(heads, pl.String))
    if cur:  # amounts for the locale: one row per period
        shown = shown.with_columns(
            pl.Series(_MAJOR[c], [tr.amount(v, cur) for v in lines[c].to_list()], pl.String)
            for c in MONEY_COLUMNS)
    words = tuple(tr(w) for w in RESEMBLANCE_WORDS)
    clip_heads = {S.PERIOD: _("Period"), S.CLIP_ID: _("Clip"), S.WEIGHT: _("Weight"),
                  "pct": _("Share of your attribution") + " (%)",
                  "est": _("Earned (attribution estimate)"), RESEMBLANCE: _("Resemblance")}
    clip_view = clips.with_columns(
        (pl.col(S.SHARE_OF_CREATOR) * 100).round(2).alias("pct"),
        (pl.col(S.EARNED_MINOR_EST) / 10**exp).round(exp).alias("est"),
        resemblance(labels=words).fill_null(_("not recorded")),
    ).select(list(clip_heads))
    money = (lambda c: tr.money(int(lines[c].sum()), cur)) if cur else (lambda c: "0")
    carried = tr.money(int(lines[S.CARRIED_OUT_MINOR][-1]), cur) if cur else "0"
    name = html.escape(display_name or creator_id)
    esc = html.escape
    return f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8">
<title>{esc(_("Residuals statement"))}: {name}</title><style>{_CSS}</style></head>
<body>
<h1>{esc(_("Residuals statement for {name}").format(name=display_name or creator_id))}
<code>{esc(creator_id)}</code></h1>
<p>{esc(_("Earned {earned} in total; paid {paid}; carried forward now {carried}.").format(
        earned=money(S.ALLOCATED_MINOR), paid=money(S.PAID_MINOR), carried=carried))}</p>
<h2>{esc(_("Per period"))} ({esc(cur)})</h2>
<p class="note">{esc(_("Each batch hash identifies the batch in the published hash chain; "
                       "check it with residuals ledger verify."))}</p>
{_table_html(shown.rename(heads), {heads[c] for c in (EARNED, CARRIED_IN, PAID, CARRIED_OUT)})}
<h2>{esc(_("The clips that earned it"))}</h2>
<p class="note">{esc(_(
        "Estimates split your earnings in proportion to each clip's attribution weight; the "
        "amount of record is the statement's. Resemblance says how much of the generated "
        "videos the credited clips explain: strongly from a confidence of {strong}, weakly "
        "from {weak}. It measures resemblance, not proof of copying.").format(
        strong=tr.number(STRONG, 1), weak=tr.number(WEAK, 1)))}</p>
{_table_html(clip_view.rename(clip_heads), {clip_heads[c] for c in (S.WEIGHT, "pct", "est")})}
{_adjustments_html(adjustments, tr)}</body></html>
"""


def _adjustments_html(adjustments: pl.DataFrame | None, tr) -> str:  # type: ignore[no-untyped-def]
    """The claim adjustments section of the HTML statement (empty without any)."""
    head, *body = adjustment_rows(adjustments, tr)
    if not body:
        return ""
    table = pl.DataFrame(body, schema=head, orient="row")
    _ = tr
    return (f"<h2>{html.escape(_('Claim adjustments'))}</h2>\n<p class=\"note\">"
            f"{html.escape(_(ADJUSTMENTS_NOTE))}</p>\n{_table_html(table, {head[2]})}\n")


_ID_SAFE = frozenset(string.ascii_letters + string.digits + "_.")
_PERIOD_SAFE = _ID_SAFE | {"-"}
_CLIPS = "-clips"
_MAX_STEM = 200  # bytes: room for the longest suffix within a file system's 255


def _escape(text: str, safe: frozenset[str]) -> str:
    """``text`` with every character outside ``safe`` as ``%XX`` per UTF-8 byte (reversible)."""
    return "".join(ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
                   for ch in text)


def statement_file_names(creator_id: str, period: str | None = None) -> tuple[str, str, str]:
    """The names of a statement's three files: lines CSV, clips CSV, HTML page.

    ``statement-ID[-PERIOD].csv``, ``statement-ID[-PERIOD]-clips.csv`` and
    ``statement-ID[-PERIOD].html``, where ID keeps ASCII letters, digits, ``_``
    and ``.`` and writes any other character as ``%XX`` per UTF-8 byte (so
    ``a/b`` is ``a%2Fb``, ``a-b`` is ``a%2Db``, ``%`` is ``%25``), and PERIOD
    keeps ``-`` too; a PERIOD that is ``clips`` or ends in ``-clips`` has its
    final ``s`` written ``%73``. The names are injective: different (id,
    period) pairs never share a file, and a name decodes back to its pair.
    When the escaped stem would exceed 200 bytes, it is cut and ends with
    ``~`` and 16 hex digits of the SHA-256 of the exact pair (``~`` never
    appears otherwise).
    """
    stem = statement_stem(creator_id, period)
    return f"{stem}.csv", f"{stem}{_CLIPS}.csv", f"{stem}.html"


def statement_stem(creator_id: str, period: str | None = None) -> str:
    """The name of a statement's files without suffix (see :func:`statement_file_names`;
    the PDF is ``<stem>.pdf``)."""
    stem = "statement-" + _escape(creator_id, _ID_SAFE)
    if period is not None:
        escaped = _escape(period, _PERIOD_SAFE)
        if escaped == _CLIPS[1:] or escaped.endswith(_CLIPS):
            escaped = escaped[:-1] + "%73"
        stem += "-" + escaped
    if len(stem) > _MAX_STEM:  # escaped text is ASCII: characters are bytes
        digest = hashlib.sha256(json.dumps([creator_id, period]).encode("utf-8")).hexdigest()
        stem = f"{stem[:_MAX_STEM - 17]}~{digest[:16]}"
    return stem
