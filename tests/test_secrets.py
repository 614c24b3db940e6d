"""Secrets: the app secret and the tokens are encrypted at rest and never shown, logged or exported.

One store is connected to the served sandbox and synced with every log on at DEBUG (httpx and
httpcore included), through a token refresh (so rotated tokens are secrets too) and a failed sync
whose server echoes the secrets back in its error message. Then the tests grep, for every secret
and the encryption key: the raw .duckdb and .wal bytes, the logs, the CLI's output, CSV/XLSX/Parquet
exports, every table (history, sync_runs errors, accounts' messages), a backup folder, and the
text of every page the app renders. Each grep also looks for a harmless canary stored the same way,
so a grep that could not see a secret (compression, encoding) fails instead of passing. A wrong key
is a clear error, never garbage.
"""

from __future__ import annotations

import logging
import secrets as pysecrets
import shutil
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import duckdb
import httpx
import pytest
import streamlit as st
from cryptography.fernet import Fernet
from streamlit.testing.v1 import AppTest

from returns_core import accounts as acc
from returns_core.filters import ReturnFilters
from returns_core.secretbox import SecretBox, SecretKeyError, key_file_for
from returns_core.store.backup import backup
from returns_core.store.db import Database
from returns_core.store.returns import export_returns
from returns_core.sync import sync_account
from returns_core.tiktok.sandbox import SANDBOX_APP_SECRET, Sandbox
from returns_core.tiktok_session import tiktok_session
from tests.apptest import new_session, open_app, run_until
from tests.conftest import ROOT
from tests.reliability import FAST_RETRY, all_tables, connect, steady_clock

