"""The command line the docs show is the one argparse builds (returns_core.cli.build_parser).

README.md and DESIGN.md ("Command line") show usage lines such as

    python -m returns_core [--db PATH] accounts add NAME --app-key K --app-secret S
            (--access-token T --refresh-token R | --auth-code C) [--shop-cipher C]
    python -m returns_core [--db PATH] accounts list | disable NAME | enable NAME

Each line is expanded into the command lines it allows ([optional] parts with and without,
(a | b) and `x | y` alternatives one by one, placeholders given a sample value) and every one
must parse. Every user-facing command argparse has must appear in README.md. DESIGN.md lives
outside this repository (the shared design); its test is skipped where it cannot be found.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import re
from pathlib import Path

import pytest

from returns_core.cli import build_parser
from tests.conftest import ROOT

PROGRAM = "python -m returns_core"
README = ROOT / "README.md"
DESIGN_CANDIDATES = [Path(p) for p in (os.environ.get("RETURNS_DESIGN_MD", ""),) if p] + [
    ROOT / "DESIGN.md", ROOT / "docs" / "DESIGN.md", ROOT.parent / "shared" / "DESIGN.md"]
# What a placeholder stands for when a usage line is tried: argparse checks the types
SAMPLE_VALUES = {"N": "1", "YYYY-MM-DD": "2026-01-01", "FILE.csv|.xlsx|.parquet": "returns.csv"}
# Words in a usage line that stand for more options, documented in prose beside it
PLACEHOLDER_GROUPS = {"[filters]"}


# --- reading the docs -------------------------------------------------------------------------


def usage_lines(markdown: str) -> list[str]:
    """The usage lines of the "Command line" section's code block, continuation lines joined."""
    section = re.search(r"^## Command line.*?\n```\w*\n(.*?)```", markdown, re.S | re.M)
    assert section, "no code block under a '## Command line' heading"
    lines: list[str] = []
    for line in section.group(1).splitlines():
        if line.startswith(PROGRAM):
            lines.append(line.strip())
        elif line.strip() and lines:
            lines[-1] += " " + line.strip()
    assert lines, f"no line starting with {PROGRAM!r} in the Command line block"
    return lines


def tokens(text: str) -> list[str]:
    for group in PLACEHOLDER_GROUPS:
        text = text.replace(group, " ")
    text = text.replace("]...", "]")  # "[--account NAME]...": repeatable; once is enough to check
    return re.findall(r"[\[\]()]|(?<!\S)\|(?!\S)|[^\s\[\]()]+", text)


def expand(items: list[str]) -> list[list[str]]:
    """Every token sequence a usage pattern allows: [x] with and without, (a | b) each way."""
    variants, rest = _alternatives(items, 0)
    assert rest == len(items), f"unbalanced brackets in {' '.join(items)!r}"
    return variants


def _alternatives(items: list[str], i: int) -> tuple[list[list[str]], int]:
    choices: list[list[str]] = []
    while True:
        sequence, i = _sequence(items, i)
        choices += sequence
        if i < len(items) and items[i] == "|":
            i += 1
            continue
        return choices, i


def _sequence(items: list[str], i: int) -> tuple[list[list[str]], int]:
    variants: list[list[str]] = [[]]
    while i < len(items) and items[i] not in ("|", "]", ")"):
        if items[i] in ("[", "("):
            inner, end = _alternatives(items, i + 1)
            assert end < len(items) and items[end] == {"[": "]", "(": ")"}[items[i]], "unbalanced brackets"
            options = inner + ([[]] if items[i] == "[" else [])
            i = end + 1
        else:
            options, i = [[items[i]]], i + 1
        variants = [v + o for v, o in itertools.product(variants, options)]
    return variants, i


def command_lines(usage: str, parser: argparse.ArgumentParser) -> list[list[str]]:
    """The argv lists a usage line allows (without the program).

    In `accounts list | disable NAME | enable NAME` an alternative that starts with another command
    word stands beside the first one's command of the same level.
    """
    assert usage.startswith(PROGRAM), usage
    words = tokens(usage[len(PROGRAM):])
    depth = 0
    top = [[]]
    for word in words:
        if word in ("[", "("):
            depth += 1
        elif word in ("]", ")"):
            depth -= 1
        if word == "|" and depth == 0:
            top.append([])
        else:
            top[-1].append(word)
    argvs = [_argv(v, parser) for v in expand(top[0])]
    first_path = command_path(argvs[0], parser)
    for alternative in top[1:]:
        prefix = _prefix_for(alternative[0], top[0], first_path, parser)
        argvs += [_argv(v, parser) for v in expand(prefix + alternative)]
    return argvs


