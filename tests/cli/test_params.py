"""``innx.cli.params``: one declaration and one parser per shared flag, defaults read from the ops.

The tests walk the real command tree (every built-in command), so a command that re-declares a
shared option, writes a default of its own or parses ``--rows`` its own way fails here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
import typer
from typer.testing import CliRunner

import innx.cli
from innx.cli.app import build_app
from innx.cli.params import ROWS_FORM, OpsDefault, check_seed, parse_invariance, parse_rows
from innx.errors import ConfigError
from innx.plugins import Registry

CLI = Path(innx.cli.__file__).parent

SAME_NAME_OTHER_ROLE = {
    # flag: its declarations; one name, a role that differs by command (each help says which)
    "--layer": 3,  # extract: layers to store; fit invariance: the layer to fit; render: a check
    "--factor": 3,  # fit semantic: factor specs; analyze: concepts to report; render: one factor
    "--samples": 2,  # analyze: rows to analyze; render: invariance samples per input (-n)
    "--noise": 2,  # fit invariance: on the layer's values; fit semantic: on the codes, annealed
    "--size": 2,  # data shapes: the image size to draw; fit autoencoder: one of 32, 64, 128
    "--backbone": 2,  # extract may omit it (--weights RUN names it); fit classifier: smallcnn
    "--autoencoder": 2,  # extract: whose codes to store; elsewhere: overrides the store's
    "--classifier": 2,  # fit autoencoder: agreement on reconstructions; analyze, attack: predictions
}
"""Flags that several commands take in different roles, with how many declarations they have."""

LITERAL_DEFAULTS = {
    ("demo", "--output"),  # the demo's folder: a choice of the command line, no ops default
    ("data shapes", "--n"),  # written in the command: its --help must not import innx.data
    ("data shapes", "--size"),
    ("data shapes", "--seed"),
}
"""Options whose default is written in the command, not read from the ops (with the reason)."""


@pytest.fixture(scope="module")
def commands() -> dict[str, Any]:
    """Every built-in command (no plugins), by its name under ``innx``: ``"render samples"``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INNX_PLUGINS", "none")
        root = typer.main.get_command(build_app(Registry()))
    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[" ".join(path)] = command

    walk(root, ())
    return found


def options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and p.name != "help"]


def flags(option: Any) -> list[str]:
    return [*option.opts, *option.secondary_opts]