PAGES = ("app_pages/returns.py", "app_pages/detail.py", "app_pages/review_queue.py", "app_pages/reconciliation.py",
         "app_pages/refunds.py", "app_pages/reasons.py", "app_pages/accounts.py", "app_pages/sync_history.py")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def stored_tokens(db: Database) -> list[str]:
    with db.reader() as con:
        rows = con.execute("SELECT app_secret_enc, access_token_enc, refresh_token_enc FROM accounts").fetchall()
    return [db.box.decrypt(v) for row in rows for v in row if v]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A synced store, its secrets, a canary stored beside them, and every log line written meanwhile."""
    folder = tmp_path_factory.mktemp("secrets")
    key = Fernet.generate_key().decode()
    db = Database(folder / "returns.duckdb", key=key)
    sandbox = Sandbox(seed=7, shops=1, returns=150, wall_clock=steady_clock())
    logs = _Collect()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    canary = "canary_" + pysecrets.token_urlsafe(24)  # stored in the same row as the secrets, in clear
    try:
        with sandbox.serve() as server:
            account, first = connect(db, sandbox, server.url, name=canary)
            sandbox.faults.inject("expire_token", count=1)  # the sync refreshes: new tokens are secrets too
            result = sync_account(db, account, trigger="test", retry=FAST_RETRY)
            assert result.ok, result.error
            secrets = {SANDBOX_APP_SECRET, first.access_token, first.refresh_token, key, *stored_tokens(db)}
            assert len(secrets) == 6, "the token refresh did not happen"

            # a server that echoes what it was sent (the token, the sign) and the app secret in its error
            def echo(request: httpx.Request) -> httpx.Response:
                message = (f"Invalid token {request.headers['x-tts-access-token']} for app secret "
                           f"{SANDBOX_APP_SECRET}, sign {request.url.params['sign']}")
                assert request.headers["x-tts-access-token"] in secrets
                return httpx.Response(401, json={"code": 36009004, "message": message, "request_id": "x"})

            failed = sync_account(db, acc.get_account(db, account.shop_id), transport=httpx.MockTransport(echo),
                                  trigger="test", retry=FAST_RETRY)
            assert failed.error and "reconnect" in failed.error.lower()
            with db.reader() as con:  # the data to look at is there: the failed run, the Invalid account
                assert con.execute("SELECT count(*) FROM sync_runs WHERE state = 'failed'").fetchone()[0] == 1
            yield SimpleNamespace(db=db, key=key, sandbox=sandbox, server=server, account=account, canary=canary,
                                  secrets=secrets, logs=logs, failed=failed)
    finally:
        root.removeHandler(logs)
        root.setLevel(old_level)


def assert_no_secret(text: str, secrets: set[str], where: str) -> None:
    leaked = [s[:6] + "..." for s in secrets if s in text]
    assert not leaked, f"{len(leaked)} secret(s) found in {where}: {leaked}"


def test_secrets_are_encrypted_at_rest_in_the_file_and_the_wal(world, tmp_path):
    db: Database = world.db
    raw = db.path.read_bytes()
    assert world.canary.encode() in raw, "the grep cannot see text stored in the file"
    assert_no_secret(raw.decode("latin-1"), world.secrets, "the .duckdb file")

    # committed but not yet checkpointed: the same row as it sits in the WAL
    with db.reader() as con:  # an open connection keeps the next commit in the WAL
        with db.writer() as writer:
            writer.execute("UPDATE accounts SET updated_at = now(), name = name, app_secret_enc = app_secret_enc, "
                           "access_token_enc = access_token_enc, refresh_token_enc = refresh_token_enc")
        con.execute("SELECT 1")
        wal = db.path.with_name(db.path.name + ".wal")
        assert wal.exists()
        wal_bytes = wal.read_bytes()
    assert world.canary.encode() in wal_bytes, "the grep cannot see text in the WAL"
    assert_no_secret(wal_bytes.decode("latin-1"), world.secrets, "the .wal file")
    # and the ciphertext there is real: it decrypts with the key, to the secret
    with db.reader() as con:
        enc = con.execute("SELECT app_secret_enc FROM accounts").fetchone()[0]
    assert enc.startswith("gAAAAA") and SecretBox(world.key.encode()).decrypt(enc) == SANDBOX_APP_SECRET


def test_a_wrong_key_is_a_clear_error_never_garbage(world, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(world.db.path, copy)
    wrong = Database(copy, key=Fernet.generate_key().decode())
    account = acc.get_account(wrong, world.account.shop_id)  # listing accounts needs no key
    with pytest.raises(SecretKeyError) as refused, tiktok_session(wrong, account):
        pass
    message = str(refused.value)
    assert message.startswith("Stored credentials cannot be decrypted with this key")
    assert "\n" not in message
    assert_no_secret(message, world.secrets, "the wrong-key message")

    before = all_tables(wrong)
    result = sync_account(wrong, acc.get_account(wrong, world.account.shop_id), trigger="test")
    assert result.error == message
    after = all_tables(wrong)
    assert after.pop("sync_runs")[-1][6:12] == ("failed", 0, 0, 0, 0, message)
    before.pop("sync_runs")
    assert after == before, "a sync with the wrong key changed data"

    with pytest.raises(SecretKeyError, match="The encryption key is malformed"):
        _ = Database(copy, key="not-a-fernet-key").box


def test_a_wrong_key_on_the_command_line_is_one_line_without_a_traceback(world, tmp_path, cli_env):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(world.db.path, copy)
    env = {**cli_env, "RETURNS_DESK_KEY": Fernet.generate_key().decode()}
    proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(copy), "sync"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Stored credentials cannot be decrypted with this key" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "gAAAAA" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")


def test_logs_at_debug_carry_no_secret(world):
    text = "\n".join(world.logs.lines)
    assert "HTTP Request: POST" in text and "token/refresh" in text, "httpx's logs were not captured"
    assert_no_secret(text, world.secrets, "the logs")


def test_no_table_holds_a_secret_in_clear_history_sync_runs_and_messages_included(world):
    assert_no_secret(world.failed.error, world.secrets, "the sync result")
    text = repr(all_tables(world.db))
    assert world.canary in text
    assert_no_secret(text, world.secrets, "the tables")
    with world.db.reader() as con:
        error, auth_error = con.execute(
            "SELECT (SELECT error FROM sync_runs WHERE state = 'failed'), (SELECT auth_error FROM accounts)").fetchone()
    assert "reconnect" in error.lower() and "reconnect" in auth_error.lower()


def test_exports_carry_no_secret(world, tmp_path):
    with world.db.reader() as con:  # a known value that exports do contain, as the canary
        tracking = con.execute("SELECT max(return_id) FROM returns").fetchone()[0]
    for suffix in (".csv", ".xlsx", ".parquet"):
        out = tmp_path / f"all{suffix}"
        assert export_returns(world.db, ReturnFilters(), out) >= 150
        if suffix == ".xlsx":
            with zipfile.ZipFile(out) as z:
                text = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
        elif suffix == ".parquet":
            text = repr(duckdb.sql(f"SELECT * FROM read_parquet('{out}')").fetchall())
        else:
            text = out.read_text()
        assert tracking in text
        assert_no_secret(text, world.secrets, out.name)


def test_a_backup_folder_carries_no_secret_in_clear(world, tmp_path):
    result = backup(world.db, tmp_path / "audit")
    texts = []
    for path in sorted(result.path.rglob("*")):
        if path.suffix == ".parquet":
            texts.append(repr(duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()))
        elif path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    text = "\n".join(texts)
    assert world.canary in text
    assert_no_secret(text, world.secrets, "the backup folder")


def ui_text(at: AppTest) -> str:
    """Everything an AppTest run rendered: every element's protobuf, values and table bytes included."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


