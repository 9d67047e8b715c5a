"""Policy components: what each creator's claim on the pool is made of.

Rule: a component is a pure function of the prepared period (:class:`Period`)
returning one non-negative score per creator, plus the ``unattributed`` mass:
value that belongs to nobody (a generation nothing was similar to, revenue of
an account whose generations were not attributed). :mod:`ledger.allocate`
normalises every component the same way, once: ``score / (sum of eligible
scores [+ unattributed when the policy withholds it])``, then mixes them by
weight. Components never normalise, never join creators, never round.

Sums are order-independent (:func:`ledger.money.exact_group_sum`), so
shuffling input rows never changes a score by even one ulp.

Speed: the sums over the 10M attribution rows and the clips go through
:class:`KeyIndex`, which finds each row's creator by position in the sorted
creators frame (no string group-by, no join); the scores are then one dense
array aligned with the creators (:attr:`Scores.dense`). Whenever the index
cannot decide a row (a creator id longer than 12 bytes, an id that is not a
creator, a hash collision it cannot resolve), the component falls back to the
group-by, which gives the same numbers bit for bit (tests compare the two).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from contract import schema as S
from contract.errors import ContractError
from ledger.money import exact_group_sum, exact_position_sum, exact_sum

SCORE = S.SCORE
CREDIT = S.CREDIT
MULTIPLIER = S.MULTIPLIER
N_CLIPS = S.N_CLIPS
VALUE = S.VALUE


# ---- finding a creator by position -------------------------------------------

_INLINE = 12  # Arrow string views hold strings of up to 12 bytes inline
_M32 = np.uint64(0xFFFFFFFF)
# An index entry is the key's 16-byte string view with bits 4-31 of the length
# word replaced by 1 + the key's position; the low 4 bits keep the length
# (<= 12). An all-zero entry is an empty slot; 14 in the low bits and no
# position marks a slot shared by several keys at this level, whose rows go on
# to the next level. A row matches an entry when its view equals the entry
# with the position bits cleared (so the row is at most 15, hence 12, bytes).
_KEEP = np.uint64(0xFFFFFFFF0000000F)
_SHARED = 14
_MAX_POSITIONS = (1 << 28) - 1
_SLOTS_PER_KEY = 8  # level 0; later levels, with few keys, get 16
_LEVELS = 16


def _odd_mixers(count: int) -> tuple[int, ...]:
    """Level l buckets by the top bits of ``hash * mixer[l]``: 1, then odd
    splitmix64 outputs (any odd constants would do)."""
    out, x, mask = [1], 0, (1 << 64) - 1
    while len(out) < count:
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append((z ^ (z >> 31)) | 1)
    return tuple(out)


_MIXERS = _odd_mixers(_LEVELS)
_SEED = 0x5EED
_THREADS = min(4, os.cpu_count() or 1)
_ROWS_PER_STEP = 1 << 17


def _views(keys: pl.Series) -> list[np.ndarray] | None:
    """The 16-byte Arrow string views of ``keys`` as (n, 2) uint64 arrays (one
    per chunk, zero-copy), or None for nulls or another layout."""
    if keys.dtype != pl.String or keys.null_count():
        return None
    out = []
    for part in keys.get_chunks():
        chunk = part.to_arrow(compat_level=pl.CompatLevel.newest())
        if isinstance(chunk, pa.ChunkedArray):
            chunk = chunk.combine_chunks()
        if chunk.type != pa.string_view():
            return None
        words = np.frombuffer(chunk.buffers()[1], dtype=np.uint64)
        out.append(words[2 * chunk.offset: 2 * (chunk.offset + len(chunk))].reshape(-1, 2))
    return out


def _bucket(hashes: np.ndarray, level: int, bits: int) -> np.ndarray:
    """Slot of each hash in level ``level``'s table of ``2**bits`` slots."""
    with np.errstate(over="ignore"):
        mixed = hashes * np.uint64(_MIXERS[level]) if level else hashes
    # < 2**63 after the shift: the same value as an intp
    return np.right_shift(mixed, np.uint64(64 - bits)).view(np.intp)


