"""``innx demo --device``: every stage runs on the demo's device, which the demo resolves before
any work and says once (not once per stage). The stages' work is stood in for: this checks what
reaches them, not the fits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from innx.cli.app import build_app
from innx.device import device_line
from innx.errors import ConfigError
from innx.ops.demo import runner
from innx.ops.demo.plan import PLANS
from innx.ops.demo.stages import Stage, demo_stages
from innx.plugins import Registry


def test_every_stage_gets_the_demo_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reached: list[tuple[str, str]] = []  # (what ran, on which device)

    def record(name: str) -> Any:
        def stand_in(options: Any, *_args: Any, **_kwargs: Any) -> None:
            reached.append((name, options.device))

        return stand_in

    targets = {
        "innx.ops.fit.classifier": ["fit_classifier"],
        "innx.ops.fit.autoencoder": ["fit_autoencoder"],
        "innx.ops.extract.extraction": ["extract"],
        "innx.ops.fit.invariance": ["fit_invariance"],
        "innx.ops.fit.semantic.fit": ["fit_semantic"],
        "innx.ops.analyze.analysis": ["analyze"],
        "innx.ops.render.modes": [f"render_{m}" for m in ("samples", "layers", "mix", "animate")],
        "innx.ops.render.semantic": ["render_swap", "render_interpolate"],
    }
    for module, names in targets.items():
        for name in names:
            monkeypatch.setattr(f"{module}.{name}", record(name))
    plan = PLANS["quick"]
    for device in ("cpu", None):  # None: the default, auto
        reached.clear()
        given = {} if device is None else {"device": device}
        for stage in demo_stages(tmp_path / str(device), plan, None, **given):
            if stage.name != "data":  # writes PNG files: no network, no device
                (tmp_path / str(device)).mkdir(exist_ok=True)
                stage.make(False)
        assert {name for name, _ in reached} == {n for names in targets.values() for n in names}
        assert {on for _, on in reached} == {device or "auto"}, reached


def fake_stages(seen: dict[str, Any]) -> Any:
    """``demo_stages`` whose stages only say their device (as the real ones do) and one line."""

    def stages(out: Path, plan: Any, log: Any, *, device: str) -> list[Stage]:
        seen["device"] = device
        from innx.device import resolve_device

        def make(_resume: bool) -> None:
            if log is not None:
                log(device_line(resolve_device(device)))
                log("a stage's own line")

        return [Stage(f"s{i}", out / f"s{i}", lambda: False, make) for i in range(3)]

    return stages


def test_the_demo_says_its_device_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(runner, "demo_stages", fake_stages(seen))
    out = tmp_path / "demo"
    args = ["demo", "-o", str(out), "--device", "cpu", "--verbose"]
    result = CliRunner().invoke(build_app(Registry()), args, prog_name="innx")
    assert result.exit_code == 0, result.output
    assert seen == {"device": "cpu"}
    lines = result.stderr.splitlines()
    assert lines.count("innx: using device cpu") == 1, result.stderr
    assert lines[0] == "innx: using device cpu"  # before the first stage
    assert sum("a stage's own line" in line for line in lines) == 3  # the stages' other lines
    assert result.stdout.strip() == str(out / "report")


def test_run_demo_resolves_the_device_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(runner, "demo_stages", fake_stages(seen))
    told: list[torch.device] = []
    logged: list[str] = []
    runner.run_demo(tmp_path / "a", device="auto", on_device=told.append, log=logged.append)
    assert seen == {"device": "auto"}  # the stages get what was asked, each records what ran
    assert told == [torch.device("cuda" if torch.cuda.is_available() else "cpu", told[0].index)]
    assert logged == ["a stage's own line"] * 3
    with pytest.raises(ConfigError, match="--device 'gpu' is not a torch device"):
        runner.run_demo(tmp_path / "b", device="gpu")
    assert not (tmp_path / "b").exists()
