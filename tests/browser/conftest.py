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
from contextlib import contextmanager
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


@contextmanager
def running_app(folder: Path, env: dict[str, str], script: str = "app.py") -> Iterator[str]:
    """`streamlit run <script>` on a free port with this environment, logging into `folder`; yields
    its URL once healthy, and stops it on exit. The one way the browser tests start the app."""
    port = _free_port()
    with open(folder / "streamlit.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def app_env(**settings: str) -> dict[str, str]:
    """This environment without any RETURNS_ setting of the developer's, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(PYTHONUNBUFFERED="1", **settings)
    return env


@pytest.fixture(scope="module")
def app_server(tmp_path_factory) -> Iterator[RunningApp]:
    """`streamlit run app.py` on a free port with a fresh database (demo shop on)."""
    folder = tmp_path_factory.mktemp("browser-app")
    with running_app(folder, app_env(RETURNS_DB=str(folder / "returns.duckdb"), RETURNS_DEMO="1")) as url:
        yield RunningApp(url, folder / "returns.duckdb", folder / "streamlit.log")


# Counts the script runs the page has seen finish: each time stApp's script state turns to notRunning.
# Installed before any page script, so no run is missed, however fast it is.
COUNT_RUNS = """
window.__finishedRuns = 0;
new MutationObserver((records) => {
  for (const r of records) {
    if (r.target.getAttribute('data-test-script-state') === 'notRunning' && r.oldValue !== 'notRunning') {
      window.__finishedRuns += 1;
    }
  }
}).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                      attributeFilter: ['data-test-script-state']});
"""


@pytest.fixture
def page(page):
    """pytest-playwright's page, counting the app's finished script runs (see `app_run`)."""
    page.add_init_script(COUNT_RUNS)
    return page


def finished_runs(page) -> int:
    return page.evaluate("window.__finishedRuns || 0")


def wait_for_app_idle(page, timeout: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the app is connected and no script run is in progress."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)


@contextmanager
def app_run(page, timeout: int = RUN_TIMEOUT_MS) -> Iterator[None]:
    """Around an action that makes the app rerun: on exit, that run (or a later one) has finished."""
    before = finished_runs(page)
    yield
    page.wait_for_function("before => (window.__finishedRuns || 0) > before", arg=before, timeout=timeout)
    wait_for_app_idle(page, timeout)


def open_page(page, url: str) -> None:
    """Load `url` as a new session and wait until its first script run has finished."""
    page.goto(url)
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=RUN_TIMEOUT_MS)
    page.wait_for_function("() => (window.__finishedRuns || 0) > 0", timeout=RUN_TIMEOUT_MS)
    wait_for_app_idle(page)
