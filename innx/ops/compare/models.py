"""The models that ``innx compare`` compares: their ``innx analyze`` reports, read, named and
checked before anything is written.

A model is ``NAME=REPORT`` or ``REPORT`` (then named by the report's folder); ``REPORT`` is a
directory written by ``innx analyze`` (or its ``report.json``). The reports must be readable, of
the analysis format and version this innx writes, on the same concepts and from stores of the same
dataset; each refusal is one :class:`~innx.errors.ConfigError` that names the reports and the fix.

The dataset is the report's ``store["dataset"]``: the store's record of what it was extracted from
(``spec``, ``fingerprint`` …). Two stores of one dataset differ by design (other backbones), so
their own fingerprints are not compared; the dataset's are (its specs where a record lacks the
fingerprint). A report written before innx recorded the dataset, or of a store without such a
record, cannot be checked: :func:`check_datasets` says so, and the comparison carries the note.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innx.errors import ConfigError, first_line
from innx.ops.analyze.record import FORMAT, VERSION

REPORT_JSON = "report.json"


@dataclass(frozen=True)
class Model:
    """One compared model: its ``name``, its report directory ``path`` and the ``report`` (as in
    its ``report.json``)."""

    name: str
    path: Path
    report: dict[str, Any]

    @property
    def layers(self) -> list[str]:
        """The model's layers, in the report's order (first: the input side)."""
        return list(self.report["layers"])

    @property
    def concepts(self) -> list[str]:
        return list(self.report["concepts"])

    @property
    def dataset(self) -> dict[str, Any] | None:
        """The store's dataset record, or ``None`` when the report does not hold one."""
        found = self.report["store"].get("dataset")
        return found if isinstance(found, dict) and found else None


def parse_model(spec: str) -> tuple[str | None, Path]:
    """``"REPORT"`` → ``(None, REPORT)``; ``"NAME=REPORT"`` → ``(NAME, REPORT)`` (unless ``spec``
    names an existing path, or its part before ``=`` holds a ``/``)."""
    name, sep, path = spec.partition("=")
    if not sep or "/" in name or not name or Path(spec).exists():
        return None, Path(spec)
    if not path:
        raise ConfigError(f"{spec!r} names no report; pass NAME=REPORT or REPORT")
    return name, Path(path)


def load_report(path: Path) -> tuple[Path, dict[str, Any]]:
    """The report directory at ``path`` (or holding the file ``path``) and its report; refuses
    a missing, unreadable or damaged one, and one of another format or version."""
    file = path / REPORT_JSON if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(
            f"{path} holds no {REPORT_JSON}; pass a report directory written by innx analyze"
        )
    try:
        report = json.loads(file.read_text())
    except (OSError, UnicodeError, ValueError) as err:
        raise ConfigError(
            f"{file} cannot be read ({first_line(err)}); pass a report written by innx analyze"
        ) from None
    found = report.get("format") if isinstance(report, dict) else None
    if found != FORMAT:
        raise ConfigError(
            f"{file} is not a report of innx analyze (format {found!r}, not {FORMAT!r}); pass a "
            "report directory written by innx analyze"
        )
    if report.get("version") != VERSION:
        raise ConfigError(
            f"{file} is a version {report.get('version')!r} report of innx analyze; innx compare "
            f"reads version {VERSION}: run innx analyze again"
        )
    problem = _problem(report)
    if problem:
        raise ConfigError(f"{file} is damaged: {problem}; run innx analyze again")
    return file.parent, report


def _problem(report: dict[str, Any]) -> str | None:
    """What is missing from ``report`` for a comparison (``None``: nothing)."""
    layers, share = report.get("layers"), report.get("share_explained")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, str) for x in layers):
        return "it names no layers"
    if not isinstance(report.get("concepts"), list):
        return "it names no concepts"
    if not isinstance(share, dict) or not all(isinstance(share.get(x), dict) for x in layers):
        return "it has no share explained for each of its layers"
    kept = report.get("kept")
    if not isinstance(kept, dict) or not isinstance(kept.get("layers"), dict):
        return "it has no kept record"
    if not isinstance(report.get("store"), dict):
        return "it has no store record"
    return None


