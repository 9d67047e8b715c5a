"""The dashboard's data layer: every number a page shows comes from here.

Rules:

- The engine is cached per database URL with ``st.cache_resource``; frames are
  cached with ``st.cache_data``, keyed by the URL and, for anything about one
  creator, by that creator's id.
- A creator-scoped function takes **no** creator argument: it reads the
  creator_id of the login recorded by :func:`log_in` in a server-side table,
  found through an unguessable token in the session. A widget, a query
  parameter or a value written into the session state cannot name another
  creator.
- A database that is missing, unreachable, from an older schema or without
  any batch yields one clear sentence (:func:`store_problem`) that pages show
  instead of a traceback.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import config, lab, manifest
from dashboard.auth import ADMIN, CREATOR, ECONOMIST, FAILED_MESSAGE, LoggedIn
from ledger.fairness import AMOUNT_SHARE, POPULATION_SHARE

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from ledger.allocate import Allocation, AllocationInputs

FAILED_LOGIN = FAILED_MESSAGE
TOKEN_KEY = "residuals_login_token"
CACHE_TTL_S = 60


class NotAllowed(ResidualsError):
    """The login does not allow this page or these rows."""


# ---- logins ---------------------------------------------------------------

@st.cache_resource
def _logins() -> dict[str, LoggedIn]:
    """Server-side table of live logins, keyed by the random token in a session."""
    return {}


def current_user() -> LoggedIn | None:
    """The logged-in user of this browser session, or ``None``."""
    token = st.session_state.get(TOKEN_KEY)
    return _logins().get(token) if isinstance(token, str) else None


def log_in(username: str, password: str) -> LoggedIn | None:
    """Check a login against the ledger's users; on success remember it for this session."""
    from sqlalchemy.orm import Session

    from dashboard.auth import authenticate

    with Session(engine(config.db_url())) as session, session.begin():
        user = authenticate(session, username, password)
    if user is None:
        return None
    token = secrets.token_urlsafe(32)
    _logins()[token] = user
    st.session_state[TOKEN_KEY] = token
    return user


def log_out() -> None:
    """Forget this session's login, on the server and in the session."""
    token = st.session_state.pop(TOKEN_KEY, None)
    if isinstance(token, str):
        _logins().pop(token, None)


def require(*roles: str) -> LoggedIn:
    """The logged-in user if their role is one of ``roles``; else stop the page."""
    user = current_user()
    if user is None or user.role not in roles:
        st.error("This page needs a login with the role " + " or ".join(roles) + ".")
        st.stop()
    return user


def _creator_id() -> str:
    user = current_user()
    if user is None or user.role != CREATOR or not user.creator_id:
        raise NotAllowed("only a logged-in creator can see creator rows")
    return user.creator_id


def _staff() -> LoggedIn:
    user = current_user()
    if user is None or user.role not in (ADMIN, ECONOMIST):
        raise NotAllowed("this needs an admin or economist login")
    return user


# ---- the data directory (catalogue) ---------------------------------------

@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _manifest(data_dir: str) -> manifest.Manifest:
    from contract.io import check_creators_known, read_table

    root = Path(data_dir)
    creators = read_table(root / S.CREATORS.filename, S.CREATORS)
    clips_path = root / S.CLIPS.filename
    # The dashboard never needs embeddings: skipping them keeps a large catalogue cheap.
    clips = read_table(clips_path, S.CLIPS, embeddings=False)
    check_creators_known(clips, creators, str(clips_path))
    return manifest.build_manifest(creators, clips)


def training_manifest(data_dir: Path) -> manifest.Manifest:
    """The public manifest of the catalogue in ``data_dir`` (cached)."""
    return _manifest(str(data_dir.resolve()))


# ---- the ledger database ----------------------------------------------------

@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    from ledger.store.engine import make_engine

    return make_engine(url)


