"""Usage errors of every ``residuals`` command: one ``error:`` line on stderr, exit status 2.

The commands are enumerated from the app itself, so a command added later is
covered without touching this file: each gets an unknown flag, a missing
required option or argument (when it has one), and a malformed number (for
each integer option). The messages name the flag as the user types it
(``--policy``), never the Python parameter behind it (``policy_path``).
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer

import residuals.commands
from residuals.cli import app, main
from tests.conftest import ROOT

_SCRIPT = Path(sys.executable).parent / "residuals"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "residuals.cli"]


def _walk(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _walk(sub, (*path, name))
    return found


COMMANDS = _walk(typer.main.get_command(app), ())
LEAVES = [(path, cmd) for path, cmd in COMMANDS if path and not hasattr(cmd, "commands")]


def _ids(items: list[tuple[tuple[str, ...], Any]]) -> list[str]:
    return [" ".join(path) or "residuals" for path, _ in items]


def _flag(param: Any) -> str:
    """The flag as the user types it: the longest of ``--x``/``-x``."""
    return max(param.opts, key=len)


def _is_option(param: Any) -> bool:
    return param.param_type_name == "option"


def usage(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``residuals ARGV`` in-process; assert exit 2 and one ``error:`` line; return it."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out = capsys.readouterr()
    assert info.value.code == 2, (argv, info.value.code, out.err)
    lines = out.err.splitlines()
    assert len(lines) == 1, (argv, out.err)
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in out.err + out.out
    return lines[0]


def test_the_app_has_the_commands_of_the_readme() -> None:
    names = {" ".join(path) for path, _ in LEAVES}
    assert {"attribute", "batch run", "policy check", "policy compare", "ledger verify",
            "statement", "samples make", "db upgrade", "users add", "users list", "dashboard",
            "demo"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=_ids(COMMANDS))
def test_unknown_flag(capsys: pytest.CaptureFixture[str], path: tuple[str, ...],
                      command: Any) -> None:
    line = usage(capsys, *path, "--no-such-flag")
    assert "--no-such-flag" in line


REQUIRING = [(path, cmd) for path, cmd in LEAVES if any(p.required for p in cmd.params)]


def test_commands_with_required_parameters_are_found() -> None:
    assert {"attribute", "batch run", "policy check", "statement"} <= set(_ids(REQUIRING))


@pytest.mark.parametrize(("path", "command"), REQUIRING, ids=_ids(REQUIRING))
def test_missing_required_parameter(capsys: pytest.CaptureFixture[str], path: tuple[str, ...],
                                    command: Any) -> None:
    line = usage(capsys, *path)
    first = next(p for p in command.params if p.required)
    if _is_option(first):
        assert _flag(first) in line, line
        if first.name not in _flag(first):  # e.g. policy_path behind --policy
            assert first.name not in line, line
    else:  # an argument: named as the usage line shows it
        assert first.name in line.lower(), line


def _is_int(hint: Any) -> bool:
    return hint is int or int in typing.get_args(hint)  # int or Optional[int]


def _int_options() -> list[tuple[tuple[str, ...], str]]:
    """(command path, flag) of every integer option, from the commands' type hints."""
    found = []
    for path, cmd in LEAVES:
        hints = typing.get_type_hints(cmd.callback)
        found += [(path, _flag(p)) for p in cmd.params
                  if _is_option(p) and _is_int(hints.get(p.name))]
    return found


INT_OPTIONS = _int_options()


@pytest.mark.parametrize(("path", "flag"), INT_OPTIONS,
                         ids=[f"{' '.join(p)} {f}" for p, f in INT_OPTIONS])
def test_malformed_number(capsys: pytest.CaptureFixture[str], path: tuple[str, ...],
                          flag: str) -> None:
    line = usage(capsys, *path, flag, "abc")
    assert flag in line


def test_there_are_integer_options_to_check() -> None:
    assert (("attribute",), "--k") in INT_OPTIONS
    assert (("policy", "compare"), "--top") in INT_OPTIONS


def test_a_bare_group_prints_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["batch"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "run" in err and "Traceback" not in err


def test_help_still_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["batch", "run", "--help"])
    assert info.value.code == 0 and "--period" in capsys.readouterr().out


# ---- the console script, with the examples users met --------------------------------------

@pytest.mark.parametrize(("argv", "fragments"), [
    (["nosuch"], ["nosuch"]),
    (["attribute", "--k", "abc"], ["--k"]),
    (["batch", "run", "--perod", "X"], ["--perod"]),
    (["batch", "run", "--period", "2026-10", "--data", "data/samples"], ["--policy"]),
    (["policy", "compare", "--top", "-1"], ["--top"]),
], ids=["command", "int", "flag", "missing", "range"])
def test_console_script_usage_errors(argv: list[str], fragments: list[str]) -> None:
    proc = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "policy_path" not in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- every command module is imported directly; a broken one fails loudly ------------------

def _command_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(residuals.commands.__path__)
                  if not m.name.startswith("_"))


def test_every_command_module_adds_commands() -> None:
    registered = {cmd.callback.__module__ for _, cmd in COMMANDS if cmd.callback is not None}
    for name in _command_modules():
        assert f"residuals.commands.{name}" in registered, name


def test_a_missing_command_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "residuals.cli")
    monkeypatch.setitem(sys.modules, "residuals.commands.users", None)  # import fails
    monkeypatch.delattr(residuals.commands, "users")
    with pytest.raises(ImportError):
        importlib.import_module("residuals.cli")


@pytest.mark.parametrize("argv", [["--bad\nflag"], ["batch", "run", "--period\r\nX"],
                                  ["attribute", "--k", "1\n2"], ["no\nsuch"]])
def test_a_hostile_value_still_gives_one_line(capsys: pytest.CaptureFixture[str],
                                              argv: list[str]) -> None:
    usage(capsys, *argv)

