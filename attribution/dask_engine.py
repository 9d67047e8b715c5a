"""Blocked exact top-k search and weighting as one Dask graph.

Rule: the graph is a function of the data and of ``block_size`` only, never of
the scheduler or the number of workers: each catalogue partition is read once
and scored against every generation block (:func:`attribution.search.topk_block`),
the per-partition results of a block are merged in a tree
(:func:`attribution.search.merge_many`, order-independent), and the merged
block is weighted (:func:`attribution.weighting.weigh`) inside the graph. So
the threaded scheduler, a ``LocalCluster`` and an existing cluster compute
identical bits. Every key is ``("<step>-<token>", ...)`` with a token fresh
for each graph, so runs sharing one cluster never exchange results. Where
the graph runs is chosen by :func:`run`:

* ``scheduler=None``: the threaded scheduler in this process;
* ``scheduler="local"``: a ``LocalCluster`` started here (its dashboard
  address is reported). A caller can start it ahead with
  :class:`LocalClusterStart` so that its worker process comes up (and
  imports the engine) while the inputs are still being validated;
* ``scheduler="tcp://host:port"``: an existing cluster (also taken from
  ``DASK_SCHEDULER_ADDRESS`` by the CLI); its workers must be able to read the
  clips file at the same path.
"""

from __future__ import annotations

import contextlib
import operator
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from attribution.candidates import Candidates, written
from attribution.catalogue import Catalogue, Partition, gather, load_partition
from attribution.search import TILE, Partial, merge_many, topk_block
from contract.errors import ParameterError, first_line

#: Generations per block (rows of one GEMM).
BLOCK_SIZE = 2048
#: Partials merged per node of the reduction tree (default of ``fan_in``).
FAN_IN = 8
#: Bound on one block's gathered candidate embeddings, in bytes.
CANDIDATE_BYTES = 1 << 28
#: Seconds to wait for an existing scheduler before giving up.
CONNECT_TIMEOUT = 5.0
#: Modules a LocalCluster's workers import while starting, not in their first task.
WORKER_PRELOAD = ("attribution.dask_engine", "attribution.weighting")
#: Weighting methods that run the compiled solver of :mod:`attribution.nnls`.
NNLS_METHODS = ("nnls",)


@dataclass(frozen=True)
class Result:
    """What the engine returns for all generations, in input order.

    Attributes
    ----------
    sim : float32 (n, k)
    idx : int64 (n, k)
        Catalogue index (``-1`` in padding).
    weight : float64 (n, k)
    rank : int32 (n, k)
        Rank of the clip in its generation's candidate list (1 = most
        similar; 0 in padding).
    deepest : float32 (n,)
        Similarity of each generation's last candidate (rank ``k`` of the
        search; ``-inf`` when it has fewer): how far the candidate list reached.
    confidence : float64 (n,) or None
        :func:`attribution.confidence.confidence`, when candidate embeddings
        were gathered.
    """

    sim: np.ndarray
    idx: np.ndarray
    weight: np.ndarray
    rank: np.ndarray
    deepest: np.ndarray
    confidence: np.ndarray | None = None


def score_partition(part: Partition, dim: int, blocks: list[np.ndarray], k: int,
                    tile: int = TILE) -> list[Partial]:
    """Read one partition and return its top-k against every generation block.

    Each task runs on one core (tasks run in parallel): faiss's OpenMP is set
    to one thread in the process running it (worker processes of a cluster
    are started with ``OMP_NUM_THREADS=1`` by the nanny already).
    """
    import faiss

    faiss.omp_set_num_threads(1)
    emb, keys, groups = load_partition(part, dim)
    return [topk_block(gen, emb, keys, k, groups, tile=tile) for gen in blocks]


