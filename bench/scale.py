"""Returns Desk at scale: sync overhead, incremental sync, page renders and memory at 10k/100k/1M returns.

    .venv/bin/python bench/scale.py                  # 10k, 100k, 1M (builds missing stores first)
    .venv/bin/python bench/scale.py --sizes 10k 100k --repeat 3
    .venv/bin/python bench/scale.py --smoke          # a tiny run (2k and 5k returns) that checks it all works

What it measures (figures go to bench/results/scale-<time>.json and .txt):
1. Sync throughput: a full sync of one sandbox shop (2,500 returns) served over HTTP by another
   process, against a bare fetch of the same pages (the client paging, nothing stored): the ratio.
   At several latencies per page (the sandbox answering each page late, `--latencies`): from
   loopback, where only storing shows, to TikTok's distance, where the network dominates.
2. Incremental sync time against store size: the same ~3 days of sandbox changes synced into a copy
   of each store.
3. Render times with AppTest, in a fresh process per store, warm imports and cold data caches:
   the returns grid (first page), a filtered page (one reason), a search (SKU text), the
   Reason Analytics page, and one return's detail page (a link to it). The median of --repeat runs.
4. Peak memory (max RSS) of that app process.
Targets: sync <= 1.25x the bare fetch; renders at 1M <= 2x at 10k; memory at 1M <= 1.5x at 10k.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.build_store import ACCOUNT_NAME, BENCH_KEY, BIG, DEFAULT_OUT, SEED, SHOPS, SIZES, store_path  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SYNC_RETURNS = 2500
INCREMENTAL_WINDOW_S = 3 * 86400
# The sandbox answering each page this late: from loopback (0) to far away (0.2 s, TikTok from
# another continent). Where the ratio crosses the target says how much network hides the storing.
SYNC_LATENCIES_S = (0.0, 0.005, 0.01, 0.02, 0.05, 0.2)
TARGETS = {"sync_ratio": 1.25, "render_ratio": 2.0, "memory_ratio": 1.5}
RENDERS = ("grid_first", "grid_filtered", "grid_search", "analytics", "detail")


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


# --- the sandbox, served by its own process (as TikTok would be) ----------------------------------


def serve_sandbox(returns: int, latency: float) -> None:
    """--serve-sandbox: serve a sandbox on a free port, print how to reach it (JSON), serve until stdin closes."""
    from returns_core.tiktok.sandbox import Sandbox

    sandbox = Sandbox(seed=SEED, shops=SHOPS, returns=returns)
    if latency:
        sandbox.faults.inject("timeout", count=10**9, delay=latency, path_prefix="/return_refund/")
    tokens = sandbox.issue_tokens()
    with sandbox.serve() as server:
        print(json.dumps({"url": server.url, "now": sandbox.now(), "shops": sandbox.shops,
                          "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                          "tokens": tokens}), flush=True)
        sys.stdin.read()


class SandboxProcess:
    def __init__(self, returns: int = SYNC_RETURNS, latency: float = 0.0):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", str(returns), str(latency)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect_bench_account(db, info: dict):
    """Connect (or reconnect) the store's first shop to the served sandbox."""
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.tiktok.client import TokenSet
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    tokens = TokenSet.from_data(info["tokens"])
    return add_accounts_with_tokens(db, ACCOUNT_NAME, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                    tokens.refresh_token, shop_cipher=info["shops"][0]["cipher"],
                                    api_base=info["url"], auth_base=info["url"], is_sandbox=True, tokens=tokens)[0]