def load_models(specs: Sequence[str]) -> tuple[list[Model], dict[str, Any]]:
    """The models of ``specs`` (``NAME=REPORT`` or ``REPORT`` each), checked (see the module
    docstring), and what is known of their dataset (:func:`check_datasets`)."""
    if len(specs) < 2:
        raise ConfigError(
            f"innx compare needs at least two reports, got {len(specs)}; pass REPORT REPORT … "
            "(each REPORT or NAME=REPORT)"
        )
    models = []
    for spec in specs:
        name, path = parse_model(spec)
        directory, report = load_report(path)
        models.append(Model(name or directory.resolve().name, directory, report))
    _check_names(models)
    check_concepts(models)
    return models, check_datasets(models)


def _check_names(models: list[Model]) -> None:
    seen: dict[str, Model] = {}
    for model in models:
        if model.name in seen:
            raise ConfigError(
                f"two reports are named {model.name!r} ({seen[model.name].path}, {model.path}); "
                "name them NAME=REPORT"
            )
        seen[model.name] = model


def check_concepts(models: list[Model]) -> None:
    """Refuse reports on different concepts (naming each report's), or on none."""
    first = set(models[0].concepts)
    if any(set(m.concepts) != first for m in models[1:]):
        each = "; ".join(f"{m.name} has {', '.join(m.concepts) or 'none'}" for m in models)
        raise ConfigError(
            f"the reports are on different concepts ({each}); compare reports analyzed on the "
            "same concepts (innx analyze --factor …)"
        )
    if not first:
        raise ConfigError(
            "the reports name no concepts to compare; analyze with --semantic RUN or on a store "
            "with attributes"
        )


def check_datasets(models: list[Model]) -> dict[str, Any]:
    """Refuse models from stores of different datasets, naming two of them; return what is
    known: ``checked`` (every report records its dataset, and they agree), the ``dataset``
    record, the models whose dataset is ``unrecorded``, and a ``note`` saying what could not be
    checked (``None`` when everything could)."""
    recorded = [m for m in models if m.dataset is not None]
    for model in recorded[1:]:
        first = recorded[0]
        if not _same(first.dataset, model.dataset):
            raise ConfigError(
                f"{first.name} and {model.name} come from stores of different datasets: "
                f"{_describe(first)}, {_describe(model)}; compare models analyzed on the same "
                "dataset"
            )
    unrecorded = [m.name for m in models if m.dataset is None]
    note = None
    if unrecorded:
        whose = ", ".join(unrecorded)
        note = (
            f"the dataset could not be checked: the report{'s' if len(unrecorded) > 1 else ''} "
            f"of {whose} record{'' if len(unrecorded) > 1 else 's'} no dataset of the store "
            "(written by an older innx, or a store without a dataset record); make sure every "
            "model was analyzed on the same data"
        )
    return {
        "checked": not unrecorded,
        "dataset": recorded[0].dataset if recorded else None,
        "unrecorded": unrecorded,
        "note": note,
    }


def _same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    assert a is not None and b is not None
    if a.get("fingerprint") and b.get("fingerprint"):
        return bool(a["fingerprint"] == b["fingerprint"])
    return bool(a.get("spec") == b.get("spec"))


def _describe(model: Model) -> str:
    dataset = model.dataset or {}
    spec = dataset.get("spec") or dataset.get("name") or "an unnamed dataset"
    fingerprint = str(dataset.get("fingerprint") or "")[:12]
    return f"{model.name}'s store {model.report['store'].get('path')} holds {spec}" + (
        f" (fingerprint {fingerprint}…)" if fingerprint else ""
    )
