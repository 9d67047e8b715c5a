"""Exact money: integer minor units, and the one function that rounds shares.

Rule: an amount of money is an ``int`` of minor units of one currency (ISO
4217 exponent: 1 USD = 100, 1 JPY = 1, 1 BHD = 1000). Real-valued shares
become integers in exactly one place, :func:`largest_remainder`, which maps
shares ``s_i >= 0`` (any positive sum ``S``) and a pool ``P`` to payouts
``p_i`` with ``sum p_i == P`` exactly and ``floor(s_i P / S) <= p_i <=
floor(s_i P / S) + 1``; the leftover units go to the largest fractional parts,
ties broken by a hash of ``(batch_id, creator_id)``, so row order never
changes a payout.

The arithmetic is integer arithmetic, not floating point: each float64 share
is read as the integer ``q_i = floor(s_i * 2**(62 - e))`` where ``2**e`` bounds
the largest share (an exact power-of-two scaling, so every share within 2**10
of the largest is taken bit for bit and smaller ones to 2**-62 of the largest,
far below the rounding error of any float computation that produced them), and
``q_i * P // Q`` and ``q_i * P % Q`` are computed in 128-bit integers. Sums
that must not depend on row order (:func:`exact_sum`, :func:`exact_group_sum`)
use the same fixed-point trick: float addition is not associative, integer
addition is. (:func:`exact_group_sum` uses a grid ``log2(rows)`` bits coarser,
so that its sums fit in 64 bits: 2**-38 of the largest value for 10M rows;
:func:`exact_position_sum` is the same sum for keys already turned into
positions, with ``np.add.at`` on int64 instead of a group-by.)
"""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal, InvalidOperation

import numpy as np
import polars as pl
import pyarrow as pa

from contract import schema as S
from contract.errors import ResidualsError

