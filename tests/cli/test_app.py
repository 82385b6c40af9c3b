"""The ``innx`` command line end to end: in-process through ``CliRunner`` and as real processes
(``python -m innx`` and the ``innx`` console script), with real plugin distributions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.testing import CliRunner, Result

from innx import __version__
from innx.cli.app import build_app
from innx.errors import ConfigError
from innx.plugins import registry

if TYPE_CHECKING:
    from conftest import Site

GOOD = """
    import typer
    from innx.errors import ConfigError

    def hello(name: str = "world") -> None:
        '''Say hello.'''
        typer.echo(f"hello {name}")

    def fail() -> None:
        raise ConfigError("the frobnicator is missing; pass --frob")

    def interrupt() -> None:
        raise KeyboardInterrupt

    def nap() -> None:
        import time
        print("ready", flush=True)
        for _ in range(600):  # short sleeps: Ctrl-C is seen whichever thread the signal reaches
            time.sleep(0.1)

    tools = typer.Typer(help="Tools.")

    @tools.command()
    def ping() -> None:
        typer.echo("pong")

    @tools.command()
    def echo(word: str) -> None:
        typer.echo(word)

    def make_tiny() -> str:
        return "tiny-net"

    NOT_A_COMMAND = "just a string"
"""

BROKEN = """
    raise ImportError("needs libfoo 9")
"""


@pytest.fixture
def plugins(site: Site) -> Site:
    """A good distribution (commands, a command group, a backbone, a string posing as a command,
    one clashing with a built-in) and a broken one (its module raises ImportError)."""
    site.module("innx_t_good", GOOD)
    site.module("innx_t_broken", BROKEN)
    site.dist(
        "innx-t-good",
        {
            "innx.commands": {
                "hello": "innx_t_good:hello",
                "fail": "innx_t_good:fail",
                "interrupt": "innx_t_good:interrupt",
                "nap": "innx_t_good:nap",
                "tools": "innx_t_good:tools",
                "notcmd": "innx_t_good:NOT_A_COMMAND",
                "plugins": "innx_t_good:hello",
            },
            "innx.backbones": {"tiny": "innx_t_good:make_tiny"},
        },
        version="1.2",
    )
    site.dist(
        "innx-t-broken",
        {
            "innx.commands": {"broken": "innx_t_broken:app"},
            "innx.backbones": {"broken-net": "innx_t_broken:make"},
        },
    )
    return site


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``innx ARGS`` in-process on a freshly built app (it sees the current registry)."""
    return CliRunner().invoke(build_app(), list(args), env=env, prog_name="innx")


def run(
    site: Site | None, *args: str, script: bool = False, python: tuple[str, ...] = (), **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python [PYTHON] -m innx ARGS`` (or the console script) in a fresh process."""
    if script:
        exe = Path(sys.executable).parent / "innx"
        if not exe.exists():
            pytest.skip("the innx console script is not installed next to this interpreter")
        cmd = [str(exe), *args]
    else:
        cmd = [sys.executable, *python, "-m", "innx", *args]
    if site is None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")} | env
    else:
        full_env = site.env(**env)
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=120)


def rows(report: dict[str, Any], dist: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The ``plugins --json`` rows of one distribution, by (group, name)."""
    return {(r["group"], r["name"]): r for r in report["plugins"] if r["dist"] == dist}


# -- without plugins ----------------------------------------------------------------------------


def test_version_help_and_bad_usage_in_process(site: Site) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"innx {__version__}"
    result = invoke("--help")
    assert result.exit_code == 0
    assert "plugins" in result.stdout and "Usage" in result.stdout
    for bad in (["no-such-command"], ["plugins", "--no-such-option"]):
        result = invoke(*bad)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "console-script"])
def test_version_help_and_bad_usage_in_a_process(script: bool) -> None:
    result = run(None, "--version", script=script)
    assert (result.returncode, result.stdout.strip()) == (0, f"innx {__version__}")
    result = run(None, "--help", script=script)
    assert result.returncode == 0
    assert "Usage: innx" in result.stdout and "plugins" in result.stdout
    result = run(None, "frobnicate", script=script)
    assert result.returncode == 2
    assert "No such command" in result.stderr and result.stdout == ""