class KeyIndex:
    """Position of each of ``n`` unique string keys of at most 12 bytes.

    Rule: :meth:`positions` maps a column of keys to their positions, or
    returns None when it cannot decide every row, and then the caller takes
    the general path (a group-by). A found position is exact, never a guess:
    a row is matched only when its whole 16-byte Arrow string view equals the
    key's (for strings of at most 12 bytes the view is the length and the
    bytes themselves); the hash only chooses where to look. Keys are spread
    over levels of direct-addressed tables (8 slots per key); keys sharing a
    slot at one level move to the next, smaller table with another mix of the
    hash, so a lookup costs about one random read per row.
    """

    def __init__(self, n: int, tables: list[np.ndarray]) -> None:
        self.n = n
        self._tables = tables  # per level: (2**bits,) complex128 = 16-byte entries

    @classmethod
    def build(cls, keys: pl.Series) -> KeyIndex | None:
        """The index of ``keys`` (unique, non-null), or None when it does not
        apply: a key longer than 12 bytes, a null, a repeated key, or more keys
        than an entry can number."""
        keys = keys.rechunk()
        views = _views(keys)
        n = keys.len()
        if views is None or n > _MAX_POSITIONS:
            return None
        view = views[0] if views else np.zeros((0, 2), dtype=np.uint64)
        lengths = view[:, 0] & _M32
        if n and int(lengths.max()) > _INLINE:
            return None
        entries = view.copy()
        entries[:, 0] = ((view[:, 0] & ~_M32) | lengths
                         | (np.arange(1, n + 1, dtype=np.uint64) << np.uint64(4)))
        packed = entries.view(np.complex128).reshape(-1)  # one 16-byte item per key
        firsts = entries[:, 0]  # unique per key (the position is in it)
        hashes = keys.hash(_SEED).to_numpy()
        pending = np.arange(n, dtype=np.intp)
        tables = []
        for level in range(len(_MIXERS)):
            if not pending.size:
                break
            bits = max(4, (pending.size * (_SLOTS_PER_KEY if not level else 16)
                           - 1).bit_length())
            slot = _bucket(hashes[pending], level, bits)
            table = np.zeros(1 << bits, dtype=np.complex128)
            table_firsts = table.view(np.uint64)[::2]
            # Write every key to its slot; a key that does not read itself back
            # shares the slot with the one that was written last: mark it shared.
            table[slot] = packed[pending]
            table.view(np.uint64).reshape(-1, 2)[
                slot[table_firsts[slot] != firsts[pending]]] = (_SHARED, 0)
            alone = table_firsts[slot] == firsts[pending]
            tables.append(table)
            pending = pending[~alone]
        if pending.size:  # repeated keys (or equal 64-bit hashes): no index
            return None
        return cls(n, tables)

    def positions(self, keys: pl.Series) -> np.ndarray | None:
        """Position of every row of ``keys`` (intp), or None when some row is
        not one of the keys or cannot be decided here."""
        views = _views(keys)
        if views is None:
            return None
        hashes = keys.hash(_SEED).to_numpy()
        out = np.empty(keys.len(), dtype=np.intp)
        steps, start = [], 0
        for view in views:
            for lo in range(0, view.shape[0], _ROWS_PER_STEP):
                part = view[lo:lo + _ROWS_PER_STEP]
                a, b = start + lo, start + lo + part.shape[0]
                steps.append((part, hashes[a:b], out[a:b]))
            start += view.shape[0]

        def run(my_steps: list) -> bool:
            return all(self._find(*step) for step in my_steps)

        if len(steps) >= 8 and _THREADS > 1:
            # numpy releases the GIL in gathers and ufuncs: steps in parallel
            with ThreadPoolExecutor(_THREADS) as pool:
                if not all(pool.map(run, [steps[i::_THREADS] for i in range(_THREADS)])):
                    return None
        elif not run(steps):
            return None
        out -= 1  # -1: a row (an empty string) that matched an empty slot, not a key
        return out if not out.size or int(out.min()) >= 0 else None

    def _find(self, view: np.ndarray, hashes: np.ndarray, out: np.ndarray) -> bool:
        """Fill ``out`` with 1 + the position of each row of ``view`` (0 for a
        row that matched an empty slot, which :meth:`positions` refuses);
        False when a row is not found."""
        rows: np.ndarray | None = None  # None: every row of the step
        for level, table in enumerate(self._tables):
            v = view if rows is None else view[rows]
            bits = table.size.bit_length() - 1
            got = table[_bucket(hashes if rows is None else hashes[rows], level, bits)]
            words = got.view(np.uint64).reshape(-1, 2)
            same = np.equal(np.bitwise_and(words[:, 0], _KEEP), v[:, 0])
            same &= words[:, 1] == v[:, 1]
            # 1 + position, in bits 4-31 of the entry's low 32-bit half
            low = got.view(np.uint32).reshape(-1, 4)[:, 0]
            if rows is None:
                np.right_shift(low, np.uint32(4), out=out, casting="unsafe")
            else:
                out[rows] = low >> np.uint32(4)
            miss = np.flatnonzero(np.logical_not(same, out=same))
            if not miss.size:
                return True
            if not (words[miss, 0] == _SHARED).all():
                return False  # a row that is not a key (or differs in padding)
            rows = miss if rows is None else rows[miss]
        return False


