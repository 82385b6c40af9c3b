"""Every option that more than one command takes, declared once, and the one parser of each.

A flag means the same thing in every command (STYLE.md, "One flag, one meaning"): ``--rows
0,5,10-20``, ``--invariance [LAYER=]RUN``, ``--device``, ``--kernels``, ``-o/--output`` … are
declared here, each by one ``typer.Option`` (an alias for one value and one for several share
it), and parsed by the functions below. A command module declares only its own options.

Defaults are not written here, nor in the commands: a value option's default is the default of
the field it fills in the ops options dataclass (or of the ops function's parameter), read by
:class:`DefaultsOf` when a command runs or shows its help, so that building the command line
imports no ops module (and no torch). A switch that is off unless given (``--resume``,
``--json``) and an option that is absent unless given (``None``) have no default to read.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import MISSING, is_dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from innx.errors import ConfigError

# -- defaults, read from the ops ------------------------------------------------------------------


class OpsDefault:
    """The default of option ``name``: the field's default in the dataclass at ``target``
    (``"module:Class"``), or the parameter's in the function there, passed ``through`` a
    conversion when the option is in other units than the field (``--fps`` for ``frame_ms``).

    Click calls a callable default for an option not given, and typer shows ``str()`` of it in
    ``--help``: the ops module is imported then, not when the command line is built.
    """

    def __init__(self, target: str, name: str, through: Callable[[Any], Any] | None = None) -> None:
        self.target, self.name, self.through = target, name, through

    def __call__(self) -> Any:
        module, _, attribute = self.target.partition(":")
        owner = getattr(importlib.import_module(module), attribute)
        if is_dataclass(owner):
            field = owner.__dataclass_fields__[self.name]
            value = field.default
            if value is MISSING and field.default_factory is not MISSING:
                value = field.default_factory()
        else:
            value = inspect.signature(owner).parameters[self.name].default
        if value is MISSING or value is inspect.Parameter.empty:
            raise LookupError(f"{self.target} gives {self.name} no default")
        return value if self.through is None else self.through(value)

    def __str__(self) -> str:
        return str(self())

    def __bool__(self) -> bool:
        return bool(self())

    def __repr__(self) -> str:
        return f"DefaultsOf({self.target!r}).{self.name}"


class DefaultsOf:
    """The defaults of the options that fill the fields of ``target`` (``"module:Class"``, or
    ``"module:function"`` for its parameters), to write after ``=`` in a command's signature::

        CLASSIFIER = DefaultsOf("innx.ops.fit.classifier:ClassifierFit")

        def classifier(..., lr: Lr = CLASSIFIER.lr) -> None: ...
    """

    def __init__(self, target: str) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # not a field: what Python and tools look up on any object
            raise AttributeError(name)
        return OpsDefault(self.target, name)

    def through(self, name: str, convert: Callable[[Any], Any]) -> Any:
        """The default of field ``name`` in the option's units, ``convert(default)``."""
        return OpsDefault(self.target, name, convert)


# -- parsers --------------------------------------------------------------------------------------

ROWS_FORM = "row numbers and inclusive ranges, e.g. 0,5,10-20"
_ROWS_PART = re.compile(r"([0-9]+)(?:-([0-9]+))?")
MAX_ROWS = 10_000_000
"""The most rows ``--rows`` may name (more than any command reads at once; a typo such as
``0-99999999999`` is refused instead of filling the memory)."""
INT64_MAX = 2**63 - 1
"""The largest ``--seed`` and row number: they are stored as 64-bit integers."""


def parse_rows(text: str | None) -> tuple[int, ...]:
    """``--rows``: ``"0,5,10-12"`` → ``(0, 5, 10, 11, 12)``; ``None`` → ``()`` (not given).

    Ranges ``A-B`` hold both ends; a part that is not a row or such a range (``x``, ``-3``,
    ``5-2``) is a one-line :class:`~innx.errors.ConfigError` that says the accepted form.
    """
    if text is None:
        return ()
    rows: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = _ROWS_PART.fullmatch(part)
        if match is None:
            hint = "; ranges are A-B, both ends included" if ":" in part else ""
            raise ConfigError(f"--rows takes {ROWS_FORM}, got {part!r} in {text!r}{hint}")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ConfigError(f"--rows takes {ROWS_FORM}, got the backward range {part!r}")
        if last > INT64_MAX:
            raise ConfigError(f"--rows takes row numbers up to {INT64_MAX}, got {part!r}")
        if len(rows) + last - first + 1 > MAX_ROWS:
            raise ConfigError(f"--rows names more than {MAX_ROWS} rows ({text!r}); name fewer rows")
        rows += range(first, last + 1)
    return tuple(rows)


def check_seed(value: int | None) -> int | None:
    """``--seed``: a whole number from 0 to 2**63 - 1 (what torch, numpy and the files hold);
    another is a one-line :class:`~innx.errors.ConfigError` before anything runs."""
    if value is not None and not 0 <= value <= INT64_MAX:
        raise ConfigError(f"--seed takes a whole number from 0 to {INT64_MAX}, got {value}")
    return value


