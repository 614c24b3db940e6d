"""The scale bench in miniature (the real run is `bench/scale.py`, not part of CI): the store builder
makes realistic stores through the sync's own upsert, and `scale.py --smoke` measures and prints
every figure of its table. Both run as the scripts they are: tests never import bench code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from returns_core import domain
from returns_core.store.db import Database
from tests.conftest import ROOT
from tests.reliability import duplicates

pytestmark = pytest.mark.slow


ACCOUNT_NAME = "Bench"  # what bench/build_store.py names the first shop's account


def build(size: int, out, *options: str, label: str = "smoke") -> dict:
    """Run bench/build_store.py for one store of `size` returns in `out`; what it reports about the store."""
    proc = subprocess.run([sys.executable, "bench/build_store.py", "--sizes", str(size), "--label", label,
                           "--out", str(out), *options], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / f"returns-{label}.json").read_text())


def test_a_big_store_is_the_smaller_one_copied_with_new_ids_in_update_time_order(tmp_path):
    build(1000, tmp_path)
    info = build(5000, tmp_path, "--copy-of", "smoke", label="copied")
    assert info["rows"] == {"returns": 5000, "return_line_items": info["rows"]["return_line_items"],
                            "history": 5000}
    assert "copied 5 times by SQL" in info["via"]
    db = Database(info["path"])
    assert all(v == 0 for v in duplicates(db).values())
    with db.reader() as con:
        ids = con.execute("SELECT count(DISTINCT return_id), count(DISTINCT order_id) FROM returns").fetchone()
        # the payload is the return's own: its ids were changed with the row's
        strangers = con.execute("SELECT count(*) FROM returns WHERE json_extract_string(payload, '$.return_id') "
                                "<> return_id OR json_extract_string(payload, '$.order_id') <> order_id").fetchone()[0]
        orphans = con.execute("SELECT count(*) FROM return_line_items i ANTI JOIN returns r "
                              "USING (shop_id, return_id)").fetchone()[0]
        steps_back = con.execute("SELECT count(*) FROM (SELECT updated_at, lag(updated_at) OVER (ORDER BY rowid) "
                                 "AS before FROM returns) WHERE updated_at < before").fetchone()[0]
        accounts = con.execute("SELECT count(*) FROM accounts").fetchone()[0]
        # the copies went around the sync's write path: Reason Analytics' daily rows count them all the same
        daily = con.execute("SELECT sum(returns) FROM daily_returns").fetchone()[0]
    assert ids == (5000, 5000) and strangers == 0 and orphans == 0 and accounts == 2
    assert steps_back <= 50, steps_back  # written in update_time order, as a sync's store is
    assert daily == 5000


def test_build_store_makes_a_realistic_store_through_the_sync_upsert(tmp_path):
    info = build(3000, tmp_path)
    assert info["rows"]["returns"] == 3000 and info["rows"]["history"] == 3000  # one 'created' row each
    assert info["rows"]["return_line_items"] > 3000
    assert info["via"].startswith("return_writes.upsert_page")
    db = Database(info["path"])  # reads only: no secret is decrypted, so no key is needed
    assert all(v == 0 for v in duplicates(db).values())
    with db.reader() as con:
        statuses = Counter(dict(con.execute("SELECT status, count(*) FROM returns GROUP BY 1").fetchall()))
        reasons = con.execute("SELECT count(DISTINCT reason_text) FROM returns").fetchone()[0]
        skus = con.execute("SELECT count(DISTINCT seller_sku) FROM return_line_items").fetchone()[0]
        shops = con.execute("SELECT count(DISTINCT shop_id) FROM returns").fetchone()[0]
        days = con.execute("SELECT date_diff('day', min(created_at), max(created_at)) FROM returns").fetchone()[0]
        open_age = con.execute(
            "SELECT max(date_diff('day', created_at, now()::TIMESTAMP)) FROM returns WHERE status IN (?, ?, ?)",
            [domain.REQUESTED, domain.PENDING, domain.ACCEPTED]).fetchone()[0]
        names = {r[0] for r in con.execute("SELECT name FROM accounts").fetchall()}
        written = con.execute("SELECT shop_id, updated_at FROM returns ORDER BY rowid").fetchall()
    # written in update_time order, as a sync pages through them, so the file is laid out as a real store's
    # (DuckDB may append a statement's rows in a few runs rather than one: a handful of steps back at most)
    steps_back = sum(1 for (s1, t1), (s2, t2) in zip(written, written[1:], strict=False) if s1 == s2 and t2 < t1)
    assert steps_back <= 0.01 * len(written), steps_back
    assert set(statuses) == set(domain.STATUSES), statuses  # every status, mostly closed ones
    assert statuses[domain.REFUNDED] > statuses[domain.REQUESTED]
    assert reasons >= 10 and skus >= 50 and shops == 2
    assert days > 300, "closed returns spread over a year"
    assert open_age <= 120, "open returns are recent"
    assert ACCOUNT_NAME in names


def test_scale_smoke_run_prints_every_figure(tmp_path):
    proc = subprocess.run([sys.executable, "bench/scale.py", "--smoke"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert re.search(r"^ +0 ms +[\d.]+ +[\d.]+ +[\d.]+x +(ok|over)$", out, re.M), out  # loopback: sync vs bare fetch
    assert re.search(r"^ +20 ms +[\d.]+ +[\d.]+ +[\d.]+x +(ok|over)$", out, re.M), out
    for name in ("incremental sync (s)", "grid, first page (s)", "grid, filtered by reason (s)", "grid, search (s)",
                 "reason analytics page (s)", "detail page (s)", "app peak RSS (MB)"):
        line = next((line for line in out.splitlines() if line.startswith(name)), None)
        assert line and re.search(r"[\d.]+x", line), f"no figure for {name!r} in:\n{out}"