@pytest.fixture
def app_env(world, monkeypatch):
    monkeypatch.setenv("RETURNS_DB", str(world.db.path))
    monkeypatch.setenv("RETURNS_DESK_KEY", world.key)


def test_no_page_of_the_app_shows_a_secret(world, app_env):
    with world.db.reader() as con:
        return_id = con.execute("SELECT min(return_id) FROM returns").fetchone()[0]
    seen = []
    for page in PAGES:
        at = open_app(page, **({"id": return_id} if page.endswith("detail.py") else {}))
        text = ui_text(at)
        seen.append(text)
        assert_no_secret(text, world.secrets, page)
    everything = "\n".join(seen)
    assert world.canary in everything and return_id in everything, "the page text was not captured"
    assert f"Return {return_id}" in everything and "reconnect" in everything.lower()


def test_the_command_line_never_prints_a_secret(world, cli_env, tmp_path):
    db: Database = world.db
    env = {**cli_env, "RETURNS_DESK_KEY": world.key, "RETURNS_DEBUG": "1"}  # debug logs on stderr too
    fresh = world.sandbox.issue_tokens()
    secrets = set(world.secrets) | {fresh["access_token"], fresh["refresh_token"]}
    url = world.server.url

    def run(*args: str, ok: bool = True) -> str:
        proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(db.path), *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert (proc.returncode == 0) == ok, proc.stderr
        return proc.stdout + proc.stderr

    output = [
        run("accounts", "add", world.canary, "--app-key", "sandbox-demo-app-key", "--app-secret", SANDBOX_APP_SECRET,
            "--access-token", fresh["access_token"], "--refresh-token", fresh["refresh_token"], "--api-base", url),
        run("accounts", "add", "refused", "--app-key", "sandbox-demo-app-key", "--app-secret", SANDBOX_APP_SECRET,
            "--access-token", fresh["access_token"] + "x", "--refresh-token", fresh["refresh_token"], "--api-base",
            url, ok=False),
        run("accounts", "list"),
    ]
    world.sandbox.faults.inject("expire_token", count=1)
    output.append(run("sync"))
    secrets |= set(stored_tokens(db))  # the ones the sync just got
    output += [run("export", "--out", str(tmp_path / "x.csv")), run("backup", "--out", str(tmp_path / "audit"))]
    text = "\n".join(output)
    assert world.canary in text and "DEBUG" in text, "the CLI's output was not captured"
    assert "Reconnected account" in text
    assert_no_secret(text, secrets, "the command line's output")


def test_without_a_configured_key_one_is_generated_beside_the_database_for_its_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    db = Database(tmp_path / "returns.duckdb")
    token = db.box.encrypt("a-secret-token")
    key_file = key_file_for(db.path)
    assert key_file.exists() and key_file.stat().st_mode & 0o777 == 0o600
    assert Database(tmp_path / "returns.duckdb").box.decrypt(token) == "a-secret-token"  # the same key next time
    db.migrate()
    assert key_file.read_bytes().strip() not in db.path.read_bytes()