def sync_throughput(latency: float, repeat: int, folder: Path) -> dict:
    """Full sync of one shop vs a bare fetch of the same pages; best of `repeat` each."""
    from returns_core.store.db import Database
    from returns_core.sync import sync_account
    from returns_core.tiktok.client import TikTokClient
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    with SandboxProcess(latency=latency) as sandbox:
        info = sandbox.info
        fetches, syncs, pages = [], [], 0
        for i in range(repeat):
            with TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, info["access_token"], info["refresh_token"],
                              info["shops"][0]["cipher"], api_base=info["url"], auth_base=info["url"]) as client:
                started = time.perf_counter()
                fetched = list(client.iter_return_pages({}, page_size=50, sort_field="update_time", sort_order="ASC"))
                fetches.append(time.perf_counter() - started)
            pages = len(fetched)
            returns = sum(len(p.return_orders) for p in fetched)
            db = Database(folder / f"sync-{latency}-{i}.duckdb", key=BENCH_KEY)
            db.migrate()
            account = connect_bench_account(db, info)
            with Breakdown() as spent:
                result = sync_account(db, account, full=True, trigger="bench")
            assert result.ok and result.pages == pages, result.summary()
            syncs.append(result.duration_s)
    return {"latency_s": latency, "pages": pages, "returns": returns, "fetch_s": round(min(fetches), 3),
            "sync_s": round(min(syncs), 3), "ratio": round(min(syncs) / min(fetches), 2),
            "all_fetch_s": [round(x, 3) for x in fetches], "all_sync_s": [round(x, 3) for x in syncs],
            "last_sync_breakdown_s": spent.seconds}


class Breakdown:
    """Where a sync's time goes: opening the database file, and writing pages (open to close)."""

    def __enter__(self) -> Breakdown:
        from returns_core import sync
        from returns_core.store.db import Database

        self.seconds = {"page writes (write_pages, in their transactions)": 0.0,
                        "opening the file (every unit of work)": 0.0}
        self._patches = [(sync, "write_pages", sync.write_pages), (Database, "_connect", Database._connect)]

        def timed_call(key: str, fn):
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds[key] = round(self.seconds[key] + time.perf_counter() - started, 3)
            return wrapper

        sync.write_pages = timed_call("page writes (write_pages, in their transactions)", sync.write_pages)
        Database._connect = timed_call("opening the file (every unit of work)", Database._connect)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, original in self._patches:
            setattr(owner, name, original)


def incremental_sync(store: Path, sandbox: SandboxProcess, folder: Path) -> dict:
    """Sync the sandbox's last few days of changes into a copy of `store`."""
    from returns_core.store.db import Database
    from returns_core.sync import sync_account

    copy = folder / f"incremental-{store.name}"
    shutil.copyfile(store, copy)
    db = Database(copy, key=BENCH_KEY)
    account = connect_bench_account(db, sandbox.info)
    mark = sandbox.info["now"] - INCREMENTAL_WINDOW_S
    with db.writer() as con:
        con.execute("INSERT INTO sync_state (shop_id, watermark, updated_at) VALUES (?, ?, now()) "
                    "ON CONFLICT (shop_id) DO UPDATE SET watermark = excluded.watermark", [account.shop_id, mark])
    result = sync_account(db, account, trigger="bench")
    assert result.ok, result.summary()
    copy.unlink()
    return {"seconds": result.duration_s, "pages": result.pages, "fetched": result.fetched, "new": result.new}


