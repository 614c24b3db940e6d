"""Agency scale: many sandbox shops synced together under one app's rate limit.

    .venv/bin/python bench/agency.py [--shops 200] [--returns 100] [--latency 0.1] [--concurrency 8]
                                     [--rate-limit 10] [--apps 1] [--skip-sequential] [--units-sold]

The sandbox runs in its own process (as TikTok would), with every Search Returns page held back
`--latency` seconds. Prints:
1. the scheduler's full sync of every shop against the ideal, total pages x latency / concurrency
   (target <= 1.3x), and against the sequential sync (one shop after another: what the CLI did);
2. the same run with the sandbox's app limit at `--rate-limit` requests/s: the achieved rate
   against the limit (target within 10%), and how often one shop's request was refused twice in a
   row (target: never). With `--apps N` the shops are split between N TikTok apps, each with its
   own limit (as TikTok's is per app): each app's achieved rate is printed.

Each shop's sync reads its returns, then its cancellations (one more search, held back like the
returns' pages), then its units sold (TikTok's Analytics API). The ideal counts every held-back
search. Units sold are left out unless `--units-sold`: a shop's first sync backfills 90 days of
them, about 125 more requests, which is its own cost (the sandbox then refuses them at once, as
TikTok refuses an app without the analytics scope, so each sync notes "units sold not synced").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # a fixed Fernet key: bench stores only
SEED = 7
PATH = "/return_refund/"


def serve_sandbox(shops: int, returns: int, latency: float, rate_limit: float | None, apps: int,
                  units_sold: bool) -> None:
    """--serve-sandbox: serve on a free port, print how to reach it (JSON); when stdin closes, print
    what the sandbox saw (requests, refusals, refusals in a row per shop) and stop."""
    from returns_core.tiktok import errors
    from returns_core.tiktok.sandbox import Sandbox
    from returns_core.tiktok.sandbox.envelope import new_request_id, respond

    sandbox = Sandbox(seed=SEED, shops=shops, returns=returns, app_rate_limit=rate_limit, apps=apps)
    if latency:
        sandbox.faults.inject("timeout", count=10**9, delay=latency, path_prefix=PATH)
    seen: dict[str, list[bool]] = defaultdict(list)  # shop cipher -> refused?, in order
    answered: dict[str, int] = defaultdict(int)  # app key -> requests answered
    guard = threading.Lock()
    answer = sandbox.answer

    def counted(method, path, query, *args, **kwargs):
        if not units_sold and path.startswith("/analytics/"):
            # as TikTok answers an app without the analytics scope: refused at once, never retried
            return respond(errors.NO_PERMISSION, "No permission: this app may not call the Analytics API.",
                           new_request_id(sandbox.now()))
        response = answer(method, path, query, *args, **kwargs)
        if path.startswith(PATH):
            params = dict(query)
            with guard:
                seen[params.get("shop_cipher", "")].append(response.status == 429)
                answered[params.get("app_key", "")] += response.status != 429
        return response

    sandbox.answer = counted
    credentials = [{"key": app.key, "secret": app.secret, "tokens": sandbox.issue_tokens(app_key=app.key)}
                   for app in sandbox.apps]
    with sandbox.serve() as server:
        print(json.dumps({"url": server.url, "apps": credentials}), flush=True)
        sys.stdin.read()
    twice = sum(1 for outcomes in seen.values() for a, b in zip(outcomes, outcomes[1:], strict=False) if a and b)
    print(json.dumps({"requests": sum(len(o) for o in seen.values()),
                      "refused": sum(sum(o) for o in seen.values()), "refused_twice_in_a_row": twice,
                      "answered_by_app": answered}),
          flush=True)


class SandboxProcess:
    def __init__(self, shops: int, returns: int, latency: float, rate_limit: float | None, apps: int,
                 units_sold: bool):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", str(shops), str(returns),
                                      str(latency), str(rate_limit or 0), str(apps), str(int(units_sold))],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.seen: dict = {}

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        self.seen = json.loads(self.proc.stdout.readline() or "{}")
        self.proc.wait(60)


def run(shops: int, returns: int, latency: float, concurrency: int, rate_limit: float | None, apps: int = 1,
        units_sold: bool = False) -> dict:
    """One full sync of every shop through the scheduler; what it took and what the sandbox saw."""
    from returns_core import sync
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.store.db import Database
    from returns_core.tiktok.client import TokenSet

    folder = Path(tempfile.mkdtemp(prefix="agency-bench-"))
    with SandboxProcess(shops, returns, latency, rate_limit, apps, units_sold) as sandbox:
        db = Database(folder / "agency.duckdb", key=BENCH_KEY)
        db.migrate()
        url = sandbox.info["url"]
        accounts = []
        for number, app in enumerate(sandbox.info["apps"], start=1):
            tokens = TokenSet.from_data(app["tokens"])
            accounts += add_accounts_with_tokens(db, f"Agency app {number}", app["key"], app["secret"],
                                                 tokens.access_token, tokens.refresh_token, api_base=url,
                                                 auth_base=url, is_sandbox=True, tokens=tokens)
        last = [""]

        def overall(o: sync.Overall) -> None:
            line = o.line()
            if line != last[0] and (o.done == o.shops or o.done % max(1, o.shops // 10) == 0):
                last[0] = line
                print(f"    {line}", file=sys.stderr, flush=True)

        started = time.perf_counter()
        results = sync.sync_accounts(db, accounts, full=True, concurrency=concurrency, trigger="bench",
                                       on_overall=overall)
        wall = time.perf_counter() - started
    failed = [r.summary() for r in results if not r.ok]
    pages = sum(r.pages for r in results)
    return {"shops": len(accounts), "pages": pages, "returns": sum(r.fetched for r in results),
            "concurrency": concurrency, "latency_s": latency, "rate_limit": rate_limit, "wall_s": round(wall, 2),
            # every held-back search: the returns' pages and each shop's cancellations search
            "searches": sandbox.seen.get("requests", 0),
            "ideal_s": round(sandbox.seen.get("requests", 0) * latency / concurrency, 2), "failed": failed,
            "sandbox": sandbox.seen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shops", type=int, default=200)
    parser.add_argument("--returns", type=int, default=100, help="returns per shop")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per Search Returns page")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate-limit", type=float, default=10.0, help="the sandbox's app limit, requests/s")
    parser.add_argument("--apps", type=int, default=1, help="TikTok apps sharing the shops (each its own limit)")
    parser.add_argument("--skip-sequential", action="store_true", help="skip the one-shop-at-a-time run")
    parser.add_argument("--units-sold", action="store_true", help="let the shops' first syncs backfill units sold")
    args = parser.parse_args()

    print(f"Agency bench: {args.shops} sandbox shops x {args.returns} returns, {args.latency * 1000:.0f} ms per "
          f"page, {args.concurrency} shops at once, {args.apps} app(s) "
          f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)", flush=True)
    print("  scheduler, no app limit ...", file=sys.stderr, flush=True)
    fast = run(args.shops, args.returns, args.latency, args.concurrency, None, args.apps, args.units_sold)
    sequential = None
    if not args.skip_sequential:
        print("  one shop after another ...", file=sys.stderr, flush=True)
        sequential = run(args.shops, args.returns, args.latency, 1, None, args.apps, args.units_sold)
    print(f"  scheduler, app limit {args.rate_limit:g} requests/s ...", file=sys.stderr, flush=True)
    limited = run(args.shops, args.returns, args.latency, args.concurrency, args.rate_limit, args.apps,
                  args.units_sold)

    ratio = fast["wall_s"] / fast["ideal_s"] if fast["ideal_s"] else float("nan")
    print(f"\n1. {fast['shops']} shops, {fast['pages']} pages committed, {fast['searches']} searches held back, "
          f"{len(fast['failed'])} failed")
    print(f"   scheduler ({args.concurrency} at once)   {fast['wall_s']:8.2f} s")
    print(f"   ideal (searches x latency / {args.concurrency}) {fast['ideal_s']:6.2f} s   ratio {ratio:.2f}x "
          f"(target <= 1.3x: {'ok' if ratio <= 1.3 else 'over'})")
    if sequential:
        print(f"   one shop after another     {sequential['wall_s']:8.2f} s   "
              f"{sequential['wall_s'] / fast['wall_s']:.1f}x the scheduler's time")
    seen = limited["sandbox"]
    print(f"\n2. app limit {args.rate_limit:g} requests/s per app, {args.apps} app(s): {limited['wall_s']:.2f} s, "
          f"{seen.get('requests', 0) - seen.get('refused', 0)} requests answered, {seen.get('refused', 0)} refused, "
          f"{len(limited['failed'])} shops failed")
    for key, answered in sorted(seen.get("answered_by_app", {}).items()):
        achieved = answered / limited["wall_s"] if limited["wall_s"] else 0.0
        off = abs(achieved - args.rate_limit) / args.rate_limit
        print(f"   {key}: achieved {achieved:.2f} requests/s ({off:.0%} off the limit; target within 10%: "
              f"{'ok' if off <= 0.10 else 'over'})")
    print(f"   one shop's request refused twice in a row: {seen.get('refused_twice_in_a_row', 0)} "
          f"(target 0)")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "agency.json").write_text(json.dumps({"fast": fast, "sequential": sequential, "limited": limited},
                                                indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-sandbox":
        shops_, returns_, latency_, limit_, apps_, units_ = sys.argv[2:8]
        serve_sandbox(int(shops_), int(returns_), float(latency_), float(limit_) or None, int(apps_), units_ == "1")
    else:
        main()
