"""The backbone contract: a model, its public layers as module paths, and its preprocessing.

A backbone plugin is a factory in the ``innx.backbones`` entry-point group returning a
:class:`Backbone`. Layers are read with forward hooks on module paths, so any ``nn.Module`` works
unchanged; the forward pass stops as soon as the deepest requested layer is computed.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from innx.backbones.preprocessing import Preprocessing
from innx.errors import ConfigError

INPUT = ""
"""Module path of the ``input`` layer: the preprocessed image itself."""
SOFTMAX = "softmax"
"""The computed layer every classifier has: the softmax of its logits layer."""


@dataclass(frozen=True)
class Readout:
    """How a public layer is read off its module, when it is not simply the module's output.

    ``of_input``: the layer is what goes *into* the module (the pooled vector a classifier head
    reads, say); ``transform`` is applied to the captured batch (``[B, ...]`` → ``[B, ...]``), for
    example a transformer's tokens reshaped to a feature map; ``label`` says what ``transform``
    does, for ``innx layers``.

    Example::

        >>> import torch
        >>> tokens_to_map = Readout(lambda t: t.transpose(1, 2).unflatten(2, (2, 2)), "tokens → map")
        >>> tokens_to_map.transform(torch.zeros(1, 4, 8)).shape
        torch.Size([1, 8, 2, 2])
    """

    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    label: str | None = None
    of_input: bool = False


AS_IS = Readout()
"""How a layer without a readout is read: its module's output, unchanged."""


def _softmax(logits: torch.Tensor) -> torch.Tensor:
    # over the flattened logits ([C, 1, 1] in SqueezeNet)
    return torch.softmax(logits.flatten(1), dim=1)


@dataclass(frozen=True)
class LayerInfo:
    """One layer as ``innx layers`` shows it.

    ``module`` is the module path whose output (or, with ``of_input``, input) the layer is (``""``
    for the input); ``computed`` says what was applied to it (``"softmax"``) or is ``None``;
    ``shape`` is the per-sample shape for the backbone's input size; ``calls`` is how often the
    module runs in one forward pass (the last call is the one captured).
    """

    name: str
    module: str
    shape: tuple[int, ...]
    calls: int = 1
    computed: str | None = None
    of_input: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "shape": list(self.shape),
            "calls": self.calls,
            "computed": self.computed,
            "of_input": self.of_input,
        }


@dataclass(frozen=True)
class _Call:
    """What one probing forward pass saw of a module."""

    last: int  # completion order of its last call
    calls: int
    shape: tuple[int, ...] | None  # per-sample output shape; None when not a tensor
    last_in: int  # order of its last call's start (events share one counter with ``last``)
    in_shape: (
        tuple[int, ...] | None
    )  # per-sample shape of its first argument; None when not a tensor


class _StopForward(Exception):
    """Raised from a hook once every requested layer is captured, to skip the rest of the model."""