# --- renders and memory: one fresh process per store ----------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not getrusage's ru_maxrss: Linux carries that
    across fork+exec, so a child would report its parent's peak (after building a 1M store: GBs)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def render_worker(path: str, repeat: int) -> None:
    """--render-worker: time the pages with AppTest over the store at `path`; print JSON with peak RSS."""
    os.environ.update(RETURNS_DB=path, RETURNS_DESK_KEY=BENCH_KEY, RETURNS_DEMO="0")
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def session() -> AppTest:
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)

    from returns_core import accounts as acc
    from returns_core.store.db import Database

    db = Database(Path(path), key=BENCH_KEY)
    for account in acc.list_accounts(db):
        # what they are: placeholder tokens (the detail page would otherwise ask TikTok for each
        # return's records, and time this machine's missing network instead of the store)
        acc.mark_invalid(db, account.shop_id, "bench store: placeholder tokens, not an authorization")
    # returns spread through the file (by rowid): a link may name any of them
    picks = db.rows(
        "SELECT shop_id, return_id FROM returns WHERE rowid IN (SELECT (n * k // 7)::BIGINT FROM "
        "(SELECT count(*) AS n FROM returns), range(1, 7) t(k))")
    warm = session()
    warm.run()  # imports, the app's runtime (database, migrations): not what we measure
    assert not warm.exception, warm.exception
    reasons = warm.multiselect(key="reason").options
    searches = ["tee", "hood", "mug", "sock", "lamp"]  # SKU families of the sandbox catalogue
    times: dict[str, list[float]] = {k: [] for k in RENDERS}
    rows = {}
    for i in range(repeat):
        st.cache_data.clear()  # a new visitor after data changed: every query runs
        at = session()
        times["grid_first"].append(timed(at.run))
        rows["grid_first"] = len(at.dataframe[0].value)
        at.multiselect(key="reason").set_value([reasons[i % len(reasons)]])
        times["grid_filtered"].append(timed(at.run))
        rows["grid_filtered"] = len(at.dataframe[0].value)
        at.multiselect(key="reason").set_value([])
        at.text_input(key="q").input(searches[i % len(searches)])
        times["grid_search"].append(timed(at.run))
        rows["grid_search"] = len(at.dataframe[0].value)
        st.cache_data.clear()
        at.switch_page("app_pages/reasons.py")
        times["analytics"].append(timed(at.run))
        assert not at.exception, at.exception
        st.cache_data.clear()
        shop_id, return_id = picks[i % len(picks)]
        at.query_params.update(id=return_id, shop=shop_id)
        at.switch_page("app_pages/detail.py")
        times["detail"].append(timed(at.run))
        assert not at.exception, at.exception
        assert any(return_id in m.value for m in at.markdown) or any(return_id in str(t.value) for t in at.title), \
            "the detail page shows the return"
    peak_mb = peak_rss_mb()
    print(json.dumps({"median_s": {k: round(statistics.median(v), 3) for k, v in times.items()},
                      "all_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
                      "rows": rows, "peak_rss_mb": round(peak_mb, 1)}), flush=True)


