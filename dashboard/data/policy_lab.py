"""The policy lab's data (staff only): a posted period's inputs, re-allocated under an edit.

Rule: the lab re-allocates with the posted batch's own inputs, pool, currency
and batch id, so under the posted policy it reproduces the posted statement
line for line; inputs are cached as resources (never copied per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import streamlit as st
from sqlalchemy.orm import Session

from contract import schema as S
from contract.errors import ResidualsError
from dashboard import config
from dashboard.data.public import batch_data_dir
from dashboard.data.session import staff
from dashboard.data.store import cached_reader
from ledger.store import read

if TYPE_CHECKING:
    from ledger.allocate import Allocation, AllocationInputs


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


def lab_period_of(session: Session, batch_id: str, data_dir: str) -> LabPeriod:
    """The posted period behind ``batch_id`` with its inputs read from ``data_dir``."""
    from ledger.store.posting import manifest_policy_text

    row = read.batches(session).filter(pl.col(S.BATCH_ID) == batch_id).row(0, named=True)
    text = manifest_policy_text(read.batch_manifest(session, batch_id))
    inputs = load_inputs(Path(data_dir), read.carried_in(session, batch_id))
    return LabPeriod(batch_id, row[S.PERIOD], text, row[S.POOL_MINOR], row[S.CURRENCY],
                     inputs.creators.height, inputs)


_lab_period = cached_reader(lab_period_of, resource=True, max_entries=4,
                            spinner="Loading the period's inputs…")


def _inputs_dir(batch_id: str) -> str:
    where = batch_data_dir(batch_id)
    if where.path is None:
        raise ResidualsError(f"The period's inputs are not available: {where.message}.")
    return str(where.path.resolve())


def lab_period(batch_id: str) -> LabPeriod:
    """The posted period behind ``batch_id``, ready to re-allocate (staff only).

    Raises
    ------
    ResidualsError
        When the batch's data directory or its attributions are not available.
    """
    staff()
    return _lab_period(batch_id, _inputs_dir(batch_id))


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
    return reallocate(_lab_period.at(url, batch_id, data_dir), policy_text)


def lab_allocation(batch_id: str, policy_text: str) -> Allocation:
    """:func:`reallocate` for the lab, cached per (database, batch, policy text); staff only."""
    staff()
    return _reallocated(config.db_url(), batch_id, _inputs_dir(batch_id), policy_text)


#: The policies shipped with Residuals (``policies/*.toml``), offered for comparison.
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "policies"
#: Largest policy file the lab accepts as an upload, in bytes.
MAX_UPLOAD_BYTES = 64 * 1024


def shipped_policies(directory: Path = SHIPPED_DIR) -> dict[str, str]:
    """Name -> TOML text of every valid policy file in ``directory`` (sorted by file name)."""
    from ledger.policy import parse_policy

    out: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):  # a handful of files
        text = path.read_text(encoding="utf-8")
        out[parse_policy(text, source=str(path)).name] = text
    return out


def uploaded_policy(file_name: str, data: bytes) -> tuple[str, str]:
    """(name, text) of an uploaded policy file, validated.

    Raises
    ------
    ResidualsError
        A file over :data:`MAX_UPLOAD_BYTES`, not UTF-8, or not a valid policy (the
        policy engine's message, naming the key).
    """
    from ledger.policy import parse_policy

    if len(data) > MAX_UPLOAD_BYTES:
        raise ResidualsError(f"{file_name}: {len(data):,} bytes, expected at most "
                             f"{MAX_UPLOAD_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResidualsError(f"{file_name}: not UTF-8 text (byte {exc.start})") from None
    return parse_policy(text, source=file_name).name, text


def lab_many(batch_id: str, policies: dict[str, str]) -> pl.DataFrame:
    """:func:`dashboard.lab.compare_many` of the period under each named policy text
    (staff only); each allocation is :func:`lab_allocation`'s, cached."""
    from dashboard.lab import compare_many

    staff()
    return compare_many({name: lab_allocation(batch_id, text) for name, text in policies.items()})