@pytest.mark.parametrize("right_key", [True, False], ids=["right key", "wrong key"])
def test_the_app_takes_its_key_from_secrets_toml(world, monkeypatch, right_key):
    connect(world.db, world.sandbox, world.server.url, name=world.canary)  # Active again, whatever ran before
    monkeypatch.setenv("RETURNS_DB", str(world.db.path))
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = new_session(secrets={"returns_desk": {
            "encryption_key": world.key if right_key else Fernet.generate_key().decode()}})
        at.run()
        at.sidebar.button(key="sidebar_sync").click().run()
        run_until(at, lambda a: a.sidebar.success or a.sidebar.error)
        said = [str(e.value) for e in (*at.sidebar.success, *at.sidebar.error)]
        assert not at.exception, at.exception
        if right_key:
            assert "synced" in said[0]
        else:
            assert "Stored credentials cannot be decrypted with this key" in said[0]
        text = ui_text(at)
        assert "gAAAAA" not in text
        assert_no_secret(text, world.secrets | set(stored_tokens(world.db)), "the page after a sync")
        assert not key_file_for(world.db.path).exists(), "the app made a key file although secrets.toml has a key"
    finally:
        st.cache_data.clear()
        st.cache_resource.clear()


# --- one key, read the same way by the app and the command line (issue 15, item 4) -------------------


@pytest.fixture
def store_copy(world, tmp_path):
    """A copy of the synced store (its secrets encrypted with world.key), connected afresh, no key file."""
    connect(world.db, world.sandbox, world.server.url, name=world.canary)  # Active again, whatever ran before
    world.db.checkpoint()
    copy = tmp_path / "store" / "returns.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(world.db.path, copy)
    return copy


def secrets_toml(folder, key: str):
    (folder / ".streamlit").mkdir(parents=True)
    (folder / ".streamlit" / "secrets.toml").write_text(f'[returns_desk]\nencryption_key = "{key}"\n')


@pytest.mark.parametrize("where", ["project folder", "home folder"])
def test_the_command_line_reads_the_key_from_secrets_toml_where_streamlit_does(world, store_copy, tmp_path, cli_env,
                                                                                where):
    """The README's advice (move the key into secrets.toml, delete the key file) must not break cron."""
    env = {k: v for k, v in cli_env.items() if k != "RETURNS_DESK_KEY"}
    project, home = tmp_path / "project", tmp_path / "home"
    secrets_toml(project if where == "project folder" else home, world.key)
    project.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(store_copy), "sync"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "synced" in proc.stdout or " new, " in proc.stdout
    assert not key_file_for(store_copy).exists(), "the CLI made a new key although secrets.toml has one"


def test_the_command_line_never_makes_a_new_key_for_a_store_that_holds_secrets(store_copy, tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if k != "RETURNS_DESK_KEY"}
    env["HOME"] = str(tmp_path / "home")  # no secrets.toml anywhere, no key in the environment
    proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(store_copy), "sync"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert (f"The store {store_copy.name} holds encrypted credentials, but its key was not found in "
            "`.streamlit/secrets.toml` ([returns_desk] encryption_key), RETURNS_DESK_KEY") in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in proc.stderr
    assert not key_file_for(store_copy).exists(), "a new key was made for secrets it cannot open"


def test_a_broken_secrets_toml_is_named_not_skipped(store_copy, tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if k != "RETURNS_DESK_KEY"}
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text("[returns_desk\nencryption_key = \n")
    proc = subprocess.run([sys.executable, "-m", "returns_core", "--db", str(store_copy), "sync"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"{(tmp_path / '.streamlit' / 'secrets.toml').resolve()} is not valid TOML" in proc.stdout
    assert not key_file_for(store_copy).exists()


def test_the_app_never_makes_a_new_key_for_a_store_that_holds_secrets(world, store_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("RETURNS_DB", str(store_copy))
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    at = open_app("app_pages/accounts.py")
    at.button(key="accounts_test").click().run()
    assert not at.exception, at.exception
    said = [str(e.value).replace("\\", "") for e in at.error]  # as shown: Markdown escapes removed
    assert said and said[0].startswith(f"Failed: The store {store_copy.name} holds encrypted credentials, but its "
                                       "key was not found"), said
    assert not key_file_for(store_copy).exists(), "the app made a new key for secrets it cannot open"