#: ISO 4217 minor-unit exponents (digits after the decimal point).
CURRENCY_EXPONENTS: dict[str, int] = {
    # 2 decimals
    "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "CNY": 2,
    "HKD": 2, "SGD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "HUF": 2,
    "INR": 2, "BRL": 2, "MXN": 2, "ZAR": 2, "TRY": 2, "ILS": 2, "AED": 2, "SAR": 2,
    "THB": 2, "MYR": 2, "PHP": 2, "TWD": 2, "ARS": 2, "COP": 2, "EGP": 2, "NGN": 2,
    "RON": 2, "UAH": 2,
    # 0 decimals
    "JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "VND": 0, "PYG": 0, "UGX": 0, "XAF": 0,
    "XOF": 0,
    # 3 decimals
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

#: Column added by :func:`largest_remainder`.
AMOUNT_MINOR = S.AMOUNT_MINOR
#: Column read by :func:`largest_remainder`.
SHARE = S.SHARE
#: Column with the exact (real) amount, added by :func:`largest_remainder`.
EXACT_MINOR = S.EXACT_MINOR

INT64_MAX = 2**63 - 1
"""The largest amount or balance the ledger stores (a signed 64-bit integer)."""
INT64_MIN = -(2**63)

_FIXED_BITS = 62
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def exponent(currency: str) -> int:
    """ISO 4217 minor-unit exponent of ``currency`` (``"USD"`` -> 2).

    Raises
    ------
    ResidualsError
        For a code not in :data:`CURRENCY_EXPONENTS`, naming it.
    """
    code = str(currency).strip().upper()
    if code not in CURRENCY_EXPONENTS:
        raise ResidualsError(
            f"unknown currency {currency!r} (expected an ISO 4217 code such as "
            f"USD, EUR, JPY, BHD; known: {', '.join(sorted(CURRENCY_EXPONENTS))})")
    return CURRENCY_EXPONENTS[code]


def to_minor(amount: str | Decimal | int, currency: str, *, what: str = "amount") -> int:
    """Parse a decimal amount into integer minor units, exactly.

    ``"1234.56"`` USD -> ``123456``; ``"5"`` JPY -> ``5``. An amount with more
    decimals than the currency has, a negative amount, or one that is not a
    number raises :class:`ResidualsError` naming ``what`` (e.g. a policy key).
    Floats are refused: ``0.1`` is not a decimal amount.

    >>> to_minor("1234.56", "USD"), to_minor("5", "JPY")
    (123456, 5)
    >>> to_minor("1.001", "USD", what="pool")
    Traceback (most recent call last):
    ...
    contract.errors.ResidualsError: pool: '1.001' has more than 2 decimals, the minor unit of USD
    """
    exp = exponent(currency)
    if isinstance(amount, bool) or isinstance(amount, float):
        raise ResidualsError(f"{what}: {amount!r} must be written as a decimal string, "
                             f"e.g. \"10.00\", not a float")
    try:
        value = Decimal(str(amount).strip().replace(",", "").replace("_", ""))
    except InvalidOperation:
        raise ResidualsError(f"{what}: {amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise ResidualsError(f"{what}: {amount!r} is not a finite amount")
    if value < 0:
        raise ResidualsError(f"{what}: {amount!r} is negative, expected an amount >= 0")
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise ResidualsError(f"{what}: {amount!r} has more than {exp} decimal"
                             f"{'s' if exp != 1 else ''}, the minor unit of {currency}")
    if not INT64_MIN <= scaled <= INT64_MAX:
        raise ResidualsError(f"{what}: {amount!r} is {int(scaled)} minor units, beyond the "
                             f"64-bit limit of the ledger ({INT64_MAX})")
    return int(scaled)


def check_int64(value: int, what: str) -> int:
    """``value`` unchanged if it fits a signed 64-bit integer, else a one-line
    :class:`ResidualsError` naming ``what`` (the ledger stores money in BIGINT).

    >>> check_int64(2**63, "pool_minor")
    Traceback (most recent call last):
    ...
    contract.errors.ResidualsError: pool_minor=9223372036854775808: expected at most 9223372036854775807 minor units in magnitude (the 64-bit limit of the ledger)
    """
    if not INT64_MIN <= value <= INT64_MAX:
        raise ResidualsError(f"{what}={value}: expected at most {INT64_MAX} minor units in "
                             "magnitude (the 64-bit limit of the ledger)")
    return value


def int_sum(values: pl.Series) -> int:
    """The exact sum of an integer column as a Python ``int``, whatever its size.

    ``Series.sum`` wraps round in 64 bits (``[2**63 - 1, 2**63 - 1, 202]`` sums
    to 200); here each value is split into its high and low 32 bits, each half
    summed in int64 (exact for up to 2**31 rows) and the halves recombined.
    """
    if values.len() >= 2**31:
        raise ValueError(f"values: {values.len()} rows, expected fewer than 2**31")
    v = values.drop_nulls().cast(pl.Int64)
    high = int((v // 2**32).sum())  # floor division: exact for negative values too
    low = int((v % 2**32).sum())
    return high * 2**32 + low


def format_minor(amount_minor: int, currency: str) -> str:
    """``123456`` USD -> ``"1,234.56 USD"``; ``5`` JPY -> ``"5 JPY"``."""
    exp = exponent(currency)
    amount_minor = int(amount_minor)
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 10**exp)
    text = f"{whole:,}" + (f".{frac:0{exp}d}" if exp else "")
    return f"{sign}{text} {currency.upper()}"


# ---- order-independent sums ---------------------------------------------------

def _fixed_exponent(values: np.ndarray) -> int:
    """``e - 62`` where ``2**e`` > max |value|: the fixed-point grid exponent."""
    top = float(np.max(np.abs(values))) if values.size else 0.0
    if top == 0.0 or not math.isfinite(top):
        return 0
    return math.frexp(top)[1] - _FIXED_BITS


def _to_fixed(values: np.ndarray, grid: int) -> np.ndarray:
    """``floor(v * 2**-grid)`` as int64, exact (power-of-two scaling)."""
    return np.floor(np.ldexp(values, -grid)).astype(np.int64)


def exact_sum(values: pl.Series | np.ndarray) -> float:
    """Sum of float64 values, independent of their order.

    Values are read on a fixed-point grid of 2**-62 of the largest |value| and
    added as integers, so the result is the same float for every permutation.
    """
    arr = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values,
                     dtype=np.float64)
    if arr.size == 0:
        return 0.0
    _check_finite(arr, "values")
    grid = _fixed_exponent(arr)
    total = int(pl.Series(_to_fixed(arr, grid)).cast(pl.Int128).sum())
    return math.ldexp(float(total), grid)


def exact_group_sum(df: pl.DataFrame, by: str, value: str, out: str) -> pl.DataFrame:
    """``df.group_by(by).agg(sum(value))`` whose float result ignores row order.

    Returns one row per key with column ``out`` (float64), in no particular
    row order (join it to what needs it).
    """
    col = df[value].cast(pl.Float64)
    if not col.is_finite().all():
        raise ResidualsError(f"{value}: found a non-finite value, expected finite numbers")
    grid = _group_grid(float(col.abs().max() or 0.0), df.height)
    up1, up2 = _pow2_factors(-grid)
    down1, down2 = _pow2_factors(grid)
    q = (pl.col(value).cast(pl.Float64) * up1 * up2).floor().cast(pl.Int64)
    return (df.lazy()
            .select(pl.col(by), q.alias("__q"))
            .group_by(by).agg(pl.col("__q").sum())
            .select(pl.col(by), (pl.col("__q").cast(pl.Float64) * down1 * down2)
                    .alias(out))
            .collect())


def _group_grid(top: float, rows: int) -> int:
    """The grid of :func:`exact_group_sum` for ``rows`` values of largest |value| ``top``.

    Every ``|q| <= 2**(62 - b)`` with ``2**b >= rows``, so any group's Int64
    sum fits: the grid is 2**-(62 - b) of the largest |value| (2**-38 for 10M
    rows), still far below float64's own error in the values being summed.
    """
    return _fixed_exponent(np.array([top])) + max(1, rows).bit_length()


def _pow2_factors(e: int) -> tuple[float, float]:
    """Two powers of two whose product is ``2**e``, each a finite float64 even where
    ``2**e`` alone is not (subnormal values need a grid finer than 2**-1023).
    Multiplying by both is exact wherever multiplying by ``2**e`` was."""
    return math.ldexp(1.0, e // 2), math.ldexp(1.0, e - e // 2)


_CHUNK = 1 << 17  # rows per step of the dense sums: the temporaries stay in cache


def exact_position_sum(positions: np.ndarray, values: np.ndarray, n: int, *,
                       name: str = "values") -> np.ndarray:
    """:func:`exact_group_sum` for keys already given as positions ``0..n-1``.

    Returns the float64 sum of ``values`` for each position (0.0 where no row
    has it), bit for bit what :func:`exact_group_sum` returns for the same
    groups: the same grid, the same integer sums (``np.add.at`` on int64,
    exact and so independent of row order), the same conversion back.
    """
    vals = np.asarray(values, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.intp)
    acc = np.zeros(n, dtype=np.int64)
    if not vals.size:
        return acc.astype(np.float64)
    low, high = float(vals.min()), float(vals.max())  # NaN or inf shows in one of them
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ResidualsError(f"{name}: found a non-finite value, expected finite numbers")
    grid = _group_grid(max(-low, high), vals.size)
    up1, up2 = _pow2_factors(-grid)
    down1, down2 = _pow2_factors(grid)
    for start in range(0, vals.size, _CHUNK):
        chunk = vals[start:start + _CHUNK] * up1 * up2
        np.add.at(acc, pos[start:start + _CHUNK], np.floor(chunk, out=chunk).astype(np.int64))
    return acc.astype(np.float64) * down1 * down2


def _check_finite(arr: np.ndarray, what: str) -> None:
    if not np.isfinite(arr).all():
        raise ResidualsError(f"{what}: found a non-finite value, expected finite numbers")


# ---- the tie-break hash -------------------------------------------------------

def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _batch_seed(batch_id: str) -> np.uint64:
    digest = hashlib.blake2b(batch_id.encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def tie_keys(ids: pl.Series, batch_id: str) -> np.ndarray:
    """A stable 64-bit hash of ``(batch_id, id)`` for every id, vectorised.

    Each UTF-8 byte ``b`` at position ``j`` of an id becomes
    ``splitmix64(b | j << 8 | 1 << 40)``; the id's key is ``splitmix64`` of the
    XOR of those, its length and a blake2b-derived seed of ``batch_id``. It
    depends only on the bytes, never on the row or on the library version, and
    :func:`tie_keys_slow` computes the same numbers one id at a time.
    """
    arr = ids.cast(pl.String).to_arrow(compat_level=pl.CompatLevel.oldest())
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    if arr.null_count:
        raise ResidualsError("tie_keys: ids must not be null")
    arr = pa.concat_arrays([arr]) if arr.offset else arr
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[: len(arr) + 1]
    data = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None
            else np.zeros(0, dtype=np.uint8))
    start, end = int(offsets[0]), int(offsets[-1])
    data = data[start:end]
    rel = offsets - start
    lengths = np.diff(rel)
    owner = np.repeat(np.arange(len(arr), dtype=np.int64), lengths)
    pos = np.arange(data.size, dtype=np.int64) - rel[:-1][owner]
    tagged = (data.astype(np.uint64) | (pos.astype(np.uint64) << np.uint64(8))
              | (np.uint64(1) << np.uint64(40)))
    mixed = _splitmix64(tagged)
    acc = np.zeros(len(arr), dtype=np.uint64)
    nonempty = lengths > 0
    if data.size:
        starts = rel[:-1][nonempty]
        acc[nonempty] = np.bitwise_xor.reduceat(mixed, starts)
    with np.errstate(over="ignore"):
        acc ^= _splitmix64(lengths.astype(np.uint64) ^ _batch_seed(batch_id))
    return _splitmix64(acc)


def tie_keys_slow(ids: list[str], batch_id: str) -> list[int]:
    """One-id-at-a-time reference for :func:`tie_keys` (tests compare them)."""
    mask = (1 << 64) - 1

    def mix(x: int) -> int:
        x &= mask
        x ^= x >> 30
        x = (x * 0xBF58476D1CE4E5B9) & mask
        x ^= x >> 27
        x = (x * 0x94D049BB133111EB) & mask
        x ^= x >> 31
        return x

    seed = int.from_bytes(hashlib.blake2b(batch_id.encode("utf-8"), digest_size=8).digest(),
                          "little")
    out = []
    for ident in ids:
        raw = ident.encode("utf-8")
        acc = 0
        for j, b in enumerate(raw):
            acc ^= mix(b | (j << 8) | (1 << 40))
        acc ^= mix(len(raw) ^ seed)
        out.append(mix(acc))
    return out


# ---- the one rounding function ------------------------------------------------

def largest_remainder(shares: pl.DataFrame, pool_minor: int, batch_id: str) -> pl.DataFrame:
    """Turn real shares into integer payouts that sum exactly to the pool.

    Parameters
    ----------
    shares
        Columns ``creator_id`` (unique) and ``share`` (float64, finite, >= 0,
        positive sum unless ``pool_minor`` is 0). Only ratios matter.
    pool_minor
        The integer pool in minor units, >= 0.
    batch_id
        Seeds the tie-break hash, so a tie falls the same way on every run of
        the same batch and row order never matters.

    Returns
    -------
    pl.DataFrame
        The input with ``exact_minor`` (float64, ``share / sum * pool``, for
        display) and ``amount_minor`` (Int64), in the input's row order.
        ``amount_minor`` sums to ``pool_minor`` exactly; each is
        ``floor(exact)`` or ``floor(exact) + 1``, computed in integers (see the
        module docstring); a zero share gets 0.
    """
    pool_minor = int(pool_minor)
    if pool_minor < 0:
        raise ResidualsError(f"pool: {pool_minor} is negative, expected an amount >= 0")
    if pool_minor >= 1 << 63:
        raise ResidualsError(f"pool: {pool_minor} minor units is more than a 64-bit ledger holds")
    s = shares[SHARE].cast(pl.Float64).to_numpy()
    if s.size and (not np.isfinite(s).all() or (s < 0).any()):
        raise ResidualsError("shares: every share must be a finite number >= 0")
    ids = shares[S.CREATOR_ID]
    if ids.n_unique() != len(ids):
        raise ResidualsError("shares: creator_id values must be unique")
    n = s.size
    if n == 0 or not (s > 0).any():
        if pool_minor and n == 0:
            raise ResidualsError(f"cannot allocate a pool of {pool_minor} minor units "
                                 "among zero creators")
        if pool_minor:
            raise ResidualsError(f"cannot allocate a pool of {pool_minor} minor units: "
                                 "every share is zero")
        return shares.with_columns(pl.lit(0.0).alias(EXACT_MINOR),
                                   pl.lit(0, dtype=pl.Int64).alias(AMOUNT_MINOR))
    grid = _fixed_exponent(s)
    q = pl.Series("__q", _to_fixed(s, grid)).cast(pl.Int128)
    total = int(q.sum())
    frame = pl.DataFrame({"__q": q}).with_columns(
        (pl.col("__q") * pl.lit(pool_minor, dtype=pl.Int128)).alias("__num"))
    frame = frame.select(
        (pl.col("__num") // pl.lit(total, dtype=pl.Int128)).cast(pl.Int64).alias("__base"),
        (pl.col("__num") % pl.lit(total, dtype=pl.Int128)).alias("__rem"),
    )
    base = frame["__base"]
    leftover = pool_minor - int(base.sum())
    bump = np.zeros(n, dtype=np.int64)
    if leftover:
        # The leftover units go to the `leftover` largest (remainder, tie key)
        # pairs. Only rows whose remainder equals the cut-off can be decided by
        # the tie key, so only they are hashed.
        rem = frame["__rem"]
        cutoff = rem.top_k(leftover).min()
        above = (rem > cutoff).to_numpy()
        tied = np.flatnonzero((rem == cutoff).to_numpy())
        need = leftover - int(above.sum())
        keys = tie_keys(ids.gather(tied), batch_id)
        winners = tied[np.argsort(keys, kind="stable")[::-1][:need]]
        bump[above] = 1
        bump[winners] = 1
    exact = (base.cast(pl.Float64)
             + frame["__rem"].cast(pl.Float64) / float(total)).to_numpy()
    return shares.with_columns(
        pl.Series(EXACT_MINOR, exact, dtype=pl.Float64),
        (base + pl.Series(bump)).alias(AMOUNT_MINOR).cast(pl.Int64),
    )


def largest_remainder_slow(shares: dict[str, float], pool_minor: int,
                           batch_id: str) -> dict[str, int]:
    """Obviously-correct reference for :func:`largest_remainder`, with Fractions.

    Uses the same fixed-point reading of the floats (so the two agree bit for
    bit) but plain Python ``Fraction`` arithmetic and ``sorted``.
    """
    from fractions import Fraction

    ids = list(shares)
    vals = np.array([shares[i] for i in ids], dtype=np.float64)
    grid = _fixed_exponent(vals)
    q = [int(v) for v in _to_fixed(vals, grid)]
    total = sum(q)
    exact = {i: Fraction(qi * pool_minor, total) for i, qi in zip(ids, q)}
    base = {i: math.floor(x) for i, x in exact.items()}
    left = pool_minor - sum(base.values())
    keys = dict(zip(ids, tie_keys_slow(ids, batch_id)))
    order = sorted(ids, key=lambda i: (exact[i] - base[i], keys[i]), reverse=True)
    for i in order[:left]:
        base[i] += 1
    return base
