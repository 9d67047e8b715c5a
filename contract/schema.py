"""Column names and types of the Residuals data contract (README, "Data contract").

Rule: code never spells a column name as a string literal outside this module,
and never finds a column by position. Every table is a :class:`Table` with
required columns (checked by every reader) and optional ones (checked when
present).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

# ---- column names ---------------------------------------------------------
CREATOR_ID = "creator_id"
DISPLAY_NAME = "display_name"
OPTED_OUT = "opted_out"
COUNTRY = "country"
JOINED_AT = "joined_at"

CLIP_ID = "clip_id"
EMBEDDING = "embedding"
DURATION_S = "duration_s"
LICENSE = "license"
CAPTION = "caption"
SEGMENT_ID = "segment_id"
T_START = "t_start"
T_END = "t_end"
# Provenance of a clip (optional, checked by contract.io.check_provenance).
SOURCE_TYPE = "source_type"
DATASET_NAME = "dataset_name"
SOURCE_URL = "source_url"
ACQUIRED_AT = "acquired_at"
LANGUAGE = "language"
CONTENT_TYPE = "content_type"
OPT_OUT_SIGNAL = "opt_out_signal"
OPT_OUT_OBSERVED_AT = "opt_out_observed_at"

GENERATION_ID = "generation_id"
ACCOUNT_ID = "account_id"
CREATED_AT = "created_at"
PROMPT = "prompt"

REVENUE_MINOR = "revenue_minor"

RANK = "rank"
SIMILARITY = "similarity"
WEIGHT = "weight"
CONFIDENCE = "confidence"  # attributions: share of the generation its credited clips explain

DUPLICATE_OF = "duplicate_of"

# ---- ledger of record (ledger.store): allocation lines, batches, statements --
SHARE = "share"
EXACT_MINOR = "exact_minor"
ALLOCATED_MINOR = "allocated_minor"
CARRIED_IN_MINOR = "carried_in_minor"
PAID_MINOR = "paid_minor"
CARRIED_OUT_MINOR = "carried_out_minor"
CARRIED_MINOR = "carried_minor"
ELIGIBLE = "eligible"
REASON = "reason"
LINE_COLUMNS = (CREATOR_ID, SHARE, EXACT_MINOR, ALLOCATED_MINOR, CARRIED_IN_MINOR, PAID_MINOR,
                CARRIED_OUT_MINOR, ELIGIBLE, REASON)
"""Columns of an allocation's lines, in order: ``ledger.allocate.Allocation.frame``, the
lines the store checks and posts, and its statements."""
PERIOD = "period"
BATCH_ID = "batch_id"
BATCH_HASH = "batch_hash"
PREV_HASH = "prev_hash"
SEQ = "seq"
REVISION = "revision"
SUPERSEDES_ID = "supersedes_id"
SUPERSEDED = "superseded"
POLICY_NAME = "policy_name"
POLICY_HASH = "policy_hash"
CURRENCY = "currency"
POOL_MINOR = "pool_minor"
WITHHELD_MINOR = "withheld_minor"
CREATORS_PAID = "creators_paid"
POSTED_AT = "posted_at"
AMOUNT_MINOR = "amount_minor"
REFERENCE = "reference"
ACCOUNT_CODE = "account_code"
ACCOUNT_KIND = "account_kind"
BALANCE_MINOR = "balance_minor"
SHARE_OF_CREATOR = "share_of_creator"
EARNED_MINOR_EST = "earned_minor_est"

# ---- policy engine (ledger.components, ledger.fairness): working and report columns
SCORE = "score"
CREDIT = "credit"
MULTIPLIER = "multiplier"
N_CLIPS = "n_clips"
VALUE = "value"
METRIC = "metric"
DELTA_MINOR = "delta_minor"
POPULATION_SHARE = "population_share"
AMOUNT_SHARE = "amount_share"
COMPARE_A = "a"  # ledger.fairness.compare: the value under policy A
COMPARE_B = "b"  # ... and under policy B

# Kinds of column, checked by contract.io. "embedding" accepts a fixed-size
# list or a plain list of floats; "int" accepts any integer width; "str"
# accepts String/Categorical/Enum.
STR, BOOL, INT, FLOAT, DATE, TIMESTAMP, EMB = (
    "str", "bool", "int", "float", "date", "timestamp", "embedding",
)


#: Allowed values of ``source_type`` (the Commission's template's kinds of source).
SOURCE_TYPES = ("licensed", "public_dataset", "crawled", "user", "synthetic", "other")
#: Allowed values of ``opt_out_signal``: a TDMRep ``tdm-reservation``, a robots.txt or
#: ai.txt rule, an opt-out registry entry, or the creator's own flag.
OPT_OUT_SIGNALS = ("tdm-reservation", "robots.txt", "ai.txt", "registry", "creator-flag")
#: The provenance columns of ``clips`` and their kinds (all optional).
PROVENANCE: dict[str, str] = {
    SOURCE_TYPE: STR, DATASET_NAME: STR, SOURCE_URL: STR, ACQUIRED_AT: DATE,
    LANGUAGE: STR, CONTENT_TYPE: STR, OPT_OUT_SIGNAL: STR, OPT_OUT_OBSERVED_AT: DATE,
}


@dataclass(frozen=True)
class Table:
    """A contract table: its file name, key, and column kinds."""

    name: str
    required: dict[str, str]
    optional: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.parquet"

    def kind(self, column: str) -> str | None:
        return self.required.get(column) or self.optional.get(column)

    @property
    def rules(self) -> TableRules:
        """The table's own rules (:data:`TABLE_RULES`, by name: a table re-declared
        with fewer columns keeps them)."""
        return TABLE_RULES.get(self.name, TableRules())


@dataclass(frozen=True)
class TableRules:
    """The checks :func:`contract.io.validate_frame` applies to one table beyond its
    column kinds and key.

    ``segments``: (id column, segment column): when the segment column is present, an
    id has several rows (id plus segment is unique, and every row of an id names the
    same ``creator_id``), and the id alone need not be unique;
    ``non_negative``: integer columns that hold amounts >= 0; ``provenance``: the
    rows carry licence provenance (:func:`contract.io.check_provenance`).
    """

    segments: tuple[str, str] | None = None
    non_negative: tuple[str, ...] = ()
    provenance: bool = False


CREATORS = Table(
    "creators",
    required={CREATOR_ID: STR, DISPLAY_NAME: STR, OPTED_OUT: BOOL},
    optional={COUNTRY: STR, JOINED_AT: DATE},
    key=(CREATOR_ID,),
)
CLIPS = Table(
    "clips",
    required={CLIP_ID: STR, CREATOR_ID: STR, EMBEDDING: EMB},
    optional={
        DURATION_S: FLOAT, LICENSE: STR, CAPTION: STR,
        SEGMENT_ID: STR, T_START: FLOAT, T_END: FLOAT, **PROVENANCE,
    },
    # With segments a clip has several rows; (clip_id, segment_id) is the key.
    key=(CLIP_ID,),
)
GENERATIONS = Table(
    "generations",
    required={GENERATION_ID: STR, EMBEDDING: EMB},
    optional={ACCOUNT_ID: STR, CREATED_AT: TIMESTAMP, PROMPT: STR},
    key=(GENERATION_ID,),
)
ACCOUNTS = Table(
    "accounts",
    required={ACCOUNT_ID: STR, REVENUE_MINOR: INT},
    key=(ACCOUNT_ID,),
)
TABLE_RULES: dict[str, TableRules] = {
    CLIPS.name: TableRules(segments=(CLIP_ID, SEGMENT_ID), provenance=True),
    ACCOUNTS.name: TableRules(non_negative=(REVENUE_MINOR,)),
}
"""Per-table rules, by table name."""
ATTRIBUTIONS = Table(
    "attributions",
    required={
        GENERATION_ID: STR, CLIP_ID: STR, CREATOR_ID: STR,
        RANK: INT, SIMILARITY: FLOAT, WEIGHT: FLOAT,
    },
    optional={SEGMENT_ID: STR, CONFIDENCE: FLOAT},
    key=(GENERATION_ID, CLIP_ID),
)
TRUTH = Table(
    "truth",
    required={GENERATION_ID: STR, CLIP_ID: STR, CREATOR_ID: STR, WEIGHT: FLOAT},
    optional={SEGMENT_ID: STR},  # the source segment, when clips have segments
    key=(GENERATION_ID, CLIP_ID),
)
# Planted near-duplicates in generated samples: each copy and the clip it copies.
DUPLICATES = Table(
    "duplicates",
    required={CLIP_ID: STR, DUPLICATE_OF: STR},
    key=(CLIP_ID,),
)

TABLES: dict[str, Table] = {
    t.name: t for t in (CREATORS, CLIPS, GENERATIONS, ACCOUNTS, ATTRIBUTIONS, TRUTH, DUPLICATES)
}

# Polars dtypes that are written by Residuals itself.
ATTRIBUTIONS_SCHEMA: dict[str, pl.DataType] = {
    GENERATION_ID: pl.String(),
    CLIP_ID: pl.String(),
    CREATOR_ID: pl.String(),
    RANK: pl.Int32(),
    SIMILARITY: pl.Float32(),
    WEIGHT: pl.Float64(),
}
TRUTH_SCHEMA: dict[str, pl.DataType] = {
    GENERATION_ID: pl.String(),
    CLIP_ID: pl.String(),
    CREATOR_ID: pl.String(),
    WEIGHT: pl.Float64(),
}

# ---- limits of text that the ledger stores (one place; contract.io checks them,
# ledger.store.models sizes its columns with them) ------------------------------
MAX_ID_CHARS = 200
"""Longest id (creator, clip, generation, account, segment) in characters."""
MAX_NAME_CHARS = 400
"""Longest ``display_name`` in characters."""
MAX_POLICY_NAME_CHARS = 200
"""Longest policy ``name`` in characters."""
MAX_CLAIM_TEXT_CHARS = 2000
"""Longest free text of a claim (the creator's statement, a rejection reason)."""
MAX_ACTOR_CHARS = 200
"""Longest name of who opened or resolved a claim (a username)."""
TEXT_LIMITS: dict[str, int] = {
    CREATOR_ID: MAX_ID_CHARS, CLIP_ID: MAX_ID_CHARS, GENERATION_ID: MAX_ID_CHARS,
    ACCOUNT_ID: MAX_ID_CHARS, SEGMENT_ID: MAX_ID_CHARS, DISPLAY_NAME: MAX_NAME_CHARS,
}
"""Longest value of each stored text column; such values may not contain NUL either."""
PERIOD_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""A payout period label, matched against the whole string (``re.fullmatch``)."""
