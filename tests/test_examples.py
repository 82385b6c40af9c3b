"""The plugin template in examples/ works as documented: its entry points give `innx hello`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Site

TEMPLATE = Path(__file__).resolve().parents[1] / "examples" / "plugin-template"


def install_template(site: Site) -> dict[str, str]:
    """Declare the template's entry points (read from its pyproject.toml) in ``site``."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text())["project"]
    site.dist(project["name"], project["entry-points"], version=project["version"])
    return site.env(PYTHONPATH=f"{site.root}:{TEMPLATE / 'src'}")


def test_template_command_runs(site: Site) -> None:
    env = install_template(site)
    run = [sys.executable, "-m", "innx"]
    result = subprocess.run(
        [*run, "hello", "Ada", "--shout"], env=env, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, "HELLO, ADA\n")
    result = subprocess.run([*run, "hello", " "], env=env, capture_output=True, text=True)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == "error: name must not be empty; pass a name, e.g. innx hello Ada"
    )
    result = subprocess.run([*run, "plugins"], env=env, capture_output=True, text=True)
    assert "innx-hello" in result.stdout and "hello" in result.stdout
