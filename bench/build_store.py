"""Build benchmark stores of N returns through the store's own bulk path (return_writes.upsert_page).

    .venv/bin/python bench/build_store.py --sizes 10k 100k 1M [--out bench/results/stores]

Realistic data without simulating a million lifecycles: the sandbox (seed 7, 2 shops) generates
~5,000 returns with its real distribution of statuses, types, reasons (with its planted spike and
size problem), SKUs, money, line items and deadlines. Each store clones them with new IDs,
spreading closed returns over the past year while open ones stay recent, as a big seller's would.
Every clone goes through `return_writes.upsert_page` (the per-page upsert a sync uses: mapping, line
items, 'created' history, watermark) in batches of BATCH objects, by the sample factory
(returns_core.sample_data) that tests use too: no SQL shortcut.
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
from returns_core.store.db import Database, utcnow  # noqa: E402
from returns_core.tiktok.sandbox import Sandbox  # noqa: E402

SEED, SHOPS, TEMPLATE_RETURNS = 7, 2, 2500
BATCH = 50_000
YEAR = 365 * 86400
DEFAULT_OUT = ROOT / "bench" / "results" / "stores"
BENCH_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # a fixed Fernet key: bench stores only
ACCOUNT_NAME = "Bench"
SIZES = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}
BIG = {"10M": 10_000_000}  # not in the default run: about an hour to build on 2 cores
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
    db.checkpoint()
    seconds = time.perf_counter() - started
    with db.reader() as con:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed names
                  for t in ("returns", "return_line_items", "history")}
    return {"size": size, "path": str(path), "seconds": round(seconds, 1), "rows": counts,
            "bytes": path.stat().st_size, "via": f"return_writes.upsert_page, batches of up to {BATCH:,}",
            "shops": [s["id"] for s in shops]}


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
    args = parser.parse_args()
    for label in args.sizes:
        size = {**SIZES, **BIG}.get(label) or int(label)
        path = store_path(args.out, args.label or label)
        print(f"building {label} ({size:,} returns) at {path} ...", flush=True)
        result = build(size, path)
        path.with_suffix(".json").write_text(json.dumps(result))  # what scale.py reports
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
