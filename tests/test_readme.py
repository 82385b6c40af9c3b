"""The README's promises about set-up: exactly two commands up front, the second one being what
CI's ``.ci/run`` runs, the pictures it shows exist, and its command lines take the flags they
are given."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def start_here_commands() -> list[str]:
    section = README.split("## Start here", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the Start here section has no bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_two_setup_commands_the_first_runs_the_demo() -> None:
    commands = start_here_commands()
    assert len(commands) == 2
    assert commands[0].endswith("innx demo") and "pip install" in commands[0]
    assert commands[1].endswith("python -m pytest -n 2") and "pip install" in commands[1]


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert start_here_commands()[1] in ci


def test_the_pictures_the_readme_shows_exist() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture


def readme_commands() -> list[list[str]]:
    """The ``innx`` command lines of the README's bash blocks, as arguments (comments dropped,
    continued lines joined)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.split(" #", 1)[0])
            if words[:1] == ["innx"]:
                lines.append(words[1:])
    return lines


def test_the_readmes_commands_take_the_options_they_are_given() -> None:
    """Every flag in the README's command lines is one its command declares (a renamed flag, such
    as interpolate's --steps becoming --strip, fails here until the README follows)."""
    import typer

    from innx.cli.app import build_app
    from innx.plugins import Registry

    root = typer.main.get_command(build_app(Registry()))
    commands = readme_commands()
    assert len(commands) > 10
    for args in commands:
        command, words = root, list(args)
        while hasattr(command, "commands") and words and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        assert not hasattr(command, "commands"), args
        known = {flag for p in command.params for flag in (*p.opts, *p.secondary_opts)}
        given = {word.split("=", 1)[0] for word in words if word.startswith("-")}
        assert given <= known, (args, sorted(given - known))
