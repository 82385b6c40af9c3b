"""Read model weights from local files, safely, and load them with a message that says what differs.

Accepted: a ``.safetensors`` file; a torch state dict (``torch.save(model.state_dict())``, read
with ``weights_only=True`` so that no code in the file runs), possibly nested under
``"state_dict"`` or ``"model"`` and possibly with the ``module.`` prefix DistributedDataParallel
adds. Run directories of ``innx fit classifier`` are handled by the registry.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from innx.errors import ConfigError, first_line

_NESTED_KEYS = ("state_dict", "model", "model_state_dict")
_SHOWN = 4  # keys shown per kind of difference


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (safetensors or a torch state dict), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {path} does not exist; pass an existing file to --weights")
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ConfigError(f"cannot read {path} as safetensors: {first_line(err)}") from err
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols is not the user's
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's weights-only reader refused the file; its advice (turn weights_only off) is not
        # repeated: unpickling objects can run any code, so innx never does
        raise ConfigError(f"cannot read {path}: it {_refused(path, err)}; {SAVE_WEIGHTS}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise _unreadable(path, err) from err
    for key in _NESTED_KEYS:
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ConfigError(
            f"{path} does not hold a state dict (a mapping of names to tensors); "
            "save weights with torch.save(model.state_dict(), path)"
        )
    tensors = {str(k): v for k, v in state.items()}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k.removeprefix("module."): v for k, v in tensors.items()}
    return tensors


SAVE_WEIGHTS = "save the weights alone with torch.save(model.state_dict(), path) or as .safetensors"


def _refused(path: Path, err: pickle.UnpicklingError) -> str:
    """What a file torch's weights-only reader refused holds, as a phrase."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    if found:
        return (
            f"holds Python objects ({found[1]}), which innx does not unpickle (that could run code)"
        )
    with open(path, "rb") as handle:
        if (
            handle.read(1) == b"\x80"
        ):  # the protocol opcode every pickle since protocol 2 opens with
            return "is a Python pickle, not a torch state dict; innx does not unpickle it (that could run code)"
    return "is neither a torch state dict nor a safetensors file"


def _unreadable(path: Path, err: BaseException) -> ConfigError:
    return ConfigError(
        f"cannot read {path} as a torch state dict or safetensors file ({first_line(err)}); "
        "weights must be a state dict saved with torch.save(model.state_dict()) or a "
        ".safetensors file"
    )


def load_weights(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str, hint: str = ""
) -> None:
    """Load ``tensors`` into ``model`` strictly, after saying which keys or shapes differ.

    ``source`` names where the weights came from; ``hint`` is appended to the error (such as
    "pass --num-classes 10" when only the classifier layer differs).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = [
        f"{k}: file {list(tensors[k].shape)}, model {list(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tuple(tensors[k].shape) != tuple(v.shape)
    ]
    problems = []
    if mismatched:
        problems.append("shapes differ for " + _few(mismatched))
    if missing:
        problems.append("missing from the file: " + _few(missing))
    if unexpected:
        problems.append("not in the model: " + _few(unexpected))
    if problems:
        raise ConfigError(
            f"the weights in {source} do not fit the model: {'; '.join(problems)}"
            + (f"; {hint}" if hint else "")
        )
    model.load_state_dict(dict(tensors), strict=True)


def _few(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")