def test_light_commands_do_not_import_torch(plugins: Site) -> None:
    # `innx plugins` itself imports every plugin (the only way to know it loads), and the built-in
    # backbones and datasets need torch; help and version must stay instant.
    light = (
        ["--version"],
        ["--help"],
        ["plugins", "--help"],
        ["fit", "--help"],
        ["data", "--help"],
    )
    for args in light:
        result = run(plugins, *args, python=("-X", "importtime"))
        imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
        assert result.returncode == 0, result.stderr
        assert not {m for m in imported if m == "torch" or m.startswith("torch.")}, args


def test_plugins_json_without_plugins_is_valid(site: Site) -> None:
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert set(report) == {"selection", "plugins", "failures"}
    assert report["selection"] is None


# -- with plugins, in a real process ------------------------------------------------------------


def test_plugins_report_in_a_process(plugins: Site) -> None:
    result = run(plugins, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    good = rows(report, "innx-t-good")
    assert good[("innx.backbones", "tiny")] == {
        "group": "innx.backbones",
        "name": "tiny",
        "value": "innx_t_good:make_tiny",
        "dist": "innx-t-good",
        "version": "1.2",
        "status": "ok",
        "error": None,
    }
    assert good[("innx.commands", "hello")]["status"] == "ok"
    assert good[("innx.commands", "tools")]["status"] == "ok"
    assert good[("innx.commands", "notcmd")]["status"] == "failed"
    assert "not a typer.Typer or a function" in good[("innx.commands", "notcmd")]["error"]
    assert "clashes with the built-in" in good[("innx.commands", "plugins")]["error"]
    broken = rows(report, "innx-t-broken")
    assert {r["status"] for r in broken.values()} == {"failed"}
    for row in broken.values():
        assert "failed to load: ImportError: needs libfoo 9" in row["error"]
        assert "reinstall or uninstall innx-t-broken" in row["error"]
    failing = {(r["dist"], r["name"]) for r in report["failures"]}
    assert failing == {
        ("innx-t-broken", "broken"),
        ("innx-t-broken", "broken-net"),
        ("innx-t-good", "notcmd"),
        ("innx-t-good", "plugins"),
    }

    table = run(plugins, "plugins")
    assert table.returncode == 0
    for word in ("innx-t-good", "innx-t-broken", "tiny", "failed", "ok"):
        assert word in table.stdout


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "console-script"])
def test_a_broken_plugin_breaks_only_itself(plugins: Site, script: bool) -> None:
    assert run(plugins, "--version", script=script).returncode == 0
    result = run(plugins, "hello", "--name", "ada", script=script)
    assert (result.returncode, result.stdout) == (0, "hello ada\n")
    result = run(plugins, "broken", "--any", "args", script=script)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: command plugin 'broken' from innx-t-broken 0.1")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback_of_the_plugin(plugins: Site) -> None:
    result = run(plugins, "broken", INNX_DEBUG="1")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ImportError: needs libfoo 9" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: command plugin 'broken'")


def test_user_error_and_interrupt_in_a_process(plugins: Site) -> None:
    result = run(plugins, "fail")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "error: the frobnicator is missing; pass --frob\n"
    result = run(plugins, "interrupt")
    assert result.returncode == 130