@dataclass(eq=False)
class Backbone:
    """A model in eval mode, its public layers, and its preprocessing.

    ``layers`` maps public layer names (``"conv5"``, ``"layer3"``) to module paths in
    ``model.named_modules()`` (``""`` is the model's input); ``readouts`` says, for the layers that
    are not simply their module's output, how to read them (:class:`Readout`). When ``logits``
    names a layer, a computed layer ``softmax`` is added. Every other module path is a valid layer
    name too, for experts. ``name`` and ``options`` are set by the registry: the factory arguments that rebuild
    the model, recorded in run directories and activation stores.

    Example::

        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
        >>> pre = Preprocessing(size=(2, 2), mean=(0.0,) * 3, std=(1.0,) * 3)
        >>> bb = Backbone(model, {"input": "", "hidden": "2", "out": "3"}, pre, logits="out")
        >>> acts = bb.capture(torch.zeros(4, 3, 2, 2), ["hidden", "softmax"])
        >>> acts["hidden"].shape, acts["softmax"].shape
        (torch.Size([4, 5]), torch.Size([4, 3]))
    """

    model: nn.Module
    layers: dict[str, str]
    preprocessing: Preprocessing
    logits: str | None = None
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    readouts: dict[str, Readout] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model.eval()
        modules = dict(self.model.named_modules())
        bad = [f"{n} → {p!r}" for n, p in self.layers.items() if p != INPUT and p not in modules]
        bad += [f"{n} (a readout of no layer)" for n in self.readouts if n not in self.layers]
        if bad:
            raise ConfigError(
                f"backbone {self.label} maps layers to module paths the model does not have: "
                f"{', '.join(bad)}; fix the backbone factory (see model.named_modules())"
            )
        if self.logits is not None:
            if self.logits not in self.layers or self.logits in self.readouts:
                raise ConfigError(
                    f"backbone {self.label}: logits layer {self.logits!r} is not one of its "
                    "layers read as its module's output"
                )
            self.layers = {**self.layers, SOFTMAX: self.layers[self.logits]}
            self.readouts = {**self.readouts, SOFTMAX: Readout(_softmax, SOFTMAX)}

    @property
    def label(self) -> str:
        return self.name or type(self.model).__name__

    @property
    def num_classes(self) -> int | None:
        """Size of the logits layer, ``None`` for a backbone that is not a classifier."""
        if self.logits is None:
            return None
        shape = self._trace()[self.layers[self.logits]].shape
        return math.prod(shape) if shape else None

    # -- names -----------------------------------------------------------------------------------

    def public_layers(self) -> list[str]:
        """The named layers, in the order the forward pass computes them."""
        trace = self._trace()

        def order(name: str) -> tuple[int, int]:
            path = self.layers[name]
            if path == INPUT:
                return (-1, 0)
            read = self.readouts.get(name, AS_IS)
            return (trace[path].last_in if read.of_input else trace[path].last, name == SOFTMAX)

        return sorted(self.layers, key=order)

    def module_paths(self) -> list[str]:
        """Every module path that produces a tensor, in completion order (for experts)."""
        trace = self._trace()
        return sorted(
            (p for p, c in trace.items() if c.shape is not None), key=lambda p: trace[p].last
        )

    def resolve(self, names: Iterable[str]) -> list[str]:
        """Check layer names (public names or module paths) before any work starts.

        Raises :class:`~innx.errors.ConfigError` listing the valid names.
        """
        names = list(names)
        trace = self._trace()
        if all(n in self.layers or (n != INPUT and n in trace) for n in names):
            unknown = []  # the common case, once per batch in extract: no module walk
        else:
            modules = dict(self.model.named_modules())
            unknown = [
                n for n in names if n not in self.layers and (n == INPUT or n not in modules)
            ]
        if unknown:
            which = ", ".join(repr(n) for n in unknown)
            raise ConfigError(
                f"layer {which} is not in {self.label}; choose one of: "
                f"{', '.join(self.public_layers())} (or a module path: 'innx layers {self.label} --all')"
            )
        for n in names:
            path = self.layers.get(n, n)
            if path == INPUT:
                continue
            if path not in trace:
                raise ConfigError(
                    f"layer {n!r} of {self.label} is not run by its forward pass; choose another"
                )
            if self._traced_shape(n) is None:
                raise ConfigError(
                    f"layer {n!r} of {self.label} is not a single tensor; choose another"
                )
        return names

    def _traced_shape(self, name: str) -> tuple[int, ...] | None:
        """Per-sample shape of the tensor layer ``name`` is read from, before any transform."""
        call = self._trace()[self.layers.get(name, name)]
        return call.in_shape if self.readouts.get(name, AS_IS).of_input else call.shape

    # -- shapes ----------------------------------------------------------------------------------

    def layer_info(self, names: Sequence[str] | None = None) -> list[LayerInfo]:
        """Name, module path, per-sample shape and call count of ``names`` (default: the public
        layers), for the backbone's input size."""
        names = self.public_layers() if names is None else self.resolve(names)
        trace = self._trace()
        infos = []
        for n in names:
            path = self.layers.get(n, n)
            if path == INPUT:
                infos.append(LayerInfo(n, INPUT, self.preprocessing.input_shape))
                continue
            shape = self._traced_shape(n)
            assert shape is not None  # resolve() checked
            read = self.readouts.get(n, AS_IS)
            if read.transform is not None:  # the shape it makes of one blank sample
                with torch.no_grad():
                    shape = tuple(read.transform(torch.zeros(1, *shape)).shape[1:])
            calls = trace[path].calls
            infos.append(LayerInfo(n, path, shape, calls, read.label, read.of_input))
        return infos

    def _trace(self) -> dict[str, _Call]:
        """Run one blank input through the model and note, for every module, when it completes,
        how often it runs and its output shape (cached per model)."""
        return _trace_model(self.model, self.preprocessing.input_shape)

    # -- activations -----------------------------------------------------------------------------

    def capture(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """The outputs of layers ``names`` for preprocessed input ``x`` ``[B, C, H, W]``.

        Runs the model only as far as the deepest requested layer. Outputs are copies, safe from
        the in-place operations of later modules. Gradients flow unless called under
        ``torch.no_grad()``.
        """
        names = self.resolve(names)
        # what each layer is read from: (module path, whether its input) — an "event"
        events = {n: (self.layers.get(n, n), self.readouts.get(n, AS_IS).of_input) for n in names}
        wanted = sorted({e for e in events.values() if e[0] != INPUT})
        seen: dict[tuple[str, bool], torch.Tensor] = {}
        if wanted:
            trace = self._trace()
            last = max(wanted, key=lambda e: trace[e[0]].last_in if e[1] else trace[e[0]].last)
            calls = {e: 0 for e in wanted}

            def keep(event: tuple[str, bool], value: torch.Tensor) -> None:
                calls[event] += 1
                # the last event's value is final: the forward pass stops right after it
                seen[event] = value if event == last else value.clone()
                if event == last and calls[event] == trace[event[0]].calls:
                    raise _StopForward

            def hook_for(event: tuple[str, bool]) -> Any:
                if event[1]:
                    return lambda _module, args: keep(event, args[0])
                return lambda _module, _args, output: keep(event, output)

            handles = []
            for event in wanted:
                module = self.model.get_submodule(event[0])
                register = (
                    module.register_forward_pre_hook if event[1] else module.register_forward_hook
                )
                handles.append(register(hook_for(event)))
            try:
                self.model(x)
            except _StopForward:
                pass
            finally:
                for handle in handles:
                    handle.remove()
        out = {}
        for n, event in events.items():
            value = x if event[0] == INPUT else seen[event]
            transform = self.readouts.get(n, AS_IS).transform
            out[n] = value if transform is None else transform(value)
        return out

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for preprocessed input ``x``."""
        return self.model(x)  # type: ignore[no-any-return]


_TRACES: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], dict[str, _Call]]] = (
    weakref.WeakKeyDictionary()
)


def _trace_model(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, _Call]:
    cached = _TRACES.setdefault(model, {})
    if input_shape in cached:
        return cached[input_shape]
    order = [0]
    seen: dict[str, _Call] = {}
    started: dict[str, tuple[int, tuple[int, ...] | None]] = {}

    def shape_of(value: Any) -> tuple[int, ...] | None:
        return tuple(value.shape[1:]) if isinstance(value, torch.Tensor) else None

    def pre_hook_for(path: str) -> Any:
        def hook(_module: nn.Module, args: Any) -> None:
            started[path] = (order[0], shape_of(args[0]) if args else None)
            order[0] += 1

        return hook

    def hook_for(path: str) -> Any:
        def hook(_module: nn.Module, _args: Any, output: Any) -> None:
            previous = seen.get(path)
            calls = (previous.calls if previous else 0) + 1
            seen[path] = _Call(order[0], calls, shape_of(output), *started[path])
            order[0] += 1

        return hook

    modules = [(p, m) for p, m in model.named_modules() if p]
    handles = [m.register_forward_pre_hook(pre_hook_for(p)) for p, m in modules]
    handles += [m.register_forward_hook(hook_for(p)) for p, m in modules]
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
    cached[input_shape] = seen
    return seen