def engine(url: str | None = None) -> Engine:
    """The cached engine of the ledger database (never migrates: the dashboard only reads)."""
    return _engine(url or config.db_url())


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def store_problem(*, need_batch: bool = False) -> str | None:
    """Why the ledger database cannot be used right now, in one sentence, or ``None``.

    Covers a missing SQLite file (never created by looking at it), an
    unreachable server, an empty or older schema, and (with ``need_batch``) a
    ledger where no batch has been posted yet.
    """
    from sqlalchemy import func, select

    from ledger.store import models
    from ledger.store.engine import current_revision, head_revision, safe_url

    try:
        url = config.db_url()
    except ResidualsError as exc:
        return f"The database URL is not valid ({exc}); start the dashboard with --db URL."
    shown = safe_url(url)
    path = _sqlite_file(url)
    if path is not None and not path.is_file():
        return (f"There is no ledger database at {path}. Run `make demo`, or "
                "`residuals batch run ... --db URL` and start the dashboard with `--db URL`.")
    try:
        eng = engine(url)
        revision = current_revision(eng)
    except ResidualsError as exc:
        return f"The ledger database cannot be reached: {exc}"
    except Exception as exc:  # a driver error after connecting (e.g. not a database file)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"The ledger database at {shown} cannot be read: {first[:200]}"
    head = head_revision()
    if revision is None:
        return (f"The database at {shown} holds no ledger yet (no schema). "
                "Post a batch with `residuals batch run` first.")
    if revision != head:
        return (f"The ledger database at {shown} uses another schema version ({revision}; "
                f"this dashboard reads {head}). Run `residuals db upgrade --db URL` and reload.")
    if need_batch:
        try:
            with eng.connect() as conn:
                n = conn.execute(select(func.count()).select_from(models.Batch)).scalar_one()
        except Exception as exc:  # noqa: BLE001 - any read failure is reported on the page
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return f"The ledger database at {shown} cannot be read: {first[:200]}"
        if n == 0:
            return ("No payout batch has been posted yet. Run `residuals batch run --period P "
                    "--policy F --data DIR` (or `make demo`) and reload.")
    return None


# ---- money -------------------------------------------------------------------

