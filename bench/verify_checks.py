"""``ledger verify``: the cost of the checks that explain every transaction.

Posts one batch of N creators into a fresh SQLite ledger, then times, in the
same process: the checks verify had before transactions were explained by the
manifests (transactions, balances, chain, entries vs statements, reversals),
all checks each reading the statements itself, and :func:`verify` (which reads
the statements once). Prints seconds and ratios against the first; nothing is
asserted.

    .venv/bin/python bench/verify_checks.py [--creators 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creators", type=int, default=100_000)
    n = parser.parse_args().creators

    from ledger.store import open_store, read_session, write_session
    from ledger.store import verify as V
    from ledger.store.posting import post_batch
    from tests.ledger.store.kit import even_allocator, request

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{tmp}/ledger.db")
        with write_session(engine) as s, s.begin():
            post_batch(s, request(n, pool=n * 100), even_allocator(n, n * 100))
        before = [V.check_transactions, V.check_balances, V.check_chain,
                  V.check_entries_match_statements, V.check_reversals]
        runs = {
            "checks before (baseline)": lambda s: [v for c in before for v in c(s)],
            "all checks, each reading statements": lambda s: [v for c in V.CHECKS for v in c(s)],
            "verify() (statements read once)": lambda s: V.verify(s).violations,
        }
        times = {}
        for label, run in runs.items():
            best = float("inf")
            for _ in range(2):
                with read_session(engine) as s:
                    t0 = time.perf_counter()
                    bad = run(s)
                    best = min(best, time.perf_counter() - t0)
                assert not bad, bad
            times[label] = best
        engine.dispose()
    base = times["checks before (baseline)"]
    print(f"| check set | seconds ({n:,} creators, SQLite) | ratio |")
    print("|---|---:|---:|")
    for label, sec in times.items():
        print(f"| {label} | {sec:.2f} | {sec / base:.2f}x |")


if __name__ == "__main__":
    main()