@dataclass(frozen=True)
class Period:
    """The inputs of one period, joined once and shared by every component.

    Attributes
    ----------
    creators
        ``creator_id``, ``opted_out``, ``n_clips`` (distinct clips), one row
        per creator, sorted by ``creator_id``.
    clips
        One row per distinct clip: ``clip_id``, ``creator_id``,
        ``multiplier`` (the licence multiplier) and ``duration_s`` when known.
    credits
        One row per attribution row: ``generation_id``, ``creator_id``,
        ``credit`` = attribution weight x licence multiplier of the clip.
    generation_ids
        The ``generation_id`` column of the generations table (may be empty:
        generations named only in ``credits`` count too).
    generation_accounts
        ``generation_id``, ``account_id`` for generations that name an account.
    accounts
        ``account_id``, ``revenue_minor``.
    uniform_multiplier
        The licence multiplier of every clip when the policy sets none per
        licence (so per-clip sums reduce to counts), else None.
    index
        A :class:`KeyIndex` of ``creators.creator_id`` (positions are rows of
        ``creators``), or None when it does not apply.
    clip_positions
        The position in ``creators`` of each row of ``clips``, when ``index``
        found them all, else None.
    """

    creators: pl.DataFrame
    clips: pl.DataFrame
    credits: pl.DataFrame
    generation_ids: pl.Series
    generation_accounts: pl.DataFrame
    accounts: pl.DataFrame
    uniform_multiplier: float | None = None
    index: KeyIndex | None = None
    clip_positions: np.ndarray | None = None


class Scores:
    """A component's result: ``frame`` (creator_id, score >= 0; one row per
    creator with a score, in no particular order) and the ``unattributed`` mass
    in the same units as the scores.

    ``dense``, when set, holds the same scores as one float64 array aligned
    with the rows of ``Period.creators`` (0.0 for a creator without a score);
    ``frame`` is then built from it on first use.
    """

    __slots__ = ("_frame", "unattributed", "dense", "_ids", "_present", "_positions")

    def __init__(self, frame: pl.DataFrame | None, unattributed: float, *,
                 dense: np.ndarray | None = None, ids: pl.Series | None = None,
                 present: np.ndarray | None = None,
                 positions: np.ndarray | None = None) -> None:
        if frame is None and (dense is None or ids is None):
            raise ValueError("Scores needs a frame, or dense scores and their creator ids")
        self._frame = frame
        self.unattributed = unattributed
        self.dense = dense
        self._ids = ids
        self._present = present  # creators with a score; None: all of them ...
        self._positions = positions  # ... or those at these positions

    @property
    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            frame = pl.DataFrame([self._ids.alias(S.CREATOR_ID),
                                  pl.Series(SCORE, self.dense, dtype=pl.Float64)])
            present = self._present
            if present is None and self._positions is not None:
                present = np.zeros(frame.height, dtype=np.bool_)
                present[self._positions] = True
            if present is not None:
                frame = frame.filter(pl.Series(present))
            self._frame = frame
        return self._frame


def _scores(df: pl.DataFrame, value: str) -> pl.DataFrame:
    return exact_group_sum(df, S.CREATOR_ID, value, SCORE)


def _summed(period: Period, df: pl.DataFrame, value: str, positions: np.ndarray | None,
            unattributed: float = 0.0) -> Scores:
    """Per-creator exact sums of ``df[value]``: by position when the rows'
    creators are known (``positions``), else by the group-by; the same floats."""
    if positions is None:
        return Scores(_scores(df, value), unattributed)
    dense = exact_position_sum(positions, df[value].cast(pl.Float64).to_numpy(),
                               period.creators.height, name=value)
    return Scores(None, unattributed, dense=dense, ids=period.creators[S.CREATOR_ID],
                  positions=positions)


def attribution(period: Period, *, unattributed: str = "redistribute", **_: object) -> Scores:
    """Each generation is worth 1, split over creators by attribution credit.

    A creator's score is the sum of the credits of their clips over all
    generations; a generation whose weights sum to 0 (nothing similar enough)
    is unattributed, as is what licence multipliers below 1 take away. The
    unattributed mass is computed only when ``unattributed == "withhold"``
    (otherwise it is redistributed and its size does not matter).
    """
    credits = period.credits
    positions = (period.index.positions(credits[S.CREATOR_ID])
                 if period.index is not None else None)
    if unattributed != "withhold":  # the mass is only needed when it is withheld
        return _summed(period, credits, CREDIT, positions)
    scores = _summed(period, credits, CREDIT, positions)
    credited = exact_sum(credits[CREDIT]) if credits.height else 0.0
    n_gen = float(pl.concat([period.generation_ids, credits[S.GENERATION_ID]]).n_unique())
    scores.unattributed = _clamp(n_gen - credited, n_gen)
    return scores


