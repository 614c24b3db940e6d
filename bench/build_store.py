"""Build benchmark stores of N returns through the store's own bulk path (return_writes.upsert_page).

    .venv/bin/python bench/build_store.py --sizes 10k 100k 1M [--out bench/results/stores]

Realistic data without simulating a million lifecycles: the sandbox (seed 7, 2 shops) generates
~5,000 returns with its real distribution of statuses, types, reasons (with its planted spike and
size problem), SKUs, money, line items and deadlines. Each store clones them with new IDs,
spreading closed returns over the past year while open ones stay recent, as a big seller's would.
Every clone goes through `return_writes.upsert_page` (the per-page upsert a sync uses: mapping, line
items, 'created' history, watermark) in batches of BATCH objects, by the sample factory
(returns_core.sample_data) that tests use too: no SQL shortcut.

Past 1M (the 10M store) that path takes an hour or more on 2 cores, so the 1M store is built (or
reused) that way and then copied COPIES times by SQL: every return, line item and history row again
with new IDs (return, order, line items, tracking number; the payload's too), the copies written
in update_time order like the rest, so the file's layout is still a sync's. It is the same seller
ten times busier over the same year: every query sees ten times the rows with the same spread.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from returns_core import domain  # noqa: E402
from returns_core import sample_data as sample  # noqa: E402
from returns_core.store import rollups  # noqa: E402
from returns_core.store.db import Database, utcnow  # noqa: E402
from returns_core.tiktok.sandbox import Sandbox  # noqa: E402

SEED, SHOPS, TEMPLATE_RETURNS = 7, 2, 2500
BATCH = 50_000
YEAR = 365 * 86400
DEFAULT_OUT = ROOT / "bench" / "results" / "stores"
BENCH_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # a fixed Fernet key: bench stores only
ACCOUNT_NAME = "Bench"
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
BIG = {"10M": 10_000_000}  # not in the default run: the 1M store copied ten times (build_by_copies)
SLICES = 40  # the copies are written in this many update_time slices (each sorted in memory)
_TIME_FIELDS = ("create_time", "update_time")


def templates(anchor: int) -> tuple[list[dict], list[dict]]:
    """(sandbox return objects, shops) of a seeded sandbox whose clock stands at `anchor`."""
    sandbox = Sandbox(seed=SEED, shops=SHOPS, returns=TEMPLATE_RETURNS, wall_clock=lambda: anchor)
    objects = [{**obj, "_shop": shop["id"]} for shop in sandbox.shops for obj in sandbox.returns_for(shop["id"])]
    return objects, sandbox.shops


def clone(template: str, n: int, shift: int) -> dict:
    """The template (JSON text) as return number n, `shift` seconds earlier; every ID new and unique."""
    obj = json.loads(template)
    obj["return_id"] = str(4_100_000_000_000_000_000 + n)
    obj["order_id"] = str(5_100_000_000_000_000_000 + n)
    if obj.get("return_tracking_number"):  # unique per parcel, as real tracking numbers are
        obj["return_tracking_number"] = f"{obj['return_tracking_number'][:4]}{n:012d}"
    for field in _TIME_FIELDS:
        if isinstance(obj.get(field), int):
            obj[field] -= shift
    for action in obj.get("seller_next_action_response") or []:
        if isinstance(action.get("deadline"), int):
            action["deadline"] -= shift
    for k, item in enumerate(obj.get("return_line_items") or [], start=1):
        item["return_line_item_id"] = f"{obj['return_id']}{k:02d}"
        item["order_line_item_id"] = f"{obj['order_id']}{k:02d}"
    return obj


def build(size: int, path: Path, *, seed: int = SEED, log=print) -> dict:
    """Build a store of `size` returns at `path` (replaced); returns what was done and how long it took."""
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    anchor = int(time.time())
    objects, shops = templates(anchor)
    kept = [(o.pop("_shop"), json.dumps(o), domain.mapped_status(o.get("return_status"))) for o in objects]
    closed = [(shop, text) for shop, text, status in kept if status in domain.CLOSED_STATUSES]
    open_ = [(shop, text) for shop, text, status in kept if status not in domain.CLOSED_STATUSES]
    rng = random.Random(seed)
    db = Database(path, key=BENCH_KEY)
    db.migrate()
    _accounts(db, shops)
    # Draw every return first, then write them in update_time order, as a sync does (it pages by
    # update_time ascending): the file's layout is then a real store's, where recent returns sit
    # together at the end and DuckDB's zone maps can skip the old row groups for a recent period.
    update_times = {text: int(json.loads(text).get("update_time") or 0) for _, text, _ in kept}
    drawn: list[tuple[int, int, tuple[str, str], int]] = []
    for n in range(size):
        # the sandbox's open share stays recent; closed returns spread over the past year
        if rng.random() < len(open_) / len(objects):
            pick, shift = rng.choice(open_), 0
        else:
            pick, shift = rng.choice(closed), rng.randrange(YEAR)
        drawn.append((update_times[pick[1]] - shift, n, pick, shift))
    drawn.sort()
    started = time.perf_counter()
    done = 0
    while done < size:
        batch: dict[str, list[dict]] = {}
        for _, n, (shop_id, template), shift in drawn[done:done + BATCH]:
            batch.setdefault(shop_id, []).append(clone(template, n, shift))
        for shop_id, page in batch.items():
            sample.write_returns(db, shop_id, page, synced_at=utcnow(), watermark=True)
        done += sum(len(p) for p in batch.values())
        log(f"  {done:>9,} / {size:,} returns  ({time.perf_counter() - started:6.1f} s)")
    return {**_built(db, size, path, started), "via": f"return_writes.upsert_page, batches of up to {BATCH:,}",
            "shops": [s["id"] for s in shops]}


def build_by_copies(size: int, path: Path, base: Path, *, log=print) -> dict:
    """A store of `size` returns at `path` (replaced): the returns of the store at `base` (built by
    `build`) copied size / base-size times with new IDs, in update_time order."""
    for suffix in ("", ".wal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    db = Database(path, key=BENCH_KEY)
    db.migrate()
    with db.writer() as con:
        con.execute("ATTACH ? AS base (READ_ONLY)", [str(base)])
        base_size = con.execute("SELECT count(*) FROM base.returns").fetchone()[0]
        copies = size // base_size
        if copies * base_size != size:
            raise ValueError(f"{size:,} is not a multiple of the base store's {base_size:,} returns")
        con.execute("INSERT INTO accounts SELECT * FROM base.accounts")
        con.execute("INSERT INTO sync_state SELECT * FROM base.sync_state")
        low, high = con.execute("SELECT epoch(min(updated_at)), epoch(max(updated_at)) FROM base.returns").fetchone()
    # copy c of return number n is return number n + c * base_size, as build's clone numbers them
    new_id = f"(CAST(r.return_id AS HUGEINT) + c.k * {base_size})::VARCHAR"
    step = (high - low) / SLICES + 1
    for index in range(SLICES):
        begin, end = low + index * step, low + (index + 1) * step
        window = "epoch(r.updated_at) >= ? AND epoch(r.updated_at) < ?"
        with db.writer() as con:
            con.execute("ATTACH IF NOT EXISTS ? AS base (READ_ONLY)", [str(base)])
            con.execute(f"""
                INSERT INTO returns BY NAME
                SELECT r.* REPLACE (
                    {new_id} AS return_id,
                    (CAST(r.order_id AS HUGEINT) + c.k * {base_size})::VARCHAR AS order_id,
                    CASE WHEN r.tracking_number IS NULL THEN NULL
                         ELSE left(r.tracking_number, 4) || lpad((CAST(r.return_id AS HUGEINT) + c.k * {base_size}
                              - 4100000000000000000)::VARCHAR, 12, '0') END AS tracking_number,
                    replace(replace(r.payload::VARCHAR, '"' || r.return_id || '"', '"' || {new_id} || '"'),
                            '"' || r.order_id || '"',
                            '"' || (CAST(r.order_id AS HUGEINT) + c.k * {base_size})::VARCHAR || '"')::JSON
                        AS payload)
                FROM base.returns r CROSS JOIN range({copies}) c(k)
                WHERE {window} ORDER BY r.updated_at, c.k""", [begin, end])
            con.execute(f"""
                INSERT INTO return_line_items BY NAME
                SELECT r.* REPLACE (
                    {new_id} AS return_id,
                    {new_id} || right(r.return_line_item_id, 2) AS return_line_item_id,
                    (CAST(left(r.order_line_item_id, 19) AS HUGEINT) + c.k * {base_size})::VARCHAR
                        || right(r.order_line_item_id, 2) AS order_line_item_id)
                FROM base.return_line_items r JOIN base.returns b USING (shop_id, return_id)
                CROSS JOIN range({copies}) c(k)
                WHERE epoch(b.updated_at) >= ? AND epoch(b.updated_at) < ?""", [begin, end])
            con.execute(f"""
                INSERT INTO history (shop_id, return_id, happened_at, actor, kind, old_value, new_value, note, details)
                SELECT r.shop_id, {new_id}, r.happened_at, r.actor, r.kind, r.old_value, r.new_value, r.note,
                       r.details
                FROM base.history r JOIN base.returns b USING (shop_id, return_id) CROSS JOIN range({copies}) c(k)
                WHERE epoch(b.updated_at) >= ? AND epoch(b.updated_at) < ?""", [begin, end])
        log(f"  slice {index + 1:>2} of {SLICES}  ({time.perf_counter() - started:6.1f} s)")
    with db.writer() as con:  # the copies went around the write path, which keeps the daily rows current
        rollups.rebuild(con)
    log(f"  daily pre-aggregates  ({time.perf_counter() - started:6.1f} s)")
    return {**_built(db, size, path, started),
            "via": f"the {base_size:,}-return store (return_writes.upsert_page) copied {copies} times by SQL",
            "base": str(base)}


def _built(db: Database, size: int, path: Path, started: float) -> dict:
    """What a finished build reports (checkpointed first): its time, rows per table and file size."""
    db.checkpoint()
    seconds = time.perf_counter() - started
    with db.reader() as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
                  for t in ("returns", "return_line_items", "history")}
    return {"size": size, "path": str(path), "seconds": round(seconds, 1), "rows": counts,
            "bytes": path.stat().st_size}


def _accounts(db: Database, shops: list[dict]) -> None:
    """The sandbox's shops as accounts (placeholder tokens; scale.py reconnects one to a live sandbox)."""
    for i, shop in enumerate(shops):
        sample.add_account(db, shop["id"], ACCOUNT_NAME if i == 0 else f"{ACCOUNT_NAME} {i + 1}",
                           shop_name=shop.get("name"), region=shop.get("region"), shop_cipher=shop.get("cipher"))


def store_path(out: Path, label: str) -> Path:
    return out / f"returns-{label}.duckdb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES),
                        help=f"labels ({', '.join([*SIZES, *BIG])}) or numbers")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--label", default=None, help="file label for a single size (default: the size)")
    parser.add_argument("--copy-of", default=None, metavar="LABEL",
                        help="build by copying the store of this label in --out (default: only past 1M, of 1M)")
    args = parser.parse_args()
    for label in args.sizes:
        size = {**SIZES, **BIG}.get(label) or int(label)
        path = store_path(args.out, args.label or label)
        print(f"building {label} ({size:,} returns) at {path} ...", flush=True)
        if args.copy_of:
            result = build_by_copies(size, path, store_path(args.out, args.copy_of))
        elif size > SIZES["1M"]:
            base = store_path(args.out, "1M")
            if not base.exists():
                print(f"  first the 1M store it copies, at {base} ...", flush=True)
                base.with_suffix(".json").write_text(json.dumps(build(SIZES["1M"], base)))
            result = build_by_copies(size, path, base)
        else:
            result = build(size, path)
        path.with_suffix(".json").write_text(json.dumps(result))  # what scale.py reports
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
