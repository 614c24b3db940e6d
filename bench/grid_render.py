"""How long the Returns grid page takes to render (AppTest, no browser) over N synthetic returns.

    .venv/bin/python bench/grid_render.py [--returns 100000] [--repeat 5]

The returns are `sample_data.synthetic_returns`, written through the sync's own page write.

Prints: the insert time; the first render of a new session (cold caches, includes imports);
a rerun with warm caches; and a render after a filter change (cache miss: count, status counts
and one page run in DuckDB). Each figure is the median of --repeat runs (the cold one runs once).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from returns_core import sample_data as sample  # noqa: E402
from returns_core.store.db import Database  # noqa: E402


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="grid-bench-")
    path = Path(folder) / "bench.duckdb"
    os.environ.update(RETURNS_DB=str(path), RETURNS_DEMO="0")
    os.environ.pop("RETURNS_DESK_KEY", None)
    db = Database(path)
    db.migrate()
    sample.add_account(db, "7000000001", "Bench Shop A")
    sample.add_account(db, "7000000002", "Bench Shop B")
    insert_s = timed(lambda: sample.write_shop_returns(
        db, sample.synthetic_returns(args.returns, ("7000000001", "7000000002"))))
    db.checkpoint()

    from streamlit.testing.v1 import AppTest

    def new_session() -> AppTest:
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)

    at = new_session()
    cold = timed(at.run)
    assert not at.exception, at.exception
    rows = len(at.dataframe[0].value)
    second = new_session()
    fresh = timed(second.run)  # a second visitor: modules imported, but every cache entry is new
    warm = statistics.median(timed(at.run) for _ in range(args.repeat))
    reasons = at.multiselect(key="reason").options

    def change_filter(i: int) -> float:
        at.multiselect(key="reason").set_value([reasons[i % len(reasons)]])
        return timed(at.run)

    changed = statistics.median(change_filter(i) for i in range(args.repeat))

    def search(i: int) -> float:
        at.text_input(key="q").input(f"SKU-{i}")
        return timed(at.run)

    searched = statistics.median(search(i) for i in range(args.repeat))
    assert not at.exception, at.exception
    print(f"returns: {args.returns:,} (insert {insert_s:.2f} s); grid rows shown: {rows}")
    print(f"first render in a new process (cold: imports and caches): {cold:.3f} s")
    print(f"first render of another new session (warm process): {fresh:.3f} s")
    print(f"rerun, warm caches (median of {args.repeat}): {warm:.3f} s")
    print(f"after a filter change, SQL runs (median of {args.repeat}): {changed:.3f} s")
    print(f"after a search (median of {args.repeat}): {searched:.3f} s")


if __name__ == "__main__":
    main()
