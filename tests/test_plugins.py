"""The plugin registry (innx.plugins) with real distributions written into ``tmp_path``.

A distribution is a module plus ``NAME-VERSION.dist-info/{METADATA,entry_points.txt}`` on
``sys.path``: ``importlib.metadata`` finds it exactly as it finds a pip-installed one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from innx.errors import InnxError, PluginError
from innx.plugins import GROUPS, PluginEntry, Registry, registry

if TYPE_CHECKING:
    from conftest import Site

Install = Callable[..., None]


@pytest.fixture
def install(site: Site) -> Install:
    """``install(dist, {group: {name: "module:attr"}}, modules={name: source}, version=...)``
    puts a distribution on ``sys.path`` (see the ``site`` fixture in conftest.py)."""

    def install_(
        dist: str,
        entry_points: dict[str, dict[str, str]],
        modules: dict[str, str] | None = None,
        version: str = "0.1",
    ) -> None:
        for name, source in (modules or {}).items():
            site.module(name, source)
        site.dist(dist, entry_points, version=version)

    return install_


GOOD = {
    "innx_tp_good": "def make_a() -> str:\n    return 'a'\n\ndef make_b() -> str:\n    return 'b'\n"
}
BROKEN = {
    "innx_tp_count": "imports = 0\n",
    "innx_tp_broken": """
        import innx_tp_count
        innx_tp_count.imports += 1
        raise ImportError("needs libfoo 9")
    """,
}


def ours(reg: Registry, group: str) -> list[str]:
    """Names in ``group`` that these tests installed (ignores whatever else is installed)."""
    return [e.name for e in reg.entries(group) if e.dist.startswith("innx-tp")]


def test_discovers_and_loads_lazily_once(install: Install) -> None:
    install(
        "innx-tp-good",
        {
            "innx.backbones": {"a": "innx_tp_good:make_a"},
            "innx.datasets": {"b": "innx_tp_good:make_b"},
        },
        GOOD,
        version="1.2",
    )
    reg = registry()
    before = reg.scans
    assert "innx_tp_good" not in sys.modules
    assert ours(reg, "innx.backbones") == ["a"]
    assert "innx_tp_good" not in sys.modules  # listing does not import
    entry = reg.entries("innx.backbones")[0]
    assert entry == PluginEntry("innx.backbones", "a", "innx_tp_good:make_a", "innx-tp-good", "1.2")
    make_a = reg.load("innx.backbones", "a")
    assert make_a() == "a"
    assert reg.load("innx.backbones", "a") is make_a
    assert reg.load("innx.datasets", "b")() == "b"
    reg.report()
    reg.failures()
    assert reg.scans == before + 1


def test_unknown_name_lists_the_choices(install: Install) -> None:
    install("innx-tp-good", {"innx.backbones": {"a": "innx_tp_good:make_a", "b": "x:y"}}, GOOD)
    with pytest.raises(PluginError, match=r"^no backbone named 'c'; choose one of: ") as err:
        registry().load("innx.backbones", "c")
    choices = str(err.value).split("choose one of: ", 1)[1].split(", ")
    assert {"a", "b"} <= {choice.strip(" .;") for choice in choices}
    if not registry().names("innx.autoencoders"):  # none installed: say so instead of a list
        with pytest.raises(PluginError, match="no autoencoder named 'z'; no autoencoder plugin"):
            registry().load("innx.autoencoders", "z")
    with pytest.raises(PluginError, match=r"unknown plugin group 'innx\.nope'; choose one of"):
        registry().load("innx.nope", "a")


def test_a_broken_plugin_fails_alone_and_once(install: Install) -> None:
    install(
        "innx-tp-broken",
        {"innx.backbones": {"bad": "innx_tp_broken:make"}},
        BROKEN,
        version="0.3",
    )
    install("innx-tp-good", {"innx.backbones": {"a": "innx_tp_good:make_a"}}, GOOD)
    reg = registry()
    message = (
        "backbone plugin 'bad' from innx-tp-broken 0.3 failed to load: ImportError: needs "
        "libfoo 9; reinstall or uninstall innx-tp-broken"
    )
    for _ in range(2):
        with pytest.raises(PluginError) as info:
            reg.load("innx.backbones", "bad")
        assert str(info.value) == message
        assert isinstance(info.value.__cause__, ImportError)  # for INNX_DEBUG tracebacks
    loaded = reg.load_all("innx.backbones")
    assert loaded["a"]() == "a" and "bad" not in loaded
    failures = [f for f in reg.failures() if f.entry.dist.startswith("innx-tp")]
    assert [(f.entry.name, f.status, f.error) for f in failures] == [("bad", "failed", message)]
    import innx_tp_count

    assert innx_tp_count.imports == 1  # the failed import is cached, not retried


def test_two_distributions_claiming_a_name(install: Install) -> None:
    install("innx-tp-one", {"innx.backbones": {"same": "innx_tp_good:make_a"}}, GOOD, "1.0")
    install(
        "innx-tp-two", {"innx.backbones": {"same": "innx_tp_good:make_b", "c": "x:y"}}, {}, "2.0"
    )
    reg = registry()
    message = (
        "backbone 'same' is provided by both innx-tp-one 1.0 and innx-tp-two 2.0; "
        "uninstall one of them"
    )
    with pytest.raises(PluginError) as info:
        reg.load("innx.backbones", "same")
    assert str(info.value) == message
    assert "innx_tp_good" not in sys.modules  # neither candidate was imported
    statuses = [s for s in reg.failures() if s.entry.name == "same"]
    assert [(s.entry.dist, s.status, s.error) for s in statuses] == [
        ("innx-tp-one", "duplicate", message),
        ("innx-tp-two", "duplicate", message),
    ]


@pytest.mark.parametrize(
    ("selection", "loads"),
    [
        ("none", set()),
        ("innx-tp-one", {"one"}),
        ("INNX_TP.ONE , innx-tp-two", {"one", "two"}),  # case, -/_/. and spaces do not matter
        ("two", {"two"}),  # an entry-point name also selects
        ("", {"one", "two"}),
    ],
)
def test_innx_plugins_limits_what_loads(
    install: Install, monkeypatch: pytest.MonkeyPatch, selection: str, loads: set[str]
) -> None:
    install("innx-tp-one", {"innx.datasets": {"one": "innx_tp_good:make_a"}}, GOOD)
    install("innx-tp-two", {"innx.datasets": {"two": "innx_tp_good:make_b"}})
    monkeypatch.setenv("INNX_PLUGINS", selection)
    reg = registry()
    reg.reset()
    assert set(reg.load_all("innx.datasets")) & {"one", "two"} == loads
    status = {s.entry.name: s.status for s in reg.report() if s.entry.dist.startswith("innx-tp")}
    assert status == {n: "ok" if n in loads else "disabled" for n in ("one", "two")}
    assert reg.selection == (selection or None)
    if "one" not in loads:
        with pytest.raises(PluginError, match="from innx-tp-one is disabled by INNX_PLUGINS"):
            reg.load("innx.datasets", "one")


def test_disabling_one_of_two_settles_a_clash(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("innx-tp-one", {"innx.backbones": {"same": "innx_tp_good:make_a"}}, GOOD)
    install("innx-tp-two", {"innx.backbones": {"same": "innx_tp_good:make_b"}})
    monkeypatch.setenv("INNX_PLUGINS", "innx-tp-two")
    registry().reset()
    assert registry().load("innx.backbones", "same")() == "b"


def test_register_goes_through_the_same_checks(
    install: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("innx-tp-one", {"innx.datasets": {"same": "innx_tp_good:make_a"}}, GOOD)
    reg = registry()

    def local() -> str:
        return "local"

    with reg.registered("innx.datasets", "mine", local, dist="my-notebook") as entry:
        assert entry.value.endswith(":test_register_goes_through_the_same_checks.<locals>.local")
        assert reg.load("innx.datasets", "mine") is local
        with (
            reg.registered("innx.datasets", "same", local, dist="my-notebook", version="3"),
            pytest.raises(PluginError, match=r"both innx-tp-one 0\.1 and my-notebook 3"),
        ):
            reg.load("innx.datasets", "same")
        assert reg.load("innx.datasets", "same")() == "a"  # unregistered: no clash any more
    with pytest.raises(PluginError, match="no dataset named 'mine'"):
        reg.load("innx.datasets", "mine")

    # entries of innx itself are never disabled, third-party ones are
    monkeypatch.setenv("INNX_PLUGINS", "none")
    reg.reset()
    with (
        reg.registered("innx.datasets", "builtin", local),
        reg.registered("innx.datasets", "third", local, dist="my-notebook"),
    ):
        assert reg.load("innx.datasets", "builtin") is local
        with pytest.raises(PluginError, match="disabled by INNX_PLUGINS=none"):
            reg.load("innx.datasets", "third")


def test_reject_marks_a_loaded_plugin_failed(install: Install) -> None:
    reg = registry()
    with reg.registered("innx.commands", "odd", 42, dist="innx-tp-odd", version="1"):
        assert reg.load("innx.commands", "odd") == 42
        reg.reject("innx.commands", "odd", "is an int, not a function")
        message = (
            "command plugin 'odd' from innx-tp-odd 1 is an int, not a function; "
            "uninstall innx-tp-odd or ask its authors for a fix"
        )
        with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
            reg.load("innx.commands", "odd")
        [status] = [s for s in reg.report() if s.entry.name == "odd"]
        assert (status.status, status.error) == ("failed", message)


def test_report_rows_are_json_ready_and_ordered(install: Install) -> None:
    install(
        "innx-tp-good",
        {
            "innx.commands": {"z": "innx_tp_good:make_a"},
            "innx.backbones": {"b": "innx_tp_good:make_b", "a": "innx_tp_good:make_a"},
        },
        GOOD,
    )
    report = [s for s in registry().report() if s.entry.dist == "innx-tp-good"]
    assert [(s.entry.group, s.entry.name) for s in report] == [
        ("innx.backbones", "a"),
        ("innx.backbones", "b"),
        ("innx.commands", "z"),
    ]
    assert report[0].as_dict() == {
        "group": "innx.backbones",
        "name": "a",
        "value": "innx_tp_good:make_a",
        "dist": "innx-tp-good",
        "version": "0.1",
        "status": "ok",
        "error": None,
    }
    assert GROUPS == ("innx.backbones", "innx.autoencoders", "innx.datasets", "innx.commands")
    assert issubclass(PluginError, InnxError)


def test_importing_innx_plugins_imports_no_plugin(install: Install) -> None:
    install("innx-tp-broken", {"innx.backbones": {"bad": "innx_tp_broken:make"}}, BROKEN)
    reg = Registry()  # a fresh registry has not even read the entry points
    assert reg.scans == 0
    assert "bad" in reg.names("innx.backbones")
    assert reg.scans == 1 and "innx_tp_broken" not in sys.modules
