"""One layer of ``innx analyze``: the invariance samples of its ``t``, and every number read off
them (:mod:`innx.ops.analyze.layer` for the measurements, :mod:`innx.ops.analyze.kept` for
*kept*)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from innx.flows import SemanticFlow
from innx.ops.analyze import kept as kept_ops
from innx.ops.analyze import layer as measure
from innx.ops.analyze.estimators import share_interval
from innx.ops.analyze.kept import Reader
from innx.ops.analyze.layer import Networks
from innx.ops.pipeline import InvarianceRun, Pipeline


class LayerMeasure:
    """Everything ``innx analyze`` measures of one layer, the same draws of ``v`` for every layer:
    the share explained of each block with its interval, preservation, *kept* and invariances.
    ``options`` is the :class:`~innx.ops.analyze.analysis.AnalyzeOptions`; ``reader`` the judge of *kept*
    (:class:`~innx.ops.analyze.kept.Reader`) or ``None``."""

    def __init__(
        self,
        pipe: Pipeline,
        options: Any,
        e: SemanticFlow | None,
        factors: list[str],
        nets: Networks,
        reader: Reader | None,
    ) -> None:
        self.pipe, self.options, self.e, self.factors = pipe, options, e, factors
        self.nets, self.reader = nets, reader

    def __call__(self, run: InvarianceRun, rows: np.ndarray, zbar: Tensor) -> dict[str, Any]:
        pipe, options = self.pipe, self.options
        unique, inverse = np.unique(rows, return_inverse=True)
        z = torch.from_numpy(np.asarray(pipe.store.layer(run.layer)[unique])[inverse]).float()
        gen = torch.Generator().manual_seed(options.seed)
        v = torch.randn(len(rows), options.draws, zbar.shape[1], generator=gen)
        batch, device = pipe.batch_size, pipe.device
        codes = measure.sample_codes(run.flow, z, v, batch=batch, device=device)
        blocks = measure.concept_blocks(self.e, codes, self.factors, batch=batch, device=device)
        share, variance = measure.shares(blocks)
        intervals = {
            name: list(share_interval(block, draws=options.bootstrap, seed=options.seed))
            for name, block in blocks.items()
        }
        preserved, judged = None, self.reader
        if self.nets.backbone is not None or judged is not None:
            decoded = codes[:, : options.decode_draws]
            samples = measure.read_decoded(
                pipe, run.layer, decoded, z, self.nets, judged.judge if judged else None
            )
        if self.nets.backbone is not None:
            recon = measure.read_decoded(pipe, run.layer, zbar[:, None], z, self.nets)
            preserved = measure.preservation(z, samples, recon, self.nets)
        found = measure.invariances(
            run.flow, z, zbar, seed=options.seed, batch=batch, device=device
        )
        return {
            "layer": run.layer,
            "run": str(run.path),
            "run_metrics": {key: _number(run.metrics.get(key)) for key in RUN_METRICS},
            "shape": list(z.shape[1:]),
            "share": share,
            "share_interval": intervals,
            "variance": variance,
            "preservation": preserved,
            "kept": None
            if judged is None
            else kept_ops.kept(
                judged, samples.readings, draws=options.bootstrap, seed=options.seed
            ),
            "invariances": found,
        }


RUN_METRICS = ("val_bits_per_dim", "best_step")
"""What the report repeats of each ``t``'s manifest (read and checked when the run was loaded)."""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
