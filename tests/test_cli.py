"""The command line as users run it (subprocesses): DESIGN.md's contract, one-line errors, no tracebacks."""

from __future__ import annotations

import csv
import functools
import os
import re
import stat
import subprocess
import threading
from pathlib import Path

import duckdb
import pytest

from returns_core import accounts as acc
from returns_core import connect as connecting
from returns_core import domain
from returns_core.store.db import Database
from returns_core.tiktok_session import tiktok_session
from tests.conftest import PYTHON, wait_until

SANDBOX_SECRET = "sandbox-demo-app-secret-public"


def run(env: dict, *args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "returns_core", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, pattern: str, code: int | None = None) -> None:
    assert result.returncode != 0, result.stdout
    if code is not None:
        assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and re.search(pattern, lines[0]), lines[0]


@pytest.fixture
def served(cli_env, tmp_path):
    """`sandbox serve --port 0` as a subprocess: (base URL, auth code, banner text)."""
    proc = subprocess.Popen([PYTHON, "-m", "returns_core", "sandbox", "serve", "--port", "0", "--returns", "60",
                             "--shops", "1", "--state", str(tmp_path / "sandbox.json")],
                            env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    banner: list[str] = []
    reader = threading.Thread(target=lambda: banner.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    wait_until(lambda: any("Press Ctrl-C" in line for line in banner) or proc.poll() is not None,
               "sandbox serve to print its banner")
    assert proc.poll() is None, proc.stderr.read()
    text = "".join(banner)
    url = re.search(r"Base URL \(API and auth\):\s+(\S+)", text).group(1)
    code = re.search(r"Auth code:\s+(\S+)", text).group(1)
    yield url, code, text
    proc.terminate()
    proc.wait(10)


def connect(cli_env, url: str, code: str, name: str = "Shop") -> subprocess.CompletedProcess:
    return run(cli_env, "accounts", "add", name, "--app-key", "sandbox-demo-app-key", "--app-secret", SANDBOX_SECRET,
               "--auth-code", code, "--api-base", url, "--auth-base", url)


def test_round_trip_serve_add_sync_export(cli_env, served, tmp_path):
    url, code, banner = served
    assert "accounts add" in banner and code in banner

    added = connect(cli_env, url, code)
    assert added.returncode == 0, added.stderr
    assert "Added account 'Shop'" in added.stdout

    synced = run(cli_env, "sync")
    assert synced.returncode == 0, synced.stderr
    assert re.search(r"Shop: page 1, 50 of \d+ returns read \(50 new", synced.stderr)
    # a shop without cancellations: its returns only
    assert re.search(r"^Shop: 2 page\(s\), \d+ new, 0 updated, 0 unchanged in [\d.]+ s: \d+ returns\b(?! and)",
                     synced.stdout, re.M)

    out = tmp_path / "returns.csv"
    exported = run(cli_env, "export", "--out", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [name for name, _ in domain.GRID_COLUMNS]

    # exactly what the served sandbox has, read back over HTTP with the stored (encrypted) tokens
    db = Database(cli_env["RETURNS_DB"])
    account = acc.get_account(db, "Shop")
    with tiktok_session(db, account) as client:
        truth = [o for page in client.iter_return_pages() for o in page.return_orders]
    assert sorted(r["Marketplace Return ID"] for r in rows) == sorted(o["return_id"] for o in truth)
    by_id = {r["Marketplace Return ID"]: r for r in rows}
    for obj in truth:
        row = by_id[obj["return_id"]]
        assert row["Marketplace Status"] == obj["return_status"]
        assert row["Status"] == (domain.STATUS_MAP.get(obj["return_status"]) or "")
        assert row["Type"] == domain.TYPE_MAP[obj["return_type"]]
        assert row["Account ID"] == account.shop_id
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["Updated At"])



def test_incremental_sync_and_filtered_export(monkeypatch, capsys, cli_env, served, tmp_path):
    url, code, _ = served
    assert connect(cli_env, url, code).returncode == 0
    assert in_process(monkeypatch, capsys, cli_env, "sync")[0] == 0
    status, out, _ = in_process(monkeypatch, capsys, cli_env, "sync", "--account", "Shop")
    assert status == 0 and " 0 new, 0 updated," in out
    status, out, err = in_process(monkeypatch, capsys, cli_env, "export", "--out", str(tmp_path / "r.parquet"),
                                  "--account", "Shop", "--type", "refund", "--created-from", "2000-01-01")
    assert status == 0, err
    assert re.fullmatch(r"Exported \d+ return\(s\) to .*r\.parquet\n", out)


def test_accounts_list_enable_disable_and_no_secrets(monkeypatch, capsys, cli_env, served):
    url, code, _ = served
    assert connect(cli_env, url, code).returncode == 0
    listed = run(cli_env, "accounts", "list")
    assert listed.returncode == 0
    header, _, row = listed.stdout.splitlines()[:3]
    assert header.split()[:4] == ["NAME", "SHOP", "ID", "SHOP"] and "LAST SYNC" in header
    assert row.startswith("Shop ") and "Active" in row and "never" in row
    assert SANDBOX_SECRET not in listed.stdout and "TTP_" not in listed.stdout

    def cli(*args: str) -> tuple[int, str, str]:
        return in_process(monkeypatch, capsys, cli_env, *args)

    status, out, _ = cli("accounts", "disable", "Shop")
    assert status == 0 and "Disabled account 'Shop'" in out
    assert "Disabled" in cli("accounts", "list")[1]
    status, _, err = cli("sync")
    assert status == 1 and err.startswith("error: No enabled accounts")
    assert cli("accounts", "enable", "Shop")[0] == 0
    assert "Active" in cli("accounts", "list")[1]
    assert cli("sync")[0] == 0
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \(ok\)", cli("accounts", "list")[1])


def test_db_flag_picks_the_store_and_the_secret_may_come_from_env(monkeypatch, capsys, cli_env, served, tmp_path):
    url, code, _ = served
    other = tmp_path / "other.duckdb"
    env = {**cli_env, "RETURNS_APP_SECRET": SANDBOX_SECRET}
    added = run(env, "--db", str(other), "accounts", "add", "X", "--app-key", "sandbox-demo-app-key",
                "--auth-code", code, "--api-base", url, "--auth-base", url)
    assert added.returncode == 0, added.stderr
    assert "X " in in_process(monkeypatch, capsys, cli_env, "accounts", "list", "--db", str(other))[1]
    status, _, err = in_process(monkeypatch, capsys, cli_env, "accounts", "list")  # $RETURNS_DB: none there
    assert status == 2 and err.startswith(f"error: There is no store at {cli_env['RETURNS_DB']}")
    assert not Path(cli_env["RETURNS_DB"]).exists()


def test_bad_credentials_are_one_line(cli_env, served):
    url, code, _ = served
    result = run(cli_env, "accounts", "add", "Shop", "--app-key", "sandbox-demo-app-key", "--app-secret",
                 "not-the-secret", "--auth-code", code, "--api-base", url, "--auth-base", url)
    assert_one_line_error(result, "TikTok refused the app key or the app secret", 1)
    assert "not-the-secret" not in result.stderr
    tokens = run(cli_env, "accounts", "add", "Shop", "--app-key", "sandbox-demo-app-key", "--app-secret",
                 SANDBOX_SECRET, "--access-token", "TTP_forged", "--refresh-token", "TTP_forged_r",
                 "--api-base", url, "--auth-base", url)
    assert_one_line_error(tokens, "TikTok refused the access token", 1)
    assert "TTP_forged" not in tokens.stderr
    assert not Path(cli_env["RETURNS_DB"]).exists(), "a refused first connect left an empty store behind"


def in_process(monkeypatch, capsys, env: dict, *args: str) -> tuple[int, str, str]:
    """cli.main() in this process (same code path, without a subprocess's start-up cost)."""
    from returns_core import cli

    for key, value in env.items():
        if key.startswith("RETURNS_"):
            monkeypatch.setenv(key, value)
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "pattern", "code"), [
    (("sync", "--account", "Nobody"), "No account named 'Nobody'", 1),
    (("export",), "the following arguments are required: --out", 2),
])
def test_expected_failures_are_one_line_in_a_real_process(cli_env, tmp_path, args, pattern, code):
    Database(cli_env["RETURNS_DB"]).migrate()
    assert_one_line_error(run(cli_env, *args, cwd=tmp_path), pattern, code)


