"""Shared fixtures: plugins installed for real, without pip, into ``tmp_path``.

A distribution is a module plus a ``NAME-VERSION.dist-info/`` folder holding ``METADATA`` and
``entry_points.txt``; with that folder on ``sys.path`` (in-process) or ``PYTHONPATH``
(subprocesses), ``importlib.metadata`` finds it exactly as it finds a pip-installed one.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

from innx.plugins import registry

T = TypeVar("T")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n 2 on two cores: one thread per worker (and per process it starts), or the
    # workers' torch threads would fight over the cores
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


class Site:
    """A folder that acts as a site-packages directory for the duration of one test."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def module(self, name: str, source: str) -> None:
        """Write module ``name`` (a top-level ``.py`` file)."""
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()

    def dist(
        self, name: str, entry_points: dict[str, dict[str, str]], version: str = "0.1"
    ) -> None:
        """Install distribution ``name`` declaring ``{group: {entry name: "module:attr"}}``."""
        info = self.root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = []
        for group, entries in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{entry} = {target}" for entry, target in entries.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        importlib.invalidate_caches()
        registry().reset()  # as a fresh process would see it

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that sees this site (and no INNX_* from outside)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNX_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.root), env.get("PYTHONPATH")]))
        env.update(extra)
        return env


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """An empty site on ``sys.path``; the registry is reset before and after, and the modules
    imported from the site are forgotten, so tests do not see each other's plugins."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("INNX_PLUGINS", raising=False)
    monkeypatch.delenv("INNX_DEBUG", raising=False)
    registry().reset()
    yield Site(root)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(root)):
            del sys.modules[name]
    registry().reset()


def write_synthetic_store(
    path: Path,
    n: int = 2000,
    *,
    latents: bool = True,
    complete: bool = True,
    bad_rows: int = 0,
    seed: int = 0,
) -> Path:
    """A real activation store whose code depends on its layers: ``zbar = A · fc + noise``.

    Layers: ``fc`` (8,) and ``conv`` (4, 4, 4) (a feature map carrying ``fc`` in its first
    channel); latents ``[n, 6]``; ``bad_rows`` rows at the start have index -1 (skipped images).
    """
    import numpy as np

    from innx.store import LayerSpec, StoreLayout, StoreWriter

    rng = np.random.default_rng(seed)
    fc = rng.normal(size=(n, 8)).astype(np.float32)
    conv = rng.normal(size=(n, 4, 4, 4)).astype(np.float32)
    conv[:, 0, :2] = fc.reshape(n, 2, 4)
    mixing = rng.normal(size=(8, 6)).astype(np.float32)
    zbar = (fc @ mixing + 0.5 * rng.normal(size=(n, 6))).astype(np.float32)
    index = np.arange(n)
    index[:bad_rows] = -1
    layout = StoreLayout(
        n=n,
        layers=(LayerSpec("fc", "fc", (8,)), LayerSpec("conv", "conv", (4, 4, 4))),
        attributes=(),
        has_labels=True,
        latent_dim=6 if latents else None,
    )
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(n),
            index=index,
            labels=rng.integers(0, 3, n),
            attributes=np.zeros((n, 0), np.float32),
            layers={"fc": fc, "conv": conv},
            **({"latents": zbar} if latents else {}),
        )
        if complete:
            writer.finish()
    return path


def write_factor_store(path: Path, n: int = 3000, *, seed: int = 0, bad_rows: int = 0) -> Path:
    """A real store whose latents mix known factors: ``zbar = Q · [a-code, b-code, c, noise]``.

    Attributes: ``a`` categorical (4 values), ``b`` categorical (3 values), ``c`` continuous;
    ``const`` is categorical with one value. Latents ``[n, 8]``: ``a`` in 2 dims, ``b`` in 2, ``c``
    in 1, 3 dims of noise, rotated by a fixed random orthogonal ``Q``. Layer ``fc`` (8,) holds the
    unrotated code. ``bad_rows`` rows at the start have index -1.
    """
    import numpy as np

    from innx.data.base import Attribute
    from innx.store import LayerSpec, StoreLayout, StoreWriter

    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, n), rng.integers(0, 3, n)
    c = rng.random(n).astype(np.float32)
    a_code = np.array([[1.5, 0], [-1.5, 0], [0, 1.5], [0, -1.5]])[a]
    b_code = np.array([[1.5, 0], [-0.75, 1.3], [-0.75, -1.3]])[b]
    code = np.concatenate(
        [a_code, b_code, 3 * (c[:, None] - 0.5), rng.normal(size=(n, 3))], axis=1
    ) + 0.1 * rng.normal(size=(n, 8))
    q = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    index = np.arange(n)
    index[:bad_rows] = -1
    layout = StoreLayout(
        n=n,
        layers=(LayerSpec("fc", "fc", (8,)),),
        attributes=(
            Attribute("a", "categorical", ("a0", "a1", "a2", "a3")),
            Attribute("b", "categorical", ("b0", "b1", "b2")),
            Attribute("c", "continuous"),
            Attribute("const", "categorical", ("only",)),
        ),
        has_labels=True,
        latent_dim=8,
    )
    attributes = np.stack([a, b, c, np.zeros(n)], axis=1).astype(np.float32)
    with StoreWriter.create(path, layout) as writer:
        writer.write(
            np.arange(n),
            index=index,
            labels=a,
            attributes=attributes,
            layers={"fc": code.astype(np.float32)},
            latents=(code @ q.T).astype(np.float32),
        )
        writer.finish()
    return path


@pytest.fixture
def factor_store(tmp_path: Path) -> Path:
    """A :func:`write_factor_store` of 3000 rows."""
    return write_factor_store(tmp_path / "factors.h5")


@pytest.fixture
def synthetic_store(tmp_path: Path) -> Path:
    """A complete :func:`write_synthetic_store` of 2000 rows, 40 of them skipped as bad."""
    return write_synthetic_store(tmp_path / "acts.h5", bad_rows=40)


@pytest.fixture
def make_store() -> Callable[..., Path]:
    """:func:`write_synthetic_store` itself, for tests that need other variants."""
    return write_synthetic_store


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]
) -> T:
    """``build(folder)`` run once per test run, its result shared by every pytest-xdist worker
    (``pytest -n 2``): the first worker to need it builds it under a file lock while the other
    waits, then reads the pickled result. Without xdist it is a plain session fixture."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    folder, result = base / f"built-{name}", base / f"built-{name}.pickle"
    with FileLock(str(base / f"built-{name}.lock")):
        if result.is_file():
            loaded: T = pickle.loads(result.read_bytes())
            return loaded
        if folder.exists():
            shutil.rmtree(folder)  # a build that failed half way
        folder.mkdir()
        made = build(folder)
        result.write_bytes(pickle.dumps(made))
        return made


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A tiny trained shapes pipeline (see ``tests/tiny_pipeline.py``), built once per test run;
    tests must not modify it."""
    from tiny_pipeline import build_tiny_pipeline

    return built_once(tmp_path_factory, "tiny-pipeline", build_tiny_pipeline)


QUICK_DEMO_SEED = 3


@dataclass(frozen=True)
class QuickDemo:
    """``innx demo --quick --seed 3 -o ROOT/seed-3`` as it ran the first time: its folder, what
    it printed, and how long it took (for the demo's tests and ``benchmarks/demo_figures.py``,
    which reuses a finished ``seed-S`` folder)."""

    root: Path
    out: Path
    stdout: str
    stderr: str
    seconds: float


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> QuickDemo:
    """The quick demo run once per test run and shared; tests must not modify its folder."""
    return built_once(tmp_path_factory, "quick-demo", _run_quick_demo)


def _run_quick_demo(root: Path) -> QuickDemo:
    out = root / f"seed-{QUICK_DEMO_SEED}"
    cmd = [sys.executable, "-m", "innx", "demo", "--quick", "--seed", str(QUICK_DEMO_SEED)]
    started = time.perf_counter()
    done = subprocess.run([*cmd, "-o", str(out)], capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return QuickDemo(root, out, done.stdout, done.stderr, seconds)


SHAPES_PIPELINE_DATA = "shapes:n=20000,size=32,seed=3"  # 2000 held-out rows: v's mean to ±0.02


def run_innx(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m innx ARGS`` in a real process (two threads); it must succeed."""
    cmd = [sys.executable, "-m", "innx", *args]
    # two threads also under -n 2, so the fits' numbers stay put; passive waiting, so that the
    # threads do not spin on the core the other worker needs
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    return done


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on ``shapes_pipeline`` first, in their order. Under ``-n 2`` work stealing hands
    each worker a contiguous half of this list, so one worker builds the pipeline (minutes) and
    runs them while the other runs the rest, instead of the second waiting on the build's lock."""
    items.sort(key=lambda item: "shapes_pipeline" not in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def shapes_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``innx fit autoencoder`` (the defaults) on 20 000 shapes, then ``innx extract`` of a
    randomly initialised smallcnn's pool layer with images; shared by the pipeline tests and
    analyze's verdict tests (built once per test run)."""
    return built_once(tmp_path_factory, "shapes", _build_shapes_pipeline)


def _build_shapes_pipeline(root: Path) -> tuple[Path, Path]:
    ae, store = root / "ae", root / "acts.h5"
    fitted = run_innx("fit", "autoencoder", SHAPES_PIPELINE_DATA, "-o", str(ae), "--json")
    assert json.loads(fitted.stdout)["metrics"]["val_psnr"] >= 24
    run_innx("extract", SHAPES_PIPELINE_DATA, "--backbone", "smallcnn", "--layer", "pool",
             "--seed", "1", "--autoencoder", str(ae), "--store-images", "-o", str(store))  # fmt: skip
    return ae, store


class SmallDisk:
    """A tmpfs of a few kilobytes mounted at ``path``: a real full disk (``ENOSPC``) and, after
    :meth:`read_only`, a real read-only file system (``EROFS``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mount(self, size: int | str) -> None:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(self.path))

    def resize(self, size: int | str) -> None:
        """Grow (or shrink) the disk in place (``size`` in bytes, or ``"8m"``): 'free space and
        run again'."""
        _mount("-o", f"remount,size={size}", str(self.path))

    def fill(self, leave: int = 0) -> Path:
        """Fill the disk but for ``leave`` bytes (whole pages); return the file that fills it."""
        filler = self.path / "filler"
        with pytest.raises(OSError), open(filler, "wb", buffering=0) as handle:
            while True:
                handle.write(b"\0" * 4096)
        if leave:
            os.truncate(filler, filler.stat().st_size - leave)
        return filler

    def read_only(self) -> None:
        _mount("-o", "remount,ro", str(self.path))

    def files(self) -> list[str]:
        """Everything on the disk, hidden files included, as relative paths."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*"))


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int | str], SmallDisk]]:
    """``small_disk(size)`` (bytes, or ``"2m"``) mounts a fresh tmpfs of that size (unmounted after the test).
    Skips, saying why, where mounting is not permitted (not root, no ``mount``)."""
    mounted: list[Path] = []

    def make(size: int | str) -> SmallDisk:
        disk = SmallDisk(tmp_path / f"disk{len(mounted)}")
        disk.path.mkdir()
        try:
            disk.mount(size)
        except (OSError, subprocess.CalledProcessError) as err:
            detail = getattr(err, "stderr", "") or err
            pytest.skip(f"cannot mount a small tmpfs to fill a disk here ({str(detail).strip()})")
        mounted.append(disk.path)
        return disk

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def flip_a_bit(path: Path, name: str, chunk: int) -> None:
    """Flip one bit in the middle of chunk ``chunk`` (along N) of dataset ``name``."""
    import h5py

    with h5py.File(path, "r") as file:
        info = file[name].id.get_chunk_info(chunk)
        where = info.byte_offset + info.size // 2
    with open(path, "r+b") as handle:
        handle.seek(where)
        byte = handle.read(1)[0]
        handle.seek(where)
        handle.write(bytes([byte ^ 0x10]))
