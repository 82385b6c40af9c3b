"""The README's promises about set-up: exactly two commands up front, the second one being what
CI's ``.ci/run`` runs, and the pictures it shows exist."""

from __future__ import annotations

import re
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
    assert commands[1].endswith("python -m pytest") and "pip install" in commands[1]


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert start_here_commands()[1] in ci


def test_the_pictures_the_readme_shows_exist() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert pictures
    for picture in pictures:
        assert (ROOT / picture).is_file(), picture