@pytest.mark.parametrize(("args", "pattern", "code"), [
    (("accounts", "disable", "Nobody"), "No account named 'Nobody'", 1),
    (("export", "--out", "x.csv", "--account", "Nobody"), "No account named 'Nobody'", 1),
    (("export", "--out", "x.txt"), "must end in .csv, .xlsx or .parquet", 2),
    (("export", "--out", "x.csv", "--created-from", "2024-02-30"), "not a date", 2),
    (("export", "--out", "x.csv", "--created-from", "2024-03-02", "--created-to", "2024-03-01"), "backwards", 2),
    (("export", "--out", "x.csv", "--status", "Shipped"), "Unknown status 'Shipped'", 2),
    (("export", "--out", "x.csv", "--type", "Swap"), "Unknown type 'Swap'", 2),
    (("accounts", "add", "X", "--app-key", "k", "--access-token", "t", "--refresh-token", "r"),
     "--app-secret is required", 2),
    (("accounts", "add", "X", "--app-key", "k", "--app-secret", "s"), "give --auth-code", 2),
    (("accounts", "add", "X", "--app-key", "k", "--app-secret", "s", "--access-token", "t"),
     "--refresh-token is required", 2),
    (("accounts", "add", "X", "--app-key", "k", "--app-secret", "s", "--access-token", "t", "--auth-code", "c"),
     "not allowed with argument", 2),
    (("sandbox", "serve", "--port", "70000"), "--port must be 0-65535", 2),
    (("frobnicate",), "invalid choice", 2),
])
def test_expected_failures_are_one_line_and_non_zero(monkeypatch, capsys, cli_env, tmp_path, args, pattern, code):
    monkeypatch.chdir(tmp_path)
    Database(cli_env["RETURNS_DB"]).migrate()
    status, _, err = in_process(monkeypatch, capsys, cli_env, *args)
    assert status == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(pattern, lines[0]), err