def renders(store: Path, repeat: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--render-worker", str(store), str(repeat)], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"render worker failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the run --------------------------------------------------------------------------------------


def ensure_store(label: str, size: int, out: Path, rebuild: bool) -> dict:
    path = store_path(out, label)
    meta = path.with_suffix(".json")
    if rebuild or not path.exists() or not meta.exists():
        print(f"building the {label} store ({size:,} returns) ...", flush=True)
        # in its own process: a build leaves this one big, and children would inherit that peak
        subprocess.run([sys.executable, str(ROOT / "bench" / "build_store.py"), "--sizes", str(size), "--label",
                        label, "--out", str(out)], cwd=ROOT, check=True)
    return json.loads(meta.read_text())


def ratio(big: float, small: float) -> float:
    return round(big / small, 2) if small else float("nan")


def table(report: dict) -> str:
    labels = list(report["stores"])
    first, last = labels[0], labels[-1]
    lines = [f"Returns Desk scale bench, {report['when']} ({report['machine']})", ""]
    syncs = report["sync"]
    target = TARGETS["sync_ratio"]
    lines.append(f"Sync of {syncs[0]['returns']:,} returns ({syncs[0]['pages']} pages) over HTTP against a bare "
                 f"fetch of the same pages, by the sandbox's latency per page:")
    lines.append(f"{'latency/page':>16}{'bare fetch (s)':>16}{'sync (s)':>10}{'ratio':>9}   target <= {target}x")
    for s in syncs:
        lines.append(f"{s['latency_s'] * 1000:>13.0f} ms{s['fetch_s']:>16.2f}{s['sync_s']:>10.2f}"
                     f"{s['ratio']:>8.2f}x   {'ok' if s['ratio'] <= target else 'over'}")
    met = [s["latency_s"] for s in syncs if s["ratio"] <= target]
    if met and all(s["ratio"] <= target for s in syncs if s["latency_s"] >= min(met)):
        lines.append(f"  Within {target}x from {min(met) * 1000:.0f} ms per page up (a real network); "
                     f"below that, storing costs more than fetching.")
    loopback = syncs[0]
    lines.append(f"  Where the sync's time goes at {loopback['latency_s'] * 1000:.0f} ms: " + ", ".join(
        f"{k} {v:.2f} s" for k, v in loopback["last_sync_breakdown_s"].items()))
    lines.append("")
    head = f"{'':34}" + "".join(f"{label:>12}" for label in labels) + f"{last + '/' + first:>12}{'target':>9}"
    lines += [head, "-" * len(head)]

    def row(name: str, values: list[float], fmt: str, target: float | None = None) -> None:
        r = ratio(values[-1], values[0])
        verdict = "" if target is None else (f"<= {target}x " + ("ok" if r <= target else "MISSED"))
        lines.append(f"{name:34}" + "".join(f"{v:>12{fmt}}" for v in values) + f"{r:>11.2f}x  {verdict}")

    stores = [report["stores"][label] for label in labels]
    row("store build (s)", [s["build"]["seconds"] for s in stores], ".1f")
    row("store file (MB)", [s["build"]["bytes"] / 2**20 for s in stores], ".0f")
    row("incremental sync (s)", [s["incremental"]["seconds"] for s in stores], ".2f")
    for key, name in (("grid_first", "grid, first page (s)"), ("grid_filtered", "grid, filtered by reason (s)"),
                      ("grid_search", "grid, search (s)"), ("analytics", "reason analytics page (s)"),
                      ("detail", "detail page (s)")):
        row(name, [s["render"]["median_s"][key] for s in stores], ".2f", TARGETS["render_ratio"])
    row("app peak RSS (MB)", [s["render"]["peak_rss_mb"] for s in stores], ".0f", TARGETS["memory_ratio"])
    inc = stores[0]["incremental"]
    days = INCREMENTAL_WINDOW_S // 86400
    lines += ["", f"Incremental sync: {inc['fetched']} returns changed in the last {days} days "
                  f"({inc['pages']} pages), the same work at every size.",
              f"Stores built through {stores[0]['build']['via']}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latencies", type=float, nargs="+", default=list(SYNC_LATENCIES_S),
                        help="sandbox latencies per page (s) to measure the sync at")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the stores even if they exist")
    parser.add_argument("--smoke", action="store_true", help="tiny stores (2k, 5k), one repeat: checks it works")
    parser.add_argument("--out", type=Path, default=None, help="where the stores live (default bench/results/stores)")
    parser.add_argument("--serve-sandbox", nargs=2, metavar=("RETURNS", "LATENCY"), help=argparse.SUPPRESS)
    parser.add_argument("--render-worker", nargs=2, metavar=("DB", "REPEAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox:
        return serve_sandbox(int(args.serve_sandbox[0]), float(args.serve_sandbox[1]))
    if args.render_worker:
        return render_worker(args.render_worker[0], int(args.render_worker[1]))

    chosen = {label: {**SIZES, **BIG}.get(label) or int(label) for label in args.sizes}
    sizes = {"2k": 2_000, "5k": 5_000} if args.smoke else chosen
    repeat = 1 if args.smoke else args.repeat
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else DEFAULT_OUT)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", "stores": {}, "sync": []}
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        folder = Path(scratch)
        print("sync throughput ...", flush=True)
        for latency in [0.0, 0.02] if args.smoke else sorted(args.latencies):
            # best of 2, except where each run takes seconds of waiting on the (simulated) network
            report["sync"].append(sync_throughput(latency, 1 if args.smoke or latency >= 0.1 else 2, folder))
        with SandboxProcess() as sandbox:
            for label, size in sizes.items():
                entry = {"build": ensure_store(label, size, out, args.rebuild)}
                print(f"{label}: incremental sync ...", flush=True)
                entry["incremental"] = incremental_sync(Path(entry["build"]["path"]), sandbox, folder)
                print(f"{label}: renders ...", flush=True)
                entry["render"] = renders(Path(entry["build"]["path"]), repeat)
                report["stores"][label] = entry
    text = table(report)
    print("\n" + text)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + ("-smoke" if args.smoke else "")
    (RESULTS / f"scale-{stamp}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"scale-{stamp}.txt").write_text(text + "\n")
    if args.smoke:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
