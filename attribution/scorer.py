"""A scikit-learn-style attribution scorer: ``KnnScorer(k=15).fit(clips).score(generations)``.

Rule: ``__init__`` only stores its arguments; :meth:`KnnScorer.fit` validates
the clips and plans their partitions (learned state ends in ``_``);
:meth:`KnnScorer.score` validates the generations against the clips'
dimension, runs the exact top-k search and the weighting method on the chosen
Dask scheduler (:mod:`attribution.dask_engine`), and returns the
``attributions`` table of the data contract: for each generation (in input
order) its ``k`` most similar clips by rank, with similarity and weight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from attribution import dask_engine
from attribution.candidates import DEFAULT_K, Candidates
from attribution.catalogue import PARTITION_ROWS, Catalogue, catalogue_from_frame, open_catalogue
from attribution.search import TILE, normalize
from contract import schema as S
from contract.errors import ResidualsError
from contract.io import embedding_matrix, read_table, validate_frame


def default_method() -> str:
    """The weighting method used when none is named (``weighting.DEFAULT_METHOD``)."""
    from attribution import weighting

    return str(getattr(weighting, "DEFAULT_METHOD", "softmax"))


def method_names() -> list[str]:
    """Names of the available weighting methods."""
    from attribution import weighting

    return sorted(weighting.METHODS)


def _needs_embeddings(method: str, params: dict[str, Any]) -> bool:
    from attribution import weighting

    fn = getattr(weighting, "needs_embeddings", None)
    if fn is not None:
        return bool(fn(method, params.get("dedup_threshold")))
    return method == "nnls" or params.get("dedup_threshold") is not None


class KnnScorer:
    """Exact top-k cosine attribution with a pluggable weighting method.

    Parameters
    ----------
    k : int
        Clips kept per generation (>= 1, at most the number of clips).
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
    **method_params
        Passed to the weighting method (e.g. ``temperature``, ``tau``,
        ``dedup_threshold``).

    Attributes
    ----------
    catalogue_ : Catalogue
        The validated clip ids and their partitions (after :meth:`fit`).
    method_ : str
        The weighting method in use (after :meth:`fit`).
    """

    def __init__(self, k: int = DEFAULT_K, method: str | None = None, scheduler: str | None = None,
                 workers: int | None = None, block_size: int = dask_engine.BLOCK_SIZE,
                 partition_rows: int = PARTITION_ROWS, tile: int = TILE,
                 **method_params: Any) -> None:
        self.k = k
        self.method = method
        self.scheduler = scheduler
        self.workers = workers
        self.block_size = block_size
        self.partition_rows = partition_rows
        self.tile = tile
        self.method_params = method_params

    def fit(self, clips: pl.DataFrame | str | Path) -> KnnScorer:
        """Validate the clips (a frame, or a Parquet file streamed by row group)."""
        method = self.method if self.method is not None else default_method()
        if method not in method_names():
            raise ResidualsError(f"--method {method!r}: unknown weighting method; expected one "
                                 f"of {', '.join(method_names())}")
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ResidualsError(f"--k {self.k}: expected an integer >= 1")
        if self.block_size < 1 or self.partition_rows < 1 or self.tile < 1:
            raise ResidualsError("block_size, partition_rows and tile must be >= 1")
        if self.workers is not None and self.workers < 1:
            raise ResidualsError(f"--workers {self.workers}: expected an integer >= 1")
        if isinstance(clips, pl.DataFrame):
            cat = catalogue_from_frame(clips, partition_rows=self.partition_rows)
        else:
            cat = open_catalogue(clips, partition_rows=self.partition_rows)
        if self.k > cat.n_clips:
            raise ResidualsError(f"--k {self.k}: larger than the catalogue, which holds "
                                 f"{cat.n_clips} clips in {cat.source}")
        self.catalogue_: Catalogue = cat
        self.method_: str = method
        return self

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
        res = dask_engine.run(
            cat, gen, int(self.k), self.method_, params,
            needs_embeddings=_needs_embeddings(self.method_, params),
            scheduler=self.scheduler, workers=self.workers, block_size=self.block_size,
            tile=self.tile, progress=progress, announce=announce, local_cluster=local_cluster,
        )
        return attributions_frame(cat, gens[S.GENERATION_ID], res)


    def inexact_generations(self, frame: pl.DataFrame) -> int:
        """How many generations' weights could change with a longer candidate list.

        Only ``knn-shapley`` knows (its values are exactly zero past the last
        candidate above ``tau``, so a list ending above ``tau`` may be short);
        other methods report 0.
        """
        from attribution import weighting

        check = getattr(weighting, "knn_shapley_exact", None)
        if self.method_ != "knn-shapley" or check is None or frame.height == 0:
            return 0
        k = int(self.k)
        sim = frame[S.SIMILARITY].to_numpy().reshape(-1, k)
        tau = {"tau": self.method_params["tau"]} if "tau" in self.method_params else {}
        exact = check(Candidates(sim, np.ones_like(sim, dtype=bool)),
                      catalogue_size=self.catalogue_.n_clips, **tau)
        return int((~exact).sum())


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
        S.RANK: pl.Series(S.RANK, (where % k + 1).astype(np.int32)),
        S.SIMILARITY: pl.Series(S.SIMILARITY, res.sim.ravel()[keep].astype(np.float32)),
        S.WEIGHT: pl.Series(S.WEIGHT, res.weight.ravel()[keep].astype(np.float64)),
    }
    frame = pl.DataFrame(cols, schema=S.ATTRIBUTIONS_SCHEMA)
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