def declarations() -> dict[str, list[str]]:
    """Every flag named in a ``typer.Option(...)`` call in ``innx/cli``, with where it is."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "typer.Option"):
                continue
            named = [a.value for a in node.args if isinstance(a, ast.Constant)]
            assert named, f"{path.name}:{node.lineno}: write the option's flags out"
            for flag in named:
                for one in flag.split("/"):
                    found[one].append(f"{path.name}:{node.lineno}")
    return found


# -- --rows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rows"),
    [
        (None, ()),
        ("7", (7,)),
        ("0,5,10-12", (0, 5, 10, 11, 12)),
        (" 3 , 4-4 ", (3, 4)),
        ("9,2-3,2", (9, 2, 3, 2)),  # in the order given, repeats kept
        ("0-0", (0,)),
    ],
)
def test_rows_parse_numbers_and_inclusive_ranges(text: str | None, rows: tuple[int, ...]) -> None:
    assert parse_rows(text) == rows


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("5-2", "backward range '5-2'"),
        ("x", "got 'x'"),
        ("-3", "got '-3'"),
        ("3-", "got '3-'"),
        ("1-2-3", "got '1-2-3'"),
        ("1,,2", "got ''"),
        ("", "got ''"),
        ("0:512", "ranges are A-B, both ends included"),
        ("1.5", "got '1.5'"),
        ("²", "got '²'"),
    ],
)
def test_a_bad_rows_value_says_the_accepted_form(text: str, detail: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rows(text)
    message = str(caught.value)
    assert message.startswith(f"--rows takes {ROWS_FORM}") and "\n" not in message
    assert detail in message


def test_every_command_taking_rows_refuses_a_bad_value_in_one_line(
    commands: dict[str, Any], tmp_path: Path
) -> None:
    taking = [
        name for name, cmd in commands.items() if any("--rows" in flags(o) for o in options(cmd))
    ]
    assert {"analyze", "render samples", "render interpolate"} <= set(taking)
    needs = {  # the other required options of each; rows are parsed before any file is opened
        "analyze": ["--invariance", "inv"],
        "attack": ["--invariance", "inv"],
        "render samples": ["--invariance", "inv"],
        "render layers": ["--invariance", "inv"],
        "render mix": ["--invariance", "inv"],
        "render animate": ["--invariance", "inv"],
        "render swap": ["--semantic", "sem", "--factor", "f"],
        "render interpolate": ["--semantic", "sem", "--factor", "f"],
    }
    assert set(taking) == set(needs)
    for name in taking:
        for bad in ("5-2", "x", "-3"):
            args = [
                *name.split(),
                "acts.h5",
                *needs[name],
                "--rows",
                bad,
                "-o",
                str(tmp_path / "o"),
            ]
            result = CliRunner().invoke(build_app(Registry()), args, prog_name="innx")
            assert result.exit_code == 1, (name, bad, result.output)
            assert result.stderr.splitlines() == [
                result.stderr.strip()
            ] and result.stderr.startswith(f"error: --rows takes {ROWS_FORM}"), (name, bad)


def test_rows_past_64_bits_or_too_many_rows_are_one_line() -> None:
    """Not an OverflowError, nor a tuple of a hundred billion rows filling the memory."""
    with pytest.raises(ConfigError, match=r"^--rows takes row numbers up to 9223372036854775807"):
        parse_rows("0-99999999999999999999999")
    with pytest.raises(ConfigError, match=r"^--rows names more than 10000000 rows"):
        parse_rows("0-99999999999")
    assert parse_rows(f"{2**63 - 1}") == (2**63 - 1,)


def test_every_command_taking_seed_refuses_one_past_64_bits(
    commands: dict[str, Any], tmp_path: Path
) -> None:
    taking = [
        name for name, cmd in commands.items() if any("--seed" in flags(o) for o in options(cmd))
    ]
    assert {"extract", "fit classifier", "render samples", "data shapes"} <= set(taking)
    for name in taking:
        for bad in (str(2**63), str(2**70), "-1"):
            out = tmp_path / "o"
            has_o = any("-o" in flags(o) for o in options(commands[name]))
            where = ["x", "-o", str(out)] if has_o else [str(out)]
            args = [*name.split(), *where, "--seed", bad]
            result = CliRunner().invoke(build_app(Registry()), args, prog_name="innx")
            assert result.exit_code == 1, (name, bad, result.output)
            assert result.stderr == (
                f"error: --seed takes a whole number from 0 to {2**63 - 1}, got {bad}\n"
            ), (name, result.stderr)
            assert not out.exists()
    assert check_seed(2**63 - 1) == 2**63 - 1 and check_seed(None) is None


# -- --invariance, --kernels ----------------------------------------------------------------------


def test_invariance_is_run_or_layer_equals_run(tmp_path: Path) -> None:
    assert parse_invariance("runs/inv") == ("runs/inv", None)
    assert parse_invariance("pool=runs/inv") == ("runs/inv", "pool")
    odd = tmp_path / "a=b"
    odd.mkdir()
    assert parse_invariance(str(odd)) == (str(odd), None)  # a path that exists is a path
    with pytest.raises(ConfigError, match="names no run"):
        parse_invariance("pool=")


def test_kernels_reach_the_options_of_render_and_analyze(commands: dict[str, Any]) -> None:
    """A bad ``--kernels`` is refused by the ops options it is passed to (one line, exit 1)."""
    taking = [
        n for n, cmd in commands.items() if any("--kernels" in flags(o) for o in options(cmd))
    ]
    assert {"analyze", "attack", "fit invariance", "fit semantic"} | {
        f"render {mode}" for mode in ("samples", "layers", "mix", "swap", "interpolate", "animate")
    } == set(taking)
    for name in ("analyze", "attack", "render samples", "render swap", "render interpolate"):
        needs = ["--semantic", "s", "--factor", "f"] if "swap" in name or "interp" in name else []
        needs = needs or ["--invariance", "inv"]
        args = [*name.split(), "acts.h5", *needs, "--kernels", "cuda", "-o", "out.png"]
        result = CliRunner().invoke(build_app(Registry()), args, prog_name="innx")
        assert result.exit_code == 1, (name, result.output)
        message = "error: --kernels must be one of auto, torch, triton, got 'cuda'"
        assert result.stderr.strip() == message, name


# -- --device -------------------------------------------------------------------------------------

DEVICE_NEEDS = {  # the other arguments of each command taking --device; the device is checked first
    "extract": ["shapes:n=4,size=32", "--backbone", "smallcnn", "--layer", "pool"],
    "fit classifier": ["shapes:n=4,size=32"],
    "fit autoencoder": ["shapes:n=4,size=32"],
    "fit invariance": ["acts.h5", "--layer", "fc"],
    "fit semantic": ["acts.h5", "--factor", "shape"],
    "analyze": ["acts.h5", "--invariance", "inv"],
    "attack": ["acts.h5", "--invariance", "inv"],
    "demo": [],
    **{f"render {mode}": ["acts.h5", "--invariance", "inv"]
       for mode in ("samples", "layers", "mix", "animate")},
    **{f"render {mode}": ["acts.h5", "--semantic", "s", "--factor", "f"]
       for mode in ("swap", "interpolate")},
}  # fmt: skip


def test_every_command_taking_device_defaults_to_auto(commands: dict[str, Any]) -> None:
    """``--device auto`` (CUDA when there is one) is the default of every command that runs a
    network, ``innx demo`` included, read from the ops like every default."""
    taking = {
        name: option
        for name, command in commands.items()
        for option in options(command)
        if "--device" in flags(option)
    }
    assert set(taking) == set(DEVICE_NEEDS)
    for name, option in taking.items():
        assert isinstance(option.default, OpsDefault), name
        assert option.default() == "auto" and str(option.default) == "auto", name


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "error: --device 'gpu' is not a torch device; use auto, cpu, cuda or cuda:N"),
        pytest.param(
            "cuda",
            "error: --device cuda needs CUDA, but ",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_a_device_this_machine_lacks_is_one_line_before_any_work(
    device: str, message: str, tmp_path: Path
) -> None:
    for name, needs in DEVICE_NEEDS.items():
        out = tmp_path / ("out.png" if name.startswith("render") else "out")
        args = [*name.split(), *needs, "--device", device, "-o", str(out)]
        result = CliRunner().invoke(build_app(Registry()), args, prog_name="innx")
        assert result.exit_code == 1, (name, result.output)
        assert len(result.stderr.splitlines()) == 1, (name, result.stderr)
        assert result.stderr.startswith(message), (name, result.stderr)
        assert not out.exists(), name


# -- one declaration, one default -----------------------------------------------------------------


def test_no_option_is_declared_twice(commands: dict[str, Any]) -> None:
    """A flag that several commands take is declared by one ``typer.Option`` call, in
    ``params.py``; only the flags of :data:`SAME_NAME_OTHER_ROLE` have one per role."""
    users: dict[str, set[str]] = defaultdict(set)
    for name, command in commands.items():
        for option in options(command):
            for flag in flags(option):
                users[flag].add(name)
    declared = declarations()
    shared = {flag for flag, names in users.items() if len(names) > 1}
    assert {"--rows", "--invariance", "--device", "--kernels", "--output", "-o"} <= shared
    for flag in sorted(shared):
        where = declared[flag]
        assert len(where) == SAME_NAME_OTHER_ROLE.get(flag, 1), (flag, where)
        if flag not in SAME_NAME_OTHER_ROLE:
            assert where[0].startswith("params.py:"), (flag, where)
    assert set(SAME_NAME_OTHER_ROLE) <= shared  # no stale entry
    helps = {(flag, o.help) for c in commands.values() for o in options(c) for flag in flags(o)}
    for flag in ("--rows", "--device", "--kernels", "--seed", "--invariance", "--batch-size"):
        assert len({h for f, h in helps if f == flag}) == 1, flag  # one meaning, one help


def test_every_default_is_read_from_the_ops(commands: dict[str, Any]) -> None:
    """No value is written as a default in ``innx/cli``: an option's default is ``None`` (not
    given), ``False`` (a switch), or read from the ops options it fills, and that read works."""
    for name, command in sorted(commands.items()):
        for option in options(command):
            default, flag = option.default, max(flags(option), key=len)
            if isinstance(default, OpsDefault):
                value = default()
                assert value is not None, (name, flag)
                assert str(default) == str(value)
            elif (name, flag) in LITERAL_DEFAULTS:
                assert default is not None
            else:
                switch = option.is_flag and not option.secondary_opts and default is False
                assert default is None or switch, (name, flag, default)


def test_defaults_follow_the_ops_dataclasses(commands: dict[str, Any]) -> None:
    from innx.ops.analyze.analysis import AnalyzeOptions
    from innx.ops.fit.invariance import InvarianceFit
    from innx.ops.render.semantic import InterpolateRender

    def default(command: str, flag: str) -> Any:
        [option] = [o for o in options(commands[command]) if flag in flags(o)]
        value = option.default  # click calls a callable default when the flag is not given
        return value() if callable(value) else value

    assert (
        default("fit invariance", "--grad-clip")
        == InvarianceFit.__dataclass_fields__["grad_clip"].default
    )
    assert default("fit invariance", "--lr") == InvarianceFit.__dataclass_fields__["lr"].default
    assert (
        default("analyze", "--judge-steps")
        == AnalyzeOptions.__dataclass_fields__["judge_steps"].default
    )
    assert default("analyze", "--kernels") == "auto"
    fields = InterpolateRender.__dataclass_fields__
    assert default("render interpolate", "--strip") == fields["strip"].default
    assert default("render interpolate", "--frames") == fields["frames"].default
    assert default("render interpolate", "--fps") == 1000 / fields["frame_ms"].default
    assert not any("--steps" in flags(o) for o in options(commands["render interpolate"]))