def money_expr(column: str, currency: str) -> pl.Expr:
    """``column`` (integer minor units) formatted like :func:`ledger.money.format_minor`.

    Vectorised, for tables that can be long (payout files); equal to
    ``format_minor`` value for value (tested).
    """
    from ledger.money import exponent

    exp = exponent(currency)
    amount = pl.col(column).cast(pl.Int64)
    absolute = amount.abs()
    whole = (absolute // (10**exp)).cast(pl.String)
    grouped = (whole.str.reverse().str.replace_all(r"(\d{3})", "$1,").str.reverse()
               .str.strip_chars_start(","))
    text = grouped
    if exp:
        frac = (absolute % (10**exp)).cast(pl.String).str.zfill(exp)
        text = pl.concat_str([grouped, pl.lit("."), frac])
    sign = pl.when(amount < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str([sign, text, pl.lit(" " + currency.upper())]).alias(column)


def money(amount_minor: int, currency: str) -> str:
    """One amount, formatted by the ledger (``1,234.56 USD``)."""
    from ledger.money import format_minor

    return format_minor(int(amount_minor), currency)


# ---- public ledger numbers -------------------------------------------------------

@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _batches(url: str) -> pl.DataFrame:
    from ledger.store import read_session
    from ledger.store.read import batches

    with read_session(engine(url)) as session:
        return batches(session)


def batch_list() -> pl.DataFrame:
    """Every batch in chain order (public facts: period, policy, pool, totals, hashes)."""
    return _batches(config.db_url())


def standing_batches() -> pl.DataFrame:
    """Batches not superseded by a later one, in chain order."""
    return batch_list().filter(~pl.col(S.SUPERSEDED))


@dataclass(frozen=True)
class PaidTotal:
    """What the latest standing batch paid to creators (public)."""

    period: str
    paid_minor: int
    pool_minor: int
    currency: str

    @property
    def text(self) -> str:
        return money(self.paid_minor, self.currency)


def latest_paid() -> PaidTotal | None:
    """Total paid by the latest standing batch, or ``None`` when the ledger has none."""
    if store_problem(need_batch=True) is not None:
        return None
    last = standing_batches().tail(1)
    if last.height == 0:
        return None
    row = last.row(0, named=True)
    return PaidTotal(row[S.PERIOD], row[S.PAID_MINOR], row[S.POOL_MINOR], row[S.CURRENCY])


# ---- one creator's rows (the creator_id always comes from the login) -------------

@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _statement(url: str, creator_id: str) -> pl.DataFrame:
    from ledger.store import read_session
    from ledger.store.read import creator_statement

    with read_session(engine(url)) as session:
        return creator_statement(session, creator_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _clip_earnings(url: str, creator_id: str, period: str) -> pl.DataFrame:
    from ledger.store import read_session
    from ledger.store.read import creator_clip_earnings

    with read_session(engine(url)) as session:
        return creator_clip_earnings(session, creator_id, period)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _profile(url: str, creator_id: str) -> tuple[str, int, str | None]:
    from sqlalchemy import select

    from ledger.store import models, read_session

    with read_session(engine(url)) as session:
        creator = session.get(models.Creator, creator_id)
        bal = session.execute(
            select(models.Balance.balance_minor, models.Balance.currency)
            .join(models.Account, models.Account.id == models.Balance.account_id)
            .where(models.Account.creator_id == creator_id,
                   models.Account.kind == models.CREATOR_PAYABLE)
        ).first()
    name = creator.display_name if creator is not None else creator_id
    return name, int(bal[0]) if bal else 0, bal[1] if bal else None


@dataclass(frozen=True)
class Profile:
    """The logged-in creator's name and what the platform owes them now."""

    creator_id: str
    display_name: str
    balance_minor: int
    currency: str | None


def my_profile() -> Profile:
    """Name and carried-forward balance of the logged-in creator."""
    cid = _creator_id()
    name, balance, currency = _profile(config.db_url(), cid)
    return Profile(cid, name, balance, currency)


def my_statement() -> pl.DataFrame:
    """The logged-in creator's statement lines, one per standing batch, oldest first."""
    return _statement(config.db_url(), _creator_id())


def my_clip_earnings(period: str) -> pl.DataFrame:
    """The clips that earned the logged-in creator's allocation in ``period``."""
    return _clip_earnings(config.db_url(), _creator_id(), period)


# ---- the data behind a batch (its manifest names the data directory) ---------------

@dataclass(frozen=True)
class Where:
    """A data directory and, when it could not be found, why (one sentence)."""

    path: Path | None
    message: str = ""


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _manifest_of(url: str, batch_id: str) -> dict:
    from ledger.store import models, read_session

    with read_session(engine(url)) as session:
        batch = session.get(models.Batch, batch_id)
        return dict(batch.manifest) if batch is not None else {}


def batch_manifest(batch_id: str) -> dict:
    """The manifest recorded with a batch (input hashes, policy text, data directory...)."""
    return _manifest_of(config.db_url(), batch_id)


def batch_data_dir(batch_id: str) -> Where:
    """The data directory a batch was computed from, if it is still on this machine."""
    override = config.data_override()
    if override is not None:
        return Where(override if override.is_dir() else None,
                     "" if override.is_dir() else f"{override} is not a directory")
    from ledger.store.posting import manifest_data_dir

    recorded = manifest_data_dir(batch_manifest(batch_id))
    if recorded is None:
        return Where(None, "the batch's manifest does not record its data directory")
    if not recorded.is_dir():
        return Where(None, f"the batch's data directory {recorded} is not on this machine")
    return Where(recorded)


def catalogue_dir() -> Where:
    """The catalogue to describe: ``--data``, else the latest standing batch's data directory."""
    override = config.data_override()
    if override is not None:
        return batch_data_dir("")
    problem = store_problem(need_batch=True)
    if problem is not None:
        return Where(None, "No catalogue to show yet: " + problem[0].lower() + problem[1:])
    last = standing_batches().tail(1)
    where = batch_data_dir(last[S.BATCH_ID][0])
    if where.path is None:
        return Where(None, f"No catalogue to show: {where.message}. Start the dashboard "
                     "with `--data DIR`.")
    return Where(where.path, f"the data of the latest batch, period {last[S.PERIOD][0]}")


# Columns of the clip-detail frame that are not contract columns.
MATCHES = "matches"
TOP_MATCHES = "top_matches"
SEGMENT = "segment"
TOP_MATCHES_SHOWN = 3


def _scan(path: Path, table: S.Table, columns: list[str], creator_id: str | None) -> pl.DataFrame:
    """Read ``columns`` of a contract table (rows of one creator when given), validated."""
    from contract.io import validate_frame

    try:
        have = pl.read_parquet_schema(path)
        lazy = pl.scan_parquet(path).select([c for c in columns if c in have])
        if creator_id is not None:
            lazy = lazy.filter(pl.col(S.CREATOR_ID) == creator_id)
        df = lazy.collect()
    except Exception as exc:  # polars raises several types for unreadable files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ResidualsError(f"{path}: is not a readable Parquet file ({first[:160]})") from None
    meta = S.Table(table.name,
                   required={k: v for k, v in table.required.items() if k in columns},
                   optional={k: v for k, v in table.optional.items() if k in columns},
                   key=table.key if all(k in columns for k in table.key) else ())
    return validate_frame(df, meta, path, allow_empty=True)


def clip_details(earnings: pl.DataFrame, clips: pl.DataFrame | None,
                 attributions: pl.DataFrame | None, generations: pl.DataFrame | None) -> pl.DataFrame:
    """The clips that earned a creator's share, with caption, matched generations and segment.

    Pure: every input is already limited to one creator (and ``attributions``
    to the batch's period). ``matches`` counts the generations that matched a
    clip; ``top_matches`` lists the strongest few (by weight) with their
    prompts; ``segment`` is the best-matching segment and its time span where
    the catalogue has segments.
    """
    out = earnings
    if clips is not None and clips.height:
        meta_cols = [c for c in (S.CAPTION, S.LICENSE, S.DURATION_S) if c in clips.columns]
        meta = clips.unique(subset=[S.CLIP_ID], keep="first", maintain_order=True)
        out = out.join(meta.select(S.CLIP_ID, *meta_cols), on=S.CLIP_ID, how="left")
    if attributions is not None and attributions.height:
        attr = attributions
        if generations is not None and S.PROMPT in generations.columns:
            attr = attr.join(generations.select(S.GENERATION_ID, S.PROMPT),
                             on=S.GENERATION_ID, how="left")
            label = pl.concat_str([pl.col(S.GENERATION_ID),
                                   pl.lit(": "), pl.col(S.PROMPT).fill_null("")])
        else:
            label = pl.col(S.GENERATION_ID)
        ranked = attr.sort([S.CLIP_ID, S.WEIGHT, S.GENERATION_ID], descending=[False, True, False])
        per_clip = ranked.group_by(S.CLIP_ID, maintain_order=True).agg(
            pl.len().alias(MATCHES),
            label.head(TOP_MATCHES_SHOWN).str.join(" | ").alias(TOP_MATCHES),
        )
        out = out.join(per_clip, on=S.CLIP_ID, how="left").with_columns(
            pl.col(MATCHES).fill_null(0))
        if S.SEGMENT_ID in attr.columns and clips is not None and S.SEGMENT_ID in clips.columns:
            best = (attr.filter(pl.col(S.SEGMENT_ID).is_not_null())
                    .sort([S.CLIP_ID, S.SIMILARITY, S.GENERATION_ID],
                          descending=[False, True, False])
                    .group_by(S.CLIP_ID, maintain_order=True).first()
                    .select(S.CLIP_ID, S.SEGMENT_ID))
            span_cols = [c for c in (S.T_START, S.T_END) if c in clips.columns]
            best = best.join(clips.select(S.CLIP_ID, S.SEGMENT_ID, *span_cols),
                             on=[S.CLIP_ID, S.SEGMENT_ID], how="left")
            text = pl.col(S.SEGMENT_ID)
            if len(span_cols) == 2:
                text = pl.concat_str([
                    pl.col(S.SEGMENT_ID), pl.lit(" ("), pl.col(S.T_START).round(1).cast(pl.String),
                    pl.lit("–"), pl.col(S.T_END).round(1).cast(pl.String), pl.lit(" s)"),
                ]).fill_null(pl.col(S.SEGMENT_ID))
            out = out.join(best.select(S.CLIP_ID, text.alias(SEGMENT)), on=S.CLIP_ID, how="left")
    return out


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _clip_details(url: str, creator_id: str, period: str, data_dir: str | None) -> pl.DataFrame:
    earnings = _clip_earnings(url, creator_id, period)
    if data_dir is None:
        return earnings
    root = Path(data_dir)
    clip_cols = [S.CLIP_ID, S.CREATOR_ID, S.CAPTION, S.LICENSE, S.DURATION_S,
                 S.SEGMENT_ID, S.T_START, S.T_END]
    clips = _scan(root / S.CLIPS.filename, S.CLIPS, clip_cols, creator_id)
    attributions = generations = None
    attr_path = root / S.ATTRIBUTIONS.filename
    if attr_path.is_file():
        attributions = _scan(attr_path, S.ATTRIBUTIONS,
                             [*S.ATTRIBUTIONS.required, S.SEGMENT_ID], creator_id)
        gen_path = root / S.GENERATIONS.filename
        if gen_path.is_file() and attributions.height:
            gens = _scan(gen_path, S.GENERATIONS, [S.GENERATION_ID, S.PROMPT], None)
            generations = gens.filter(pl.col(S.GENERATION_ID).is_in(
                attributions[S.GENERATION_ID].unique().implode()))
    return clip_details(earnings, clips, attributions, generations)


def my_clip_details(period: str, batch_id: str) -> pl.DataFrame:
    """The logged-in creator's earning clips in ``period``, with the catalogue's details."""
    where = batch_data_dir(batch_id)
    return _clip_details(config.db_url(), _creator_id(), period,
                         str(where.path) if where.path is not None else None)


def my_statement_csv() -> bytes:
    """The logged-in creator's statement (every standing batch) as CSV, as the ledger writes it."""
    from ledger.store.statements import statement_table

    return statement_table(my_statement()).write_csv().encode("utf-8")


def exponent(currency: str) -> int:
    """Digits after the decimal point in ``currency`` (the ledger's ISO 4217 table)."""
    from ledger.money import exponent as _exponent

    return _exponent(currency)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _statement_html(url: str, creator_id: str) -> str:
    from ledger.store import read_session
    from ledger.store.read import creator_clip_earnings
    from ledger.store.statements import statement_html

    name, _balance, _currency = _profile(url, creator_id)
    with read_session(engine(url)) as session:
        clips = creator_clip_earnings(session, creator_id)
    return statement_html(creator_id, name, _statement(url, creator_id), clips)


def my_statement_html() -> bytes:
    """The ledger's readable statement (HTML) of the logged-in creator, every standing batch."""
    return _statement_html(config.db_url(), _creator_id()).encode("utf-8")


# ---- staff (admin, economist): whole batches -------------------------------------

CARRIED_OUT_TOTAL = "carried_out_total"


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _carried(url: str) -> pl.DataFrame:
    from sqlalchemy import func, select

    from ledger.store import models, read_session
    from ledger.store.read import frame

    st_ = models.Statement
    stmt = select(st_.batch_id, func.coalesce(func.sum(st_.carried_out_minor), 0)).group_by(
        st_.batch_id)
    with read_session(engine(url)) as session:
        return frame(session, stmt, {S.BATCH_ID: pl.String(), CARRIED_OUT_TOTAL: pl.Int64()})


def batch_overview() -> pl.DataFrame:
    """Every batch with the total carried forward to later periods (admin only)."""
    _staff()
    return batch_list().join(_carried(config.db_url()), on=S.BATCH_ID, how="left").with_columns(
        pl.col(CARRIED_OUT_TOTAL).fill_null(0))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _batch_lines(url: str, batch_id: str) -> pl.DataFrame:
    from ledger.store import read_session
    from ledger.store.read import batch_lines as read_batch_lines

    with read_session(engine(url)) as session:
        return read_batch_lines(session, batch_id)


def batch_lines(batch_id: str) -> pl.DataFrame:
    """Every creator's line in a batch (admin and economist only)."""
    _staff()
    return _batch_lines(config.db_url(), batch_id)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _payouts(url: str, batch_id: str) -> pl.DataFrame:
    from ledger.store import read_session
    from ledger.store.read import payouts

    with read_session(engine(url)) as session:
        return payouts(session, batch_id)


def payout_file(batch_id: str) -> pl.DataFrame:
    """The payout file of a batch: creator, amount, currency, reference (admin only)."""
    _staff()
    return _payouts(config.db_url(), batch_id)


#: The decimal amount column of ``payouts-PERIOD.csv``, as ``residuals batch run`` writes it.
PAYOUT_AMOUNT = "amount"


def payout_csv(batch_id: str) -> bytes:
    """The payout file, byte for byte as ``residuals batch run`` writes ``payouts-PERIOD.csv``
    (creator_id, amount in major units, amount_minor, currency, reference; tested)."""
    from ledger.store.statements import major

    df = payout_file(batch_id)
    exp = exponent(df[S.CURRENCY][0]) if df.height else 0
    return df.with_columns(major(S.AMOUNT_MINOR, exp).alias(PAYOUT_AMOUNT)).select(
        S.CREATOR_ID, PAYOUT_AMOUNT, S.AMOUNT_MINOR, S.CURRENCY, S.REFERENCE,
    ).write_csv().encode("utf-8")


# ---- fairness of a batch -------------------------------------------------------

#: Column naming which allocation a Lorenz point belongs to.
SERIES = lab.SERIES


@dataclass(frozen=True)
class Fairness:
    """Concentration of one set of allocations (see :mod:`ledger.fairness`)."""

    gini: float
    top1: float
    top10: float
    creators_paid: int
    median_paid_minor: int
    largest_paid_minor: int
    lorenz: pl.DataFrame


def fairness_of(lines: pl.DataFrame, label: str) -> Fairness:
    """Fairness of allocation lines (``allocated_minor``, ``paid_minor``, ``eligible``).

    Like :func:`ledger.fairness.summary`: Gini, top shares and the Lorenz curve
    over the eligible creators' allocations; payout figures over those paid.
    Works on a posted batch's statement lines and on an ``Allocation.frame``.
    """
    from ledger import fairness as F

    allocated = lines.filter(pl.col(S.ELIGIBLE))[S.ALLOCATED_MINOR]
    paid = lines.filter(pl.col(S.PAID_MINOR) > 0)[S.PAID_MINOR]
    return Fairness(
        gini=float(F.gini(allocated)),
        top1=float(F.top_share(allocated, 0.01)),
        top10=float(F.top_share(allocated, 0.10)),
        creators_paid=int(paid.len()),
        median_paid_minor=int(paid.median() or 0),
        largest_paid_minor=int(paid.max() or 0),
        lorenz=lab.thin(F.lorenz(allocated)).with_columns(pl.lit(label).alias(SERIES)),
    )


def batch_fairness(batch_id: str) -> Fairness:
    """Fairness summary of a posted batch's allocations (admin and economist only)."""
    return fairness_of(batch_lines(batch_id), "posted")


# ---- ledger verify ----------------------------------------------------------

@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``residuals ledger verify`` as the Batches page shows it."""

    ok: bool
    summary: str
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()


def recompute_batch(man: dict, carried: pl.DataFrame) -> pl.DataFrame | str:
    """Re-run a batch's allocation from the inputs its manifest names (for ``verify``).

    The dashboard never runs attribution: a batch that computed its attributions
    when posted is left to ``residuals ledger verify``, with the reason returned.
    """
    from ledger.store.verify import recompute_from_inputs

    return recompute_from_inputs(man, carried)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner="Verifying the ledger…")
def _verify(url: str, recompute: bool) -> VerifyReport:
    from ledger.store import read_session
    from ledger.store.verify import verify

    with read_session(engine(url)) as session:
        result = verify(session, recompute=recompute_batch if recompute else None)
    problems = tuple(str(v) for v in result.violations)
    summary = ", ".join(f"{n:,} {what}" for what, n in result.counts.items()) + " checked"
    return VerifyReport(not problems, summary, problems, tuple(result.notes))


def verify_report(*, recompute: bool = True) -> VerifyReport:
    """The ledger's verification (balances, transactions, hash chain, reversals and, with
    ``recompute``, each batch's payouts from its inputs), cached briefly; staff only."""
    _staff()
    return _verify(config.db_url(), recompute)


# ---- policy lab -------------------------------------------------------------

@dataclass(frozen=True)
class LabPeriod:
    """What the lab needs to re-allocate one posted period under another policy."""

    batch_id: str
    period: str
    policy_text: str
    pool_minor: int
    currency: str
    creators: int
    inputs: AllocationInputs


def load_inputs(root: Path, carried_in: pl.DataFrame | None) -> AllocationInputs:
    """:class:`ledger.allocate.AllocationInputs` from a data directory, validated, no embeddings."""
    from contract.io import load_dataset
    from ledger.allocate import from_dataset

    attr_path = root / S.ATTRIBUTIONS.filename
    if not attr_path.is_file():
        raise ResidualsError(f"{attr_path}: not found; the lab needs the period's attributions "
                             "(run `residuals attribute` into the data directory)")
    ds = load_dataset(root, embeddings=False)
    return from_dataset(ds, ds.attributions, carried_in)


@st.cache_resource(max_entries=4, show_spinner="Loading the period's inputs…")
def _lab_period(url: str, batch_id: str, data_dir: str) -> LabPeriod:
    from sqlalchemy import select

    from ledger.store import models, read_session
    from ledger.store.posting import manifest_policy_text
    from ledger.store.read import frame

    st_ = models.Statement
    with read_session(engine(url)) as session:
        batch = session.get(models.Batch, batch_id)
        carried = frame(session, select(st_.creator_id, st_.carried_in_minor)
                        .where(st_.batch_id == batch_id, st_.carried_in_minor > 0),
                        {S.CREATOR_ID: pl.String(), S.CARRIED_MINOR: pl.Int64()})
        text = manifest_policy_text(batch.manifest)
        pool, currency, period = batch.pool_minor, batch.currency, batch.period
    inputs = load_inputs(Path(data_dir), carried)
    return LabPeriod(batch_id, period, text, pool, currency, inputs.creators.height, inputs)


def lab_period(batch_id: str) -> LabPeriod:
    """The posted period behind ``batch_id``, ready to re-allocate (staff only).

    Raises
    ------
    ResidualsError
        When the batch's data directory or its attributions are not available.
    """
    _staff()
    where = batch_data_dir(batch_id)
    if where.path is None:
        raise ResidualsError(f"The period's inputs are not available: {where.message}.")
    return _lab_period(config.db_url(), batch_id, str(where.path.resolve()))


def reallocate(period: LabPeriod, policy_text: str) -> Allocation:
    """Allocate ``period`` under ``policy_text`` with the batch's own pool, currency and id.

    Under the batch's own policy this reproduces the posted statement exactly
    (tested), so any difference the lab shows comes from the edit.
    """
    from ledger.allocate import allocate
    from ledger.policy import parse_policy

    policy = parse_policy(policy_text, source="edited policy")
    return allocate(policy, period.inputs, pool_minor=period.pool_minor,
                    currency=period.currency, batch_id=period.batch_id)


@st.cache_data(max_entries=64, show_spinner=False)
def _reallocated(url: str, batch_id: str, data_dir: str, policy_text: str) -> Allocation:
    return reallocate(_lab_period(url, batch_id, data_dir), policy_text)


def lab_allocation(batch_id: str, policy_text: str) -> Allocation:
    """:func:`reallocate` for the lab, cached per (database, batch, policy text)."""
    _staff()
    where = batch_data_dir(batch_id)
    if where.path is None:
        raise ResidualsError(f"The period's inputs are not available: {where.message}.")
    return _reallocated(config.db_url(), batch_id, str(where.path.resolve()), policy_text)
