"""The app process's runtime: one database, its background syncs, and the data version.

One `Runtime` per process and database (st.cache_resource). The data version changes whenever
the data may have changed: a sync here, an edit here, or a write by another process (a cron
sync), which the data stamp notices within seconds. Every cached loader is keyed by it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from returns_core import config, demo, jobs, sync
from returns_core.explain import explain_error
from returns_core.secretbox import configured_key
from returns_core.store import sync_runs
from returns_core.store.db import UPGRADE_TIME, Database, keep_files_private

# How long a reading of the data stamp stands: how soon a cron sync in another process shows up.
STAMP_TTL_S = 5

DataVersion = tuple  # (database path, finished syncs, edits here, store set-ups, the store's data stamp)


def secret_section(name: str) -> dict:
    """A section of secrets.toml, or {} when there is none (or no secrets file)."""
    try:
        value = st.secrets.get(name)
    except (FileNotFoundError, KeyError):  # no secrets file: st.secrets raises instead of returning None
        return {}
    return dict(value) if value else {}


def encryption_key() -> str | None:
    """The store's key: secretbox's one rule (secrets.toml [returns_desk] encryption_key, else
    $RETURNS_DESK_KEY; None: the key file beside the database), with secrets.toml as Streamlit read
    it. The CLI reads the same files itself; the webhook receiver (server.py) reads the key here."""
    try:
        secrets = dict(st.secrets)
    except (FileNotFoundError, KeyError, AttributeError):  # no secrets file: st.secrets raises
        secrets = {}
    return configured_key(secrets)


@dataclass
class Runtime:
    """The app process's shared state for one database."""

    db: Database
    jobs: jobs.SyncJobs
    auto_sync: jobs.AutoSync
    edits: int = 0  # grows when a page changes data in-process (re-sync, account changes)
    demo_error: str | None = None  # why the demo shop could not be created, if it could not

    @property
    def version(self) -> tuple[int, int, int]:
        """What this process knows changed: finished syncs, edits, and set-ups of the store (a store
        deleted or replaced while the app runs is set up again: nothing read from the old one stands)."""
        return self.jobs.version, self.edits, self.db.generation

    def close(self) -> None:
        """Stop the schedule (the cache releases the runtime)."""
        self.auto_sync.stop()


@st.cache_resource(show_spinner=False, on_release=lambda runtime: runtime.close())
def _runtime(path: str, key: str | None) -> Runtime:
    """Open (and upgrade) the store, start the background syncs, create the demo shop if wanted."""
    keep_files_private()  # the store's WAL and spill files hold customer data
    db = Database(path, key=key)
    upgrading = db.upgrade_pending()
    with st.spinner(f"Upgrading the data store to this version ({UPGRADE_TIME})...") if upgrading else nullcontext():
        db.migrate()
    sync.close_stale_runs(db)  # a run that a killed sync left "running" shows as interrupted, not running forever
    sync_jobs = jobs.SyncJobs(db)
    runtime = Runtime(db, sync_jobs, jobs.AutoSync(sync_jobs).start())
    try:
        demo.ensure_demo_account(db)
    except Exception as exc:  # noqa: BLE001 - the app must start even when the demo shop cannot be made
        runtime.demo_error = explain_error(exc)
    return runtime


def _this_run() -> dict:
    """What is read once per script (or fragment) run and kept for the rest of it: a page asks for
    the runtime and the data version a dozen times a run, and each asking re-read secrets.toml and
    hashed the cache keys (about 10 ms a render). Outside a run (bare mode) nothing is kept."""
    ctx = get_script_run_ctx()
    if ctx is None:
        return {}
    # Streamlit gives every run a new `cursors` dict; holding the old one means a new run can never
    # be mistaken for it.
    held = getattr(ctx, "_returns_desk_run", None)
    if held is None or held[0] is not ctx.cursors:
        held = (ctx.cursors, {})
        ctx._returns_desk_run = held
    return held[1]


def current() -> Runtime:
    """This process's runtime for the configured database."""
    run = _this_run()
    if "runtime" not in run:
        run["runtime"] = _runtime(str(config.db_path()), encryption_key())
    return run["runtime"]


def db() -> Database:
    """The database every page reads and writes."""
    return current().db


def data_version() -> DataVersion:
    """Changes when data changes: a sync here, an edit here, or a sync by another process.
    One reading per run, so every loader of a run reads the same data."""
    run = _this_run()
    if "data_version" not in run:
        rt = current()
        run["data_version"] = (str(rt.db.path), *rt.version, _data_stamp(str(rt.db.path), rt.version))
    return run["data_version"]


@st.cache_data(ttl=STAMP_TTL_S, max_entries=16, show_spinner=False)
def _data_stamp(path: str, version: tuple) -> tuple:
    # not a loader: this is what keys the loaders. Its short ttl is the one place that polls the
    # store, so a cron sync in another process shows up within STAMP_TTL_S seconds.
    return sync_runs.data_stamp(db())


def data_changed() -> None:
    """Call after changing data in this process, so cached results are reloaded."""
    current().edits += 1
    _this_run().pop("data_version", None)
