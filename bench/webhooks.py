"""Webhooks at work: how soon a change at TikTok is in the store, and a burst of 2,000 events.

    .venv/bin/python bench/webhooks.py [--changes 200] [--burst 2000] [--senders 16] [--returns 10000]

TikTok is the sandbox in its own process (`sandbox serve`, TikTok's delivery by default: 5% of
events twice, 10% held back up to 2 s). This process plays the app's: server.py's receiver route
and lifespan under uvicorn (as `streamlit run server.py` serves them), its worker with default
settings, and the Returns grid rendered with AppTest on the same store.

1. Latency: the seller approves a return waiting for a decision (through the client, as the app
   does); from TikTok's answer to the new status being readable in the store. p50 / p95 / max over
   --changes changes, one after another. The target is p95 <= 5 s.
2. Burst: --burst signed RETURN_STATUS_CHANGE events for returns of the shop, sent by --senders
   threads at once. Each answer's time (target: every one within 1 s), whether every event was
   stored and processed (nothing lost), how long processing took, and the grid's render time
   (a new session, cold data caches) while the burst is processed, against idle.

Prints figures and ratios; writes them to bench/results/webhooks-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

APPROVE_FOR = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
               "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE",
               "SELLER_RESPOND_REPLACEMENT": "APPROVE_REPLACEMENT"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def wait_for(condition, what: str, timeout: float = 300, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)
    return value


def start_sandbox(folder: Path, returns: int) -> tuple[subprocess.Popen, str, str]:
    """`sandbox serve` in its own process; its base URL and a fresh auth code from its banner."""
    process = subprocess.Popen(
        [sys.executable, "-m", "returns_core", "sandbox", "serve", "--port", "0", "--shops", "1", "--returns",
         str(returns), "--state", str(folder / "sandbox.json"), "--webhook-seed", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    while not any(line.startswith("Press Ctrl-C") for line in lines):
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the sandbox did not start:\n" + "".join(lines))
        lines.append(line)
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # keep the pipe drained
    words = shlex.split(next(line for line in lines if "--auth-code" in line))
    url = re.search(r"Base URL \(API and auth\):\s+(\S+)", "".join(lines)).group(1)
    return process, url, words[words.index("--auth-code") + 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--returns", type=int, default=10000)
    parser.add_argument("--renders", type=int, default=5, help="idle grid renders to take the median of")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
    path = folder / "bench.duckdb"
    os.environ.update(RETURNS_DB=str(path), RETURNS_DEMO="0")
    os.environ.pop("RETURNS_DESK_KEY", None)

    import logging

    import uvicorn
    from starlette.applications import Starlette

    logging.getLogger("uvicorn.access").disabled = True  # one line per event is noise here

    import server
    from returns_core import connect, webhooks
    from returns_core.store import webhook_events
    from returns_core.store.db import Database
    from returns_core.sync import sync_account
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
    from returns_core.tiktok.signing import webhook_signature
    from returns_core.tiktok_session import tiktok_session

    db = Database(path)
    db.migrate()
    sandbox, sandbox_url, code = start_sandbox(folder, args.returns)
    served = None
    try:
        (account,) = connect.add_accounts_with_auth_code(db, "Bench", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, code,
                                                         api_base=sandbox_url, auth_base=sandbox_url)
        synced = sync_account(db, account, trigger="bench")
        print(f"store: {synced.new:,} returns synced from the sandbox in {synced.duration_s:.1f} s")

        app = Starlette(routes=server.ROUTES, lifespan=server.receiver_lifespan(db_path=str(path), with_demo=False,
                                                                                address="http://unused/"))
        served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
        threading.Thread(target=served.run, daemon=True).start()
        wait_for(lambda: served.started, "the receiver")
        receiver = f"http://127.0.0.1:{served.servers[0].sockets[0].getsockname()[1]}{webhooks.PATH}"
        webhooks.subscribe(db, account, receiver)
        results: dict = {"when": datetime.now().isoformat(timespec="seconds"), "returns": synced.new,
                         "changes": args.changes, "burst": args.burst, "senders": args.senders}

        # --- 1. latency: a change at TikTok until it is readable in the store -----------------
        waiting = [(rid, APPROVE_FOR[action]) for rid, action in db.rows(
            "SELECT return_id, json_extract_string(payload, '$.seller_next_action_response[0].action') "
            "FROM returns WHERE shop_id = ? ORDER BY created_at DESC", [account.shop_id]) if action in APPROVE_FOR]
        if len(waiting) < args.changes:
            raise SystemExit(f"only {len(waiting)} returns wait for the seller; use more --returns")
        latencies: list[float] = []
        decide: list[float] = []
        with db.session(), tiktok_session(db, account) as client:
            for return_id, decision in waiting[:args.changes]:
                before = db.value("SELECT marketplace_status FROM returns WHERE return_id = ?", [return_id])
                asked = time.perf_counter()
                client.approve_return(return_id, decision, idempotency_key=str(uuid.uuid4()))
                changed = time.perf_counter()
                wait_for(lambda rid=return_id, was=before: db.value(
                    "SELECT marketplace_status FROM returns WHERE return_id = ?", [rid]) != was,
                         f"return {return_id} to change in the store", timeout=120)
                latencies.append(time.perf_counter() - changed)
                decide.append(changed - asked)
        results["latency_s"] = {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
                                "max": max(latencies), "mean": statistics.fmean(latencies),
                                "approve_call_p50": statistics.median(decide)}
        lat = results["latency_s"]
        print(f"\n1. change at TikTok -> readable in the store, {len(latencies)} changes one by one:")
        print(f"   p50 {lat['p50']:.3f} s   p95 {lat['p95']:.3f} s   max {lat['max']:.3f} s   "
              f"(target p95 <= 5 s: {'met' if lat['p95'] <= 5 else 'NOT met'}; the approve call itself "
              f"p50 {lat['approve_call_p50']:.3f} s)")

        # --- 2. a burst of events, and the grid meanwhile --------------------------------------
        import streamlit as st
        from streamlit.testing.v1 import AppTest

        def render() -> float:
            st.cache_data.clear()  # a new visitor after data changed: every loader reads the store
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
            started = time.perf_counter()
            at.run()
            took = time.perf_counter() - started
            if at.exception:
                raise SystemExit(f"the grid failed to render: {at.exception}")
            return took

        wait_for(lambda: webhook_events.summary(db).waiting == 0, "the latency run's events", timeout=120)
        render()  # imports, once
        idle = [render() for _ in range(args.renders)]

        ids = [r[0] for r in db.rows("SELECT return_id FROM returns WHERE shop_id = ? ORDER BY random() LIMIT ?",
                                     [account.shop_id, args.burst])]
        targets = [ids[i % len(ids)] for i in range(args.burst)]
        base = int(time.time() * 1000) << 22
        bodies = [json.dumps({"type": 12, "tts_notification_id": str(base + n), "shop_id": account.shop_id,
                              "timestamp": int(time.time()), "data": {"return_id": rid}},
                             separators=(",", ":")).encode() for n, rid in enumerate(targets)]
        answers: list[tuple[int, float, float]] = []  # status, answer time, when answered
        lock = threading.Lock()
        http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=args.senders))

        def send(body: bytes) -> None:
            started = time.perf_counter()
            status = http.post(receiver, content=body, headers={
                "Authorization": webhook_signature(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, body),
                "Content-Type": "application/json"}).status_code
            finished = time.perf_counter()
            with lock:
                answers.append((status, finished - started, finished))

        before_burst = webhook_events.summary(db).total
        during: list[float] = []
        sent_at = time.perf_counter()
        with ThreadPoolExecutor(args.senders) as pool:
            futures = [pool.submit(send, body) for body in bodies]
            while not all(f.done() for f in futures) or webhook_events.summary(db).waiting:
                during.append(render())
            for future in futures:
                future.result()
        answered_s = max(finished for _, _, finished in answers) - sent_at
        processed_s = time.perf_counter() - sent_at
        http.close()
        summary = webhook_events.summary(db)
        burst_ids = {str(base + n) for n in range(args.burst)}
        stored = {row[0]: row[1] for row in db.rows(
            "SELECT tts_notification_id, state FROM webhook_events") if row[0] in burst_ids}
        times = [t for _, t, _ in answers]
        results["burst_answer_s"] = {"p50": statistics.median(times), "p95": percentile(times, 0.95),
                                     "max": max(times), "over_1s": sum(t > 1 for t in times),
                                     "statuses": sorted({s for s, _, _ in answers}), "all_answered_s": answered_s}
        results["burst_lost"] = args.burst - len(stored)
        results["burst_states"] = {state: list(stored.values()).count(state) for state in set(stored.values())}
        results["burst_processed_s"] = processed_s
        results["grid_render_s"] = {"idle_median": statistics.median(idle), "burst_median": statistics.median(during),
                                    "burst_max": max(during), "burst_renders": len(during),
                                    "ratio": statistics.median(during) / statistics.median(idle)}
        ans, grid = results["burst_answer_s"], results["grid_render_s"]
        print(f"\n2. burst of {args.burst:,} events from {args.senders} senders at once:")
        print(f"   answers: p50 {ans['p50']:.3f} s   p95 {ans['p95']:.3f} s   max {ans['max']:.3f} s   "
              f"over 1 s: {ans['over_1s']}   HTTP statuses {ans['statuses']}")
        print(f"   stored {len(stored):,} of {args.burst:,} (lost: {results['burst_lost']}); states "
              f"{results['burst_states']}; inbox now {summary.total - before_burst:,} new, {summary.waiting} waiting")
        print(f"   all answered {answered_s:.1f} s after the first was sent ({args.burst / answered_s:,.0f} events/s); "
              f"all processed after {processed_s:.1f} s ({args.burst / processed_s:,.0f} events/s)")
        print(f"   grid render (new session, cold data caches): idle median {grid['idle_median']:.3f} s; "
              f"during the burst median {grid['burst_median']:.3f} s, max {grid['burst_max']:.3f} s over "
              f"{grid['burst_renders']} renders: x{grid['ratio']:.2f}")

        out = ROOT / "bench" / "results" / f"webhooks-{datetime.now():%Y%m%d-%H%M%S}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwritten to {out.relative_to(ROOT)}")
    finally:
        if served is not None:
            served.should_exit = True
        sandbox.terminate()
        sandbox.wait(15)


if __name__ == "__main__":
    main()
