"""Synthetic contract data with planted truth, for demos and attribution-quality tests.

Rule: the same arguments give byte-identical files, and every generation's true
sources are known. The model, in embedding space (all vectors unit-normalised):

- ``T`` shared topic vectors and one style vector per creator;
- a clip is ``normalize(A * topic + B * style(creator) + C * noise)``, its topic
  usually the creator's favourite;
- creator catalogue sizes are heavy-tailed (lognormal weights, every creator
  has at least one clip);
- about 5% of creators opted out; about 5% upload near-duplicates of their own
  clips (several copies of a few originals, each ``normalize(original + tiny
  noise)``), listed in ``duplicates.parquet``;
- about 85% of generations are ``normalize(sum_j w_j * source_j + E * noise)``
  over 1-4 distinct original clips (or, with segments, one segment of each)
  with Dirichlet weights; those sources and weights are ``truth.parquet``;
- the other generations are novel: a blend of several topics and several
  creator styles plus noise, made from no clip and close to none.

Randomness is drawn per fixed block of clips from generators seeded by
``(seed, stream, block)``, so the data do not depend on ``row_group_size``
and clips can be produced and written one block at a time: memory is bounded
by the block size and the number of generations, not by the number of clips.
Nothing loops over rows; the only Python loops run over blocks.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from contract import schema as S
from contract.errors import ResidualsError

# ---- model constants (documented in data/samples/README.md) ------------------
TOPIC_SCALE = 0.4  # A: weight of the clip's topic
STYLE_SCALE = 0.4  # B: weight of the creator's style
CLIP_NOISE = 1.0  # C: what makes each clip itself
GEN_NOISE = 0.15  # E: noise, relative to the unit-normalised mixture of sources
DUPLICATE_NOISE = 0.02  # near-duplicate copy = original + this much noise
SEGMENT_NOISE = 0.15  # segment = clip + this much noise
DIRICHLET_ALPHA = 10.0  # source weights ~ Dirichlet(alpha, ..., alpha)
MAX_SOURCES = 4
SOURCES_P = [0.4, 0.3, 0.2, 0.1]  # P(1, 2, 3, 4 sources)
NOVEL_SHARE = 0.15
OPTED_OUT_SHARE = 0.05
DUPLICATOR_SHARE = 0.05
FAVOURITE_TOPIC_P = 0.7
NOVEL_TOPICS = 4  # a novel generation blends this many topics ...
NOVEL_STYLES = 4  # ... and this many creator styles
NOVEL_NOISE = 0.8
FREE_ACCOUNT_SHARE = 0.08  # accounts that paid nothing this period
BLOCK = 16_384  # clips per random-number block (fixed: part of the output's identity)

# Parquet writer options fixed so that equal data give equal bytes.
_PARQUET = {"compression": "zstd", "compression_level": 3, "data_page_version": "1.0"}

_COUNTRIES = ["US", "GB", "DE", "FR", "JP", "BR", "IN", "NG", "KR", "MX", "CA", "ES"]
_LICENSES = ["platform-standard", "CC-BY-4.0", "CC-BY-NC-4.0", "exclusive"]
_LICENSE_P = [0.55, 0.2, 0.15, 0.1]
_FIRST = ["Ada", "Bo", "Cai", "Dara", "Eli", "Fen", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lia",
          "Mo", "Nia", "Oto", "Pia", "Quin", "Rui", "Sol", "Tao", "Uma", "Vik", "Wen", "Yara"]
_LAST = ["Abe", "Brandt", "Costa", "Diallo", "Eze", "Fujita", "Garcia", "Haas", "Ito", "Jensen",
         "Kim", "Lopez", "Moreau", "Nakamura", "Okafor", "Park", "Quispe", "Rossi", "Silva",
         "Tanaka", "Usman", "Vega", "Weber", "Xu"]
_TOPICS = ["ocean waves", "city traffic", "forest walk", "cooking pasta", "skateboarding",
           "rainy window", "desert dunes", "dog park", "night market", "mountain bike",
           "snowfall", "coffee pour", "street dance", "thunderstorm", "train station",
           "garden bees", "car chase", "candle flame", "surfing", "fireworks",
           "pottery wheel", "crowd cheering", "waterfall", "cat nap", "sunrise timelapse",
           "subway ride", "campfire", "ice skating", "drone flyover", "painting mural",
           "farm tractor", "jazz band"]
_ADJECTIVES = ["slow", "close-up", "handheld", "aerial", "wide", "golden-hour", "moody",
               "bright", "grainy", "cinematic", "quiet", "fast"]
_SHOTS = ["shot", "clip", "sequence", "scene", "take", "loop"]

_JOIN_BASE = date(2019, 1, 1)
_PERIOD_START = datetime(2026, 10, 1)

# Random streams: each kind of draw has its own generator, so adding a column
# to one table never changes another table's values.
_SETUP, _CLIP_EMB, _CLIP_REST, _GENS, _ACCOUNTS, _CREATORS = range(6)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _ids(prefix: str, start: int, stop: int, width: int) -> pl.Series:
    """``prefix`` + zero-padded 1-based numbers ``start+1 .. stop``."""
    return _ids_at(prefix, np.arange(start, stop), width)


def _ids_at(prefix: str, idx: np.ndarray, width: int) -> pl.Series:
    """The ids that :func:`_ids` gives to the 0-based indices ``idx``."""
    nums = pl.Series(np.asarray(idx, dtype=np.int64) + 1).cast(pl.String)
    return (prefix + nums.str.zfill(width)).rename("id")


def _width(n: int) -> int:
    return max(4, len(str(n)))


def _words(vocab: list[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(vocab).gather(pl.Series(idx.astype(np.int64)))


def _embedding_array(mat: np.ndarray) -> pa.FixedSizeListArray:
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), mat.shape[1])


def _to_arrow(df: pl.DataFrame, schema: pa.Schema, emb: np.ndarray | None = None) -> pa.Table:
    """A polars frame (plus an optional embedding matrix) as an Arrow table of ``schema``."""
    cols = {}
    for f in schema:
        if f.name == S.EMBEDDING:
            cols[f.name] = _embedding_array(emb)
        else:
            cols[f.name] = df[f.name].to_arrow().cast(f.type)
    return pa.table(cols, schema=schema)


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    no_stats = [S.EMBEDDING] if S.EMBEDDING in schema.names else []
    return pq.ParquetWriter(
        path, schema, use_dictionary=[n for n in schema.names if n != S.EMBEDDING],
        write_statistics=[n for n in schema.names if n not in no_stats], **_PARQUET,
    )


def _write(table: pa.Table, path: Path, row_group_size: int) -> None:
    with _writer(path, table.schema) as w:
        w.write_table(table, row_group_size=row_group_size)


class _RowGroups:
    """Buffer blocks of rows and write them as row groups of exactly ``size`` rows.

    Keeps the row-group layout a function of ``size`` alone (not of the block
    size), holding at most ``size`` + one block of rows in memory.
    """

    def __init__(self, writer: pq.ParquetWriter, size: int) -> None:
        self.writer, self.size = writer, size
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= self.size:
            full = self.rows - self.rows % self.size
            buf = pa.concat_tables(self.pending)
            self.writer.write_table(buf.slice(0, full), row_group_size=self.size)
            rest = buf.slice(full)
            self.pending, self.rows = ([rest] if rest.num_rows else []), rest.num_rows

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=self.size)
        self.pending, self.rows = [], 0


def _check_args(creators: int, clips: int, generations: int, dim: int, accounts: int,
                row_group_size: int) -> None:
    for name, value, low in (("creators", creators, 1), ("generations", generations, 1),
                             ("dim", dim, 2), ("accounts", accounts, 1),
                             ("row_group_size", row_group_size, 1)):
        if value < low:
            raise ResidualsError(f"{name}={value}: expected >= {low}")
    if clips < creators:
        raise ResidualsError(f"clips={clips}: expected >= `creators` ({creators}): "
                             "every creator has at least one clip")


def _share(n: int, share: float) -> int:
    """round(n * share), at least 1 when n >= 2 so small samples still plant the effect."""
    k = int(round(n * share))
    return max(k, 1) if n >= 2 else k


@dataclass(frozen=True)
class _Plan:
    """Everything decided before any embedding is drawn (per-clip integer arrays)."""

    seed: int
    dim: int
    topics: np.ndarray  # (T, d)
    styles: np.ndarray  # (C, d)
    creator: np.ndarray  # (n,) creator index of each clip
    topic: np.ndarray  # (n,) topic index of each clip
    original: np.ndarray  # (n,) index of the copied clip, -1 for originals
    nseg: np.ndarray  # (n,) segments per clip (1 without segments)
    seg_start: np.ndarray  # (n + 1,) cumulative segment count

    @property
    def n(self) -> int:
        return len(self.creator)

    def raw_block(self, k: int) -> np.ndarray:
        """Original-clip embeddings of block ``k`` (copies still hold their own draw)."""
        a, b = k * BLOCK, min((k + 1) * BLOCK, self.n)
        noise = _rng(self.seed, _CLIP_EMB, k).standard_normal((b - a, self.dim), np.float32)
        mix = (TOPIC_SCALE * self.topics[self.topic[a:b]]
               + STYLE_SCALE * self.styles[self.creator[a:b]]
               + CLIP_NOISE * noise / np.float32(np.sqrt(self.dim)))
        return _normalize(mix)


def _plan(seed: int, creators: int, clips: int, dim: int, segments: bool) -> tuple[_Plan, dict]:
    rng = _rng(seed, _SETUP)
    n_topics = int(np.clip(creators // 10, 4, 32))
    unit = np.float32(1 / np.sqrt(dim))
    topics = _normalize(rng.standard_normal((n_topics, dim), np.float32) * unit)
    styles = _normalize(rng.standard_normal((creators, dim), np.float32) * unit)
    favourite = rng.integers(0, n_topics, creators)
    # Heavy-tailed catalogue sizes, every creator >= 1 clip.
    pull = rng.lognormal(0.0, 1.3, creators)
    sizes = 1 + rng.multinomial(clips - creators, pull / pull.sum())
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    creator = np.repeat(np.arange(creators, dtype=np.int32), sizes)
    pos = np.arange(clips, dtype=np.int64) - np.repeat(starts, sizes)
    topic = np.where(rng.random(clips) < FAVOURITE_TOPIC_P, favourite[creator],
                     rng.integers(0, n_topics, clips)).astype(np.int32)
    # Opted-out creators and near-duplicate uploaders (disjoint draws from a permutation).
    order = rng.permutation(creators)
    opted_out = np.zeros(creators, dtype=bool)
    opted_out[order[:_share(creators, OPTED_OUT_SHARE)]] = True
    eligible = order[sizes[order] >= 2]
    duplicator = np.zeros(creators, dtype=bool)
    duplicator[eligible[:min(len(eligible), _share(creators, DUPLICATOR_SHARE))]] = True
    # A duplicator's last n_copies clips are copies of its first m originals, ~3 copies each.
    n_copies = np.where(duplicator, np.clip(np.round(0.3 * sizes), 2, 12), 0).astype(np.int64)
    n_copies = np.minimum(n_copies, sizes - 1)
    m = np.maximum(1, np.minimum(-(-n_copies // 3), sizes - n_copies))
    first_copy = (sizes - n_copies)[creator]
    is_copy = pos >= first_copy
    original = np.where(is_copy, np.repeat(starts, sizes) + (pos - first_copy) % m[creator], -1)
    nseg = (rng.integers(1, 5, clips) if segments else np.ones(clips)).astype(np.int64)
    seg_start = np.concatenate([[0], np.cumsum(nseg)])
    plan = _Plan(seed, dim, topics, styles, creator, topic, original, nseg, seg_start)
    return plan, {"opted_out": opted_out, "n_topics": n_topics}


def _pick_sources(rng: np.random.Generator, originals: np.ndarray, count: int) -> np.ndarray:
    """``(count, MAX_SOURCES)`` clip indices, distinct within each row.

    Rows with a repeat are redrawn; the loop runs over retries, not rows.
    """
    src = rng.choice(originals, size=(count, MAX_SOURCES))
    k = min(MAX_SOURCES, len(originals))
    while True:
        s = np.sort(src[:, :k], axis=1)
        bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
        if not len(bad):
            break
        src[bad] = rng.choice(originals, size=(len(bad), MAX_SOURCES))
    return src


@dataclass(frozen=True)
class _Args:
    """The arguments of one sample: sizes, seed, layout, and which period it is."""

    creators: int
    clips: int
    generations: int
    dim: int
    seed: int
    accounts: int
    segments: bool
    row_group_size: int
    period: int = 0  # 0: the first period (October 2026); p: p months later


def make_samples(
    out: Path,
    *,
    creators: int,
    clips: int,
    generations: int,
    dim: int,
    seed: int,
    accounts: int | None = None,
    segments: bool = False,
    row_group_size: int = 100_000,
    period: int = 0,
) -> None:
    """Write a synthetic dataset in the data contract, with its planted truth, to ``out``.

    Writes ``creators``, ``clips``, ``generations``, ``accounts`` (the contract
    tables), ``truth`` (generation_id, clip_id, creator_id, weight[, segment_id]:
    each sourced generation's sources, weights summing to 1; novel generations
    have no rows) and ``duplicates`` (clip_id, duplicate_of). Files are staged
    in a temporary directory inside ``out`` and moved into place only when all
    are written, so a failure leaves no partial output.

    Parameters
    ----------
    out
        Output directory (created if missing).
    creators, clips, generations
        Table sizes; ``clips >= creators`` (every creator has a clip). ``clips``
        counts clips, not segment rows.
    dim
        Embedding dimension ``d``.
    seed
        Same seed and arguments give byte-identical files.
    accounts
        Number of paying accounts; default ``max(1, generations // 25)``.
    segments
        Give each clip 1-4 segment rows (``segment_id``, ``t_start``, ``t_end``),
        each segment embedding the clip's plus small noise; a generation's
        source is one segment.
    row_group_size
        Rows per Parquet row group; clips are produced and written in blocks so
        millions of clips fit in bounded memory. Does not change the data.
    period
        Which payout period the generations and accounts' revenue belong to: 0 is
        October 2026, ``p`` is ``p`` months later. Creators, clips and duplicates
        do not depend on it (the same catalogue, byte for byte); generations get
        new draws, the ids ``gen_`` ``p * generations + 1`` onwards and times in
        that month; the same accounts get new activity and revenue.

    Examples
    --------
    >>> import tempfile, polars as pl
    >>> out = Path(tempfile.mkdtemp())
    >>> make_samples(out / "p0", creators=3, clips=9, generations=4, dim=4, seed=1)
    >>> make_samples(out / "p1", creators=3, clips=9, generations=4, dim=4, seed=1, period=1)
    >>> pl.read_parquet(out / "p1" / "generations.parquet")["generation_id"].to_list()
    ['gen_0005', 'gen_0006', 'gen_0007', 'gen_0008']
    """
    accounts = max(1, generations // 25) if accounts is None else accounts
    _check_args(creators, clips, generations, dim, accounts, row_group_size)
    if period < 0:
        raise ResidualsError(f"period={period}: expected >= 0")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ResidualsError(f"out={str(out)!r}: exists and is not a directory")
    with staged(out) as stage:
        _generate(stage, _Args(creators, clips, generations, dim, seed, accounts, segments,
                               row_group_size, period))


_CATALOGUE = (S.CREATORS, S.CLIPS, S.DUPLICATES)
"""The tables every period of a sample shares, byte for byte."""


def next_period(prev: Path, out: Path, *, seed: int, row_group_size: int = 100_000) -> int:
    """Write the period after the sample in ``prev`` to ``out``; returns its period number.

    The sizes, the segments and the period of ``prev`` are read from its files;
    ``seed`` must be the one ``prev`` was made with. ``out`` gets the same creators,
    clips and duplicates (checked byte for byte against ``prev`` before anything
    is moved into place) and the next month's generations, accounts' revenue and
    truth (see ``period`` in :func:`make_samples`).

    Raises
    ------
    ResidualsError
        ``prev`` is not a sample made by :func:`make_samples`, or ``seed`` (or
        ``row_group_size``) does not reproduce its catalogue.
    """
    args = _args_of(Path(prev), seed, row_group_size)
    args = replace(args, period=args.period + 1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ResidualsError(f"out={str(out)!r}: exists and is not a directory")
    if out.resolve() == Path(prev).resolve():
        raise ResidualsError(f"out={str(out)!r}: is `prev` itself; write the next period "
                             "beside it")
    with staged(out) as stage:
        _generate(stage, args)
        for table in _CATALOGUE:
            if (stage / table.filename).read_bytes() != (prev / table.filename).read_bytes():
                raise ResidualsError(
                    f"seed={seed}: does not reproduce {prev / table.filename} (give the seed "
                    "and row group size the sample was made with)")
    return args.period


def _args_of(prev: Path, seed: int, row_group_size: int) -> _Args:
    """The arguments ``prev`` was made with, as far as its files tell (not the seed)."""
    paths = {t.name: prev / t.filename for t in (*_CATALOGUE, S.GENERATIONS, S.ACCOUNTS)}
    for path in paths.values():
        if not path.is_file():
            raise ResidualsError(f"prev={str(prev)!r}: {path.name} not found (expected a "
                                 "sample written by `residuals samples make`)")
    clips = pq.read_table(paths[S.CLIPS.name], columns=[S.CLIP_ID])[S.CLIP_ID]
    dim = pq.read_schema(paths[S.CLIPS.name]).field(S.EMBEDDING).type.list_size
    gens = pl.read_parquet(paths[S.GENERATIONS.name], columns=[S.GENERATION_ID, S.CREATED_AT])
    if gens.height == 0:
        raise ResidualsError(f"prev={str(prev)!r}: generations.parquet has no rows")
    first = gens[S.CREATED_AT].min()
    period = (first.year - _PERIOD_START.year) * 12 + first.month - _PERIOD_START.month
    args = _Args(creators=pq.read_metadata(paths[S.CREATORS.name]).num_rows,
                 clips=pc.count_distinct(clips).as_py(), generations=gens.height,
                 dim=dim, seed=seed, accounts=pq.read_metadata(paths[S.ACCOUNTS.name]).num_rows,
                 segments=S.SEGMENT_ID in pq.read_schema(paths[S.CLIPS.name]).names,
                 row_group_size=row_group_size, period=period)
    if period < 0 or gens[S.GENERATION_ID][0] != _gen_ids(args, np.arange(1))[0]:
        raise ResidualsError(f"prev={str(prev)!r}: its generations are not a period of a "
                             "sample written by `residuals samples make`")
    return args


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary directory inside ``out`` whose files move into ``out`` when the block succeeds.

    On an error nothing is moved and the directory is removed: no partial output.
    """
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".samples.", dir=out))
    try:
        yield stage
        for f in sorted(stage.iterdir()):
            f.replace(out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _generate(stage: Path, args: _Args) -> None:
    """Write every table of one sample into ``stage`` (see :func:`make_samples`)."""
    plan, extra = _plan(args.seed, args.creators, args.clips, args.dim, args.segments)
    creator_ids = _ids("creator_", 0, args.creators, _width(args.creators))
    _write_creators(stage, args, extra["opted_out"], creator_ids)
    grng = _rng(args.seed, _GENS, *_period_stream(args.period))
    sources = _draw_sources(grng, plan, args.generations)
    src_vec = _write_clips(stage, args, plan, extra["n_topics"], creator_ids, sources)
    gen_emb, gen_topic = _generation_embeddings(grng, plan, sources, src_vec, args,
                                                extra["n_topics"])
    arng = _rng(args.seed, _ACCOUNTS, *_period_stream(args.period))
    account_ids = _ids("acct_", 0, args.accounts, _width(args.accounts))
    _write_generations(stage, args, grng, arng, account_ids, gen_emb,
                       _topic_names(extra["n_topics"], gen_topic))
    _write_accounts(stage, args, arng, account_ids)
    _write_truth(stage, args, plan, sources, creator_ids)
    _write_duplicates(stage, args, plan)


def _period_stream(period: int) -> tuple[int, ...]:
    """Extra seed words of a period's draws: none for the first (its bytes stay as they were)."""
    return () if period == 0 else (period,)


def _period_start(period: int) -> tuple[datetime, int]:
    """The first instant of period ``period`` (months after October 2026) and its seconds."""
    month = _PERIOD_START.month - 1 + period
    start = _PERIOD_START.replace(year=_PERIOD_START.year + month // 12, month=month % 12 + 1)
    month += 1
    end = start.replace(year=_PERIOD_START.year + month // 12, month=month % 12 + 1)
    return start, int((end - start).total_seconds())


def _gen_ids(args: _Args, idx: np.ndarray) -> pl.Series:
    """Ids of the period's generations ``idx`` (0-based within the period)."""
    first = args.period * args.generations
    return _ids_at("gen_", first + np.asarray(idx, dtype=np.int64),
                   _width(first + args.generations))


def _write_creators(stage: Path, args: _Args, opted_out: np.ndarray,
                    creator_ids: pl.Series) -> None:
    n = args.creators
    rng = _rng(args.seed, _CREATORS)
    first, last = rng.integers(0, len(_FIRST), n), rng.integers(0, len(_LAST), n)
    creators_df = pl.DataFrame({
        S.CREATOR_ID: creator_ids,
        S.DISPLAY_NAME: _words(_FIRST, first) + " " + _words(_LAST, last),
        S.OPTED_OUT: opted_out,
        S.COUNTRY: _words(_COUNTRIES, rng.integers(0, len(_COUNTRIES), n)),
        S.JOINED_AT: pl.Series(np.datetime64(_JOIN_BASE, "D")
                               + rng.integers(0, 2400, n).astype("timedelta64[D]")),
    })
    _write(_to_arrow(creators_df, _schema(S.CREATORS)), stage / S.CREATORS.filename,
           args.row_group_size)


@dataclass(frozen=True)
class _Sources:
    """Which generations are novel, and each sourced one's clips, weights and segments.

    ``src``, ``w``, ``used`` and ``seg`` are ``(sourced, MAX_SOURCES)``, strongest
    source first; ``used`` marks the real ones.
    """

    novel: np.ndarray  # (generations,) bool
    sourced: np.ndarray  # indices of the sourced generations
    src: np.ndarray
    w: np.ndarray
    used: np.ndarray
    seg: np.ndarray

    @property
    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``src``, ``seg`` and ``used`` as flat arrays."""
        return self.src.reshape(-1), self.seg.reshape(-1), self.used.reshape(-1)


def _draw_sources(grng: np.random.Generator, plan: _Plan, generations: int) -> _Sources:
    """Choose the novel generations and the sources of the others, before clips are drawn."""
    n_novel = int(round(generations * NOVEL_SHARE))
    novel = np.zeros(generations, dtype=bool)
    novel[grng.permutation(generations)[:n_novel]] = True
    sourced = np.flatnonzero(~novel)
    ns = len(sourced)
    originals = np.flatnonzero(plan.original < 0)
    src = _pick_sources(grng, originals, ns)
    k = np.minimum(1 + grng.choice(MAX_SOURCES, ns, p=SOURCES_P), len(originals))
    used = np.arange(MAX_SOURCES)[None, :] < k[:, None]
    w = grng.gamma(DIRICHLET_ALPHA, size=(ns, MAX_SOURCES)) * used
    w /= w.sum(axis=1, keepdims=True)
    by_weight = np.argsort(-w, axis=1, kind="stable")  # strongest source first
    w = np.take_along_axis(w, by_weight, axis=1)
    src = np.take_along_axis(src, by_weight, axis=1)
    used = np.take_along_axis(used, by_weight, axis=1)
    seg = np.floor(grng.random((ns, MAX_SOURCES)) * plan.nseg[src]).astype(np.int64)
    return _Sources(novel, sourced, src, w, used, seg)


def _write_clips(stage: Path, args: _Args, plan: _Plan, n_topics: int, creator_ids: pl.Series,
                 sources: _Sources) -> np.ndarray:
    """Draw and write the clips block by block; return the sources' vectors
    ``(sourced, MAX_SOURCES, d)`` picked up on the way."""
    dim = args.dim
    clip_schema = _schema(S.CLIPS, dim, args.segments)
    src_vec = np.zeros((len(sources.sourced), MAX_SOURCES, dim), dtype=np.float32)
    flat_src, flat_seg, flat_used = sources.flat
    raw_cache: dict[int, np.ndarray] = {}
    with _writer(stage / S.CLIPS.filename, clip_schema) as writer:
        groups = _RowGroups(writer, args.row_group_size)
        for b in range(-(-args.clips // BLOCK)):
            lo, hi = b * BLOCK, min((b + 1) * BLOCK, args.clips)
            raw_cache = {j: v for j, v in raw_cache.items() if j >= b - 1}
            rest = _rng(args.seed, _CLIP_REST, b)
            emb = _clip_embeddings(plan, b, raw_cache, rest)
            row_emb = _segment_embeddings(plan, lo, hi, emb, rest, args.segments)
            here = flat_used & (flat_src >= lo) & (flat_src < hi)
            local_row = plan.seg_start[flat_src[here]] - plan.seg_start[lo] + flat_seg[here]
            src_vec.reshape(-1, dim)[here] = row_emb[local_row]
            meta = _clip_meta(plan, lo, hi, rest, n_topics, creator_ids, args)
            groups.add(_to_arrow(meta, clip_schema, row_emb))
        groups.flush()
    return src_vec


def _clip_embeddings(plan: _Plan, b: int, raw_cache: dict[int, np.ndarray],
                     rest: np.random.Generator) -> np.ndarray:
    """Block ``b``'s clip embeddings, copies replaced by their noisy originals."""
    lo, hi = b * BLOCK, min((b + 1) * BLOCK, plan.n)
    dim = plan.dim
    emb = raw_cache.setdefault(b, plan.raw_block(b)).copy()
    copy_noise = rest.standard_normal((hi - lo, dim), np.float32)
    copies = np.flatnonzero(plan.original[lo:hi] >= 0)
    if len(copies):
        orig = plan.original[lo:hi][copies]
        base = np.empty((len(copies), dim), dtype=np.float32)
        for j in np.unique(orig // BLOCK):  # a few blocks, not rows
            sel = orig // BLOCK == j
            block = raw_cache[j] if j in raw_cache else plan.raw_block(int(j))
            base[sel] = block[orig[sel] - j * BLOCK]
        emb[copies] = _normalize(
            base + DUPLICATE_NOISE * copy_noise[copies] / np.float32(np.sqrt(dim)))
    return emb


def _segment_embeddings(plan: _Plan, lo: int, hi: int, emb: np.ndarray,
                        rest: np.random.Generator, segments: bool) -> np.ndarray:
    """One embedding per written row: the clip's, or each segment's (clip + small noise)."""
    if not segments:
        return emb
    nseg = plan.nseg[lo:hi]
    clip_of_row = np.repeat(np.arange(hi - lo), nseg)
    seg_noise = rest.standard_normal((int(nseg.sum()), plan.dim), np.float32)
    return _normalize(emb[clip_of_row] + SEGMENT_NOISE * seg_noise / np.float32(np.sqrt(plan.dim)))


def _clip_meta(plan: _Plan, lo: int, hi: int, rest: np.random.Generator, n_topics: int,
               creator_ids: pl.Series, args: _Args) -> pl.DataFrame:
    """The non-embedding columns of clips ``lo:hi`` (one row per segment with segments)."""
    n = hi - lo
    duration = np.round(np.clip(rest.lognormal(2.3, 0.7, n), 1.0, 600.0), 2)
    meta = pl.DataFrame({
        S.CLIP_ID: _ids("clip_", lo, hi, _width(args.clips)),
        S.CREATOR_ID: creator_ids.gather(plan.creator[lo:hi].astype(np.int64)),
        S.DURATION_S: duration,
        S.LICENSE: _words(_LICENSES, rest.choice(len(_LICENSES), n, p=_LICENSE_P)),
        S.CAPTION: (_words(_ADJECTIVES, rest.integers(0, len(_ADJECTIVES), n))
                    + " " + _topic_names(n_topics, plan.topic[lo:hi])
                    + " " + _words(_SHOTS, rest.integers(0, len(_SHOTS), n))),
    })
    if not args.segments:
        return meta
    nseg = plan.nseg[lo:hi]
    clip_of_row = np.repeat(np.arange(n), nseg)
    j = np.arange(int(nseg.sum())) - np.repeat(plan.seg_start[lo:hi] - plan.seg_start[lo], nseg)
    share = duration[clip_of_row] / nseg[clip_of_row]
    return meta.gather(pl.Series(clip_of_row.astype(np.int64))).with_columns(
        ("s" + pl.Series(j).cast(pl.String)).alias(S.SEGMENT_ID),
        pl.Series(np.round(j * share, 3)).alias(S.T_START),
        pl.Series(np.round((j + 1) * share, 3)).alias(S.T_END),
    )


def _generation_embeddings(grng: np.random.Generator, plan: _Plan, sources: _Sources,
                           src_vec: np.ndarray, args: _Args,
                           n_topics: int) -> tuple[np.ndarray, np.ndarray]:
    """Each generation's embedding (the planted mixture, or a novel blend) and topic."""
    dim, unit = args.dim, np.float32(1 / np.sqrt(args.dim))
    novel, sourced = sources.novel, sources.sourced
    n_novel, ns = int(novel.sum()), len(sourced)
    gen_emb = np.empty((args.generations, dim), dtype=np.float32)
    mixed = np.einsum("gk,gkd->gd", sources.w.astype(np.float32), src_vec)
    gen_emb[sourced] = _normalize(
        _normalize(mixed) + GEN_NOISE * grng.standard_normal((ns, dim), np.float32) * unit)
    nt = min(NOVEL_TOPICS, n_topics)
    novel_topics = np.argsort(grng.random((n_novel, n_topics)), axis=1)[:, :nt]
    novel_styles = grng.integers(0, args.creators, (n_novel, NOVEL_STYLES))
    blend = (TOPIC_SCALE * plan.topics[novel_topics].mean(axis=1)
             + STYLE_SCALE * plan.styles[novel_styles].mean(axis=1)
             + NOVEL_NOISE * grng.standard_normal((n_novel, dim), np.float32) * unit)
    gen_emb[novel] = _normalize(blend)
    gen_topic = np.empty(args.generations, dtype=np.int64)
    gen_topic[sourced] = plan.topic[sources.src[:, 0]]
    gen_topic[novel] = novel_topics[:, 0]
    return gen_emb, gen_topic


def _write_generations(stage: Path, args: _Args, grng: np.random.Generator,
                       arng: np.random.Generator, account_ids: pl.Series, gen_emb: np.ndarray,
                       topics: pl.Series) -> None:
    n = args.generations
    activity = arng.lognormal(0.0, 1.2, args.accounts)
    account_of = arng.choice(args.accounts, n, p=activity / activity.sum())
    start, seconds_in = _period_start(args.period)
    seconds = np.sort(grng.integers(0, seconds_in, n))
    gens_df = pl.DataFrame({
        S.GENERATION_ID: _gen_ids(args, np.arange(n)),
        S.ACCOUNT_ID: account_ids.gather(pl.Series(account_of.astype(np.int64))),
        S.CREATED_AT: pl.Series(np.datetime64(start, "us")
                                + (seconds * 1_000_000).astype("timedelta64[us]")),
        S.PROMPT: ("a " + _words(_ADJECTIVES, grng.integers(0, len(_ADJECTIVES), n))
                   + " " + topics),
    })
    _write(_to_arrow(gens_df, _schema(S.GENERATIONS, args.dim), gen_emb),
           stage / S.GENERATIONS.filename, args.row_group_size)


def _write_accounts(stage: Path, args: _Args, arng: np.random.Generator,
                    account_ids: pl.Series) -> None:
    """The accounts and what each paid this period (drawn after their activity)."""
    revenue = np.floor(arng.lognormal(np.log(2_000), 1.4, args.accounts)).astype(np.int64)
    revenue[arng.random(args.accounts) < FREE_ACCOUNT_SHARE] = 0
    accounts_df = pl.DataFrame({S.ACCOUNT_ID: account_ids, S.REVENUE_MINOR: revenue})
    _write(_to_arrow(accounts_df, _schema(S.ACCOUNTS)), stage / S.ACCOUNTS.filename,
           args.row_group_size)


def _write_truth(stage: Path, args: _Args, plan: _Plan, sources: _Sources,
                 creator_ids: pl.Series) -> None:
    flat_src, flat_seg, flat_used = sources.flat
    g_of = np.repeat(sources.sourced, MAX_SOURCES)[flat_used]
    t_clip = flat_src[flat_used]
    truth = {
        S.GENERATION_ID: _gen_ids(args, g_of),
        S.CLIP_ID: _ids_at("clip_", t_clip, _width(args.clips)),
        S.CREATOR_ID: creator_ids.gather(pl.Series(plan.creator[t_clip].astype(np.int64))),
        S.WEIGHT: sources.w.reshape(-1)[flat_used].astype(np.float64),
    }
    if args.segments:
        truth[S.SEGMENT_ID] = "s" + pl.Series(flat_seg[flat_used]).cast(pl.String)
    _write(_to_arrow(pl.DataFrame(truth), _schema(S.TRUTH, segments=args.segments)),
           stage / S.TRUTH.filename, args.row_group_size)


def _write_duplicates(stage: Path, args: _Args, plan: _Plan) -> None:
    copy_idx = np.flatnonzero(plan.original >= 0)
    width = _width(args.clips)
    dups = pl.DataFrame({S.CLIP_ID: _ids_at("clip_", copy_idx, width),
                         S.DUPLICATE_OF: _ids_at("clip_", plan.original[copy_idx], width)})
    _write(_to_arrow(dups, _schema(S.DUPLICATES)), stage / S.DUPLICATES.filename,
           args.row_group_size)


def _topic_names(n_topics: int, idx: np.ndarray) -> pl.Series:
    names = [_TOPICS[i] if i < len(_TOPICS) else f"topic {i}" for i in range(n_topics)]
    return _words(names, idx)


_ARROW_KIND = {S.STR: pa.string(), S.BOOL: pa.bool_(), S.INT: pa.int64(), S.FLOAT: pa.float64(),
               S.DATE: pa.date32(), S.TIMESTAMP: pa.timestamp("us")}


def _schema(table: S.Table, dim: int | None = None, segments: bool = False) -> pa.Schema:
    """Arrow schema of a generated table: required columns, then the optional ones we fill."""
    fields = []
    for name, kind in {**table.required, **table.optional}.items():
        if (name in (S.SEGMENT_ID, S.T_START, S.T_END) and not segments) or name in S.PROVENANCE:
            continue
        typ = pa.list_(pa.float32(), dim) if kind == S.EMB else _ARROW_KIND[kind]
        fields.append(pa.field(name, typ, nullable=name not in table.required))
    return pa.schema(fields)
