"""One pace per TikTok app: unpaced until TikTok refuses, slower for every shop after a refusal,
recovering gradually; and the sandbox's per-app budget that produces those refusals."""

from __future__ import annotations

import heapq
import random
import threading
import time

import pytest

from returns_core.tiktok import ratelimit
from returns_core.tiktok.client import RetryPolicy, TikTokClient, TokenSet
from returns_core.tiktok.ratelimit import BURST_S, DECREASE, RECOVERY_PER_S, AppRateLimit
from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET
from returns_core.tiktok.sandbox.quota import AppQuota


class Clock:
    """A fake monotonic clock; sleeping moves it (and records how long each wait was)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def send(limit: AppRateLimit, clock: Clock, n: int, *, every: float = 0.0, refused: bool = False) -> None:
    """n requests, `every` seconds apart at most (the pace may make them slower), each answered."""
    for _ in range(n):
        limit.acquire()
        if refused:
            limit.refused()
        else:
            limit.succeeded()
        clock.now += every


def test_no_pacing_until_tiktok_refuses():
    clock = Clock()
    limit = AppRateLimit(clock=clock, sleep=clock.sleep)
    send(limit, clock, 500)  # 500 requests in no time at all
    assert limit.rate is None and clock.waits == []


def test_a_refusal_slows_to_below_what_was_achieved_then_the_pace_recovers_gradually():
    clock = Clock()
    limit = AppRateLimit(clock=clock, sleep=clock.sleep)
    send(limit, clock, 40, every=0.05)  # 20 requests/s achieved, all accepted
    send(limit, clock, 1, refused=True)
    first = limit.rate
    # part of what went through may have been TikTok's burst: BURST_S more seconds are counted
    assert first == pytest.approx(DECREASE * 40 / (2 + BURST_S), rel=0.1)
    # the refused request's retry (and every other request) now waits its turn
    waits_before = len(clock.waits)
    send(limit, clock, 10)
    assert len(clock.waits) > waits_before
    gaps = clock.waits[waits_before:]
    assert all(gap <= 1 / first + 1e-9 for gap in gaps)

    # more refusals bring it lower still, but a burst of refusals within a second counts once
    send(limit, clock, 20)  # a second's worth at the new pace
    send(limit, clock, 5, refused=True)
    second = limit.rate
    assert second < first and second >= first * DECREASE * 0.5

    # then successes bring it back up, a little per second of successes
    rates = []
    for _ in range(5):
        started = clock.now
        while clock.now - started < 1.0:
            send(limit, clock, 1)
        rates.append(limit.rate)
    assert rates == sorted(rates) and rates[-1] > second
    assert rates[-1] - second < 5 * RECOVERY_PER_S * 1.2  # gradual: about RECOVERY_PER_S a second, not a jump back


def test_every_shop_of_an_app_shares_one_pace_and_other_apps_do_not():
    a1 = ratelimit.for_app("open-api.example", "app-a")
    assert ratelimit.for_app("open-api.example", "app-a") is a1
    assert ratelimit.for_app("open-api.example", "app-b") is not a1
    assert ratelimit.for_app("other-host.example", "app-a") is not a1


def test_paced_requests_from_many_threads_keep_to_the_pace():
    limit = AppRateLimit()
    for _ in range(20):
        limit.acquire()
    limit.refused()  # 20 requests just now: about 17/s from here
    pace = limit.rate
    starts: list[float] = []
    guard = threading.Lock()

    def shop() -> None:
        for _ in range(3):
            limit.acquire()
            with guard:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=shop) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts.sort()
    span = starts[-1] - starts[0]
    # 18 requests at `pace` per second take at least 17 intervals, whichever threads sent them
    assert span >= 17 / pace * 0.9


def test_the_sandbox_budget_refills_at_its_rate():
    quota = AppQuota(10)
    assert all(quota.take("app", 0.0) for _ in range(10))  # a burst of one second's worth
    assert not quota.take("app", 0.0)
    assert quota.take("other-app", 0.0)  # per app
    assert not quota.take("app", 0.05) and quota.take("app", 0.1)  # one request per 0.1 s
    with pytest.raises(ValueError):
        AppQuota(0)


@pytest.mark.sandbox(shops=3, returns=150, app_rate_limit=20)
def test_over_http_the_app_budget_slows_every_shop_and_each_still_gets_every_return(sandbox, sandbox_server):
    tokens = TokenSet.from_data(sandbox.issue_tokens())
    limit = AppRateLimit()

    def shop(index: int) -> None:
        client = TikTokClient(SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token, tokens.refresh_token,
                              sandbox.shops[index]["cipher"], api_base=sandbox_server.url,
                              auth_base=sandbox_server.url, rate_limit=limit,
                              retry=RetryPolicy(max_attempts=5, base_delay=0.01))
        with client:
            for _ in range(2):
                pages = list(client.iter_return_pages(page_size=10))
                seen[index].append({r["return_id"] for p in pages for r in p.return_orders})

    seen: list[list[set[str]]] = [[] for _ in range(3)]
    threads = [threading.Thread(target=shop, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # every shop got all its returns twice (each call retried through the refusals): the 150 of its
    # history plus any that arrived since midnight (the world is frozen at the test's start)
    for index, rounds in enumerate(seen):
        shop_has = {r["return_id"] for r in sandbox.returns_for(sandbox.shops[index]["id"])}
        assert len(shop_has) >= 150 and rounds == [shop_has, shop_has]
    # TikTok did refuse, each refusal reached the shared limit, and the app's pace came down below
    # the sandbox's 20/s (it creeps back up afterwards, so the slowest pace is what shows it)
    assert sandbox.quota.refused > 0 and limit.refusals == sandbox.quota.refused
    assert limit.slowest is not None and limit.slowest < 20
    pages = sum(2 * -(-len(rounds[0]) // 10) for rounds in seen)  # two passes of 10-return pages
    assert sandbox.quota.allowed == pages




class VirtualTime:
    """Threads that only ever wait by `sleep`, run one at a time in virtual time: the earliest to wake
    goes next, so a run is the same every time and takes no real time."""

    def __init__(self, threads: int):
        self.now = 1000.0
        self._cond = threading.Condition()
        self._running = threads
        self._waking: list[tuple[float, int, threading.Event]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        wake = threading.Event()
        with self._cond:
            self._seq += 1
            heapq.heappush(self._waking, (self.now + max(0.0, seconds), self._seq, wake))
            self._running -= 1
            self._cond.notify_all()
        wake.wait()

    def done(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def run(self, targets: list) -> None:
        threads = [threading.Thread(target=self._guarded, args=(target,)) for target in targets]
        for thread in threads:
            thread.start()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._running == 0)
                if not self._waking:
                    break
                self.now, _, wake = heapq.heappop(self._waking)
                self._running += 1
            wake.set()
        for thread in threads:
            thread.join()

    def _guarded(self, target) -> None:
        try:
            target()
        finally:
            self.done()


def shops_against(quota: AppQuota, seed: int, *, shops: int = 200, at_once: int = 8, pages: int = 3,
                  latency: float = 0.1) -> tuple[dict[int, list[bool]], float]:
    """`shops` syncs, `at_once` at a time, each of `pages` requests through one AppRateLimit against TikTok's
    budget `quota`, in virtual time: an answer takes `latency`, a refusal none, and a refused request is
    retried after the client's backoff (RetryPolicy). Then one request TikTok refuses at once for a scope
    the app lacks (as units sold are refused in bench/agency.py): paced like the others, but not counted
    in that budget (TikTok assigns QPS per endpoint too, docs/tiktok_api.md section 6). Whether each
    shop's paged requests were refused, in order, and the time it all took."""
    time_ = VirtualTime(at_once)
    limit = AppRateLimit(clock=time_, sleep=time_.sleep)
    policy, rng = RetryPolicy(), random.Random(seed)
    waiting = list(range(shops))
    refused: dict[int, list[bool]] = {shop: [] for shop in waiting}

    def fetcher() -> None:
        while waiting:
            shop = waiting.pop(0)
            for _ in range(pages):
                attempt = 0
                while True:
                    attempt += 1
                    limit.acquire()
                    answered = quota.take("app", time_.now)
                    refused[shop].append(not answered)
                    if answered:
                        time_.sleep(latency)
                        limit.succeeded()
                        break
                    limit.refused()
                    assert attempt < policy.max_attempts
                    time_.sleep(policy.delay(attempt, None, rng))
            limit.acquire()  # the request TikTok refuses for its scope (never retried)
            time_.sleep(0.003)

    time_.run([fetcher] * at_once)
    return refused, time_.now - 1000.0


def test_after_a_refusal_no_shop_is_refused_twice_in_a_row():
    # TikTok lets a burst through before it refuses (the sandbox: a second's worth). While the pace
    # creeps above the limit, that burst keeps it from being refused, so when the refusal comes the
    # last second's rate is well above the limit; other shops' turns were handed out at that pace. A
    # decrease that leaves the pace above the limit has the refused request's own retry refused again.
    for seed in range(8):
        quota = AppQuota(10)
        refused, took = shops_against(quota, seed)
        assert sum(sum(outcomes) for outcomes in refused.values()) >= 3  # the pace met the limit, again and again
        twice = [shop for shop, outcomes in refused.items()
                 if any(a and b for a, b in zip(outcomes, outcomes[1:], strict=False))]
        assert twice == [], f"seed {seed}: refused twice in a row for shops {twice}"
        assert quota.allowed / took >= 9.0  # within 10% of the limit all the same
