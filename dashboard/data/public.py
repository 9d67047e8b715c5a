"""What anyone may see, logged in or not: the training catalogue, the batches, the chain head.

Rule: only public facts of the ledger (periods, policies, pools, totals,
hashes) and the catalogue's manifest (opted-out creators never named); never
a creator's statement and never a path of the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st
from sqlalchemy.orm import Session

from contract import schema as S
from dashboard import config, manifest
from dashboard.data.store import CACHE_TTL_S, cached_reader, money, store_problem
from ledger.store import read

LOG = logging.getLogger("residuals.dashboard")

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


_batches = cached_reader(read.batches)
_batch_manifest = cached_reader(read.batch_manifest)


def batch_list() -> pl.DataFrame:
    """Every batch in chain order (public facts: period, policy, pool, totals, hashes)."""
    return _batches()


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


_chain_head = cached_reader(read.chain_head)


def published_chain_head() -> read.ChainHead | None:
    """:func:`ledger.store.read.chain_head` of the app's ledger, or ``None`` when there is no batch to show."""
    if store_problem(need_batch=True) is not None:
        return None
    return _chain_head()


def batch_manifest(batch_id: str) -> dict:
    """The manifest recorded with a batch (input hashes, policy text, data directory...)."""
    return _batch_manifest(batch_id)


@dataclass(frozen=True)
class Where:
    """A data directory and, when it could not be found, why (one sentence).

    ``message`` may name a path of the server: staff pages show it, the public
    page shows ``public`` instead.
    """

    path: Path | None
    message: str = ""
    public: str = ""


def batch_data_dir(batch_id: str) -> Where:
    """The data directory a batch was computed from, if it is still on this machine."""
    override = config.data_override()
    if override is not None:
        return Where(override if override.is_dir() else None,
                     "" if override.is_dir() else f"{override} is not a directory",
                     "the catalogue the dashboard was started with")
    from ledger.store.posting import manifest_data_dir

    recorded = manifest_data_dir(batch_manifest(batch_id))
    if recorded is None:
        return Where(None, "the batch's manifest does not record its data directory",
                     "the batch's manifest does not record its data directory")
    if not recorded.is_dir():
        return Where(None, f"the batch's data directory {recorded} is not on this machine",
                     "the batch's data directory is not on this server")
    return Where(recorded)


def catalogue_dir() -> Where:
    """The catalogue to describe: ``--data``, else the latest standing batch's data directory.

    ``public`` says which catalogue (or why there is none) without naming a path.
    """
    override = config.data_override()
    if override is not None:
        where = batch_data_dir("")
        return Where(where.path, where.message, "the catalogue the dashboard was started with"
                     if where.path is not None else "No catalogue to show: the data directory "
                     "the dashboard was started with (--data) is not a directory.")
    problem = store_problem(need_batch=True)
    if problem is not None:
        text = "No catalogue to show yet: " + problem[0].lower() + problem[1:]
        return Where(None, text, text)
    last = standing_batches().tail(1)
    where = batch_data_dir(last[S.BATCH_ID][0])
    if where.path is None:
        return Where(None, f"No catalogue to show: {where.message}. Start the dashboard "
                     "with `--data DIR`.", f"No catalogue to show: {where.public}.")
    text = f"the data of the latest batch, period {last[S.PERIOD][0]}"
    return Where(where.path, text, text)