def corpus(period: Period, *, by: str = "clips", **_: object) -> Scores:
    """Corpus volume: each clip counts 1 (``by="clips"``) or its duration in
    seconds (``by="duration"``), times its licence multiplier."""
    clips = period.clips
    if by == "duration":
        if S.DURATION_S not in clips.columns:
            raise ContractError(S.CLIPS.filename, "is missing; the policy's corpus.by = "
                                "\"duration\" needs clip durations", column=S.DURATION_S)
        nulls = clips[S.DURATION_S].is_null() | (clips[S.DURATION_S] < 0)
        if nulls.any():
            row = int(nulls.arg_true()[0])
            raise ContractError(S.CLIPS.filename, f"is {clips[S.DURATION_S][row]!r}, expected "
                                "a duration >= 0 (corpus.by = \"duration\")",
                                column=S.DURATION_S, ident=f"clip_id {clips[S.CLIP_ID][row]!r}")
        valued = clips.select(S.CREATOR_ID,
                              (pl.col(S.DURATION_S) * pl.col(MULTIPLIER)).alias(VALUE))
    elif period.uniform_multiplier is not None:  # count x multiplier, already counted
        counts = period.creators[N_CLIPS].to_numpy()
        present = counts > 0
        dense = np.where(present, counts.astype(np.float64) * period.uniform_multiplier, 0.0)
        return Scores(None, 0.0, dense=dense, ids=period.creators[S.CREATOR_ID],
                      present=present)
    else:
        valued = clips.select(S.CREATOR_ID, pl.col(MULTIPLIER).alias(VALUE))
    return _summed(period, valued, VALUE, period.clip_positions)


def user_centric(period: Period, *, unattributed: str = "redistribute", **_: object) -> Scores:
    """Each account's revenue goes to the creators of its own generations.

    An account's ``revenue_minor`` is split over its generations equally, and
    each generation's part over creators by credit (``unattributed =
    "withhold"``: an unattributed generation's part is unattributed); with
    ``"redistribute"`` the account's revenue is split in proportion to the
    credits of all its generations, so only accounts with no attributed
    generation at all leave revenue unattributed. Generations without an
    account do not count here.
    """
    ga = period.generation_accounts
    accounts = period.accounts.select(S.ACCOUNT_ID, pl.col(S.REVENUE_MINOR).cast(pl.Float64))
    revenue = float(period.accounts[S.REVENUE_MINOR].sum() or 0)
    rows = period.credits.join(ga, on=S.GENERATION_ID, how="inner")
    if unattributed == "withhold":
        per_account = ga.group_by(S.ACCOUNT_ID).agg(pl.len().cast(pl.Float64).alias("__n"))
    else:
        per_account = exact_group_sum(rows, S.ACCOUNT_ID, CREDIT, "__n")
    valued = (rows.join(per_account, on=S.ACCOUNT_ID, how="inner")
              .join(accounts, on=S.ACCOUNT_ID, how="inner")
              .filter(pl.col("__n") > 0)
              .select(S.CREATOR_ID,
                      (pl.col(S.REVENUE_MINOR) * pl.col(CREDIT) / pl.col("__n")).alias(VALUE)))
    paid = exact_sum(valued[VALUE]) if valued.height else 0.0
    return Scores(_scores(valued, VALUE), _clamp(revenue - paid, revenue))


def equal(period: Period, **_: object) -> Scores:
    """Equal split: every creator scores 1 (eligibility decides who counts)."""
    return Scores(None, 0.0, dense=np.ones(period.creators.height),
                  ids=period.creators[S.CREATOR_ID])


def _clamp(mass: float, total: float) -> float:
    """Unattributed mass, with float dust (|x| <= 1e-9 of the total) set to 0."""
    return 0.0 if mass <= 1e-9 * max(total, 1.0) else mass


#: Name (as written in a policy's [components]) -> component function.
COMPONENT_FUNCTIONS: dict[str, Callable[..., Scores]] = {
    "attribution": attribution,
    "corpus": corpus,
    "user_centric": user_centric,
    "equal": equal,
}