def parse_invariance(spec: str) -> tuple[str, str | None]:
    """``--invariance``: ``"RUN"`` → ``(RUN, None)``, ``"LAYER=RUN"`` → ``(RUN, LAYER)``, by the
    parser that ``innx analyze`` applies to the same flag
    (:func:`innx.ops.analyze.analysis.parse_invariance`)."""
    from innx.ops.analyze.analysis import parse_invariance as parse

    return parse(spec)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``--option``: ``["size=64", "name=x"]`` → ``{"size": 64, "name": "x"}`` (ints, floats and
    booleans typed)."""
    options: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option takes KEY=VALUE, got {item!r}")
        options[key.strip()] = _literal(raw.strip())
    return options


def _literal(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


# -- every command --------------------------------------------------------------------------------


def output_option(help: str) -> Any:
    """``-o/--output``: where the command writes what it made (``help`` says what that is)."""
    return typer.Option("-o", "--output", help=help)


RunDir = Annotated[Path, output_option("The run directory to write.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print a JSON summary (for scripts).")]
Seed = Annotated[
    int,
    typer.Option("--seed", help="Random seed: same seed, same result.", callback=check_seed),
]
Device = Annotated[
    str,
    typer.Option(
        "--device",
        help="Torch device: auto (CUDA when there is one, else the CPU), cpu, cuda, cuda:1, …",
    ),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue an interrupted run from its last checkpoint.")
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace an existing output instead of refusing (or resuming) it."
    ),
]
Kernels = Annotated[
    str,
    typer.Option(
        "--kernels",
        help="The flows' elementwise work: auto (fused Triton kernels on CUDA), torch or triton.",
    ),
]

# -- backbones and data ---------------------------------------------------------------------------

Workers = Annotated[
    int, typer.Option("--workers", min=0, help="Data-loading worker processes (0: in process).")
]
Weights = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Local weights: an 'innx fit classifier' run directory, a .safetensors file, or a "
        "torch state dict. Without it the model is randomly initialised.",
    ),
]
BackboneOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--option",
        help="A backbone option KEY=VALUE (repeatable), e.g. --option size=64; "
        "'innx backbones' lists each backbone's options.",
    ),
]
NumClasses = Annotated[
    int | None,
    typer.Option("--num-classes", min=2, help="Classes of the backbone's classifier layer."),
]
BatchSize = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1, help="Images or rows per batch (per optimiser step in a fit)."
    ),
]

# -- training (innx fit) --------------------------------------------------------------------------

Steps = Annotated[
    int | None,
    typer.Option("--steps", min=1, help="Optimiser steps (instead of the epochs)."),
]
Epochs = Annotated[
    float | None,
    typer.Option("--epochs", help="Passes over the training data."),
]
Lr = Annotated[float, typer.Option("--lr", help="Adam learning rate.")]
CheckpointEvery = Annotated[
    int, typer.Option("--checkpoint-every", min=1, help="Steps between checkpoints.")
]
GradClip = Annotated[
    float | None, typer.Option("--grad-clip", help="Clip the gradient norm to this.")
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32, or bf16: matrix products under bf16 autocast, log-dets in float32.",
    ),
]
CudaGraph = Annotated[
    bool,
    typer.Option(
        "--cuda-graph",
        help="Replay the whole training step from one CUDA graph (one process, CUDA only): "
        "less launch overhead at small batches.",
    ),
]


def preset_option(help: str) -> Any:
    """``--preset``: the size of the network a fit trains (``help`` names the command's)."""
    return typer.Option("--preset", help=help)


# -- fitted runs over a store (render, analyze) ---------------------------------------------------

Rows = Annotated[str | None, typer.Option("--rows", help=f"Store rows: {ROWS_FORM}.")]
_INVARIANCE = typer.Option(
    "--invariance",
    help="An invariance run (innx fit invariance), RUN or LAYER=RUN (then RUN must have been "
    "fitted on LAYER); repeat it where a command takes one per layer, in order.",
)
Invariance = Annotated[str, _INVARIANCE]
InvarianceRuns = Annotated[list[str], _INVARIANCE]
_SEMANTIC = typer.Option("--semantic", help="A semantic run (innx fit semantic).")
Semantic = Annotated[str, _SEMANTIC]
OptionalSemantic = Annotated[str | None, _SEMANTIC]
Autoencoder = Annotated[
    Path | None,
    typer.Option("--autoencoder", help="The autoencoder run (default: the one the store names)."),
]
InternalBatchSize = Annotated[
    int,
    typer.Option(
        "--internal-batch-size", min=1, help="Rows per forward pass: lower it to use less memory."
    ),
]
Classifier = Annotated[
    str | None,
    typer.Option(
        "--classifier",
        help="A run of innx fit classifier of the store's backbone to use instead of it (analyze "
        "compares its predictions, attack attacks it); default: the store's backbone, when it is "
        "a trained classifier.",
    ),
]
JudgeSteps = Annotated[
    int,
    typer.Option(
        "--judge-steps",
        min=0,
        help="Training steps of the judge that reads attributes off images, trained on the "
        "store's thumbnails (analyze: each factor, for 'kept'; attack: the classifier's classes); "
        "0: no judge.",
    ),
]

# -- pictures (innx render) -----------------------------------------------------------------------

Images = Annotated[
    list[Path] | None,
    typer.Option(
        "--image",
        help="An image file to render instead of store rows (repeatable); it is encoded through "
        "the store's backbone and autoencoder.",
    ),
]
_LAYER_CHECK = typer.Option(
    "--layer",
    help="Check that the invariance run was fitted on this layer (one --layer per --invariance, "
    "in order, where there are several); LAYER=RUN says the same.",
)
LayerCheck = Annotated[str | None, _LAYER_CHECK]
LayerChecks = Annotated[list[str] | None, _LAYER_CHECK]
RenderFactor = Annotated[
    str, typer.Option("--factor", help="The factor of the semantic run to change.")
]
Samples = Annotated[
    int, typer.Option("-n", "--samples", min=1, help="Invariance samples per input.")
]
Temperature = Annotated[
    float, typer.Option("--temperature", min=0.0, help="Draw v ~ N(0, T² I): below 1, tamer.")
]
Frames = Annotated[int, typer.Option("--frames", min=1, help="Frames of the GIF.")]
Fps = Annotated[float, typer.Option("--fps", min=0.1, max=1000.0, help="GIF frames per second.")]
