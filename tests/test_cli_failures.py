"""Expected failures on the command line say what is wrong and what to do (issue 15, item 12).

Each case the hostile run found printing "unexpected ...", through the real CLI: a truncated
store, a read-only or full target for export and backup, a non-ASCII or multi-line token and an
absurd host in `accounts add`, `sandbox serve` with too many returns or a bad state file, and a
linked or existing target. Every one is one line starting "error: ", never "unexpected", never a
traceback, with exit 2 when what was typed is wrong and 1 when the world is (a disk, a file).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from returns_core.store.db import Database
from tests import ui_fixtures as ui
from tests.conftest import PYTHON, ROOT

KEY = Fernet.generate_key().decode()


def one_line_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The single error line, checked: the exit status, no traceback, no "unexpected", the words."""
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text and "unexpected" not in text, text
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert proc.returncode == code, (proc.returncode, lines[0])
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A store with two shops and eight returns, checkpointed (the file is all there is)."""
    db = Database(tmp_path_factory.mktemp("template") / "returns.duckdb", key=KEY)
    ui.seed_store(db)
    db.checkpoint()
    return db.path


@pytest.fixture
def store(template, tmp_path) -> Path:
    path = tmp_path / "returns.duckdb"
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def env(cli_env) -> dict[str, str]:
    return {**cli_env, "RETURNS_DESK_KEY": KEY}


def cli(env: dict, *args: str, limit=None, drop_root: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m returns_core ARGS`: optionally with a file size limit (a full disk as the writer sees it:
    its write fails part way) or without root's right to write anywhere (so a read-only folder is one)."""
    prefix = []
    if drop_root and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]

    def limited() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([*prefix, PYTHON, "-m", "returns_core", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limited)


# --- the store itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("kept", [0.01, 0.1, 0.4], ids=lambda f: f"{f:.0%} left")
@pytest.mark.parametrize("command", [("accounts", "list"), ("export", "--out", "{tmp}/all.csv")], ids=" ".join)
def test_a_truncated_store_is_called_damaged_with_what_to_do(store, env, tmp_path, kept, command):
    with open(store, "r+b") as fh:
        fh.truncate(int(store.stat().st_size * kept))
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    line = one_line_error(cli(env, "--db", str(store), *args), 1, f"The store {store} is damaged or cut short")
    assert line.endswith("restore it from a backup (`backup` makes one), or move it away to start a new store.")
    assert not (tmp_path / "all.csv").exists()


def test_a_file_that_is_no_store_is_named_so(tmp_path, env):
    junk = tmp_path / "notes.duckdb"
    junk.write_text("shopping list\n" * 500)
    one_line_error(cli(env, "--db", str(junk), "accounts", "list"), 1, "is not a Returns Desk store")


# --- targets of export and backup ----------------------------------------------------------------


@pytest.mark.parametrize("command", [("export", "--out", "{dir}/all.csv"), ("export", "--out", "{dir}/all.parquet"),
                                     ("backup", "--out", "{dir}/audit")], ids=lambda c: c[0] + " " + c[-1][-8:])
def test_a_read_only_target_folder_is_one_sentence(store, env, tmp_path, command):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        args = [a.replace("{dir}", str(folder)) for a in command]
        one_line_error(cli(env, "--db", str(store), *args, drop_root=True), 1, "Permission denied",
                       "check the folder's space and permissions, or choose another folder")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", [("export", "--out", "{dir}/all.csv"), ("export", "--out", "{dir}/all.parquet"),
                                     ("backup", "--out", "{dir}/audit")], ids=lambda c: c[0] + " " + c[-1][-8:])
def test_a_target_that_fills_up_is_one_sentence_and_leaves_nothing(store, env, tmp_path, command):
    folder = tmp_path / "small"
    folder.mkdir()
    args = [a.replace("{dir}", str(folder)) for a in command]
    one_line_error(cli(env, "--db", str(store), *args, limit=300), 1, "File too large", "Nothing was written")
    assert list(folder.iterdir()) == [], "a half-written file or folder was left behind"


