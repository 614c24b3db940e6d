"""Browser tests: the real app (`streamlit run`) in headless Debian Chromium, on a fresh database.

Playwright cannot download its own browser here, so the system chromium is used
(CHROMIUM env var, else `chromium` on PATH). Without one, the browser tests are skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RUN_TIMEOUT_MS = 60_000


def pytest_collection_modifyitems(items):
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("streamlit did not become healthy in time")


@dataclass(frozen=True)
class RunningApp:
    url: str
    db_path: Path
    log_path: Path


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[RunningApp]:
    """`streamlit run app.py` on a free port with a fresh database (demo shop on)."""
    folder = tmp_path_factory.mktemp("browser-app")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(RETURNS_DB=str(folder / "returns.duckdb"), RETURNS_DEMO="1", PYTHONUNBUFFERED="1")
    log = open(folder / "streamlit.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield RunningApp(url, folder / "returns.duckdb", folder / "streamlit.log")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def wait_for_app_run(page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the script run that the last action caused has finished (streamlit's own e2e recipe)."""
    page.wait_for_timeout(250)  # widget debounce, and time for the rerun to start
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=RUN_TIMEOUT_MS)
    wait_for_app_run(page)