def gather_partition(part: Partition, dim: int, merged: list[Partial]
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Second pass: the candidate embeddings of every block that live in this partition."""
    if not merged:
        return []
    sizes = [m.idx.size for m in merged]
    pos, vecs = gather(part, dim, np.concatenate([m.idx.ravel() for m in merged]))
    bounds = np.cumsum([0, *sizes])
    cuts = np.searchsorted(pos, bounds)  # pos ascends: each block's hits are one slice (views)
    return [(pos[lo:hi] - bounds[b], vecs[lo:hi])
            for b, (lo, hi) in enumerate(zip(cuts[:-1], cuts[1:]))]


def weigh_block(merged: Partial, gen: np.ndarray, method: str, params: dict[str, Any],
                gathered: list[tuple[np.ndarray, np.ndarray]] | None, dim: int,
                write: int | None = None) -> Result:
    """Weights of one generation block, and the rows to write.

    ``write=None`` keeps every candidate slot (weights as the method gave
    them); ``write=K`` keeps what :func:`attribution.candidates.written` keeps.
    """
    from attribution import weighting
    from attribution.confidence import confidence

    cand = None
    if gathered is not None:
        cand = np.zeros((merged.n * merged.k, dim), dtype=np.float32)
        for pos, vecs in gathered:
            cand[pos] = vecs
        cand = cand.reshape(merged.n, merged.k, dim)
    top = merged.topk
    cands = Candidates(top.sim, top.valid, gen if gathered is not None else None, cand)
    weight = np.asarray(weighting.weigh(method, cands, **params), dtype=np.float64)
    if write is None:
        pos = np.where(top.valid, np.arange(merged.k), -1)
    else:
        sel = written(weight, top.valid, write)
        pos, weight = sel.pos, sel.weight
    live = pos >= 0
    at = np.maximum(pos, 0)
    sim = np.where(live, np.take_along_axis(top.sim, at, axis=1), np.float32(-np.inf))
    idx = np.where(live, np.take_along_axis(top.idx, at, axis=1), -1)
    conf = confidence(gen, cand, pos, weight) if cand is not None else None
    deepest = np.where(top.valid[:, -1], top.sim[:, -1], np.float32(-np.inf))
    return Result(sim, idx, weight, (pos + 1).astype(np.int32), deepest, conf)


def check_fan_in(fan_in: Any) -> None:
    """Refuse a ``fan_in`` that is not an integer >= 2 (one line naming it)."""
    if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 2:
        raise ParameterError("fan_in", fan_in, "expected an integer >= 2")


def _namer(token: str) -> Callable[..., tuple[Any, ...]]:
    """Key maker: ``("score-<token>", p, g)``, the ``name-token`` keys dask itself uses.

    ``token`` is fresh for every graph, so two runs sharing one scheduler (even
    on inputs of the same shape) never share a key, and none can receive the
    other's results.
    """
    def name(label: str, *index: int) -> tuple[Any, ...]:
        return (f"{label}-{token}", *index)

    return name


def build_graph(cat: Catalogue, gen: np.ndarray, k: int, method: str,
                params: dict[str, Any], *, needs_embeddings: bool,
                block_size: int = BLOCK_SIZE, tile: int = TILE, parallelism: int = 1,
                write: int | None = None, fan_in: int = FAN_IN
                ) -> tuple[dict[Any, Any], list[Any]]:
    """The task graph (a plain dict, dask's low-level spec) and its output keys.

    Generation blocks are fixed by ``block_size``. When there are fewer
    partitions than ``parallelism`` (threads available), the blocks are split
    into groups scored by separate tasks, each reading its partition again; the
    grouping changes which task computes a block, never what it computes. A
    block's partial top-k lists are merged by a tree whose nodes take at most
    ``fan_in`` (>= 2) of them; the merge is order-independent, so ``fan_in``
    changes the tree, never the result.
    """
    check_fan_in(fan_in)
    blocks = [gen[lo:lo + block_size] for lo in range(0, len(gen), block_size)]
    name = _namer(uuid.uuid4().hex)
    dsk: dict[Any, Any] = {}
    for b, blk in enumerate(blocks):
        dsk[name("gen", b)] = blk
    n_parts = len(cat.partitions)
    n_groups = max(1, min(len(blocks), -(-parallelism // n_parts)))
    bounds = np.linspace(0, len(blocks), n_groups + 1).round().astype(int).tolist()
    for p, part in enumerate(cat.partitions):
        dsk[name("part", p)] = part
        for grp in range(n_groups):
            keys = [name("gen", b) for b in range(bounds[grp], bounds[grp + 1])]
            dsk[name("score", p, grp)] = (score_partition, name("part", p), cat.dim, keys, k, tile)
            for j, b in enumerate(range(bounds[grp], bounds[grp + 1])):
                dsk[name("pick", p, b)] = (operator.getitem, name("score", p, grp), j)
    merged_keys = []
    for b in range(len(blocks)):
        level = [name("pick", p, b) for p in range(n_parts)]
        depth = 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), fan_in):
                key = name("merge", b, depth, i // fan_in)
                dsk[key] = (merge_many, level[i:i + fan_in])
                nxt.append(key)
            level, depth = nxt, depth + 1
        merged_keys.append(level[0])
    if needs_embeddings:
        for p in range(n_parts):
            dsk[name("gather", p)] = (gather_partition, name("part", p), cat.dim, merged_keys)
            for b in range(len(blocks)):
                dsk[name("gpick", p, b)] = (operator.getitem, name("gather", p), b)
    out_keys = []
    for b in range(len(blocks)):
        gathered = [name("gpick", p, b) for p in range(n_parts)] if needs_embeddings else None
        dsk[name("weigh", b)] = (weigh_block, merged_keys[b], name("gen", b), method, params,
                             gathered, cat.dim, write)
        out_keys.append(name("weigh", b))
    return dsk, out_keys


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Tasks run in parallel threads: BLAS and faiss get one thread each (no oversubscription)."""
    import faiss
    from threadpoolctl import threadpool_limits

    before = faiss.omp_get_max_threads()
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        faiss.omp_set_num_threads(before)


def _assemble(parts: list[Result]) -> Result:
    conf = None if parts[0].confidence is None else np.concatenate([p.confidence for p in parts])
    return Result(*(np.concatenate([getattr(p, f) for p in parts])
                    for f in ("sim", "idx", "weight", "rank", "deepest")), conf)


ProgressFn = Callable[[int, int], None]


def run(cat: Catalogue, gen: np.ndarray, k: int, method: str, params: dict[str, Any], *,
        needs_embeddings: bool, scheduler: str | None = None, workers: int | None = None,
        block_size: int = BLOCK_SIZE, tile: int = TILE, write: int | None = None,
        fan_in: int = FAN_IN, progress: ProgressFn | None = None,
        announce: Callable[[str], None] | None = None,
        local_cluster: LocalClusterStart | None = None) -> Result:
    """Run the search-and-weigh graph on the chosen scheduler.

    Parameters
    ----------
    cat, gen, k, method, params, needs_embeddings
        The catalogue, unit-norm generation embeddings (n, d), candidates per
        generation (the search depth), weighting method and its parameters,
        and whether it needs candidate embeddings (a second pass over the
        partitions; it also gives each generation its confidence).
    write
        Clips kept per generation after weighting
        (:func:`attribution.candidates.written`); ``None`` keeps all ``k``.
    scheduler
        ``None`` (threads here), ``"sync"`` (one thread, for debugging),
        ``"local"`` (a new LocalCluster) or a ``tcp://`` address.
    workers
        Threads (threaded scheduler, or the LocalCluster's worker process).
    block_size, tile
        Generations per block and clips per GEMM call. The result does not
        depend on them (exact rescoring, order-independent merges); when
        candidate embeddings are needed the block is capped so that they stay
        under :data:`CANDIDATE_BYTES`.
    fan_in
        Partial results merged per node of the reduction tree (>= 2); the
        result does not depend on it either.
    progress
        Called as ``progress(done, total)`` while tasks finish.
    announce
        Called with one-line messages (e.g. the LocalCluster dashboard address).
    local_cluster
        With ``scheduler="local"``: a cluster already being started (its
        owner closes it); otherwise one is started and closed here.
    """
    if needs_embeddings:  # a block's candidate embeddings (b, k, d) stay near 256 MB at most
        block_size = max(1, min(block_size, CANDIDATE_BYTES // (4 * k * cat.dim)))

    def graph(parallelism: int) -> tuple[dict[Any, Any], list[Any]]:
        return build_graph(cat, gen, k, method, params, needs_embeddings=needs_embeddings,
                           block_size=block_size, tile=tile, parallelism=parallelism,
                           write=write, fan_in=fan_in)

    if scheduler in (None, "threads", "sync"):
        n = 1 if scheduler == "sync" else workers or os.cpu_count() or 1
        if method in NNLS_METHODS:  # load the compiled solver while the search runs
            from attribution.nnls import warm_up

            threading.Thread(target=warm_up, name="nnls-warm-up", daemon=True).start()
        return _run_threads(*graph(n), n, progress)
    if scheduler == "local":
        return _run_local(graph, workers, progress, announce, local_cluster)
    return _run_remote(graph, scheduler, progress)


def _run_threads(dsk: dict[Any, Any], keys: list[Any], workers: int,
                 progress: ProgressFn | None) -> Result:
    import dask.threaded
    from dask.callbacks import Callback

    total = sum(1 for v in dsk.values() if isinstance(v, tuple) and v and callable(v[0]))
    done = [0]

    class _Count(Callback):  # type: ignore[misc]
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, id: Any) -> None:
            done[0] += 1
            if progress is not None:
                progress(done[0], total)

    with _one_blas_thread(), _Count():
        parts = dask.threaded.get(dsk, keys, num_workers=workers)
    return _assemble(list(parts))


Graph = Callable[[int], tuple[dict[Any, Any], list[Any]]]


def _run_client(client: Any, graph: Graph, progress: ProgressFn | None) -> Result:
    from distributed import as_completed

    dsk, keys = graph(max(1, sum(client.nthreads().values())))
    futures = client.get(dsk, keys, sync=False)
    total = len(futures)
    for i, _ in enumerate(as_completed(futures), start=1):
        if progress is not None:
            progress(i, total)
    return _assemble(client.gather(futures))


class LocalClusterStart:
    """A ``LocalCluster`` being started in a background thread.

    Layout: one worker process running ``workers`` task threads, each GEMM
    on one core (the nanny starts the process with BLAS pinned to one
    thread). On one machine this beats one single-threaded process per core:
    GEMM and the other numpy kernels release the GIL, and with a single
    process the generation blocks, the per-partition top-k lists and the
    gathered candidate embeddings (about 100 MB at 20,000 generations, k = 10,
    d = 256) never cross a socket or get pickled, and only one interpreter
    starts. Starting the process (interpreter, imports, handshake with the
    scheduler) is begun before the inputs are validated so that it overlaps
    that work; the worker imports the engine (:data:`WORKER_PRELOAD`) while
    starting, not in its first task. Use as a context manager, or call
    :meth:`close`: the cluster is always shut down.

    Parameters
    ----------
    workers : int or None
        Task threads of the worker process (default: the cores).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._cluster: Any = None
        self._error: BaseException | None = None
        self._closer: threading.Thread | None = None
        self._starter = threading.Thread(target=self._start, name="local-cluster-start",
                                         daemon=True)
        self._starter.start()

    def _start(self) -> None:
        try:
            from distributed import LocalCluster

            self._cluster = LocalCluster(n_workers=1, threads_per_worker=self.workers,
                                         processes=True, dashboard_address="127.0.0.1:0",
                                         preload=list(WORKER_PRELOAD))
        except BaseException as exc:  # re-raised in the caller's thread by cluster()
            self._error = exc

    def cluster(self) -> Any:
        """The running cluster (waits for the start; re-raises its error)."""
        self._starter.join()
        if self._error is not None:
            raise self._error
        return self._cluster

    def release(self) -> None:
        """Begin shutting the cluster down in the background (results are in hand)."""
        if self._closer is None:
            self._closer = threading.Thread(target=self._shutdown, name="local-cluster-close",
                                            daemon=True)
            self._closer.start()

    def _shutdown(self) -> None:
        self._starter.join()
        if self._cluster is not None:
            self._cluster.close()

    def close(self) -> None:
        """Shut the cluster down and wait until its processes are gone."""
        self.release()
        assert self._closer is not None
        self._closer.join()

    def __enter__(self) -> LocalClusterStart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_local(graph: Graph, workers: int | None, progress: ProgressFn | None,
               announce: Callable[[str], None] | None,
               start: LocalClusterStart | None = None) -> Result:
    from distributed import Client

    owned = start is None
    start = start if start is not None else LocalClusterStart(workers)
    try:
        cluster = start.cluster()
        with Client(cluster) as client:
            if announce is not None:
                announce(f"LocalCluster (1 worker process, {start.workers} threads); "
                         f"dashboard: {cluster.dashboard_link}")
            result = _run_client(client, graph, progress)
        start.release()  # shut down while the caller builds and writes the output
        return result
    finally:
        if owned:
            start.close()


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` of the running scheduler at ``address`` that has at least
    one worker, closed on exit; a one-line :class:`ParameterError` naming ``scheduler``
    when none answers within :data:`CONNECT_TIMEOUT` or it has no workers."""
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ParameterError("scheduler", address, "cannot reach a Dask scheduler within "
                             f"{CONNECT_TIMEOUT:.0f} s ({first_line(exc, 160)})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise ParameterError("scheduler", address, "the scheduler has no workers "
                                 f"(waited {CONNECT_TIMEOUT:.0f} s)") from None
        yield client


def _run_remote(graph: Graph, address: str,
                progress: ProgressFn | None) -> Result:
    with connect(address) as client:
        return _run_client(client, graph, progress)
