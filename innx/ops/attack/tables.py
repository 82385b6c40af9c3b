"""``attack.md``: the report of ``innx attack`` (:mod:`~innx.ops.attack.record`) as readable
tables, each share and distance written ``value ± half-width`` of its bootstrap interval."""

from __future__ import annotations

from typing import Any

from innx.ops.analyze.estimators import format_interval
from innx.ops.attack.readings import CONDITIONS

SHORT = {"x": "x", "x_adv": "adv", "x_noise": "noise"}
"""How the tables and figures name the versions of a row."""


def markdown(report: dict[str, Any], figures: list[str]) -> str:
    """``attack.md``: the attack, the rows and what each layer sees, as tables."""
    attack, judge, options = report["attack"], report["judge"], report["options"]
    size = f"eps {attack['eps']:g} (L∞, in the image's [0, 1] pixel scale)"
    if attack["method"] == "pgd":
        size += f", {attack['iterations']} steps of {attack['step_size']:g}"
    target = attack["target"]
    lines = [
        "# innx attack",
        "",
        f"- store: {report['store']['path']}",
        f"- classifier: {report['classifier']['run']}",
        f"- attack: {attack['method']}, {size}, "
        + (f"towards {target['name']}" if target else "away from the prediction on x"),
        "- noise control: every pixel moved by ±eps at random (then clipped to [0, 1])",
        f"- success rate (rows whose prediction flipped): {value_text(attack['success_rate'])}"
        f" over {len(report['rows'])} rows; noise flip rate {value_text(attack['noise_flip_rate'])}",
    ]
    if attack["target_rate"] is not None:
        lines.append(
            f"- rows now predicted as {target['name']}: {value_text(attack['target_rate'])}"
        )
    if judge.get("images") is not None:
        seen = ", ".join(f"{SHORT[k]} {value_text(v)}" for k, v in judge["images"].items())
        recon = judge["reconstructions"]
        lines.append(
            f"- judge: attribute {judge['attribute']} (trained on {judge['trained_on']} real "
            f"thumbnails, {judge['steps']} steps; right on {value_text(judge['accuracy'])} of the "
            f"rows' images) reads as the original class: {seen}"
            + (f"; reconstructions {value_text(recon)}" if recon else "")
        )
    else:
        lines.append(f"- judge: none ({judge['reason']}); the classifier alone reads the samples")
    lines.append(f"- invariance samples per row, version and layer: {options['samples']}")
    lines += ["", "## Rows", ""]
    lines += _table(
        ["row", "truth", "x", "x_adv", "x_noise", "L∞ adv", "L∞ noise"],
        [
            [
                str(row["row"]),
                row["truth"] or "–",
                row["x"]["name"],
                row["x_adv"]["name"] + (" (flipped)" if row["flipped"] else ""),
                row["x_noise"]["name"] + (" (flipped)" if row["noise_flipped"] else ""),
                f"{row['linf']['x_adv']:.3f}",
                f"{row['linf']['x_noise']:.3f}",
            ]
            for row in report["rows"]
        ],
    )
    flipped = report["layers"][0]["rows"] if report["layers"] else 0
    for who in ("judge", "classifier"):
        if who == "judge" and judge.get("images") is None:
            continue
        lines += [
            "",
            f"## What the invariance samples show, read by the {who}",
            "",
            f"Over the {flipped} rows whose prediction flipped: the share of the samples of each "
            "version read as the original class (orig) and as the adversarial one (adv).",
            "",
        ]
        header = ["layer"] + [f"{SHORT[n]}: {w}" for n in CONDITIONS for w in ("orig", "adv")]
        body = []
        for layer in report["layers"]:
            cells = layer[who]
            body.append(
                [layer["layer"]]
                + [value_text(cells[n][w]) for n in CONDITIONS for w in ("original", "adversarial")]
            )
        lines += _table(header, body)
    lines += [
        "",
        "## How far Φ moved",
        "",
        "‖Φ_l(x') − Φ_l(x)‖ over the median distance between two store rows at the layer; "
        "cosine: of the samples' Φ_l with the Φ_l they were drawn for (about 1: t holds the layer).",
        "",
    ]
    lines += _table(
        ["layer", "adv", "noise", "median between rows", "cosine x / adv / noise"],
        [
            [
                layer["layer"],
                value_text(layer["distance"]["x_adv"]),
                value_text(layer["distance"]["x_noise"]),
                f"{layer['distance']['median_between_rows']:.3g}"
                if layer["distance"]["median_between_rows"] is not None
                else "–",
                " / ".join(f"{layer['cosine'][n]:.2f}" for n in CONDITIONS),
            ]
            for layer in report["layers"]
        ],
    )
    lines += ["", "## Figures", ""]
    lines.append(
        "images.png: each row's image, attacked image, noise control (captioned with the "
        "classifier's prediction) and the perturbation (grey: none). row-R.png: per layer and "
        "version, the image and its invariance samples, captioned with "
        + ("the judge's reading." if judge.get("images") is not None else "the classifier's.")
    )
    lines += [""] + [f"![{name}]({name})" for name in figures]
    return "\n".join(lines) + "\n"


def value_text(cell: dict[str, Any] | None) -> str:
    """``value ± h`` of a report cell (``value`` and ``interval``), ``–`` when it has none."""
    if cell is None or cell["value"] is None:
        return "–"
    low, high = cell["interval"]
    return format_interval(cell["value"], low, high)


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in body),
    ]