def _like_a_terminal() -> None:
    """Ctrl-C reaches the command as in a shell: the test runner's process may ignore or block
    SIGINT (a background job, a pytest-xdist worker), and a child inherits that."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130(plugins: Site) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "innx", "nap"],
        env=plugins.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_like_a_terminal,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in stderr


def test_innx_plugins_env_limits_what_loads(plugins: Site) -> None:
    result = run(plugins, "hello", INNX_PLUGINS="none")
    assert result.returncode == 2  # no such command: it is not loaded
    report = json.loads(run(plugins, "plugins", "--json", INNX_PLUGINS="none").stdout)
    assert report["selection"] == "none"
    statuses = {r["status"] for r in report["plugins"] if r["dist"] != "innx"}
    assert statuses == {"disabled"}
    assert report["failures"] == []

    result = run(plugins, "plugins", "--json", INNX_PLUGINS="INNX_T_GOOD")
    report = json.loads(result.stdout)
    assert {r["status"] for r in rows(report, "innx-t-broken").values()} == {"disabled"}
    assert rows(report, "innx-t-good")[("innx.commands", "hello")]["status"] == "ok"
    assert run(plugins, "hello", INNX_PLUGINS="innx-t-good").stdout == "hello world\n"


def test_duplicate_command_names_both_distributions(site: Site) -> None:
    site.module("innx_t_a", "def hi() -> None:\n    print('a')\n")
    site.module("innx_t_b", "def hi() -> None:\n    print('b')\n")
    site.dist("innx-t-a", {"innx.commands": {"hi": "innx_t_a:hi"}}, version="1.0")
    site.dist("innx-t-b", {"innx.commands": {"hi": "innx_t_b:hi"}}, version="2.0")
    result = run(site, "hi")
    assert result.returncode == 1
    assert result.stderr == (
        "error: command 'hi' is provided by both innx-t-a 1.0 and innx-t-b 2.0; "
        "uninstall one of them\n"
    )
    report = json.loads(run(site, "plugins", "--json").stdout)
    dup = [r for r in report["plugins"] if r["name"] == "hi"]
    assert [r["status"] for r in dup] == ["duplicate", "duplicate"]
    assert run(site, "hi", INNX_PLUGINS="innx-t-b").stdout == "b\n"


# -- with plugins, in-process -------------------------------------------------------------------


def test_plugin_commands_in_process(plugins: Site) -> None:
    assert invoke("hello").stdout == "hello world\n"
    assert invoke("tools", "ping").stdout == "pong\n"
    assert invoke("tools", "echo", "hi").stdout == "hi\n"
    assert "hello" in invoke("--help").stdout
    result = invoke("broken")
    assert result.exit_code == 1
    assert "innx-t-broken" in result.stderr and result.stdout == ""
    result = invoke("notcmd")
    assert result.exit_code == 1
    assert "is a str, not a typer.Typer or a function" in result.stderr
    result = invoke("plugins", "--json")  # the built-in wins over the clashing plugin
    assert result.exit_code == 0
    json.loads(result.stdout)


def test_innx_error_is_one_line_and_debug_adds_the_traceback(site: Site) -> None:
    def boom() -> None:
        raise ConfigError("preset 'huge' is unknown; choose one of: cpu, paper")

    with registry().registered("innx.commands", "boom", boom, dist="innx-tests"):
        result = invoke("boom")
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == "error: preset 'huge' is unknown; choose one of: cpu, paper\n"
        result = invoke("boom", env={"INNX_DEBUG": "1"})
        assert result.exit_code == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "ConfigError" in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: preset 'huge'")


def test_keyboard_interrupt_exits_130(site: Site) -> None:
    def slow() -> None:
        raise KeyboardInterrupt

    with registry().registered("innx.commands", "slow", slow, dist="innx-tests"):
        result = invoke("slow")
    assert result.exit_code == 130


def test_a_command_plugin_typer_app_becomes_a_group(site: Site) -> None:
    group = typer.Typer()

    @group.command()
    def one() -> None:
        typer.echo("1")

    @group.command()
    def two() -> None:
        typer.echo("2")

    with registry().registered("innx.commands", "nums", group, dist="innx-tests"):
        assert invoke("nums", "two").stdout == "2\n"
        assert invoke("nums", "three").exit_code == 2


def test_an_invalid_command_signature_breaks_only_itself(site: Site) -> None:
    def odd(value: list[list[int]]) -> None:  # typer cannot build this parameter
        typer.echo(str(value))

    with registry().registered("innx.commands", "odd", odd, dist="innx-tests"):
        app = build_app()
        assert CliRunner().invoke(app, ["--version"]).exit_code == 0
        result = CliRunner().invoke(app, ["odd", "x"])
        assert result.exit_code == 1
        assert "error: command plugin 'odd' from innx-tests 0 is not a valid command" in (
            result.stderr
        )
        status = {s.entry.name: s.status for s in registry().report()}
        assert status["odd"] == "failed"


def test_discovery_happens_once(plugins: Site) -> None:
    before = registry().scans
    for _ in range(3):
        assert invoke("hello").stdout == "hello world\n"
        invoke("plugins", "--json")
    assert registry().scans == before + 1
