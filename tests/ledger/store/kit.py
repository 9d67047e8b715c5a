"""Small builders for ledger-store tests: requests and a plain allocator.

The allocator here is deliberately simple and independent of the policy
engine: fixed allocated amounts per creator, then a minimum payout with carry
forward (paid = allocated + carried if that reaches the minimum, else 0).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from contract import schema as S
from ledger.store.posting import BatchLines, BatchRequest


def request(
    creators: list[str] | int,
    *,
    period: str = "2026-01",
    pool: int = 10_000,
    currency: str = "USD",
    tag: str = "inputs-a",
    clips: bool = True,
) -> BatchRequest:
    """A batch request over ``creators`` (ids, or a count of ``c000000``-style ids)."""
    if isinstance(creators, int):
        ids = pl.Series(S.CREATOR_ID, range(creators)).cast(pl.String).str.zfill(7)
        ids = ("c" + ids).alias(S.CREATOR_ID)
    else:
        ids = pl.Series(S.CREATOR_ID, creators, dtype=pl.String)
    frame = pl.DataFrame({S.CREATOR_ID: ids}).with_columns(
        ("Creator " + pl.col(S.CREATOR_ID)).alias(S.DISPLAY_NAME))
    credits = None
    if clips:
        credits = pl.concat([
            frame.select(S.CREATOR_ID, (pl.col(S.CREATOR_ID) + suffix).alias(S.CLIP_ID),
                         pl.lit(w).alias(S.WEIGHT))
            for suffix, w in (("-clip1", 0.75), ("-clip2", 0.25))
        ])
    return BatchRequest(
        period=period, currency=currency, pool_minor=pool, policy_name="test",
        policy_text=f"# test policy\nmin_payout = 1\n", input_hashes={"inputs": tag},
        creators=frame, clip_credits=credits,
    )


def split(creators: list[str], pool: int, withheld: int = 0) -> dict[str, int]:
    """Split ``pool - withheld`` as evenly as integers allow (the first get the remainder)."""
    n = len(creators)
    base, extra = divmod(pool - withheld, n)
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(creators)}


def allocator(amounts: Mapping[str, int] | pl.DataFrame, *, withheld: int = 0,
              min_payout: int = 1):  # type: ignore[no-untyped-def]
    """An allocator paying fixed ``amounts`` with a minimum payout and carry-forward."""
    if isinstance(amounts, pl.DataFrame):
        alloc = amounts
    else:
        alloc = pl.DataFrame({S.CREATOR_ID: list(amounts), S.ALLOCATED_MINOR: list(amounts.values())},
                             schema={S.CREATOR_ID: pl.String, S.ALLOCATED_MINOR: pl.Int64})

    def run(carried: pl.DataFrame, pool_minor: int | None = None) -> BatchLines:
        df = alloc.join(carried.rename({S.CARRIED_MINOR: S.CARRIED_IN_MINOR}), on=S.CREATOR_ID,
                        how="full", coalesce=True).with_columns(
            pl.col(S.ALLOCATED_MINOR, S.CARRIED_IN_MINOR).fill_null(0))
        total = pl.col(S.ALLOCATED_MINOR) + pl.col(S.CARRIED_IN_MINOR)
        pool = max(int(alloc[S.ALLOCATED_MINOR].sum()), 1)
        df = df.with_columns(
            (pl.col(S.ALLOCATED_MINOR) / pool).alias(S.SHARE),
            pl.col(S.ALLOCATED_MINOR).cast(pl.Float64).alias(S.EXACT_MINOR),
            pl.when(total >= min_payout).then(total).otherwise(0).alias(S.PAID_MINOR),
            pl.lit(True).alias(S.ELIGIBLE),
            pl.lit(None, pl.String).alias(S.REASON),
        ).with_columns((total - pl.col(S.PAID_MINOR)).alias(S.CARRIED_OUT_MINOR))
        return BatchLines(df, withheld)

    return run


def even_allocator(n: int, pool: int, *, min_payout: int = 1):  # type: ignore[no-untyped-def]
    """``allocator`` over ``n`` generated creators with a vectorised even split."""
    req = request(n, clips=False)
    ids = req.creators[S.CREATOR_ID]
    base, extra = divmod(pool, n)
    amounts = pl.DataFrame({S.CREATOR_ID: ids}).with_row_index("i").select(
        S.CREATOR_ID, (pl.lit(base) + (pl.col("i") < extra).cast(pl.Int64)).alias(
            S.ALLOCATED_MINOR))
    return allocator(amounts, min_payout=min_payout)


def write_dataset(root, n_creators: int, *, seed: int = 0, opted_out_every: int = 0,
                  unknown_creator: bool = False, creator_ids: list[str] | None = None,
                  revenues: list[int] | None = None,
                  confidence: bool = False) -> None:  # type: ignore[no-untyped-def]
    """A contract data directory with ``attributions.parquet``, built without the
    attribution engine: creator i owns clip i; generation g credits clips g and
    g+1 (mod n) with weights 0.75 and 0.25, so every creator earns.

    ``creator_ids`` replaces the generated ids (``n_creators`` of them);
    ``revenues`` gives one account per value; ``confidence`` adds the optional
    column: generation g has confidence 0.3 (g even) or 1.0 (g odd), so clip k earns a
    weighted mean confidence of 0.475 (k even) or 0.825 (k odd)."""
    import numpy as np

    from pathlib import Path

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_creators
    idx = pl.Series("i", range(n), dtype=pl.Int64)
    ids = ("c" + idx.cast(pl.String).str.zfill(7))
    if creator_ids is not None:
        ids = pl.Series(S.CREATOR_ID, creator_ids, dtype=pl.String)
    clips = ("k" + idx.cast(pl.String).str.zfill(7))
    gens = ("g" + idx.cast(pl.String).str.zfill(7))
    emb = lambda: pl.Series(rng.normal(size=(n, 4)).astype("float32") + 0.1)  # noqa: E731
    opted = ((idx % opted_out_every) == 0) if opted_out_every else pl.repeat(False, n, eager=True)
    pl.DataFrame({S.CREATOR_ID: ids, S.DISPLAY_NAME: "Creator " + ids, S.OPTED_OUT: opted}
                 ).write_parquet(root / "creators.parquet")
    pl.DataFrame({S.CLIP_ID: clips, S.CREATOR_ID: ids, S.EMBEDDING: emb()}).write_parquet(
        root / "clips.parquet")
    pl.DataFrame({S.GENERATION_ID: gens, S.EMBEDDING: emb()}).write_parquet(
        root / "generations.parquet")
    revenues = [10_000_000] if revenues is None else revenues
    pl.DataFrame({S.ACCOUNT_ID: [f"acct{i + 1}" for i in range(len(revenues))],
                  S.REVENUE_MINOR: pl.Series(revenues, dtype=pl.Int64)}).write_parquet(
        root / "accounts.parquet")
    nxt = (idx + 1) % n
    attr_creator = ids.gather(nxt)
    if unknown_creator:
        attr_creator = attr_creator.scatter(0, "nobody")
    attr = pl.concat([
        pl.DataFrame({S.GENERATION_ID: gens, S.CLIP_ID: clips, S.CREATOR_ID: ids,
                      S.RANK: pl.repeat(1, n, dtype=pl.Int32, eager=True),
                      S.SIMILARITY: pl.repeat(0.9, n, dtype=pl.Float32, eager=True),
                      S.WEIGHT: pl.repeat(0.75, n, eager=True)}),
        pl.DataFrame({S.GENERATION_ID: gens, S.CLIP_ID: clips.gather(nxt),
                      S.CREATOR_ID: attr_creator,
                      S.RANK: pl.repeat(2, n, dtype=pl.Int32, eager=True),
                      S.SIMILARITY: pl.repeat(0.8, n, dtype=pl.Float32, eager=True),
                      S.WEIGHT: pl.repeat(0.25, n, eager=True)}),
    ])
    if confidence:
        gen_conf = pl.DataFrame({S.GENERATION_ID: gens,
                                 S.CONFIDENCE: 0.3 + 0.7 * (idx % 2).cast(pl.Float64)})
        attr = attr.join(gen_conf, on=S.GENERATION_ID, how="left")
    from attribution.scorer import write_attributions
    from contract.io import attribution_sources

    write_attributions(attr, root / "attributions.parquet", attribution_sources(
        root / "clips.parquet", root / "generations.parquet"))
