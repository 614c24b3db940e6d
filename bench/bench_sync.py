"""Sync throughput over real HTTP, and the cost of one page upsert.

    .venv/bin/python -m bench.bench_sync [--returns 10000] [--pages 100]

Prints: returns synced per second for a first (full) sync of one sandbox shop served on
127.0.0.1, the same for an incremental re-sync with nothing new, and the median / p90 time of
`return_writes.upsert_page` for 50-return pages (new and updated) on a store that already holds them.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from returns_core import connect
from returns_core.sample_data import example_return  # a realistic TikTok return object
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.sync import sync_account
from returns_core.tiktok.client import TokenSet
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox


def bench_http_sync(n: int, folder: Path) -> None:
    started = time.perf_counter()
    sandbox = Sandbox(seed=7, shops=1, returns=n)
    print(f"sandbox with {n:,} returns built in {time.perf_counter() - started:.1f} s")
    db = Database(folder / "sync.duckdb", key=Fernet.generate_key().decode())
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    with sandbox.serve() as server:
        [account] = connect.add_accounts_with_tokens(db, "Bench", SANDBOX_APP_KEY, SANDBOX_APP_SECRET,
                                                     tokens.access_token, tokens.refresh_token,
                                                     api_base=server.url, auth_base=server.url, tokens=tokens)
        first = sync_account(db, account, trigger="bench")
        assert first.ok, first.error
        print(f"first sync over HTTP: {first.fetched:,} returns, {first.pages} pages in {first.duration_s:.1f} s "
              f"= {first.fetched / first.duration_s:,.0f} returns/s")
        full = sync_account(db, account, full=True, trigger="bench")
        print(f"full re-sync (all unchanged): {full.fetched:,} returns in {full.duration_s:.1f} s "
              f"= {full.fetched / full.duration_s:,.0f} returns/s")
        again = sync_account(db, account, trigger="bench")
        print(f"incremental sync, nothing new: {again.fetched} returns read in {again.duration_s:.2f} s")


def _page(start: int, status: str, update_time: int) -> list[dict]:
    return [example_return(str(4_000_000_000_000 + start + i), status, update_time + i) for i in range(50)]


def bench_upsert(pages: int, folder: Path) -> None:
    db = Database(folder / "upsert.duckdb", key=Fernet.generate_key().decode())
    db.migrate()
    for label, status, base in (("new", "RETURN_OR_REFUND_REQUEST_PENDING", 1_760_000_000),
                                ("updated", "AWAITING_BUYER_SHIP", 1_760_100_000)):
        times = []
        for p in range(pages):
            objects = _page(p * 50, status, base + p * 50)
            started = time.perf_counter()
            upsert_page(db, "bench", objects, synced_at=utcnow(), new_watermark=base + p * 50 + 49)
            times.append(time.perf_counter() - started)
        times.sort()
        median = statistics.median(times) * 1e3
        print(f"upsert_page, 50 {label} returns (store of {pages * 50:,}): median {median:.0f} ms, "
              f"p90 {times[int(len(times) * 0.9)] * 1e3:.0f} ms (each = open file + 1 transaction + close)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=10_000)
    parser.add_argument("--pages", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_upsert(args.pages, Path(tmp))
        bench_http_sync(args.returns, Path(tmp))


if __name__ == "__main__":
    main()