def _prefix_for(word: str, first: list[str], path: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The words of `first` before the command that `word` (a sibling command) replaces."""
    node = parser
    for level, name in enumerate(path):
        if word in subcommands(node):
            return first[:first.index(path[level])]
        node = subcommands(node)[name]
    raise AssertionError(f"{word!r} is no command beside {' '.join(path)!r}")


def _argv(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Placeholders (NAME, N, URL...) replaced by sample values; commands and options kept."""
    argv, node, expect_value = [], parser, False
    for word in words:
        if word.startswith("--"):
            argv.append(word)
            expect_value = _takes_value(node, word) or _takes_value(parser, word)
        elif not expect_value and word in subcommands(node):
            argv.append(word)
            node = subcommands(node)[word]
        else:
            argv.append(SAMPLE_VALUES.get(word, word.lower()))
            expect_value = False
    return argv


def _takes_value(parser: argparse.ArgumentParser, option: str) -> bool:
    action = parser._option_string_actions.get(option)  # noqa: SLF001 - argparse has no public lookup
    return action is not None and action.nargs != 0


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return dict(action.choices)
    return {}


def command_path(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """The command words in an argv: ["accounts", "add"]."""
    path, node = [], parser
    for word in argv:
        if word in subcommands(node):
            path.append(word)
            node = subcommands(node)[word]
    return path


def user_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command a user can type (hidden ones, help=SUPPRESS, left out)."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            shown = {choice.dest for choice in action._choices_actions}  # noqa: SLF001
            for name, sub in action.choices.items():
                if name in shown:
                    found += user_commands(sub, (*path, name))
            return found
    return [path]


def parse_error(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """None when argparse accepts `argv`, else what it said."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            parser.parse_args(argv)
    except SystemExit as exc:
        return said.getvalue().strip() or f"exit {exc.code}"
    return None


# --- the tests ----------------------------------------------------------------------------------


def design_md() -> Path:
    found = next((p for p in DESIGN_CANDIDATES if p.is_file()), None)
    if found is None:
        pytest.skip("DESIGN.md is not here (set RETURNS_DESIGN_MD to its path)")
    return found


def check_usage(markdown: str, where: str) -> list[tuple[str, ...]]:
    """Every command line the doc's usage allows parses; returns the commands it shows."""
    parser = build_parser()
    shown: list[tuple[str, ...]] = []
    refused = []
    for usage in usage_lines(markdown):
        for argv in command_lines(usage, parser):
            shown.append(tuple(command_path(argv, parser)))
            if (error := parse_error(build_parser(), argv)) is not None:
                refused.append(f"  {usage}\n    as: {' '.join(argv)}\n    argparse: {error}")
    assert not refused, f"{where} shows command lines that returns_core/cli.py refuses:\n" + "\n".join(refused)
    return shown


def test_every_command_line_readme_shows_parses():
    check_usage(README.read_text(), "README.md")


def test_every_command_line_design_md_shows_parses():
    path = design_md()
    check_usage(path.read_text(), f"{path} (DESIGN.md, the shared contract: fix the code or ask for the doc)")


def test_readme_shows_every_command_a_user_can_type():
    shown = set(check_usage(README.read_text(), "README.md"))
    missing = [" ".join(c) for c in user_commands(build_parser()) if c not in shown]
    assert not missing, f"commands of returns_core/cli.py missing from README.md's Command line: {missing}"


def test_the_usage_reader_expands_what_the_docs_write():
    parser = build_parser()
    lines = command_lines(f"{PROGRAM} [--db PATH] accounts list | disable NAME | enable NAME", parser)
    assert ["--db", "path", "accounts", "list"] in lines and ["accounts", "enable", "name"] in lines
    lines = command_lines(f"{PROGRAM} sync [--account NAME]... [--full]", parser)
    assert sorted(lines) == sorted([["sync"], ["sync", "--full"], ["sync", "--account", "name"],
                                    ["sync", "--account", "name", "--full"]])
    add = command_lines(f"{PROGRAM} accounts add NAME --app-key K (--access-token T | --auth-code C)", parser)
    assert add == [["accounts", "add", "name", "--app-key", "k", "--access-token", "t"],
                   ["accounts", "add", "name", "--app-key", "k", "--auth-code", "c"]]
    assert parse_error(parser, ["accounts", "frobnicate"]) is not None
