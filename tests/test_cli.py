"""The command line as a whole: the commands it lists, and how it reports errors (what the
user can fix: one line, exit 2; a bug: a short message, the debugging hint, exit 1)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from idia import engine
from idia.cli import app
from idia.errors import IdiaError
from idia.names import NameSourceError

COMMANDS = ["check", "audit", "train", "lab", "lab-origins", "count-names", "serve", "web",
            "evaluate", "report", "unlearn", "certify", "defence", "cache"]


def test_help_lists_every_command_in_order():
    import typer

    assert list(typer.main.get_command(app).commands) == COMMANDS


def check_with(monkeypatch, error: Exception, **env: str):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(engine, "create_attack", broken)
    return CliRunner().invoke(app, ["check", "--name", "Ada Lovelace", "--model", "open_clip:x",
                                    "--no-cache", "--quiet"], env=env)


@pytest.mark.parametrize("error", [ValueError("operands could not be broadcast together"),
                                   TypeError("unsupported operand type(s)"), KeyError("p_face")])
def test_an_internal_error_is_a_bug_exit_1_with_the_debugging_hint(monkeypatch, error):
    result = check_with(monkeypatch, error, IDIA_DEBUG="")
    assert result.exit_code == 1, result.output
    assert f"internal error: {type(error).__name__}" in result.stderr
    assert "IDIA_DEBUG=1" in result.stderr and "error: " not in result.stderr.replace(
        "internal error: ", "")
    assert "Traceback" not in result.output


def test_with_idia_debug_an_internal_error_shows_its_traceback(monkeypatch):
    result = check_with(monkeypatch, ValueError("deep"), IDIA_DEBUG="1")
    assert isinstance(result.exception, ValueError) and str(result.exception) == "deep"


@pytest.mark.parametrize("error", [NameSourceError("names file is empty: x.txt"),
                                   FileNotFoundError(2, "No such file or directory", "x.png")])
def test_a_user_error_is_one_line_exit_2(monkeypatch, error):
    result = check_with(monkeypatch, error, IDIA_DEBUG="")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "IDIA_DEBUG" not in lines[0]


def test_every_domain_error_is_an_idia_error():
    """Each exception class idia defines subclasses IdiaError (the CLI's user errors)."""
    import importlib
    import inspect
    import pkgutil

    import idia

    defined = set()
    for module in pkgutil.walk_packages(idia.__path__, "idia."):
        loaded = importlib.import_module(module.name)
        defined |= {cls for _, cls in inspect.getmembers(loaded, inspect.isclass)
                    if issubclass(cls, Exception) and not issubclass(cls, Warning)
                    and cls.__module__ == module.name}
    assert len(defined) >= 20
    assert [cls.__name__ for cls in defined if not issubclass(cls, IdiaError)] == []


def test_check_refuses_fewer_candidates_than_a_name_and_two_decoys_before_loading():
    """--num-names 2 once drew a million decoys (minutes, 9 GB); now it is refused, before the
    model (here a missing file) is loaded."""
    result = CliRunner().invoke(app, ["check", "--name", "Ada Lovelace", "--model",
                                      "open_clip:missing.json:missing.pt", "--num-names", "2",
                                      "--no-cache", "--quiet"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: num_names must be at least 3 (a real name and 2 "\
        "decoys), got 2"