def test_unreachable_tiktok_is_one_line(monkeypatch, capsys, cli_env):
    from returns_core.tiktok.client import TikTokClient

    # skip the retry back-off
    monkeypatch.setattr(connecting, "TikTokClient", functools.partial(TikTokClient, sleep=lambda s: None))
    status, _, err = in_process(monkeypatch, capsys, cli_env, "accounts", "add", "X", "--app-key", "k",
                                "--app-secret", "s", "--access-token", "t", "--refresh-token", "r",
                                "--api-base", "http://127.0.0.1:9")
    assert status == 1 and err.startswith("error: Cannot reach TikTok") and err.count("\n") == 1


def test_a_held_database_is_waited_for_not_failed(cli_env, tmp_path):
    Database(cli_env["RETURNS_DB"]).migrate()
    holder = duckdb.connect(cli_env["RETURNS_DB"])
    proc = subprocess.Popen([PYTHON, "-m", "returns_core", "accounts", "list"], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the CLI says it waits through the store's own signal: the `.waiting` file with its pid
    waiting = Path(cli_env["RETURNS_DB"] + ".waiting")
    wait_until(lambda: proc.poll() is not None or (waiting.exists() and waiting.read_text().strip() == str(proc.pid)),
               "the CLI to signal that it waits for the database")
    assert proc.poll() is None, f"the CLI should wait for the lock, not end: {proc.stderr.read()}"
    holder.close()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "No accounts yet" in out


def test_an_older_store_is_upgraded_once_with_a_word_first(cli_env, tmp_path):
    from tests.reliability import version_1_store

    store = version_1_store(Path(cli_env["RETURNS_DB"]), "7000000001")
    first = run(cli_env, "export", "--out", str(tmp_path / "all.csv"))
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines()[0].startswith("Upgrading cli.duckdb") and "one time" in first.stderr
    assert len((tmp_path / "all.csv").read_text().splitlines()) == 3  # header + R1 + R2, nothing lost
    again = run(cli_env, "export", "--out", str(tmp_path / "again.csv"))
    assert again.returncode == 0 and "Upgrading" not in again.stderr
    assert store.exists()


# --- which commands may create a store (issue 15, item 13) -----------------------------------------

# Every command that works on a store, with arguments that would otherwise be fine. Only `accounts add`
# creates one (it is how a store starts; DESIGN.md's command line).
READ_COMMANDS = {
    ("accounts", "list"): (), ("accounts", "disable"): ("Shop",), ("accounts", "enable"): ("Shop",),
    ("sync",): (), ("export",): ("--out", "{tmp}/returns.csv"), ("alerts",): (),
    ("backup",): ("--out", "{tmp}/audit"), ("webhooks", "process"): (), ("webhooks", "list"): (),
}
CREATING_COMMANDS = {("accounts", "add"), ("sandbox", "serve")}  # sandbox serve has no store at all


def test_every_command_is_either_a_read_command_or_meant_to_create():
    from returns_core.cli import build_parser
    from tests.test_docs import user_commands

    assert set(user_commands(build_parser())) == set(READ_COMMANDS) | CREATING_COMMANDS


@pytest.mark.parametrize("command", list(READ_COMMANDS), ids=" ".join)
def test_a_command_that_reads_refuses_a_store_that_is_not_there(monkeypatch, capsys, cli_env, tmp_path, command):
    typo = tmp_path / "mistyped" / "retruns.duckdb"
    args = [a.replace("{tmp}", str(tmp_path)) for a in READ_COMMANDS[command]]
    status, out, err = in_process(monkeypatch, capsys, cli_env, "--db", str(typo), *command, *args)
    assert (status, out) == (2, "")
    assert err == f"error: There is no store at {typo}: check --db (or $RETURNS_DB); `accounts add` creates a new one\n"
    assert list(tmp_path.iterdir()) == [], "a mistyped --db created files or folders"


def test_an_empty_db_flag_is_refused_not_read_as_the_default(monkeypatch, capsys, cli_env, tmp_path):
    Database(cli_env["RETURNS_DB"]).migrate()  # the default exists: "" must not quietly mean it
    for args in (("--db", "", "accounts", "list"), ("accounts", "list", "--db", " ")):
        status, out, err = in_process(monkeypatch, capsys, cli_env, *args)
        assert (status, out) == (2, "")
        assert err.startswith("error: --db is empty: give the store's file") and err.count("\n") == 1


def test_accounts_add_creates_a_new_store_says_so_and_makes_it_owner_only(cli_env, served, tmp_path):
    url, code, _ = served
    store = tmp_path / "new" / "shop.duckdb"
    added = subprocess.run([PYTHON, "-m", "returns_core", "--db", str(store), "accounts", "add", "Shop", "--app-key",
                            "sandbox-demo-app-key", "--app-secret", SANDBOX_SECRET, "--auth-code", code, "--api-base",
                            url, "--auth-base", url], env=cli_env, capture_output=True, text=True, timeout=60,
                           preexec_fn=lambda: os.umask(0o022))  # a usual umask: files would be 0644
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[0] == f"Created a new store at {store}."
    assert "Added account 'Shop'" in added.stdout
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    again = run(cli_env, "--db", str(store), "accounts", "list")
    assert again.returncode == 0 and "Created" not in again.stdout + again.stderr and "Shop" in again.stdout


def test_a_refused_first_connect_leaves_no_store_and_no_folder_behind(monkeypatch, capsys, cli_env, tmp_path):
    store = tmp_path / "new" / "deeper" / "shop.duckdb"
    status, _, err = in_process(monkeypatch, capsys, cli_env, "--db", str(store), "accounts", "add", "Shop\u202e",
                                "--app-key", "k", "--app-secret", "s", "--access-token", "t", "--refresh-token", "r")
    assert status == 2 and "invisible characters" in err
    assert list(tmp_path.iterdir()) == []