def test_linked_and_existing_targets_are_refused_in_one_sentence(store, env, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "link.csv").symlink_to(tmp_path / "precious.csv")
    (tmp_path / "link-folder").symlink_to(elsewhere)
    (tmp_path / "full-folder").mkdir()
    (tmp_path / "full-folder" / "keep.txt").write_text("mine")
    db = ["--db", str(store)]
    one_line_error(cli(env, *db, "export", "--out", str(tmp_path / "link.csv")), 2, "it is a link, not a file")
    one_line_error(cli(env, *db, "backup", "--out", str(tmp_path / "link-folder")), 1, "it is a link; choose a new")
    one_line_error(cli(env, *db, "backup", "--out", str(tmp_path / "full-folder")), 1,
                   "already exists and is not empty; choose a new folder")
    assert not (tmp_path / "precious.csv").exists() and list(elsewhere.iterdir()) == []
    assert [p.name for p in (tmp_path / "full-folder").iterdir()] == ["keep.txt"]


# --- accounts add: what was typed is checked before anything is sent -------------------------------


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--access-token", "TTP_tökén", "The access token holds characters TikTok never uses"),
    ("--access-token", "TTP_abc\nTTP_def", "The access token holds characters TikTok never uses"),
    ("--refresh-token", "TTP_refresh ", None),  # a space pasted at the end is trimmed, not refused
    ("--app-secret", "secret\twith tab", "The app secret holds characters TikTok never uses"),
    ("--api-base", "http://" + "a" * 5000 + ".example", "The API base's host name is 5,008 characters long"),
    ("--api-base", "open-api.tiktokglobalshop.com", "is not a web address"),
    ("--auth-base", "https://auth.example:99999", "is not a valid web address"),
], ids=["non-ASCII token", "token with a newline", "trailing space", "tab in secret", "5,000-character host",
        "no scheme", "bad port"])
def test_accounts_add_refuses_what_tiktok_could_never_accept_before_sending_it(env, tmp_path, flag, value, words):
    # 127.0.0.1:9 answers nothing: had anything been sent, the error would be "Cannot reach TikTok"
    given = {"--app-secret": "s", "--access-token": "TTP_a", "--refresh-token": "TTP_r",
             "--api-base": "http://127.0.0.1:9", "--auth-base": "http://127.0.0.1:9", flag: value}
    args = [part for pair in given.items() for part in pair]
    store = tmp_path / "shop.duckdb"
    result = cli(env, "--db", str(store), "accounts", "add", "Shop", "--app-key", "k", *args, timeout=30)
    if words is None:
        one_line_error(result, 1, "Cannot reach TikTok")  # accepted, so it was sent
    else:
        line = one_line_error(result, 2, words)
        assert "paste it again" in line or "give one such as" in line or "check" in line
        if not flag.endswith("-base"):
            assert value.strip() not in line  # a token or secret is never echoed
    assert not store.exists()


# --- sandbox serve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "words"), [
    (("--returns", "100001"), "--returns must be 0 or more and at most 100,000 per shop, not 100,001"),
    (("--shops", "5000"), "--shops must be 1 or more and at most 256, not 5,000"),
    (("--shops", "3", "--apps", "4"), "--apps must be 1 or more and at most 3 (every app has a shop at least), not 4"),
    (("--apps", "0"), "--apps must be 1 or more and at most 2 (every app has a shop at least), not 0"),
])
def test_sandbox_serve_refuses_sizes_it_cannot_build(env, args, words):
    one_line_error(cli(env, "sandbox", "serve", "--port", "0", *args), 2, words)


def test_sandbox_serve_says_what_is_wrong_with_a_bad_state_file(env, tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{ not json")
    one_line_error(cli(env, "sandbox", "serve", "--port", "0", "--state", str(state)), 2,
                   f"--state: cannot read sandbox state {state}", "delete the file to start over")
    assert state.read_text() == "{ not json"
    one_line_error(cli(env, "sandbox", "serve", "--port", "0", "--state", str(tmp_path)), 2,
                   "must be a file in a folder that exists")
