"""Find backbones in the ``innx.backbones`` entry-point group, build them, and load their weights.

A factory is called with keyword options only (``num_classes=10``, ``size=64``) and returns a
:class:`~innx.backbones.Backbone`. Built-in backbones (``smallcnn``) are entry points of the innx
distribution itself, so they go through exactly the same path as plugins.

Weights come from a local path: a run directory of ``innx fit classifier`` (which also records the
backbone and its options), a ``.safetensors`` file, or a torch state dict. Nothing is downloaded;
without weights the model is randomly initialised and an :class:`~innx.errors.InnxWarning` says so.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innx.backbones.backbone import Backbone
from innx.backbones.family import SEPARATOR, BackboneFamily, split_name
from innx.backbones.weights import load_weights, read_state_dict
from innx.errors import ConfigError, InnxWarning, PluginError, first_line
from innx.plugins import registry
from innx.store.runs import build_from_config, read_run, sha256_file

GROUP = "innx.backbones"
CLASSIFIER_KIND = "classifier"


@dataclass(frozen=True)
class Weights:
    """Where a backbone's weights came from: ``path`` (``None`` for random) and its sha256
    (of ``model.safetensors`` for a run directory)."""

    path: str | None
    sha256: str | None


def backbone_names() -> list[str]:
    """The names of the installed, enabled backbones."""
    return registry().names(GROUP)


def build_backbone(name: str, **options: Any) -> Backbone:
    """Call backbone ``name``'s factory with ``options``; the weights are the factory's (random).

    ``FAMILY:MEMBER`` names (``timm:resnet18``) are built by the family entry ``FAMILY``.
    """
    entry, member = split_name(name)
    names = backbone_names()
    if entry not in names:
        shown = [f"{n}{SEPARATOR}<name>" if _is_family(n) else n for n in names]
        raise ConfigError(
            f"unknown backbone {name!r}; choose one of: {', '.join(shown) or '(none installed)'} "
            "(plugins add more: python -m pip install -e plugins/innx-torchvision "
            "-e plugins/innx-timm)"
        )
    factory = registry().load(GROUP, entry)
    if isinstance(factory, BackboneFamily):
        if not member:
            raise ConfigError(
                f"{entry} is a family of backbones: name one as {entry}{SEPARATOR}NAME "
                f"('innx backbones {entry}' lists them)"
            )
        if not factory.is_member(member):
            raise ConfigError(
                f"{entry} has no backbone {member!r}{_close_matches(member, factory.members())}; "
                f"'innx backbones {entry}' lists them"
            )
        backbone = factory.build(member, **options)
    elif member is not None:
        raise ConfigError(f"backbone {entry} is not a family; pass --backbone {entry}")
    else:
        _check_options(name, factory, options)
        try:
            backbone = factory(**options)
        except (TypeError, ValueError, OverflowError) as err:  # an option the factory cannot take
            given = ", ".join(f"{key}={value!r}" for key, value in options.items())
            raise ConfigError(
                f"backbone {name} cannot be built with {given or 'no options'} "
                f"({first_line(err)}); 'innx backbones' lists its options and defaults"
            ) from err
    if not isinstance(backbone, Backbone):
        raise PluginError(
            f"backbone factory {name!r} returned a {type(backbone).__name__}, not an "
            "innx.backbones.Backbone; fix the plugin"
        )
    backbone.name = name
    backbone.options = dict(options)
    return backbone


def load_backbone(
    name: str | None,
    weights: str | Path | None = None,
    *,
    options: dict[str, Any] | None = None,
    warn_random: bool = True,
) -> tuple[Backbone, Weights]:
    """Build backbone ``name`` and load ``weights``; return it with the record of its weights.

    ``weights`` may be a run directory of ``innx fit classifier`` (then ``name`` may be ``None``:
    the run says which backbone, and its options are used unless ``options`` overrides them),
    a ``.safetensors`` file or a torch state dict.
    """
    options = dict(options or {})
    if weights is not None and Path(weights).is_dir():
        run = read_run(weights)
        if run.kind != CLASSIFIER_KIND:
            raise ConfigError(
                f"{weights} holds a run of kind {run.kind!r}, not a classifier; pass the -o directory of "
                "'innx fit classifier' or a weights file"
            )
        recorded = run.config.get("backbone")
        if name is not None and recorded != name:
            raise ConfigError(
                f"{weights} was trained as backbone {recorded!r}, not {name!r}; "
                f"pass --backbone {recorded} or other weights"
            )
        recorded_options = run.config.get("options", {})
        if options:  # options given now win; a wrong one is theirs
            backbone = build_backbone(str(recorded), **{**recorded_options, **options})
        else:  # a recorded option the backbone cannot take blames config.json
            backbone = build_from_config(
                run, lambda: build_backbone(str(recorded), **recorded_options), "classifier"
            )
        load_weights(backbone.model, run.tensors, str(weights))
        return backbone, Weights(str(weights), run.manifest.get("weights_sha256"))
    if name is None:
        raise ConfigError("name a backbone (--backbone NAME) or pass a run directory as weights")
    backbone = build_backbone(name, **options)
    if weights is None:
        if warn_random:
            warn_random_weights(name)
        return backbone, Weights(None, None)
    tensors = read_state_dict(weights)
    load_weights(backbone.model, tensors, str(weights), hint=_classes_hint(backbone, tensors))
    return backbone, Weights(str(weights), sha256_file(Path(weights)))


def warn_random_weights(name: str) -> None:
    """Say (an :class:`~innx.errors.InnxWarning`) that backbone ``name`` has random weights."""
    warnings.warn(
        f"backbone {name} has random weights: pass --weights PATH (a state dict, "
        ".safetensors or an 'innx fit classifier' run) to explain a trained model",
        InnxWarning,
        stacklevel=3,
    )


def describe_factory(name: str) -> dict[str, Any]:
    """Name, providing distribution, version, options and summary of backbone ``name``; for a
    family, ``FAMILY:<name>`` with its summary and how many members it has (``members``)."""
    entry = next(e for e in registry().entries(GROUP) if e.name == name)
    factory = registry().load(GROUP, name)
    row = {"name": name, "dist": entry.dist, "version": entry.version, "value": entry.value}
    if isinstance(factory, BackboneFamily):
        count = len(factory.members())
        return {
            **row,
            "name": f"{name}{SEPARATOR}<name>",
            "options": {},
            "members": count,
            "summary": f"{factory.summary} ({count} names: 'innx backbones {name}' lists them)",
        }
    doc = inspect.getdoc(factory) or ""
    return {
        **row,
        "options": _parameters(factory),
        "summary": doc.split("\n\n")[0].replace("\n", " "),
    }


def family_members(name: str) -> list[str]:
    """The member names of family ``name`` (``innx backbones timm``); a ``ConfigError`` when
    ``name`` is not an installed family."""
    families = [n for n in backbone_names() if _is_family(n)]
    if name not in families:
        raise ConfigError(
            f"{name!r} is not a family of backbones; installed families: "
            f"{', '.join(families) or '(none: python -m pip install -e plugins/innx-timm)'}"
        )
    family = registry().load(GROUP, name)
    return [f"{name}{SEPARATOR}{m}" for m in family.members()]


def _is_family(name: str) -> bool:
    """Whether entry ``name`` is a family (loads it; a broken plugin is not a family)."""
    try:
        return isinstance(registry().load(GROUP, name), BackboneFamily)
    except PluginError:
        return False


def _close_matches(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _parameters(factory: Any) -> dict[str, Any]:
    """The keyword options of a factory with their defaults (``None`` when required)."""
    params = inspect.signature(factory).parameters.values()
    return {
        p.name: (None if p.default is inspect.Parameter.empty else p.default)
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }


def _check_options(name: str, factory: Any, options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    valid = _parameters(factory)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"backbone {name} has no option {', '.join(unknown)}; "
            f"its options are: {', '.join(valid) or '(none)'}"
        )
    for key, value in options.items():
        wanted = _OPTION_TYPES.get(type(valid[key]))
        if wanted is not None and not _is_a(value, wanted[0]):
            raise ConfigError(
                f"backbone {name} option {key} takes {wanted[1]}, got {key}={value!r}; "
                f"e.g. --option {key}={valid[key]}"
            )


_OPTION_TYPES: dict[type, tuple[type | tuple[type, ...], str]] = {
    bool: (bool, "true or false"),
    int: (int, "a whole number"),
    float: ((int, float), "a number"),
}
"""Option types read off a factory's defaults (``size: int = 32`` takes a whole number)."""


def _is_a(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _classes_hint(backbone: Backbone, tensors: dict[str, Any]) -> str:
    """'pass --num-classes N' when the file's classifier layer has another number of classes."""
    if backbone.logits is None:
        return ""
    prefix = f"{backbone.layers[backbone.logits]}."
    expected = backbone.model.state_dict()
    # the last weight inside the logits module ('fc.weight', SqueezeNet's 'classifier.1.weight')
    keys = [k for k in expected if k.startswith(prefix) and k.endswith("weight")]
    if not keys or keys[-1] not in tensors:
        return ""
    file_classes = tensors[keys[-1]].shape[0]
    if file_classes == expected[keys[-1]].shape[0]:
        return ""
    return f"the file's classifier has {file_classes} classes: pass --num-classes {file_classes}"
