"""A scikit-learn-style attribution scorer: ``KnnScorer().fit(clips).score(generations)``.

Rule: ``__init__`` only stores its arguments; :meth:`KnnScorer.fit` validates
the clips, plans their partitions and (for the ``concepts`` novelty rule)
fits the catalogue's concept centroids (learned state ends in ``_``);
:meth:`KnnScorer.score` validates the generations against the clips'
dimension, runs the exact top-``depth`` search and the weighting method on the
chosen Dask scheduler (:mod:`attribution.dask_engine`), and returns the
``attributions`` table of the data contract: for each generation (in input
order) the clips it credits (every positive weight, at most ``k``; a
generation without credit keeps its most similar clip with weight 0), by
search rank, with similarity, weight and the generation's confidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from attribution import dask_engine, novelty, weighting
from attribution.candidates import DEFAULT_DEPTH, DEFAULT_K
from attribution.catalogue import PARTITION_ROWS, Catalogue, catalogue_from_frame, open_catalogue
from attribution.search import TILE, normalize
from contract import schema as S
from contract.errors import ParameterError, ResidualsError
from contract.io import embedding_matrix, read_table, validate_frame


def default_method() -> str:
    """The weighting method used when none is named (``weighting.DEFAULT_METHOD``)."""
    return weighting.DEFAULT_METHOD


def method_names() -> list[str]:
    """Names of the available weighting methods."""
    return sorted(weighting.METHODS)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(name, value, "expected an integer >= 1")


class KnnScorer:
    """Exact top-``depth`` cosine attribution with a pluggable weighting method.

    Parameters
    ----------
    k : int
        Clips written per generation at most (>= 1, at most the number of
        clips): every candidate with a positive weight, up to ``k``
        (:func:`attribution.candidates.written`).
    depth : int
        Candidates the weighting sees per generation (>= 1; a catalogue with
        fewer clips gives all of them); never fewer than ``k``.
    method : str or None
        A weighting method of :data:`attribution.weighting.METHODS`; ``None``
        means :func:`default_method`.
    scheduler : str or None
        ``None`` (threads in this process), ``"local"`` (start a
        ``LocalCluster``) or ``"tcp://host:port"`` (an existing cluster).
    workers : int or None
        Threads, here or in the LocalCluster's one worker process (default: the cores).
    block_size : int
        Generations per block: rows of one GEMM and the unit of weighting.
    partition_rows : int
        Target clips per partition (whole Parquet row groups are grouped).
    tile : int
        Clips per GEMM call inside a partition.
    n_concepts : int
        Concept centroids fitted on the catalogue for the ``concepts``
        novelty rule of ``nnls`` (:mod:`attribution.novelty`).
    fan_in : int
        Partial top-k lists merged per node of the reduction tree (>= 2;
        :func:`attribution.dask_engine.build_graph`). Does not change the result.
    **method_params
        Passed to the weighting method (e.g. ``temperature``, ``tau``,
        ``novelty``, ``novelty_ratio``, ``min_similarity``, ``min_weight``,
        ``dedup_threshold``).

    Attributes
    ----------
    catalogue_ : Catalogue
        The validated clip ids and their partitions (after :meth:`fit`).
    method_ : str
        The weighting method in use (after :meth:`fit`).
    depth_ : int
        The search depth in use: ``max(k, min(depth, clips))``.
    centroids_ : float32 (C, d) or None
        The concept centroids (``nnls`` with the ``concepts`` novelty rule).

    Examples
    --------
    Three clips of two creators and two generations, each close to one clip:

    >>> import numpy as np, polars as pl
    >>> from contract import schema as S
    >>> clips = pl.DataFrame({
    ...     S.CLIP_ID: ["c1", "c2", "c3"], S.CREATOR_ID: ["ana", "ana", "bo"],
    ...     S.EMBEDDING: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]},
    ...     schema_overrides={S.EMBEDDING: pl.Array(pl.Float32, 3)})
    >>> gens = pl.DataFrame({
    ...     S.GENERATION_ID: ["g1", "g2"],
    ...     S.EMBEDDING: [[0.1, 0.0, 0.99], [0.99, 0.1, 0.0]]},
    ...     schema_overrides={S.EMBEDDING: pl.Array(pl.Float32, 3)})
    >>> scorer = KnnScorer(k=1, scheduler="sync").fit(clips)
    >>> scorer.method_, scorer.depth_
    ('nnls', 3)
    >>> out = scorer.score(gens)
    >>> out.select(S.GENERATION_ID, S.CLIP_ID, S.CREATOR_ID).rows()
    [('g1', 'c3', 'bo'), ('g2', 'c1', 'ana')]
    >>> KnnScorer(k=0).fit(clips)
    Traceback (most recent call last):
    ...
    contract.errors.ParameterError: k=0: expected an integer >= 1
    """

    def __init__(self, k: int = DEFAULT_K, method: str | None = None, scheduler: str | None = None,
                 workers: int | None = None, block_size: int = dask_engine.BLOCK_SIZE,
                 partition_rows: int = PARTITION_ROWS, tile: int = TILE,
                 depth: int = DEFAULT_DEPTH, n_concepts: int = novelty.DEFAULT_CONCEPTS,
                 fan_in: int = dask_engine.FAN_IN, **method_params: Any) -> None:
        self.k = k
        self.depth = depth
        self.n_concepts = n_concepts
        self.method = method
        self.scheduler = scheduler
        self.workers = workers
        self.block_size = block_size
        self.partition_rows = partition_rows
        self.tile = tile
        self.fan_in = fan_in
        self.method_params = method_params

    def fit(self, clips: pl.DataFrame | str | Path) -> KnnScorer:
        """Validate the clips (a frame, or a Parquet file streamed by row group)."""
        method = self.method if self.method is not None else default_method()
        if method not in method_names():
            raise ParameterError("method", method, "unknown weighting method; expected one "
                                 f"of {', '.join(method_names())}")
        for name in ("k", "depth", "block_size", "partition_rows", "tile", "n_concepts"):
            _positive_int(name, getattr(self, name))
        if self.workers is not None:
            _positive_int("workers", self.workers)
        dask_engine.check_fan_in(self.fan_in)
        if isinstance(clips, pl.DataFrame):
            cat = catalogue_from_frame(clips, partition_rows=self.partition_rows)
        else:
            cat = open_catalogue(clips, partition_rows=self.partition_rows)
        if self.k > cat.n_clips:
            raise ParameterError("k", self.k, f"larger than the catalogue, which holds "
                                 f"{cat.n_clips} clips in {cat.source}")
        self.catalogue_: Catalogue = cat
        self.method_: str = method
        self.depth_: int = max(int(self.k), min(int(self.depth), cat.n_clips))
        self.centroids_: np.ndarray | None = None
        if self._novelty() == "concepts":
            sample = novelty.catalogue_sample(cat)
            self.centroids_ = novelty.fit_centroids(sample, int(self.n_concepts))
        return self

    def _novelty(self) -> str | None:
        """The novelty rule of the method in use (``nnls`` only)."""
        if self.method_ != "nnls":
            return None
        return str(self.method_params.get("novelty", weighting.DEFAULT_NOVELTY))

    def _generations(self, generations: pl.DataFrame | str | Path) -> pl.DataFrame:
        cat = self.catalogue_
        if isinstance(generations, pl.DataFrame):
            return validate_frame(generations, S.GENERATIONS, "generations", dim=cat.dim,
                                  dim_source=cat.source)
        return read_table(generations, S.GENERATIONS, dim=cat.dim, dim_source=cat.source)

    def score(self, generations: pl.DataFrame | str | Path, *,
              progress: dask_engine.ProgressFn | None = None,
              announce: Any = None,
              local_cluster: dask_engine.LocalClusterStart | None = None) -> pl.DataFrame:
        """The attributions table for ``generations`` (a frame or a Parquet file).

        Rows are sorted by generation (input order), then rank; padding slots
        (never present when ``k`` <= clips) are dropped. With
        ``scheduler="local"``, ``local_cluster`` is a cluster the caller
        started ahead (:class:`attribution.dask_engine.LocalClusterStart`)
        and closes; without it one is started and closed here.
        """
        if not hasattr(self, "catalogue_"):
            raise ResidualsError("KnnScorer.score called before fit")
        cat = self.catalogue_
        gens = self._generations(generations)
        file = generations if not isinstance(generations, pl.DataFrame) else "generations"
        gen = normalize(embedding_matrix(gens, str(file), S.GENERATIONS, dim=cat.dim))
        params = dict(self.method_params)
        if self.centroids_ is not None:
            params["centroids"] = self.centroids_
        res = dask_engine.run(
            cat, gen, self.depth_, self.method_, params, needs_embeddings=True,
            scheduler=self.scheduler, workers=self.workers, block_size=self.block_size,
            tile=self.tile, write=int(self.k), fan_in=self.fan_in, progress=progress,
            announce=announce,
            local_cluster=local_cluster,
        )
        self.deepest_ = res.deepest
        return attributions_frame(cat, gens[S.GENERATION_ID], res)


    def inexact_generations(self, frame: pl.DataFrame) -> int:
        """How many generations of the last :meth:`score` could change with a deeper search.

        Only ``knn-shapley`` knows (its values are exactly zero past the last
        candidate above ``tau``, so a full candidate list whose last clip is
        still above ``tau`` may be short); other methods report 0.
        """
        import inspect

        deepest = getattr(self, "deepest_", None)
        if self.method_ != "knn-shapley" or frame.height == 0 or deepest is None \
                or self.depth_ >= self.catalogue_.n_clips:
            return 0
        default = inspect.signature(weighting.knn_shapley).parameters["tau"].default
        tau = float(self.method_params.get("tau", default))
        return int((deepest.astype(np.float64) - tau > 0.0).sum())


def attributions_frame(cat: Catalogue, generation_ids: pl.Series,
                       res: dask_engine.Result) -> pl.DataFrame:
    """Turn the engine's (n, k) arrays into the attributions table (vectorised)."""
    n, k = res.idx.shape
    flat_idx = res.idx.ravel()
    keep = flat_idx >= 0
    where = np.flatnonzero(keep)
    ids = cat.ids[flat_idx[keep]]
    cols: dict[str, Any] = {
        S.GENERATION_ID: generation_ids.cast(pl.String).gather(where // k),
        S.CLIP_ID: ids[S.CLIP_ID],
        S.CREATOR_ID: ids[S.CREATOR_ID],
        S.RANK: pl.Series(S.RANK, res.rank.ravel()[keep].astype(np.int32)),
        S.SIMILARITY: pl.Series(S.SIMILARITY, res.sim.ravel()[keep].astype(np.float32)),
        S.WEIGHT: pl.Series(S.WEIGHT, res.weight.ravel()[keep].astype(np.float64)),
    }
    schema = dict(S.ATTRIBUTIONS_SCHEMA)
    if res.confidence is not None:
        cols[S.CONFIDENCE] = pl.Series(S.CONFIDENCE, res.confidence[where // k],
                                       dtype=pl.Float64)
        schema[S.CONFIDENCE] = pl.Float64()
    frame = pl.DataFrame(cols, schema=schema)
    if cat.segments:
        frame = frame.with_columns(ids[S.SEGMENT_ID].cast(pl.String).alias(S.SEGMENT_ID))
    return frame


#: Rows per row group of written attributions files (fixed: same bytes everywhere).
ROW_GROUP_SIZE = 262_144


def write_attributions(frame: pl.DataFrame, path: str | Path,
                       sources: dict[str, str] | None = None) -> None:
    """Write attributions deterministically and atomically.

    Fixed row-group size, no statistics that depend on write order, no
    timestamps: the same frame always gives the same bytes. ``sources``
    (:func:`contract.io.attribution_sources`) is recorded in the file's metadata;
    readers refuse attributions that do not match their data directory.
    """
    import json

    import pyarrow.parquet as pq

    from contract.io import ATTRIBUTION_SOURCES_KEY, atomic_output

    table = frame.to_arrow()
    if sources is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               ATTRIBUTION_SOURCES_KEY: json.dumps(
                                                   sources, sort_keys=True)})
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE,
                       compression="zstd", use_dictionary=True, write_statistics=True)
